"""Rules train_fold and train_external: train one run of a folds table (resumes from last.pt after an interruption)."""
import logging
from pathlib import Path

from nemg.logs import log_to_file

log_to_file(snakemake.log[0], append=True)  # a resumed job keeps the interrupted attempt's log

from nemg.train import train_run

wc = snakemake.wildcards
run_id = wc.run_id if hasattr(wc, "run_id") else wc.ext_run  # cross-validation or external run
result = train_run(
    snakemake.input.segments,
    snakemake.input.index,
    snakemake.input.folds,
    run_id,
    Path(snakemake.output.best).parent,
    model_cfg=snakemake.params.model,
    train_cfg={**snakemake.params.train, "num_threads": snakemake.threads},  # the job's threads, as scheduled
)
logging.info("result: %s", result)
