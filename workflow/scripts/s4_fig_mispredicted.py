"""Rule s4_fig_mispredicted: example signals of the most confidently mispredicted patients (S4 Fig)."""
import logging

from nemg.logs import log_to_file

log_to_file(snakemake.log[0])

from nemg.explain import mispredicted_examples
from nemg.model_figures import s4_fig_mispredicted, save

p = snakemake.params
selected, examples, x, n_patients = mispredicted_examples(
    snakemake.input.patients, list(snakemake.input.predictions), snakemake.input.segments, snakemake.input.index,
    method=p.method, with_location=False, fit_on=p.fit_on, n_examples=p.n_examples, n_segments=p.n_segments,
)
logging.info("%d mispredicted patient(s) shown of %d evaluated:\n%s", len(selected), n_patients,
             selected.to_string(index=False))
description = f"stage 2: {p.method}, without muscle location; {n_patients} patients evaluated"
fig = s4_fig_mispredicted(selected, examples, x, p.fs_hz, n_patients=n_patients, description=description)
save(fig, [snakemake.output.png, snakemake.output.pdf])
table = examples.merge(selected[["subject_id", "diagnosis", "predicted", "confidence"]], on="subject_id", how="left")
table.to_csv(snakemake.output.tsv, sep="\t", index=False, float_format="%.6g")
