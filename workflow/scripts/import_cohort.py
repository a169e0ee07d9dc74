"""Rule import_cohort: sample sheets for a public data set; the sheets point into the data folder."""
import logging
import sys

sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

from pathlib import Path

from nemg.datasets import import_dataset
from nemg.tables import subset_sheets

subjects, recordings = import_dataset(
    snakemake.params.dataset, snakemake.params.source_dir, Path(snakemake.output.subjects).parent
)
subset_sheets(subjects, recordings, snakemake.params.keep, recordings_where=snakemake.params.where)
