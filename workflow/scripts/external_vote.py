"""Rule external_vote: divide-and-vote, stage 2 fit on training-cohort patients, applied to the test cohort."""
import logging

from nemg.logs import log_to_file

log_to_file(snakemake.log[0])

import pandas as pd

from nemg.evaluate import external_patient_predictions, read_predictions

inp = snakemake.input
read = lambda p: pd.read_csv(p, sep="\t", dtype={"recording_id": str, "subject_id": str})  # noqa: E731
arm = snakemake.wildcards.arm
# a combined arm: the QEMG model's segment scores, named by that model, feed the same stage 2 (as in the CV)
extra = {arm.removeprefix("combined_"): read_predictions(inp.extra)} if inp.get("extra") else None
pp = external_patient_predictions(read_predictions(inp.predictions), read(inp.train_subjects),
                                  read(inp.train_recordings), read(inp.test_subjects), read(inp.test_recordings),
                                  methods=snakemake.params.methods, extra=extra, **snakemake.params.stage2)
pp.to_csv(snakemake.output.patients, sep="\t", index=False, float_format="%.6g")
logging.info("%d patient predictions from %d models", len(pp), pp["run_id"].nunique())
