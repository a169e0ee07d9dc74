"""Divide-and-vote: from segment scores to one diagnosis per patient.

1. segment softmax scores are averaged per signal (one muscle recording), then per patient;
2. the patient's feature vector is the 3-d mean (without location) or the 6-d concatenation of the proximal
   and distal means (with location), a location without recordings imputed as 1/3 per class;
3. a second classifier maps features to the diagnosis: logistic regression, or the plain argmax baseline.

The study's released code fits the logistic regression on the CNN's own training patients, whose scores are
over-confident; by default nemg fits it on the run's inner-validation patients, whom the CNN never trained on.
Either way the test patients are never seen by the stage-2 fit; :func:`vote_run` checks that.
"""
from __future__ import annotations

import logging
from typing import Mapping

import numpy as np
import pandas as pd

from .labels import CLASSES, LOCATIONS, PROB_COLS


def signal_scores(predictions: pd.DataFrame) -> pd.DataFrame:
    """Mean class probabilities per (run, recording)."""
    keys = ["run_id", "recording_id", "subject_id", "role"]
    return predictions.groupby(keys, sort=True)[PROB_COLS].mean().reset_index()


def patient_features(signals: pd.DataFrame, locations: pd.Series | None = None,
                     with_location: bool = False) -> pd.DataFrame:
    """Per (run, subject, role) feature vector: ``f_<class>`` (3-d) or ``f_<location>_<class>`` (6-d).

    ``locations`` maps recording_id -> proximal/distal; needed only ``with_location``. The patient-level
    average is over signals (each muscle counts once however long it was), as in the study.
    """
    keys = ["run_id", "subject_id", "role"]
    if not with_location:
        feats = signals.groupby(keys, sort=True)[PROB_COLS].mean()
        feats.columns = [f"f_{c}" for c in CLASSES]
        return feats.reset_index()
    if locations is None:
        raise ValueError("patient features with muscle location need each recording's location")
    sig = signals.assign(location=signals["recording_id"].map(locations))
    missing = sig["location"].isna()
    if missing.any():
        raise ValueError(f"no location for recording(s) {sorted(sig.loc[missing, 'recording_id'].unique())[:5]}")
    per_loc = sig.groupby(keys + ["location"], sort=True)[PROB_COLS].mean().unstack("location")
    out = pd.DataFrame(index=per_loc.index)
    for loc in LOCATIONS:
        for c in CLASSES:
            col = (f"p_{c}", loc)
            # a patient with no recording at this location carries no evidence there: the uniform 1/3
            out[f"f_{loc}_{c}"] = per_loc[col].fillna(1 / 3) if col in per_loc.columns else 1 / 3
    return out.reset_index()


def combined_features(predictions: pd.DataFrame, extra: dict[str, pd.DataFrame] | None,
                      locations: pd.Series | None = None, with_location: bool = False) -> pd.DataFrame:
    """Patient features of ``predictions`` beside those of each ``extra`` source (``f_<source>_...``).

    The combined arm's stage 2 (issue 12) sees the CNN's patient scores and another model's (a QEMG
    classifier's) together. Every patient must be scored by every source: a patient missing from one source
    would be dropped silently by a join, so it is an error.
    """
    feats = patient_features(signal_scores(predictions), locations, with_location)
    keys = ["run_id", "subject_id", "role"]
    for name, other in (extra or {}).items():
        of = patient_features(signal_scores(other), locations, with_location)
        of = of.rename(columns={c: f"f_{name}_{c[2:]}" for c in feature_columns(of)})
        merged = feats.merge(of, on=keys, how="outer", indicator=True)
        unmatched = merged[merged["_merge"] != "both"]
        if not unmatched.empty:
            rows = unmatched[keys].head(3).to_dict("records")
            raise ValueError(f"{len(unmatched)} patient(s) scored by only one of the combined sources "
                             f"(main and {name!r}), e.g. {rows}")
        feats = merged.drop(columns="_merge")
    return feats


def feature_columns(features: pd.DataFrame) -> list[str]:
    return [c for c in features.columns if c.startswith("f_")]


def _class_probs_from_features(features: pd.DataFrame) -> np.ndarray:
    """Average of the per-location blocks back to 3 class scores (for the argmax baseline and curves)."""
    cols = feature_columns(features)
    X = features[cols].to_numpy(float)
    return X.reshape(len(X), -1, len(CLASSES)).mean(axis=1)


class Stage2FitError(ValueError):
    """The stage-2 classifier cannot be fit on this run's fit set (e.g. a single class)."""


def fit_stage2(X: np.ndarray, y: np.ndarray, seed: int = 0, class_weight: str | None = None, c: float = 1.0):
    """Multinomial logistic regression on patient features (deterministic lbfgs).

    ``class_weight='balanced'`` weighs each patient by the inverse of its class's share of the fit set: with
    1 normal patient in 8 (Messekher) the unweighted fit never calls anyone normal. ``c``: inverse L2 strength
    (sklearn's default 1 is the released code's). The penalty does not shrink with the fit set while the loss
    grows with it, so on the 6-40 validation patients of a run C = 1 pulls every patient towards the class
    priors (docs/evaluation.md, "Stage-2 regularisation").
    """
    from sklearn.linear_model import LogisticRegression

    if len(set(y)) < 2:
        raise Stage2FitError(f"the stage-2 classifier needs patients of at least two classes to fit, got {sorted(set(y))}")
    return LogisticRegression(C=c, max_iter=2000, random_state=seed, class_weight=class_weight).fit(X, y)


def proba_in_class_order(model, X: np.ndarray) -> np.ndarray:
    """Probabilities in CLASSES order; a class absent from the fit set gets probability 0."""
    p = model.predict_proba(X)
    out = np.zeros((len(X), len(CLASSES)))
    for j, c in enumerate(model.classes_):
        out[:, CLASSES.index(c)] = p[:, j]
    return out


def stage2_fit_set(features: pd.DataFrame, fit_on: str, run_id: str) -> pd.DataFrame:
    """The patients of one run that the stage-2 classifier is fit on (role ``fit_on``)."""
    if fit_on not in ("val", "train"):
        raise ValueError(f"unknown stage-2 fit set {fit_on!r}; expected val or train")
    fit = features[features["role"] == fit_on]
    if fit.empty:
        raise ValueError(f"run {run_id}: no {fit_on!r} predictions to fit the stage-2 classifier on "
                         f"(fit_on='train' needs the training job to also score training patients)")
    return fit


def patient_locations(predictions: pd.DataFrame, locations: pd.Series, role: str | None = None) -> dict[str, set]:
    """subject_id -> the muscle locations of its scored recordings (of one role, or all)."""
    rows = predictions if role is None else predictions[predictions["role"] == role]
    recs = rows[["subject_id", "recording_id"]].drop_duplicates()
    recs = recs.assign(location=recs["recording_id"].map(locations))
    return {str(s): set(g.dropna()) for s, g in recs.groupby("subject_id", sort=True)["location"]}


def fit_locations(predictions: pd.DataFrame, locations: pd.Series, fit_on: str) -> dict[str, int]:
    """How many of a run's stage-2 fit patients have a recording at each location. A location none of them has
    is a constant 1/3 block in the fit, so its coefficients learn nothing: a patient recorded only there gets
    the stage 2's prior, not a reading of the recordings (:func:`uninformed_patients`)."""
    per = patient_locations(predictions, locations, fit_on)
    return {loc: sum(loc in locs for locs in per.values()) for loc in LOCATIONS}


def uninformed_patients(locations_of: Mapping[str, set], fit_locs: Mapping[str, int]) -> dict[str, list[str]]:
    """subject_id -> its locations, for each patient none of whose locations a stage 2 with location was fit on."""
    seen = {loc for loc, n in fit_locs.items() if n > 0}
    return {s: sorted(locs) for s, locs in sorted(locations_of.items()) if not set(locs) & seen}


def fit_run_stage2(features: pd.DataFrame, diagnosis: pd.Series, *, fit_on: str = "val", seed: int = 0,
                   class_weight: str | None = None, c: float = 1.0, run_id: str = "?"):
    """The logistic regression of one run, fit on its ``fit_on`` patients' features (:func:`patient_features`).

    The one place a run's stage 2 is fit: cross-validation, external validation and the model bundle
    (nemg.bundle) all come through here, so a saved bundle diagnoses exactly as the evaluated runs did.
    """
    fit = stage2_fit_set(features, fit_on, run_id)
    cols = feature_columns(features)
    return fit_stage2(fit[cols].to_numpy(float), fit["subject_id"].map(diagnosis).to_numpy(), seed, class_weight,
                      c)


def stage2_probs(features: pd.DataFrame, method: str, model=None) -> np.ndarray:
    """Class probabilities (CLASSES order) of patients' features under stage-2 ``method``."""
    if method == "argmax":
        return _class_probs_from_features(features)
    if method == "logreg":
        return proba_in_class_order(model, features[feature_columns(features)].to_numpy(float))
    raise ValueError(f"unknown stage-2 method {method!r}; expected logreg or argmax")


def stage2_to_dict(model) -> dict:
    """A fitted stage-2 logistic regression as plain JSON numbers (no pickle: a bundle cannot run code)."""
    return {"classes": [str(c) for c in model.classes_], "coef": model.coef_.tolist(),
            "intercept": model.intercept_.tolist()}


def stage2_from_dict(d: dict):
    """The logistic regression of :func:`stage2_to_dict`, rebuilt so sklearn's own predict_proba applies it."""
    from sklearn.linear_model import LogisticRegression

    unknown = sorted(set(d["classes"]) - set(CLASSES))
    if unknown:
        raise ValueError(f"stage-2 classes {unknown} are not among {list(CLASSES)}")
    model = LogisticRegression()
    model.classes_ = np.array(d["classes"], dtype=object)
    model.coef_ = np.array(d["coef"], dtype=float)
    model.intercept_ = np.array(d["intercept"], dtype=float)
    model.n_features_in_ = model.coef_.shape[1]
    if model.coef_.shape[0] != (1 if len(model.classes_) == 2 else len(model.classes_)) \
            or model.intercept_.shape != (model.coef_.shape[0],):
        raise ValueError(f"stage-2 coefficients of shape {model.coef_.shape} / {model.intercept_.shape} do not fit "
                         f"{len(model.classes_)} classes")
    return model


def vote_run(predictions: pd.DataFrame, diagnosis: pd.Series, locations: pd.Series | None = None, *,
             method: str = "logreg", fit_on: str = "val", with_location: bool = False,
             seed: int = 0, class_weight: str | None = None, c: float = 1.0,
             extra: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """Patient predictions for the test patients of one run.

    ``predictions``: that run's segment scores (roles val/test, plus train when ``fit_on='train'``);
    ``diagnosis``: subject_id -> true class; ``extra``: other models' segment scores for the same run, whose
    patient features the stage 2 sees beside these (:func:`combined_features`; argmax then averages the
    sources' class scores). Returns one row per test patient with the predicted class and 3 class
    probabilities.
    """
    if method not in ("logreg", "argmax"):
        raise ValueError(f"unknown stage-2 method {method!r}; expected logreg or argmax")
    if fit_on not in ("val", "train"):
        raise ValueError(f"unknown stage-2 fit set {fit_on!r}; expected val or train")
    runs = predictions["run_id"].unique()
    if len(runs) != 1:
        raise ValueError(f"vote_run takes one run's predictions, got {len(runs)} runs")
    feats = combined_features(predictions, extra, locations, with_location)
    test = feats[feats["role"] == "test"].reset_index(drop=True)
    if test.empty:
        raise ValueError(f"run {runs[0]}: no test-patient predictions")
    model = None
    if method == "logreg":
        leaked = set(stage2_fit_set(feats, fit_on, runs[0])["subject_id"]) & set(test["subject_id"])
        if leaked:
            raise AssertionError(f"run {runs[0]}: stage-2 fit set contains test patients {sorted(leaked)}")
        model = fit_run_stage2(feats, diagnosis, fit_on=fit_on, seed=seed, class_weight=class_weight, c=c,
                               run_id=runs[0])
        if with_location:
            blind = uninformed_patients(patient_locations(predictions, locations, "test"),
                                        fit_locations(predictions, locations, fit_on))
            if blind:
                logging.getLogger(__name__).warning(
                    "run %s: stage 2 with location was fit on no %s patient recorded at %s, so it gives test "
                    "patient(s) %s its prior rather than a reading of their recordings", runs[0], fit_on,
                    " or ".join(sorted({loc for locs in blind.values() for loc in locs})), ", ".join(blind))
    probs = stage2_probs(test, method, model)
    out = test[["run_id", "subject_id"]].copy()
    out["diagnosis"] = out["subject_id"].map(diagnosis)
    out["predicted"] = [CLASSES[i] for i in probs.argmax(axis=1)]
    for j, c in enumerate(PROB_COLS):
        out[c] = probs[:, j]
    out["method"] = method
    out["with_location"] = with_location
    out["fit_on"] = fit_on if method == "logreg" else ""
    return out
