"""Classical quantitative-EMG baseline: segment features (:mod:`nemg.features`) + logistic regression or random
forest, fit per run of the folds table, scored in the training stage's ``predictions.tsv`` format so the same
divide-and-vote (:func:`nemg.evaluate.patient_predictions`), metrics and consensus apply unchanged.

Per run: the classifier is fit on the segments of the run's **train** patients only; it scores the segments of
the run's **val** and **test** patients (and, when the stage-2 fit needs them, the train patients' own
segments: ``predict_train``). Test patients never reach the fit; :func:`run_predictions` asserts it.

* ``logreg``: log1p of the (non-negative) features, z-scored on the training segments, multinomial logistic
  regression (lbfgs, C = ``logreg_c``), class weights balanced over training segments;
* ``rf``: random forest on the raw features (``rf_trees`` trees, ``rf_min_samples_leaf``, sqrt features per
  split, balanced class weights, ``random_state`` = the run's folds seed + ``seed_offset``).

Also the side-by-side comparison with nEMGNet (Table 2 style) and its paired tests on the same patients.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from .config import section_defaults
from .external import SCHEME
from .folds import FOLD_COLUMNS
from .labels import CLASSES, METRICS, PROB_COLS
from .metrics import summarize_runs
from .stats import mcnemar_paired, paired_bootstrap_diff
from .tables import html_page, html_table
from .vote import proba_in_class_order, stage2_from_dict, stage2_to_dict

log = logging.getLogger(__name__)

MODELS = ("logreg", "rf")
PREDICTION_COLUMNS = ["run_id", "segment", "recording_id", "subject_id", "role", *PROB_COLS]

#: The ``baseline:`` keys the classifiers read (defaults: the config schema's).
CLASSIFIER_KEYS = ("logreg_c", "rf_trees", "rf_min_samples_leaf", "rf_max_depth", "seed_offset")


def classifier_params(params: Mapping | None = None) -> dict:
    """The classifier settings of a ``baseline:`` section (partial or whole), schema defaults filling the gaps."""
    p = {**section_defaults("baseline"), **(params or {})}
    return {k: p[k] for k in CLASSIFIER_KEYS}


def _log1p_nonneg(x: np.ndarray) -> np.ndarray:
    return np.log1p(np.maximum(x, 0.0))


def make_classifier(model: str, seed: int, params: Mapping | None = None, n_jobs: int = 1):
    """A fresh scikit-learn pipeline for ``model`` (``logreg`` or ``rf``)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    p = classifier_params(params)
    if model == "logreg":
        return make_pipeline(
            FunctionTransformer(_log1p_nonneg),  # rates and amplitudes are skewed
            StandardScaler(),
            LogisticRegression(C=float(p["logreg_c"]), max_iter=5000, class_weight="balanced", random_state=seed),
        )
    if model == "rf":
        return RandomForestClassifier(n_estimators=int(p["rf_trees"]), min_samples_leaf=int(p["rf_min_samples_leaf"]),
                                      max_depth=p["rf_max_depth"], max_features="sqrt", class_weight="balanced",
                                      random_state=seed, n_jobs=n_jobs)
    raise ValueError(f"unknown baseline model {model!r}; expected one of {', '.join(MODELS)}")


def segment_roles(index: pd.DataFrame, run: pd.DataFrame) -> pd.Series:
    """Each segment's role in ``run`` (train / val / test; NaN for patients the run does not use)."""
    return index["subject_id"].map(run.set_index("subject_id")["role"])


def _fit(model: str, run: pd.DataFrame, params: Mapping, n_jobs: int, x: np.ndarray, y: np.ndarray):
    """The run's classifier (random_state: its folds seed + ``seed_offset``) fit on ``x``, ``y``."""
    # float64 whatever the store's dtype: on float32 features lbfgs stops at a point that depends on the
    # number of OpenMP/BLAS threads (segment probabilities 0.03-0.05 apart between 1 and 2 threads)
    clf = make_classifier(model, int(run["seed"].iloc[0]) + int(params["seed_offset"]), params, n_jobs)
    clf.fit(np.asarray(x, dtype=np.float64), y)
    return clf


def fit_run_logreg(features: np.ndarray, index: pd.DataFrame, run: pd.DataFrame, *,
                   params: Mapping | None = None):
    """The QEMG logistic regression :func:`run_predictions` fits for ``run`` (its train patients' segments), for
    the model bundle's combined arm; ``index`` is the segment store's index (rows of ``features``)."""
    p = classifier_params(params)
    run_id = run["run_id"].iloc[0]
    train = (segment_roles(index, run) == "train").to_numpy()
    y = index.loc[train, "diagnosis"].to_numpy()
    if len(set(y)) < len(CLASSES):
        raise ValueError(f"run {run_id}: training segments of {sorted(set(y))} only; the QEMG logistic regression "
                         f"of a bundle needs every class {list(CLASSES)}")
    return _fit("logreg", run, p, 1, features[train], y)


def logreg_to_dict(clf) -> dict:
    """A fitted QEMG logistic regression (:func:`make_classifier` ``logreg``) as plain JSON numbers: the z-scoring
    of log1p features and the multinomial coefficients (no pickle: a bundle cannot run code)."""
    scaler, lr = clf[1], clf[2]
    return {"transform": "log1p_nonneg", "mean": scaler.mean_.tolist(), "scale": scaler.scale_.tolist(),
            **stage2_to_dict(lr)}


def logreg_probs(d: Mapping, features: np.ndarray) -> np.ndarray:
    """Class probabilities (CLASSES order) of segments' features under a :func:`logreg_to_dict` model."""
    mean, scale = np.asarray(d["mean"], dtype=float), np.asarray(d["scale"], dtype=float)
    x = np.asarray(features, dtype=np.float64)
    if d.get("transform") != "log1p_nonneg" or x.ndim != 2 or x.shape[1] != len(mean) or scale.shape != mean.shape:
        raise ValueError(f"QEMG logistic regression for {len(mean)} features ({d.get('transform')!r}) cannot score "
                         f"features of shape {x.shape}")
    return proba_in_class_order(stage2_from_dict(d), (_log1p_nonneg(x) - mean) / scale)


def run_predictions(features: np.ndarray, index: pd.DataFrame, run: pd.DataFrame, model: str, *,
                    params: Mapping | None = None, n_jobs: int = 1, predict_train: bool = False) -> pd.DataFrame:
    """Segment-level probabilities of one run (``run``: that run's rows of the folds table)."""
    p = classifier_params(params)
    run_id = run["run_id"].iloc[0]
    seg_role = segment_roles(index, run)
    train = (seg_role == "train").to_numpy()
    scored_roles = ["val", "test"] + (["train"] if predict_train else [])
    score = seg_role.isin(scored_roles).to_numpy()
    if not train.any():
        raise ValueError(f"run {run_id}: no training segments")
    leaked = set(index.loc[train, "subject_id"]) & set(run.loc[run["role"] == "test", "subject_id"])
    if leaked:
        raise AssertionError(f"run {run_id}: test patients {sorted(leaked)} in the baseline's fit set")
    y = index.loc[train, "diagnosis"].to_numpy()
    if len(set(y)) < 2:
        # tiny cohorts: a training set of one class can only ever predict that class (the CNN trained on the
        # same patients learns the same); the scikit-learn solvers refuse to fit it, so say so and predict it
        log.warning("run %s: baseline %s trained on a single class (%s); it predicts that class", run_id, model, y[0])
        probs = np.zeros((int(score.sum()), len(PROB_COLS)))
        probs[:, [c.removeprefix("p_") for c in PROB_COLS].index(y[0])] = 1.0
    else:
        clf = _fit(model, run, p, n_jobs, features[train], y)
        probs = proba_in_class_order(clf, np.asarray(features[score], dtype=np.float64))
    out = index.loc[score, ["segment", "recording_id", "subject_id"]].copy()
    out.insert(0, "run_id", run_id)
    out["role"] = seg_role[score].to_numpy()
    for j, c in enumerate(PROB_COLS):
        out[c] = probs[:, j]
    return out[PREDICTION_COLUMNS].reset_index(drop=True)


def baseline_predictions(features: np.ndarray, index: pd.DataFrame, folds: pd.DataFrame, model: str, *,
                         params: Mapping | None = None, n_jobs: int = 1, predict_train: bool = False,
                         run_ids=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every run's predictions, concatenated; plus a timing table (run_id, fit+score seconds, segments)."""
    if len(features) != len(index):
        raise ValueError(f"{len(features)} feature rows but {len(index)} segments in the index")
    if not np.isfinite(features).all():
        raise ValueError("non-finite baseline features")
    frames, timing = [], []
    for run_id, run in folds.groupby("run_id", sort=True):
        if run_ids is not None and run_id not in run_ids:
            continue
        t0 = time.perf_counter()
        pr = run_predictions(features, index, run, model, params=params, n_jobs=n_jobs, predict_train=predict_train)
        dt = time.perf_counter() - t0
        n_train = int(index["subject_id"].map(run.set_index("subject_id")["role"]).eq("train").sum())
        timing.append({"run_id": run_id, "model": model, "seconds": round(dt, 3), "train_segments": n_train,
                       "scored_segments": len(pr)})
        log.info("%s %s: fit on %d segments, scored %d in %.2f s", model, run_id, n_train, len(pr), dt)
        frames.append(pr)
    if not frames:
        raise ValueError("no run to fit the baseline on")
    return pd.concat(frames, ignore_index=True), pd.DataFrame(timing)


def write_baseline_predictions(features_npy, names_txt, index_tsv, folds_tsv, model: str, out_tsv, *,
                               out_timing=None, params: Mapping | None = None, n_jobs: int = 1,
                               predict_train: bool = False) -> pd.DataFrame:
    from .features import read_features

    x, names = read_features(features_npy, names_txt)
    index = pd.read_csv(index_tsv, sep="\t", dtype={"recording_id": str, "subject_id": str})
    folds = pd.read_csv(folds_tsv, sep="\t", dtype={"subject_id": str, "run_id": str})
    log.info("%s: %d segments x %d features, %d runs", model, len(x), len(names), folds["run_id"].nunique())
    pred, timing = baseline_predictions(x, index, folds, model, params=params, n_jobs=n_jobs,
                                        predict_train=predict_train)
    Path(out_tsv).parent.mkdir(parents=True, exist_ok=True)
    pred.to_csv(out_tsv, sep="\t", index=False, float_format="%.6g")
    if out_timing is not None:
        timing.to_csv(out_timing, sep="\t", index=False)
    return pred


def baseline_external_predictions(train_features: np.ndarray, train_index: pd.DataFrame,
                                  test_features: np.ndarray, test_index: pd.DataFrame, split: pd.DataFrame,
                                  model: str, *, params: Mapping | None = None, n_jobs: int = 1,
                                  predict_train: bool = False) -> pd.DataFrame:
    """External validation (nemg.external): the classical baseline fit on each seed's training patients of the
    training cohort, scoring its validation patients and every patient of the test cohort (role test)."""
    for feats, index, what in ((train_features, train_index, "training"), (test_features, test_index, "test")):
        if len(feats) != len(index):
            raise ValueError(f"{what} cohort: {len(feats)} feature rows but {len(index)} segments in the index")
    features = np.concatenate([train_features, test_features])
    if not np.isfinite(features).all():
        raise ValueError("non-finite baseline features")
    index = pd.concat([train_index, test_index], ignore_index=True)
    test_subjects = test_index[["subject_id", "diagnosis"]].drop_duplicates()
    frames = []
    for rid, run in split.groupby("run_id", sort=True):
        test_rows = test_subjects.assign(scheme=SCHEME, seed=run["seed"].iloc[0], repeat=0, outer=0, inner=0,
                                         run_id=rid, role="test")
        full = pd.concat([run, test_rows[list(FOLD_COLUMNS)]], ignore_index=True)
        frames.append(run_predictions(features, index, full, model, params=params, n_jobs=n_jobs,
                                      predict_train=predict_train))
    return pd.concat(frames, ignore_index=True)


# ------------------------------------------------------------------------------------------------ comparison

def _fmt(mean: float, lo: float, hi: float) -> str:
    return f"{mean:.3f} ({lo:.3f}-{hi:.3f})"


def _primary(df: pd.DataFrame, method: str) -> pd.DataFrame:
    return df[(df["method"] == method) & (~df["with_location"].astype(bool))]


def model_comparison(arms: Mapping[str, tuple[pd.DataFrame, pd.DataFrame]], method: str) -> pd.DataFrame:
    """Table 2-style side by side: per metric, each arm's mean (95 % t-CI) over runs and its consensus
    estimate with the patient-bootstrap 95 % CI (stage-2 ``method``, without location).

    ``arms``: name -> (per-run metrics, bootstrap table), as written by the evaluate stage.
    """
    rows = {k: {"metric": k} for k in METRICS}
    for name, (per_run, boot) in arms.items():
        runs = _primary(per_run, method)
        if runs.empty:
            raise ValueError(f"{name}: no per-run metrics for stage-2 method {method!r} without location")
        s = summarize_runs(runs, METRICS).set_index("metric")
        b = _primary(boot, method).set_index("metric")
        for k in METRICS:
            rows[k][f"{name}_mean_ci_runs"] = _fmt(s.loc[k, "mean"], s.loc[k, "ci_low"], s.loc[k, "ci_high"])
            rows[k][f"{name}_consensus_bootstrap"] = _fmt(b.loc[k, "estimate"], b.loc[k, "boot_low"],
                                                          b.loc[k, "boot_high"])
    table = pd.DataFrame(list(rows.values()))
    n_runs = {name: int(_primary(pr, method)["run_id"].nunique()) for name, (pr, _) in arms.items()}
    table.attrs["n_runs"] = n_runs
    return table


def paired_model_tests(consensus: Mapping[str, pd.DataFrame], reference: str, method: str, *,
                       n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """The reference arm (nEMGNet) against each other arm on the same patients: first replicate, ``method``
    without location. McNemar of the consensus calls (exact below 25 discordant pairs) and a paired patient
    bootstrap of the accuracy difference reference - other."""
    def calls(cons):
        first = sorted(cons["replicate"].unique())[0]
        return _primary(cons[cons["replicate"] == first], method).set_index("subject_id"), first

    ref, first = calls(consensus[reference])
    rows = []
    for name, cons in consensus.items():
        if name == reference:
            continue
        other, other_first = calls(cons)
        if other_first != first:
            raise ValueError(f"{name}: first replicate {other_first} differs from {reference}'s {first}")
        patients = sorted(set(ref.index) & set(other.index))
        if set(patients) != set(ref.index) or set(patients) != set(other.index):
            log.warning("%s vs %s: %d patients in common (%d / %d)", reference, name, len(patients), len(ref),
                        len(other))
        a = (ref.loc[patients, "predicted"] == ref.loc[patients, "diagnosis"]).to_numpy()
        b = (other.loc[patients, "predicted"] == other.loc[patients, "diagnosis"]).to_numpy()
        mc = mcnemar_paired(a, b)
        bd = paired_bootstrap_diff(a.astype(float), b.astype(float), n_boot=n_boot, seed=seed)
        agree = float((ref.loc[patients, "predicted"].to_numpy() == other.loc[patients, "predicted"].to_numpy()).mean())
        rows.append({"comparison": f"{reference} vs {name}", "replicate": first, "n_patients": len(patients),
                     f"{reference}_accuracy": float(a.mean()), "other_accuracy": float(b.mean()),
                     "difference": bd["diff"], "diff_ci_low": bd["ci_low"], "diff_ci_high": bd["ci_high"],
                     "bootstrap_p": bd["p"], "mcnemar_test": mc["test"],
                     f"{reference}_only_correct": mc["a_only"], "other_only_correct": mc["b_only"],
                     "mcnemar_p": mc["p"], "call_agreement": agree})
    return pd.DataFrame(rows)


def per_class_recall(consensus: Mapping[str, pd.DataFrame], method: str) -> pd.DataFrame:
    """Per-class correct ratio of each arm's consensus calls (mean over replicates), for the comparison note."""
    rows = []
    for name, cons in consensus.items():
        m = _primary(cons, method)
        row = {"arm": name}
        for c in CLASSES:
            g = m[m["diagnosis"] == c]
            row[f"recall_{c}"] = float((g["predicted"] == g["diagnosis"]).mean()) if len(g) else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def write_comparison_html(tables: list[tuple[str, pd.DataFrame]], html, note: str = "") -> None:
    """Several tables on one page (same style as :func:`nemg.tables.write_table`)."""
    Path(html).parent.mkdir(parents=True, exist_ok=True)
    Path(html).write_text(html_page([html_table(df, title) for title, df in tables], note))
