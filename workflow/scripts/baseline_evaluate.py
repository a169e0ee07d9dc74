"""Rule baseline_evaluate: per-run metrics, consensus calls and bootstrap CIs of a baseline (nemg.evaluate)."""
import logging
import sys

sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

import pandas as pd

from nemg import evaluate as ev
from nemg.tables import write_table

out, p = snakemake.output, snakemake.params
pp = pd.read_csv(snakemake.input.patients, sep="\t", dtype={"subject_id": str, "run_id": str})
folds = pd.read_csv(snakemake.input.folds, sep="\t", dtype={"subject_id": str, "run_id": str})
per_run = ev.per_run_metrics(pp)
write_table(per_run, out.per_run)
cons = ev.consensus(pp, ev.replicate_of(folds))
write_table(cons, out.consensus)
write_table(ev.bootstrap_consensus(cons, n_boot=p.n_boot, seed=p.seed), out.bootstrap)
logging.info("evaluated %d runs", per_run["run_id"].nunique())
