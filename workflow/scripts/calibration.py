"""Rule calibration: reliability diagrams and Brier scores of patient-level probabilities, nEMGNet and baselines."""
import logging

from nemg.logs import log_to_file

log_to_file(snakemake.log[0])

from nemg.labels import PROB_COLS
from nemg.plots import save
from nemg.review_plots import calibration_figure, calibration_tables, model_name, read_primary_variant

p = snakemake.params
models = {}
for key, path in zip(p.models, snakemake.input.consensus):
    # the primary variant, every replicate pooled: each patient once per replicate (as Fig 1 and Fig 2)
    sel = read_primary_variant(path, p.method)
    models[model_name(key)] = (sel["diagnosis"].to_numpy(), sel[PROB_COLS].to_numpy())
bins, summary = calibration_tables(models, n_bins=p.n_bins)
logging.info("calibration summary:\n%s", summary.to_string(index=False))
bins.to_csv(snakemake.output.bins, sep="\t", index=False, float_format="%.6g")
summary.to_csv(snakemake.output.summary, sep="\t", index=False, float_format="%.6g")
title = (f"Calibration of patient-level probabilities ({p.cohort_note}; stage 2: {p.method}, without location; "
         f"{p.n_bins} bins)")
save(calibration_figure(bins, summary, title=title), [snakemake.output.png, snakemake.output.pdf])
