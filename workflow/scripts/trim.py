"""Rule trim: detect and cut edge artifacts of every recording; trimmed signal store + QC table."""
from nemg.logs import log_to_file

log_to_file(snakemake.log[0])

from nemg.trim import TrimParams, trim_cohort

# quoted by any later reader that finds the store damaged
REBUILD = f"snakemake --cores all --force {snakemake.output.signals} (with this run's --configfile)"

trim_cohort(
    snakemake.input.subjects,
    snakemake.input.recordings,
    TrimParams.from_config(snakemake.params.trim),
    snakemake.output.signals,
    snakemake.output.index,
    snakemake.output.qc,
    n_jobs=snakemake.threads,
    rebuild=REBUILD,
)
