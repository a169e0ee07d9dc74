"""Evaluation: every run's patient predictions, their metrics, and the study's Table 2 / S2 Table.

Three levels of summary, because the study reports more than one:

* **per run** — metrics of one trained CNN on its outer-test patients (what v1 averages with a 95 % CI and v2
  reports as medians);
* **consensus** — per replicate of the protocol (one seed of nested CV, or one repeat of k-fold) each patient
  is a test patient in several runs (the inner folds of its outer fold); their class probabilities are
  averaged into one call per patient, so every patient counts exactly once per replicate;
* **patient-level bootstrap** — resampling patients of the consensus calls gives a CI for the cohort, the
  unit the study diagnoses.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .external import check_disjoint
from .folds import replicate_id
from .labels import CLASSES, METRICS, PROB_COLS
from .metrics import (auc_table, cell_counts, classification_metrics, confusion_cells, metrics_from_confusion,
                      summarize_runs)
from .stats import fleiss_kappa, mcnemar_paired, paired_bootstrap_diff
from .vote import Stage2FitError, vote_run

log = logging.getLogger(__name__)

VARIANT = ["method", "with_location"]


def read_predictions(paths: str | Path | Iterable[str | Path]) -> pd.DataFrame:
    """Segment predictions of one file or several (Snakemake hands a rule one input as a str)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    frames = [pd.read_csv(p, sep="\t", dtype={"recording_id": str, "subject_id": str, "run_id": str}) for p in paths]
    if not frames:
        raise ValueError("no training predictions to evaluate")
    return pd.concat(frames, ignore_index=True)


def patient_predictions(predictions: pd.DataFrame, subjects: pd.DataFrame, recordings: pd.DataFrame, *,
                        methods: Sequence[str] = ("logreg", "argmax"), fit_on: str = "val",
                        seed: int = 0, class_weight: str | None = None, c: float = 1.0,
                        extra: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """Divide-and-vote for every run, method and location variant; one row per (run, variant, test patient).

    Runs without validation patients (repeated k-fold) cannot fit a stage-2 classifier on validation scores:
    they get the argmax baseline only, and the log says so. ``extra``: other models' segment scores of the
    same runs, whose patient features the stage 2 sees beside these (the combined arm, issue 12).
    """
    diagnosis = subjects.set_index("subject_id")["diagnosis"]
    locations = recordings.set_index("recording_id")["location"]
    extra_runs = {name: dict(tuple(p.groupby("run_id", sort=True))) for name, p in (extra or {}).items()}
    out = []
    for run_id, run in predictions.groupby("run_id", sort=True):
        missing = [name for name, runs in extra_runs.items() if run_id not in runs]
        if missing:
            raise ValueError(f"run {run_id}: no predictions from {missing} to combine with")
        run_extra = {name: runs[run_id] for name, runs in extra_runs.items()} or None
        roles = set(run["role"])
        for method in methods:
            if method == "logreg" and fit_on not in roles:
                continue
            for with_location in (False, True):
                try:
                    out.append(vote_run(run, diagnosis, locations, method=method, fit_on=fit_on,
                                        with_location=with_location, seed=seed, class_weight=class_weight,
                                        c=c, extra=run_extra))
                except Stage2FitError as exc:
                    # tiny cohorts: an inner-validation set of one class cannot train a classifier; the run
                    # keeps its argmax result and the gap is logged, never filled with a guess
                    log.warning("run %s: %s variant skipped: %s", run_id, method, exc)
                    break
    if not out:
        raise ValueError("no run could be voted (no test predictions)")
    return pd.concat(out, ignore_index=True)


def replicate_of(folds: pd.DataFrame) -> pd.Series:
    """run_id -> replicate key: one seed of nested CV, or one seed x repeat of repeated k-fold."""
    runs = folds.drop_duplicates("run_id").set_index("run_id")
    return pd.Series([replicate_id(*key) for key in zip(runs["scheme"], runs["seed"], runs["repeat"])],
                     index=runs.index, dtype=object)


def per_run_metrics(pp: pd.DataFrame) -> pd.DataFrame:
    """Accuracy, macro precision/recall/specificity/F1, per-class recall and ROC AUC per (run, variant)."""
    rows = []
    for (run_id, method, loc), g in pp.groupby(["run_id"] + VARIANT, sort=True):
        m = classification_metrics(g["diagnosis"], g["predicted"])
        aucs = auc_table(g["diagnosis"].to_numpy(), g[PROB_COLS].to_numpy()).set_index("class")["roc_auc"]
        rows.append({"run_id": run_id, "method": method, "with_location": loc, **m,
                     **{f"roc_auc_{c}": aucs[c] for c in CLASSES}})
    return pd.DataFrame(rows)


def consensus(pp: pd.DataFrame, replicate: pd.Series) -> pd.DataFrame:
    """One call per (replicate, variant, patient): mean probabilities over the runs that tested the patient."""
    df = pp.assign(replicate=pp["run_id"].map(replicate))
    if df["replicate"].isna().any():
        missing = sorted(df.loc[df["replicate"].isna(), "run_id"].unique())[:3]
        raise ValueError(f"runs {missing} are not in the folds table")
    keys = ["replicate"] + VARIANT + ["subject_id", "diagnosis"]
    c = df.groupby(keys, sort=True).agg(**{p: (p, "mean") for p in PROB_COLS}, n_runs=("run_id", "nunique"))
    c = c.reset_index()
    c["predicted"] = np.array(CLASSES)[c[PROB_COLS].to_numpy().argmax(axis=1)]
    return c


def bootstrap_consensus(cons: pd.DataFrame, *, n_boot: int = 2000, seed: int = 0,
                        level: float = 0.95) -> pd.DataFrame:
    """Patient-level bootstrap CI of each metric (mean over replicates), per variant.

    The same resampled patients are used in every replicate of one bootstrap draw, so replicates stay paired.
    """
    rows = []
    alpha = (1 - level) / 2
    for (method, loc), g in cons.groupby(VARIANT, sort=True):
        reps = {r: gg.set_index("subject_id") for r, gg in g.groupby("replicate")}
        patients = sorted(set.intersection(*(set(v.index) for v in reps.values())))
        n = len(patients)
        rng = np.random.default_rng(seed)
        # each patient's (true, predicted) pair as one confusion-matrix cell, per replicate
        cells = [confusion_cells(v.loc[patients, "diagnosis"], v.loc[patients, "predicted"]) for v in reps.values()]

        def stat(idx: np.ndarray) -> dict[str, np.ndarray]:
            """METRICS of resamples ``idx`` [draws, n], each the mean over replicates (classification_metrics,
            vectorised over the draws: the per-draw Python loop took ~10 s of every evaluate job)."""
            per_rep = [metrics_from_confusion(cell_counts(c[idx])) for c in cells]
            return {k: np.mean([m[k] for m in per_rep], axis=0) for k in METRICS}

        point = stat(np.arange(n)[None, :])
        # one integers() call per draw, as before: the same resamples as the per-draw loop it replaced
        draws = stat(np.stack([rng.integers(0, n, n) for _ in range(n_boot)]) if n_boot else np.empty((0, n), int))
        for k in METRICS:
            v = draws[k]
            rows.append({"method": method, "with_location": loc, "metric": k, "estimate": float(point[k][0]),
                         "boot_low": float(np.quantile(v, alpha)), "boot_high": float(np.quantile(v, 1 - alpha)),
                         "n_patients": n, "n_replicates": len(reps)})
    return pd.DataFrame(rows)


def evaluate_arm(pp: pd.DataFrame, replicate: pd.Series | str, *, n_boot: int = 2000,
                 seed: int = 0) -> dict[str, pd.DataFrame]:
    """One arm (a model: nEMGNet, a baseline, ...) evaluated from its patient predictions, as every arm is.

    ``replicate``: run_id -> replicate key (:func:`replicate_of` of the folds table), or one key for every run
    (external validation: the models of all seeds test the same patients, and their consensus is one call).
    Returns ``per_run`` (:func:`per_run_metrics`), ``consensus`` and ``bootstrap`` (:func:`bootstrap_consensus`).
    """
    if isinstance(replicate, str):
        replicate = pd.Series(replicate, index=sorted(pp["run_id"].unique()))
    per_run = per_run_metrics(pp)
    cons = consensus(pp, replicate)
    return {"per_run": per_run, "consensus": cons, "bootstrap": bootstrap_consensus(cons, n_boot=n_boot, seed=seed)}


# ---------------------------------------------------------------------------------------- external validation
def external_patient_predictions(predictions: pd.DataFrame, train_subjects: pd.DataFrame,
                                 train_recordings: pd.DataFrame, test_subjects: pd.DataFrame,
                                 test_recordings: pd.DataFrame, **vote_kwargs) -> pd.DataFrame:
    """Divide-and-vote with the stage-2 classifier fit on training-cohort patients, applied to the test cohort.

    ``predictions``: segment scores of every run, validation (and training) patients of the training cohort
    plus every test-cohort patient (role test).
    """
    check_disjoint(train_subjects, test_subjects, "training cohort", "test cohort")
    subjects = pd.concat([train_subjects[["subject_id", "diagnosis"]], test_subjects[["subject_id", "diagnosis"]]])
    recordings = pd.concat([train_recordings[["recording_id", "subject_id", "location"]],
                            test_recordings[["recording_id", "subject_id", "location"]]])
    dup = recordings["recording_id"][recordings["recording_id"].duplicated()]
    if len(dup):
        raise ValueError(f"recording ids in both cohorts: {sorted(dup.unique())[:5]}")
    return patient_predictions(predictions, subjects, recordings, **vote_kwargs)


def external_summary_row(train: str, test: str, arm: str, tables: Mapping[str, pd.DataFrame], method: str,
                         calibration: str = "none", gain: float = 1.0) -> dict:
    """One row of the external-validation table: a (training -> test, model) pair, the primary variant, from
    the arm's :func:`evaluate_arm` tables."""
    primary = lambda df: df[(df["method"] == method) & (~df["with_location"].astype(bool))]  # noqa: E731
    runs, b = primary(tables["per_run"]), primary(tables["bootstrap"]).set_index("metric")
    c = primary(tables["consensus"])
    if runs.empty:
        raise ValueError(f"{arm} {train} -> {test}: no results for stage-2 method {method!r} without location")
    s = summarize_runs(runs, METRICS).set_index("metric")
    row = {"train_cohort": train, "test_cohort": test, "calibration": calibration, "gain": gain,
           "model": arm, "method": method,
           "n_models": int(runs["run_id"].nunique()), "n_test_patients": int(c["subject_id"].nunique())}
    for k in ("accuracy", "f1"):
        row[f"{k}_mean"] = s.loc[k, "mean"]
        row[f"{k}_ci_low"], row[f"{k}_ci_high"] = s.loc[k, "ci_low"], s.loc[k, "ci_high"]
        row[f"{k}_consensus"] = b.loc[k, "estimate"]
        row[f"{k}_boot_low"], row[f"{k}_boot_high"] = b.loc[k, "boot_low"], b.loc[k, "boot_high"]
    for cls in CLASSES:
        g = c[c["diagnosis"] == cls]
        row[f"recall_{cls}"] = float((g["predicted"] == cls).mean()) if len(g) else np.nan
        row[f"n_{cls}"] = int(len(g))
    return row


def _fmt(mean: float, lo: float, hi: float) -> str:
    return f"{mean:.3f} ({lo:.3f}-{hi:.3f})"


def table2(per_run: pd.DataFrame, boot: pd.DataFrame, method: str, physicians: pd.DataFrame | None) -> pd.DataFrame:
    """Model (without location, ``method``) vs physicians: mean (95 % CI) per metric, as the study's Table 2.

    Model: across runs (t interval, v1's summary), its median (v2's), and the patient-level bootstrap CI of the
    consensus calls. Physicians: across raters (t interval) of their patient-level calls.
    """
    runs = per_run[(per_run["method"] == method) & (~per_run["with_location"].astype(bool))]
    s = summarize_runs(runs, METRICS).set_index("metric")
    b = boot[(boot["method"] == method) & (~boot["with_location"].astype(bool))].set_index("metric")
    rows = []
    for k in METRICS:
        row = {"metric": k,
               "model_mean_ci_runs": _fmt(s.loc[k, "mean"], s.loc[k, "ci_low"], s.loc[k, "ci_high"]),
               "model_median_runs": round(float(s.loc[k, "median"]), 3),
               "model_consensus_bootstrap": _fmt(b.loc[k, "estimate"], b.loc[k, "boot_low"], b.loc[k, "boot_high"])}
        if physicians is not None:
            raters = physicians[physicians["rater_id"] != "mean"]
            ps = summarize_runs(raters, [k]).iloc[0]
            row["physicians_mean_ci_raters"] = _fmt(ps["mean"], ps["ci_low"], ps["ci_high"])
            row["physicians_median_raters"] = round(float(ps["median"]), 3)
        rows.append(row)
    return pd.DataFrame(rows)


def s2_table(per_run: pd.DataFrame, boot: pd.DataFrame, cons: pd.DataFrame) -> pd.DataFrame:
    """Each stage-2 variant (method x with/without location): run summary, bootstrap CI, and a paired test of
    with- vs without-location on the same patients (McNemar on the first replicate's consensus calls)."""
    rows = []
    for (method, loc), runs in per_run.groupby(VARIANT, sort=True):
        s = summarize_runs(runs, METRICS).set_index("metric")
        b = boot[(boot["method"] == method) & (boot["with_location"] == loc)].set_index("metric")
        row = {"method": method, "with_location": bool(loc), "n_runs": int(len(runs))}
        for k in METRICS:
            row[k] = _fmt(s.loc[k, "mean"], s.loc[k, "ci_low"], s.loc[k, "ci_high"])
            row[f"{k}_bootstrap"] = _fmt(b.loc[k, "estimate"], b.loc[k, "boot_low"], b.loc[k, "boot_high"])
        rows.append(row)
    table = pd.DataFrame(rows)
    tests = []
    first = sorted(cons["replicate"].unique())[0]
    for method, g in cons[cons["replicate"] == first].groupby("method"):
        a = g[~g["with_location"].astype(bool)].set_index("subject_id")
        b_ = g[g["with_location"].astype(bool)].set_index("subject_id").loc[a.index]
        t = mcnemar_paired(b_["predicted"] == b_["diagnosis"], a["predicted"] == a["diagnosis"])
        tests.append({"method": method, "location_vs_none_mcnemar_p": t["p"],
                      "with_only_correct": t["a_only"], "without_only_correct": t["b_only"]})
    return table.merge(pd.DataFrame(tests), on="method", how="left")


def model_vs_physicians(cons: pd.DataFrame, calls: pd.DataFrame, diagnosis: pd.Series, method: str,
                        *, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Paired comparisons on the same patients (first replicate, without location):
    McNemar of the model vs the physicians' majority call, a paired bootstrap of the model's accuracy minus the
    mean physician's (per patient: fraction of raters correct), and Fleiss' kappa among the physicians."""
    first = sorted(cons["replicate"].unique())[0]
    m = cons[(cons["replicate"] == first) & (cons["method"] == method) & (~cons["with_location"].astype(bool))]
    m = m.set_index("subject_id")
    patients = [s for s in m.index if s in calls.index]
    model_ok = (m.loc[patients, "predicted"] == m.loc[patients, "diagnosis"]).to_numpy()
    c = calls.loc[patients]
    truth = diagnosis.loc[patients]
    frac_ok = c.eq(truth, axis=0).mean(axis=1).to_numpy()
    majority = c.mode(axis=1)[0]  # ties: pandas orders the modes; the first is taken, as a tie-break
    maj_ok = (majority == truth).to_numpy()
    mc = mcnemar_paired(model_ok, maj_ok)
    bd = paired_bootstrap_diff(model_ok.astype(float), frac_ok, n_boot=n_boot, seed=seed)
    kappa = fleiss_kappa(c.dropna()) if len(c.dropna()) else np.nan
    return pd.DataFrame([
        {"comparison": "model vs physicians' majority call", "test": mc["test"], "n_patients": len(patients),
         "model": float(model_ok.mean()), "physicians": float(maj_ok.mean()), "difference": float(model_ok.mean() - maj_ok.mean()),
         "ci_low": np.nan, "ci_high": np.nan, "p": mc["p"]},
        {"comparison": "model vs mean physician (accuracy)", "test": "paired patient bootstrap",
         "n_patients": len(patients), "model": float(model_ok.mean()), "physicians": float(frac_ok.mean()),
         "difference": bd["diff"], "ci_low": bd["ci_low"], "ci_high": bd["ci_high"], "p": bd["p"]},
        {"comparison": "agreement among physicians", "test": "Fleiss' kappa", "n_patients": len(patients),
         "model": np.nan, "physicians": kappa, "difference": np.nan, "ci_low": np.nan, "ci_high": np.nan, "p": np.nan},
    ])


def per_class_correct(cons: pd.DataFrame, calls: pd.DataFrame | None, diagnosis: pd.Series, method: str) -> pd.DataFrame:
    """Per-class correct ratio, mean ± SD over replicates (model) and over raters (physicians), as in v1."""
    m = cons[(cons["method"] == method) & (~cons["with_location"].astype(bool))]
    rows = []
    for cls in CLASSES:
        g = m[m["diagnosis"] == cls]
        per_rep = g.groupby("replicate").apply(lambda d: float((d["predicted"] == d["diagnosis"]).mean()),
                                               include_groups=False)
        row = {"class": cls, "model_mean": float(per_rep.mean()) if len(per_rep) else np.nan,
               "model_sd": float(per_rep.std(ddof=1)) if len(per_rep) > 1 else np.nan}
        if calls is not None:
            subj = [s for s in calls.index if diagnosis.get(s) == cls]
            per_rater = calls.loc[subj].eq(cls).mean(axis=0) if subj else pd.Series(dtype=float)
            row.update(physicians_mean=float(per_rater.mean()) if len(per_rater) else np.nan,
                       physicians_sd=float(per_rater.std(ddof=1)) if len(per_rater) > 1 else np.nan)
        rows.append(row)
    return pd.DataFrame(rows)


def failure_analysis(pp: pd.DataFrame, calls: pd.DataFrame | None, diagnosis: pd.Series, method: str) -> pd.DataFrame:
    """Unanimously misclassified patients (v2's failure analysis): by every run that tested them (model,
    without location) and by every physician. One row per such patient and arm."""
    from .physicians import unanimously_wrong

    m = pp[(pp["method"] == method) & (~pp["with_location"].astype(bool))]
    model_calls = m.pivot(index="subject_id", columns="run_id", values="predicted")
    parts = [unanimously_wrong(model_calls, diagnosis).assign(arm="model (all runs)")]
    if calls is not None:
        parts.append(unanimously_wrong(calls, diagnosis).assign(arm="physicians (all raters)"))
    out = pd.concat(parts, ignore_index=True)
    return out[["arm", "subject_id", "diagnosis", "n_calls", "calls"]]


def failure_summary(failures: pd.DataFrame, diagnosis: pd.Series, has_physicians: bool) -> pd.DataFrame:
    arms = ["model (all runs)"] + (["physicians (all raters)"] if has_physicians else [])
    rows = []
    for arm in arms:
        f = failures[failures["arm"] == arm]
        row = {"arm": arm, "unanimously_misclassified": int(len(f))}
        for cls in CLASSES:
            row[cls] = int((f["diagnosis"] == cls).sum())
        rows.append(row)
    if has_physicians:
        both = set(failures.loc[failures["arm"] == arms[0], "subject_id"]) & set(
            failures.loc[failures["arm"] == arms[1], "subject_id"])
        rows.append({"arm": "both", "unanimously_misclassified": len(both),
                     **{c: int(sum(diagnosis.get(s) == c for s in both)) for c in CLASSES}})
    return pd.DataFrame(rows)
