"""Rule check_leakage: fail the workflow if any subject has two roles in one run (or the table is inconsistent)."""
import logging
import sys

sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

from nemg.folds import check_folds_file

check_folds_file(snakemake.input.folds, snakemake.input.segments_index, snakemake.output[0])
