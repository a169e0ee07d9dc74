"""Rule vote: divide-and-vote for every run (segment -> signal -> patient, stage-2 classifier)."""
import logging
import sys

sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

import pandas as pd

from nemg.evaluate import patient_predictions, read_predictions

subjects = pd.read_csv(snakemake.input.subjects, sep="\t", dtype={"subject_id": str})
recordings = pd.read_csv(snakemake.input.recordings, sep="\t", dtype={"recording_id": str, "subject_id": str})
pp = patient_predictions(read_predictions(snakemake.input.predictions), subjects, recordings,
                         methods=snakemake.params.methods, fit_on=snakemake.params.fit_on, seed=snakemake.params.seed,
                         class_weight=snakemake.params.class_weight)
pp.to_csv(snakemake.output.patients, sep="\t", index=False, float_format="%.6g")
logging.info("%d patient predictions from %d runs", len(pp), pp["run_id"].nunique())
