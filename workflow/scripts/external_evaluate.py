"""Rule external_evaluate: metrics of every model arm on one test cohort, with CIs and paired tests."""
import logging

from nemg.logs import log_to_file

log_to_file(snakemake.log[0])

import pandas as pd

from nemg.baseline import paired_model_tests
from nemg.evaluate import evaluate_arm, external_summary_row
from nemg.external import SCHEME
from nemg.segment import read_gain
from nemg.tables import write_table

p, out = snakemake.params, snakemake.output
train, test = snakemake.wildcards.cohort, snakemake.wildcards.test
gain = read_gain(snakemake.input.gain)
arms = {}
for arm, path in zip(p.arms, snakemake.input.patients):
    pp = pd.read_csv(path, sep="\t", dtype={"subject_id": str, "run_id": str})
    arms[arm] = evaluate_arm(pp, SCHEME, n_boot=int(p.n_boot), seed=int(p.seed))
for name in ("per_run", "consensus", "bootstrap"):
    write_table(pd.concat([res[name].assign(model=arm) for arm, res in arms.items()]), getattr(out, name))
summary = pd.DataFrame([external_summary_row(train, test, arm, res, p.method, calibration=p.calibration, gain=gain)
                        for arm, res in arms.items()])
write_table(summary, out.summary)
cons = {arm: res["consensus"] for arm, res in arms.items()}
tests = (paired_model_tests(cons, "nemgnet", p.method, n_boot=int(p.n_boot), seed=int(p.seed))
         if len(cons) > 1 else pd.DataFrame())
if len(tests):
    tests.insert(0, "test_cohort", test)
write_table(tests, out.tests)
logging.info("\n%s", summary[["model", "accuracy_mean", "accuracy_consensus", "f1_consensus"]])
