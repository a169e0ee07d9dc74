"""Rule make_folds: patient-level stratified folds table (the single source of truth for training)."""
import logging
import sys

sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

from nemg.folds import folds_for_cohort

folds_for_cohort(
    snakemake.input.segments_index,
    snakemake.input.subjects,
    snakemake.params.folds,
    snakemake.output.folds,
    snakemake.output.summary,
)
