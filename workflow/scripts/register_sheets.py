"""Rule register_sheets: validate the user's own sample sheets and copy them (paths made absolute)."""
import logging

from nemg.logs import log_to_file

log_to_file(snakemake.log[0])

from nemg.cohort import read_cohort
from nemg.tables import subset_sheets

cohort = read_cohort(snakemake.input.subjects, snakemake.input.recordings)
for w in cohort.warnings:
    logging.warning(w)
subset_sheets(snakemake.input.subjects, snakemake.input.recordings, snakemake.params.keep,
              snakemake.output.subjects, snakemake.output.recordings, recordings_where=snakemake.params.where)
