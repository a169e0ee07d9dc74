"""Rule baseline_predictions: one classifier per run of the folds table, segment probabilities of its patients."""
from nemg.logs import log_to_file

log_to_file(snakemake.log[0])

from nemg.baseline import write_baseline_predictions

inp, out = snakemake.input, snakemake.output
write_baseline_predictions(inp.features, inp.names, inp.index, inp.folds, snakemake.wildcards.baseline_model,
                           out.predictions, out_timing=out.timing, params=dict(snakemake.params.classifier),
                           n_jobs=snakemake.threads, predict_train=bool(snakemake.params.predict_train))
