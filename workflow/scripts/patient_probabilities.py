"""Rule patient_probabilities: every patient's class probabilities, misdiagnoses, the physicians' majority call."""
import logging

from nemg.logs import log_to_file

log_to_file(snakemake.log[0])

import pandas as pd

from nemg.physicians import patient_calls, read_ratings
from nemg.plots import save
from nemg.review_plots import majority_calls, patient_view_figure, patient_view_table, primary_variant

p = snakemake.params
cons = pd.read_csv(snakemake.input.consensus, sep="\t", dtype={"subject_id": str})
sel = primary_variant(cons, p.method, snakemake.input.consensus)
majority = None
if snakemake.input.get("ratings"):
    subjects = pd.read_csv(snakemake.input.subjects, sep="\t", dtype={"subject_id": str})
    majority = majority_calls(patient_calls(read_ratings(snakemake.input.ratings, subjects)))
table = patient_view_table(sel, majority)
logging.info("%d patients, %d misdiagnosed by nEMGNet%s", len(table), int(table["wrong"].sum()),
             f", {int(table['physician_wrong'].sum())} by the physicians' majority" if majority is not None else "")
table.to_csv(snakemake.output.tsv, sep="\t", index=False, float_format="%.6g")
n_rep = int(table["n_replicates"].max())
title = (f"Every patient's nEMGNet probabilities ({p.cohort_note}; stage 2: {p.method}, without location"
         + (f"; mean of {n_rep} replicates" if n_rep > 1 else "") + ")")
save(patient_view_figure(table, title=title), [snakemake.output.png, snakemake.output.pdf])
