"""Rule model_comparison: nEMGNet vs the classical baselines, Table 2 style, with paired tests (nemg.baseline)."""
import logging

from nemg.logs import log_to_file

log_to_file(snakemake.log[0])

import pandas as pd

from nemg import baseline as bl
from nemg.tables import write_table

inp, out, p = snakemake.input, snakemake.output, snakemake.params


def read(path):
    return pd.read_csv(path, sep="\t", dtype={"subject_id": str, "run_id": str, "replicate": str})


# the combined arms (nEMGNet + a QEMG model in one stage 2) come last: beside nEMGNet alone, never instead of it
names = ["nEMGNet"] + [f"baseline_{m}" for m in p.models] + list(p.combined)
per_run = [read(f) for f in [inp.nemgnet_per_run, *inp.per_run, *inp.combined_per_run]]
boot = [read(f) for f in [inp.nemgnet_bootstrap, *inp.bootstrap, *inp.combined_bootstrap]]
cons = [read(f) for f in [inp.nemgnet_consensus, *inp.consensus, *inp.combined_consensus]]
table = bl.model_comparison(dict(zip(names, zip(per_run, boot))), p.method)
tests = bl.paired_model_tests(dict(zip(names, cons)), "nEMGNet", p.method, n_boot=p.n_boot, seed=p.seed)
per_class = bl.per_class_recall(dict(zip(names, cons)), p.method)
write_table(table, out.table)
write_table(tests, out.tests)
write_table(per_class, out.per_class)
runs = ", ".join(f"{k}: {v} runs" for k, v in table.attrs["n_runs"].items())
bl.write_comparison_html(
    [(f"nEMGNet vs classical qEMG baselines (stage 2: {p.method}, without location), mean (95% CI)", table),
     ("Paired tests on the same patients (first replicate, consensus calls)", tests),
     ("Per-class correct ratio of the consensus calls (mean over replicates)", per_class)],
    out.html, note=f"Same folds and divide-and-vote for every arm ({runs}). Baselines: docs/baseline.md."
    + (" combined_<m>: one stage 2 fit on nEMGNet's and QEMG model <m>'s patient scores together."
       if p.combined else ""))
logging.info("compared %s", ", ".join(names))
