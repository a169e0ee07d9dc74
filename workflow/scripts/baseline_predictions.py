"""Rule baseline_predictions: one classifier per run of the folds table, segment probabilities of its patients."""
import logging
import sys

sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

from nemg.baseline import write_baseline_predictions

inp, out = snakemake.input, snakemake.output
write_baseline_predictions(inp.features, inp.names, inp.index, inp.folds, snakemake.wildcards.baseline_model,
                           out.predictions, out_timing=out.timing, params=dict(snakemake.params.classifier),
                           n_jobs=snakemake.threads, predict_train=bool(snakemake.params.predict_train))
