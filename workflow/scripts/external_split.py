"""Rule external_split: every patient of the training cohort in training or validation, per seed."""
import logging

from nemg.logs import log_to_file

log_to_file(snakemake.log[0])

import pandas as pd

from nemg.external import external_split

subjects = pd.read_csv(snakemake.input.subjects, sep="\t", dtype={"subject_id": str})
# patients without a single segment (every recording trimmed away) cannot train or validate
seg_subjects = set(pd.read_csv(snakemake.input.segments_index, sep="\t", usecols=["subject_id"],
                               dtype={"subject_id": str})["subject_id"])
dropped = sorted(set(subjects["subject_id"]) - seg_subjects)
if dropped:
    logging.warning("%d subject(s) without segments left out: %s", len(dropped), dropped)
split = external_split(subjects[subjects["subject_id"].isin(seg_subjects)], snakemake.params.seeds,
                       float(snakemake.params.val_fraction))
split.to_csv(snakemake.output.split, sep="\t", index=False)
logging.info("%s", split.groupby(["run_id", "role", "diagnosis"]).size().to_string())
