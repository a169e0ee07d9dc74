"""Rule baseline_evaluate: per-run metrics, consensus calls and bootstrap CIs of a baseline (nemg.evaluate)."""
import logging

from nemg.logs import log_to_file

log_to_file(snakemake.log[0])

import pandas as pd

from nemg import evaluate as ev
from nemg.tables import write_table

out, p = snakemake.output, snakemake.params
pp = pd.read_csv(snakemake.input.patients, sep="\t", dtype={"subject_id": str, "run_id": str})
folds = pd.read_csv(snakemake.input.folds, sep="\t", dtype={"subject_id": str, "run_id": str})
arm = ev.evaluate_arm(pp, ev.replicate_of(folds), n_boot=p.n_boot, seed=p.seed)
for name, table in arm.items():
    write_table(table, getattr(out, name))
logging.info("evaluated %d runs", arm["per_run"]["run_id"].nunique())
