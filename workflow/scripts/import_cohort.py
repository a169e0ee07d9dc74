"""Rule import_cohort: sample sheets for a public data set; the sheets point into the data folder."""
from nemg.logs import log_to_file

log_to_file(snakemake.log[0])

from pathlib import Path

from nemg.datasets import import_dataset
from nemg.tables import subset_sheets

subjects, recordings = import_dataset(
    snakemake.params.dataset, snakemake.params.source_dir, Path(snakemake.output.subjects).parent
)
subset_sheets(subjects, recordings, snakemake.params.keep, recordings_where=snakemake.params.where)
