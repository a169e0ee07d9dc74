"""Rule resample: every trimmed recording to preprocess.resample.rate_hz (anti-aliased)."""
from nemg.logs import log_to_file

log_to_file(snakemake.log[0])

from nemg.resample import resample_store

# quoted by any later reader that finds the store damaged
REBUILD = f"snakemake --cores all --force {snakemake.output.signals} (with this run's --configfile)"

resample_store(
    snakemake.input.signals,
    snakemake.input.index,
    snakemake.params.rate_hz,
    snakemake.params.method,
    snakemake.output.signals,
    snakemake.output.index,
    rebuild=REBUILD,
)
