"""Rule external_evaluate: metrics of every model arm on one test cohort, with CIs and paired tests."""
import logging
import sys

sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

import pandas as pd

from nemg.baseline import paired_model_tests
from nemg.external import evaluate_arm, summary_rows
from nemg.segment import read_gain

p, out = snakemake.params, snakemake.output
train, test = snakemake.wildcards.cohort, snakemake.wildcards.test
gain = read_gain(snakemake.input.gain)
per_run, cons, boot, rows = [], {}, [], []
for arm, path in zip(p.arms, snakemake.input.patients):
    pp = pd.read_csv(path, sep="\t", dtype={"subject_id": str, "run_id": str})
    res = evaluate_arm(pp, n_boot=int(p.n_boot), seed=int(p.seed))
    per_run.append(res["per_run"].assign(model=arm))
    boot.append(res["bootstrap"].assign(model=arm))
    cons[arm] = res["consensus"]
    rows.append(summary_rows(train, test, arm, res["per_run"], res["bootstrap"], res["consensus"], p.method,
                             calibration=p.calibration, gain=gain))
pd.concat(per_run).to_csv(out.per_run, sep="\t", index=False, float_format="%.6g")
pd.concat([c.assign(model=a) for a, c in cons.items()]).to_csv(out.consensus, sep="\t", index=False,
                                                               float_format="%.6g")
pd.concat(boot).to_csv(out.bootstrap, sep="\t", index=False, float_format="%.6g")
pd.DataFrame(rows).to_csv(out.summary, sep="\t", index=False, float_format="%.6g")
tests = (paired_model_tests(cons, "nemgnet", p.method, n_boot=int(p.n_boot), seed=int(p.seed))
         if len(cons) > 1 else pd.DataFrame())
if len(tests):
    tests.insert(0, "test_cohort", test)
tests.to_csv(out.tests, sep="\t", index=False, float_format="%.6g")
logging.info("\n%s", pd.DataFrame(rows)[["model", "accuracy_mean", "accuracy_consensus", "f1_consensus"]])
