"""Rules vote, baseline_vote, combined_vote: divide-and-vote for every run (segment -> signal -> patient, stage 2).

The same script for nEMGNet, each QEMG baseline and the combined arms, so every arm is voted alike."""
import logging

from nemg.logs import log_to_file

log_to_file(snakemake.log[0])

import pandas as pd

from nemg.evaluate import patient_predictions, read_predictions

subjects = pd.read_csv(snakemake.input.subjects, sep="\t", dtype={"subject_id": str})
recordings = pd.read_csv(snakemake.input.recordings, sep="\t", dtype={"recording_id": str, "subject_id": str})

extra = None
if "extra" in snakemake.input.keys():
    # combined_vote: the QEMG model's segment scores, named by its wildcard, feed the same stage 2
    extra = {snakemake.wildcards.baseline_model: read_predictions(snakemake.input.extra)}
pp = patient_predictions(read_predictions(snakemake.input.predictions), subjects, recordings,
                         methods=snakemake.params.methods, extra=extra, **snakemake.params.stage2)
pp.to_csv(snakemake.output.patients, sep="\t", index=False, float_format="%.6g")
logging.info("%d patient predictions from %d runs", len(pp), pp["run_id"].nunique())
