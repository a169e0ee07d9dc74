"""Rule training_curves: training loss and validation accuracy per update of every run, the kept checkpoint marked."""
import logging
from pathlib import Path

from nemg.logs import log_to_file

log_to_file(snakemake.log[0])

import pandas as pd

from nemg.plots import save
from nemg.review_plots import curve_summary, training_curves_figure

# results/train/<cohort>/<run_id>/curve.tsv: the run id is the folder's name
curves = {Path(p).parent.name: pd.read_csv(p, sep="\t") for p in snakemake.input.curves}
summary = curve_summary(curves)
logging.info("kept checkpoints:\n%s", summary.to_string(index=False))
summary.to_csv(snakemake.output.tsv, sep="\t", index=False, float_format="%.6g")
save(training_curves_figure(curves, title=f"Training curves of every run ({snakemake.params.cohort_note})"),
     [snakemake.output.png, snakemake.output.pdf])
