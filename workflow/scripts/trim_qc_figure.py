"""Rule trim_qc_figure: one audit figure per cohort from the trimming QC table."""
from nemg.logs import log_to_file

log_to_file(snakemake.log[0])

from nemg.qc_plots import trim_qc_figure

trim_qc_figure(
    snakemake.input.qc,
    snakemake.output[0],
    subjects_tsv=snakemake.input.subjects,
    recordings_tsv=snakemake.input.recordings,
    title=snakemake.wildcards.cohort,
)
