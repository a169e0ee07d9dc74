"""Rule fig3_activation_maximization: Fig 3 from the optimised inputs and their summary."""
from nemg.logs import log_to_file

log_to_file(snakemake.log[0])

import pandas as pd

from nemg.model_figures import fig3_activation_maximization, save

summary = pd.read_csv(snakemake.input.summary, sep="\t")
runs = summary["runs"].iloc[0].split(",")
title = f"{snakemake.wildcards.cohort}: inputs maximising each class (ensemble of {len(runs)} CNN(s))"
fig = fig3_activation_maximization(pd.read_csv(snakemake.input.signals, sep="\t"), summary, title=title)
save(fig, [snakemake.output.png, snakemake.output.pdf])
