"""Rule trim: detect and cut edge artifacts of every recording; trimmed signal store + QC table."""
import logging
import sys

sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

from nemg.trim import TrimParams, trim_cohort

trim_cohort(
    snakemake.input.subjects,
    snakemake.input.recordings,
    TrimParams.from_config(snakemake.params.trim),
    snakemake.output.signals,
    snakemake.output.index,
    snakemake.output.qc,
    n_jobs=snakemake.threads,
)
