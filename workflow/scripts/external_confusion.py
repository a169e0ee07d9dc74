"""Rule external_confusion: confusion matrices of every external test cohort and model (consensus calls)."""
import logging

from nemg.logs import log_to_file

log_to_file(snakemake.log[0])

from nemg.plots import save
from nemg.review_plots import external_confusion_figure, read_primary_variant

p = snakemake.params
panels = {}
for test, path in zip(p.tests, snakemake.input.consensus):
    sel = read_primary_variant(path, p.method)
    missing = sorted(set(p.models) - set(sel["model"]))
    if missing:
        raise ValueError(f"{path}: no consensus rows of model(s) {missing} for stage-2 method {p.method!r}")
    for model in p.models:
        m = sel[sel["model"] == model]
        panels[(test, model)] = (m["diagnosis"].to_numpy(), m["predicted"].to_numpy())
        logging.info("%s -> %s, %s: %d patients, accuracy %.3f", p.cohort, test, model, len(m),
                     (m["diagnosis"] == m["predicted"]).mean())
title = f"External validation: trained on {p.cohort}, consensus calls (stage 2: {p.method}, without location)"
save(external_confusion_figure(panels, title=title), [snakemake.output.png, snakemake.output.pdf])
