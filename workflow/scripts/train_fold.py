"""Rules train_fold, train_external and pretrain: train one run of a folds table (resumes from last.pt after an
interruption)."""
import logging
from pathlib import Path

from nemg.logs import log_to_file

log_to_file(snakemake.log[0], append=True)  # a resumed job keeps the interrupted attempt's log

from nemg.config import fill_defaults, split_train_runtime
from nemg.train import train_run

# how the job runs (progress bar, checkpoint cadence, ...) comes from the config, not from params: Snakemake
# compares params, and a changed progress setting must not retrain the networks
_, runtime = split_train_runtime(fill_defaults(snakemake.config)["train"])

wc = snakemake.wildcards
# cross-validation, external or pretraining run
run_id = wc.run_id if hasattr(wc, "run_id") else wc.ext_run if hasattr(wc, "ext_run") else snakemake.params.run_id
# the first weights are an input (pretraining's network or train.init_from), not a param: see common/settings.smk
init = getattr(snakemake.input, "init", None) or None  # the pretraining itself has none; [] when unset
# train.aux_qemg's targets, the features of this job's own store (an input only when the switch is on)
aux_features = getattr(snakemake.input, "aux_features", None) or None
result = train_run(
    snakemake.input.segments,
    snakemake.input.index,
    snakemake.input.folds,
    run_id,
    Path(snakemake.output.best).parent,
    model_cfg=snakemake.params.model,
    # threads as scheduled
    train_cfg={**snakemake.params.train, **runtime, "num_threads": snakemake.threads, "init_from": init,
               **({"aux_features": aux_features} if aux_features else {})},
)
logging.info("result: %s", result)
