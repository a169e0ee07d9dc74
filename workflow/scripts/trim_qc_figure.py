"""Rule trim_qc_figure: one audit figure per cohort from the trimming QC table."""
import logging
import sys

sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

from nemg.qc_plots import trim_qc_figure

trim_qc_figure(
    snakemake.input.qc,
    snakemake.output[0],
    subjects_tsv=snakemake.input.subjects,
    recordings_tsv=snakemake.input.recordings,
    title=snakemake.wildcards.cohort,
)
