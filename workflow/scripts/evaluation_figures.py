"""Rule evaluation_figures: Fig 1 / S2 Fig (ROC and PR with physicians), Fig 2 / S3 Fig (confusion matrices)."""
from nemg.logs import log_to_file

log_to_file(snakemake.log[0])

import pandas as pd

from nemg.labels import PROB_COLS
from nemg.physicians import patient_calls, rater_operating_points, read_cohort_ratings
from nemg.plots import confusion_figure, roc_pr_figure, save

out, p = snakemake.output, snakemake.params
cons = pd.read_csv(snakemake.input.consensus, sep="\t", dtype={"subject_id": str})
subjects = pd.read_csv(snakemake.input.subjects, sep="\t", dtype={"subject_id": str})
diagnosis = subjects.set_index("subject_id")["diagnosis"]
m = cons[cons["method"] == p.method]
# every replicate's consensus calls pooled: each patient once per replicate
without = m[~m["with_location"].astype(bool)]
with_loc = m[m["with_location"].astype(bool)]

raters = calls = None
if snakemake.input.get("ratings"):
    ratings = read_cohort_ratings(snakemake.input.ratings, snakemake.input.subjects, snakemake.input.recordings,
                                  snakemake.input.get("all_subjects"), snakemake.input.get("all_recordings"))
    raters = rater_operating_points(ratings, diagnosis)
    calls = patient_calls(ratings)

save(roc_pr_figure({"model": (without["diagnosis"].to_numpy(), without[PROB_COLS].to_numpy())}, raters=raters,
                   title=f"Fig 1: model vs {'physicians' if raters is not None else 'chance'} ({p.cohort_note})"),
     [out.fig1_png, out.fig1_pdf])
save(roc_pr_figure({"without location": (without["diagnosis"].to_numpy(), without[PROB_COLS].to_numpy()),
                    "with location": (with_loc["diagnosis"].to_numpy(), with_loc[PROB_COLS].to_numpy())},
                   raters=raters, title="S2 Fig: with vs without muscle location"),
     [out.s2_fig_png, out.s2_fig_pdf])
panels = {}
if calls is not None:
    long = calls.stack().rename("label").reset_index()
    panels["physicians (all raters)"] = (long["subject_id"].map(diagnosis).to_numpy(), long["label"].to_numpy())
panels["model"] = (without["diagnosis"].to_numpy(), without["predicted"].to_numpy())
save(confusion_figure(panels), [out.fig2_png, out.fig2_pdf])
save(confusion_figure({"without location": (without["diagnosis"].to_numpy(), without["predicted"].to_numpy()),
                       "with location": (with_loc["diagnosis"].to_numpy(), with_loc["predicted"].to_numpy())}),
     [out.s3_fig_png, out.s3_fig_pdf])
