"""Rule trim: detect and cut edge artifacts of every recording; trimmed signal store + QC table."""
import logging
import sys

sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

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
