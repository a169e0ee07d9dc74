"""Rule external_baseline_predictions: the classical baseline fit on the training cohort, scoring the test cohort."""
import logging

from nemg.logs import log_to_file

log_to_file(snakemake.log[0])

import pandas as pd

from nemg.baseline import baseline_external_predictions
from nemg.features import read_features

inp = snakemake.input
train_x, train_names = read_features(inp.train_features, inp.train_names)
test_x, test_names = read_features(inp.test_features, inp.test_names)
if train_names != test_names:
    raise ValueError(f"{inp.test_names}: feature names differ from {inp.train_names}")
read = lambda p: pd.read_csv(p, sep="\t", dtype={"recording_id": str, "subject_id": str})  # noqa: E731
split = pd.read_csv(inp.split, sep="\t", dtype={"subject_id": str})
pred = baseline_external_predictions(train_x, read(inp.train_index), test_x, read(inp.test_index), split,
                                     snakemake.wildcards.baseline_model, params=dict(snakemake.params.classifier),
                                     n_jobs=snakemake.threads, predict_train=bool(snakemake.params.predict_train))
pred.to_csv(snakemake.output.predictions, sep="\t", index=False, float_format="%.6g")
logging.info("%d segment predictions (%s)", len(pred), pred.groupby("role").size().to_dict())
