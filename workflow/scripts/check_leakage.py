"""Rule check_leakage: fail the workflow if any subject has two roles in one run (or the table is inconsistent)."""
from nemg.logs import log_to_file

log_to_file(snakemake.log[0])

from nemg.folds import check_folds_file

check_folds_file(snakemake.input.folds, snakemake.input.segments_index, snakemake.output[0])
