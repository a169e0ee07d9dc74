"""Rule make_folds: patient-level stratified folds table (the single source of truth for training)."""
from nemg.logs import log_to_file

log_to_file(snakemake.log[0])

from nemg.folds import folds_for_cohort

folds_for_cohort(
    snakemake.input.segments_index,
    snakemake.input.subjects,
    snakemake.params.folds,
    snakemake.output.folds,
    snakemake.output.summary,
)
