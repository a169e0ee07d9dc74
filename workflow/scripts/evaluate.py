"""Rule evaluate: per-run metrics, consensus calls, bootstrap CIs, Table 2, S2 Table, physician arm, failures."""
import logging

from nemg.logs import log_to_file

log_to_file(snakemake.log[0])

import pandas as pd

from nemg import evaluate as ev
from nemg.physicians import patient_calls, per_rater_metrics, read_cohort_ratings
from nemg.tables import write_table

out, p = snakemake.output, snakemake.params
pp = pd.read_csv(snakemake.input.patients, sep="\t", dtype={"subject_id": str, "run_id": str})
folds = pd.read_csv(snakemake.input.folds, sep="\t", dtype={"subject_id": str, "run_id": str})
subjects = pd.read_csv(snakemake.input.subjects, sep="\t", dtype={"subject_id": str})
diagnosis = subjects.set_index("subject_id")["diagnosis"]

arm = ev.evaluate_arm(pp, ev.replicate_of(folds), n_boot=p.n_boot, seed=p.seed)
for name, table in arm.items():
    write_table(table, getattr(out, name))
per_run, cons, boot = arm["per_run"], arm["consensus"], arm["bootstrap"]

ratings_path = snakemake.input.get("ratings")
physicians = calls = None
if ratings_path:
    ratings = read_cohort_ratings(snakemake.input.ratings, snakemake.input.subjects, snakemake.input.recordings,
                                  snakemake.input.get("all_subjects"), snakemake.input.get("all_recordings"))
    calls = patient_calls(ratings)
    physicians = per_rater_metrics(ratings, diagnosis)
    write_table(physicians, out.physicians, out.physicians_html, "Physicians: per-rater patient-level metrics",
                p.physician_note)
    comp = ev.model_vs_physicians(cons, calls, diagnosis, p.method, n_boot=p.n_boot, seed=p.seed)
    write_table(comp, out.comparisons, out.comparisons_html, "Model vs physicians: paired tests", p.physician_note)

write_table(ev.table2(per_run, boot, p.method, physicians), out.table2, out.table2_html,
            f"Table 2: model ({p.method}, without location) vs physicians, mean (95% CI)", p.physician_note)
write_table(ev.s2_table(per_run, boot, cons), out.s2_table, out.s2_table_html,
            "S2 Table: divide-and-vote with vs without muscle location")
write_table(ev.per_class_correct(cons, calls, diagnosis, p.method), out.per_class, out.per_class_html,
            "Per-class correct ratio (mean, SD)", p.physician_note)
fail = ev.failure_analysis(pp, calls, diagnosis, p.method)
write_table(fail, out.failures)
write_table(ev.failure_summary(fail, diagnosis, calls is not None), out.failure_summary, out.failure_summary_html,
            "Failure analysis: unanimously misclassified patients", p.physician_note)
logging.info("evaluated %d runs", per_run["run_id"].nunique())
