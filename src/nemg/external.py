"""External validation: train on every patient of one cohort, diagnose every patient of another.

Cross-validation inside one data set shares its hospital, needle, amplifier and referral pattern between the
training and the test patients; a second data set shares none of that. Here the training cohort's patients are
split once per seed into training and validation patients (validation: early stopping and the stage-2 fit of
divide-and-vote, exactly the role it has in nested CV), and the test cohort is scored with the same model,
the same preprocessing and the same divide-and-vote. No test-cohort patient is seen by any fit.

The test cohort is preprocessed with the *training* run's settings (trim, resampling rate, window and hop),
so the network sees inputs of the shape and rate it was trained on; only its cohort section (source, data
folder, subject subset) comes from the external entry.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd
import yaml

from .config import ConfigError, deep_merge, fill_defaults, resolve_path, validate_config
from .evaluate import (METRICS, bootstrap_consensus, consensus, patient_predictions, per_run_metrics)
from .folds import FOLD_COLUMNS, FoldError, stratified_folds
from .vote import CLASSES, PROB_COLS

log = logging.getLogger(__name__)

SCHEME = "external"
#: amplitude calibration -> suffix of the test id (``<name>.<suffix>``); "none" keeps the plain name
CALIBRATIONS = {"none": "", "median_rms": "rms"}


def run_id(seed: int) -> str:
    return f"ext_s{int(seed)}"


def cohort_key(test: str, train: str) -> str:
    """results/<stage>/<key>/ of a test cohort preprocessed for the model of ``train``.

    Not the test cohort's own name: a run of the test cohort's own config may preprocess it differently, and
    the two must not overwrite each other's artifacts.
    """
    return f"{test}_for_{train}"


# ---------------------------------------------------------------------------------------------- configuration
def external_test_ids(names: Iterable[str], calibrations: Iterable[str]) -> dict[str, tuple[str, str]]:
    """test id -> (external cohort name, amplitude calibration): ``name`` uncalibrated, ``name.rms`` calibrated."""
    out = {}
    for cal in calibrations:
        if cal not in CALIBRATIONS:
            raise ValueError(f"unknown external.amplitude_calibration {cal!r}; expected {', '.join(CALIBRATIONS)}")
    for name in names:
        for cal in calibrations:
            out[name if cal == "none" else f"{name}.{CALIBRATIONS[cal]}"] = (name, cal)
    return out


def external_settings(config: Mapping) -> dict:
    """The ``external:`` section of ``config`` (a whole config, possibly partial) with the schema's defaults."""
    return fill_defaults(config)["external"]


def external_cohorts(config: Mapping, repo: str | Path, base_cohort: Mapping | None = None) -> dict[str, dict]:
    """name -> full cohort section of every external test cohort of ``config``.

    An entry is either a path to a config file (its ``cohort`` section is taken, applied on top of
    ``base_cohort``, the defaults of config.yaml, like ``--configfile`` does) or an inline cohort section.
    The entry's key becomes the cohort name. Every problem is reported at once, naming the entry.
    """
    ext = external_settings(config)
    entries = ext["cohorts"] or {}
    base = dict(base_cohort if base_cohort is not None else config["cohort"])
    problems: list[str] = []
    out: dict[str, dict] = {}
    for name, entry in entries.items():
        where = f"external.cohorts.{name}"
        if name == config["cohort"]["name"]:
            problems.append(f"{where}: is this run's own cohort; external validation needs a different data set")
            continue
        if isinstance(entry, str):
            path = resolve_path(entry, repo)
            if not path.is_file():
                problems.append(f"{where}: config file not found: {path}")
                continue
            try:
                data = yaml.safe_load(path.read_text()) or {}
            except yaml.YAMLError as exc:
                problems.append(f"{where}: {path} is not valid YAML: {exc}")
                continue
            if not isinstance(data, dict) or not isinstance(data.get("cohort"), dict):
                problems.append(f"{where}: {path} has no cohort: section")
                continue
            section = data["cohort"]
        elif isinstance(entry, dict):
            section = entry
        else:
            problems.append(f"{where}: expected a config file path or a cohort section, got {type(entry).__name__}")
            continue
        cohort = deep_merge(base, section)
        cohort["name"] = name
        try:
            validate_config(deep_merge(dict(config), {"cohort": cohort}), source=where)
        except ConfigError as exc:
            problems += [f"{where}: {p}" for p in exc.problems]
            continue
        out[name] = fill_defaults({"cohort": cohort})["cohort"]
    if problems:
        raise ConfigError(problems, "external validation config")
    return out


# ------------------------------------------------------------------------------------------------------ split
def external_split(subjects: pd.DataFrame, seeds: Iterable[int], val_fraction: float) -> pd.DataFrame:
    """Folds-table rows (scheme ``external``) putting every patient in training or validation, per seed.

    Validation patients are drawn per class (stratified): ``round(1 / val_fraction)`` stratified folds of the
    patients and fold 0 validates. There is no test role: the test patients are another cohort.
    """
    if not 0 < val_fraction < 1:
        raise FoldError(f"external.val_fraction must be in (0, 1), got {val_fraction}")
    subjects = subjects[["subject_id", "diagnosis"]].drop_duplicates().sort_values("subject_id")
    ids = subjects["subject_id"].to_numpy(dtype=object)
    dx = subjects["diagnosis"].to_numpy(dtype=object)
    k = max(2, int(round(1 / val_fraction)))
    if len(ids) < k:
        raise FoldError(f"{len(ids)} subjects are too few to hold out 1/{k} of them for validation")
    rows = []
    for seed in seeds:
        fold = stratified_folds(ids, dx, k, np.random.default_rng([int(seed), 7]))
        rid = run_id(seed)
        for sid, d, f in zip(ids, dx, fold):
            rows.append((SCHEME, int(seed), 0, 0, 0, rid, sid, d, "val" if f == 0 else "train"))
    split = pd.DataFrame(rows, columns=list(FOLD_COLUMNS))
    for rid, g in split.groupby("run_id"):
        missing = sorted(set(dx) - set(g.loc[g["role"] == "train", "diagnosis"]))
        if missing:
            raise FoldError(f"{rid}: no training patients of class(es) {missing}")
    return split


def check_disjoint(train_subjects: pd.DataFrame, test_subjects: pd.DataFrame, train_name: str,
                   test_name: str) -> None:
    """The two cohorts must not share a subject id: the same id may be the same person, and evaluating a model
    on its own training patients is exactly the leak external validation exists to rule out."""
    shared = sorted(set(train_subjects["subject_id"]) & set(test_subjects["subject_id"]))
    if shared:
        raise ValueError(f"external validation {train_name} -> {test_name}: {len(shared)} subject id(s) appear in "
                         f"both cohorts ({', '.join(map(str, shared[:5]))}{' ...' if len(shared) > 5 else ''}); "
                         f"if they are different people, give them distinct ids in one cohort's sheets")


# ------------------------------------------------------------------------------------- amplitude calibration
def median_frame_rms(signals: str | Path, index: str | Path, frame_s: float = 0.1) -> float:
    """Median over recordings of each recording's median RMS in ``frame_s`` frames (frame mean removed).

    Label-free and robust: the frame median ignores bursts and artifacts inside a recording, removing each
    frame's mean ignores DC offset and slow drift, the median over recordings ignores odd recordings.
    """
    from .segment import iter_signals, read_signal_store

    arr, idx = read_signal_store(signals, index)
    per_recording = []
    for row, x in iter_signals(arr, idx):
        n = int(round(frame_s * float(row["fs_hz"])))
        k = len(x) // n
        if k == 0:
            continue
        frames = np.asarray(x[:k * n], dtype=np.float64).reshape(k, n)
        frames = frames - frames.mean(axis=1, keepdims=True)
        per_recording.append(float(np.median(np.sqrt((frames ** 2).mean(axis=1)))))
    if not per_recording or not np.median(per_recording) > 0:
        raise ValueError(f"{signals}: no recording long enough ({frame_s} s) with a non-zero amplitude to calibrate")
    return float(np.median(per_recording))


def amplitude_gain(train_signals, train_index, test_signals, test_index) -> pd.DataFrame:
    """The factor that brings the test cohort's typical amplitude to the training cohort's (``median_rms``).

    One scalar per test cohort, from unlabelled signals only (no diagnosis is used): what a site would do by
    matching its amplifier chain to the reference lab's. It cannot undo differences in the class mix or in the
    contraction protocol, and it changes absolute amplitudes, the cue the diagnosis rests on.
    """
    train_rms = median_frame_rms(train_signals, train_index)
    test_rms = median_frame_rms(test_signals, test_index)
    return pd.DataFrame([{"calibration": "median_rms", "train_median_rms_uv": train_rms,
                          "test_median_rms_uv": test_rms, "gain": train_rms / test_rms}])


# ---------------------------------------------------------------------------------------------- predictions
def predict_cohort(checkpoint: str | Path, segments_npy: str | Path, index_tsv: str | Path, *,
                   batch_size: int = 256, device: str = "auto", num_threads: int | None = None) -> pd.DataFrame:
    """Segment-level class probabilities of every segment of a store under a trained checkpoint (role test)."""
    # torch only here: the DAG-time rules importing this module run in the torch-free conda envs
    import torch

    from .data import SegmentStore
    from .explain import load_model
    from .train import pick_device, predict_logits, runtime

    store = SegmentStore.open(segments_npy, index_tsv)
    dev = pick_device(device)
    model, meta = load_model(checkpoint, device=dev)
    if int(meta["window_samples"]) != store.window:
        raise ValueError(f"{segments_npy}: segments of {store.window} samples, but {checkpoint} was trained on "
                         f"{meta['window_samples']}: preprocess the test cohort with the training run's settings")
    with runtime(dev, num_threads, True):
        logits = predict_logits(model, store, np.arange(len(store.index)), batch_size, dev)
    p = torch.softmax(logits, 1).numpy()
    out = store.index[["segment", "recording_id", "subject_id"]].copy()
    out.insert(0, "run_id", meta["run_id"])
    out["role"] = "test"
    for i, c in enumerate(CLASSES):
        out[f"p_{c}"] = p[:, i]
    return out.reset_index(drop=True)


def baseline_external_predictions(train_features: np.ndarray, train_index: pd.DataFrame,
                                  test_features: np.ndarray, test_index: pd.DataFrame, split: pd.DataFrame,
                                  model: str, *, params: Mapping | None = None, n_jobs: int = 1,
                                  predict_train: bool = False) -> pd.DataFrame:
    """The classical baseline fit on each seed's training patients, scoring validation and test patients."""
    from .baseline import run_predictions

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


# ------------------------------------------------------------------------------------------------ evaluation
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


def evaluate_arm(pp: pd.DataFrame, *, n_boot: int = 2000, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Per-run metrics, the consensus call per patient over the seeds, and its patient-bootstrap CIs."""
    per_run = per_run_metrics(pp)
    replicate = pd.Series(SCHEME, index=sorted(pp["run_id"].unique()))
    cons = consensus(pp, replicate)
    boot = bootstrap_consensus(cons, n_boot=n_boot, seed=seed)
    return {"per_run": per_run, "consensus": cons, "bootstrap": boot}


def summary_rows(train: str, test: str, arm: str, per_run: pd.DataFrame, boot: pd.DataFrame,
                 cons: pd.DataFrame, method: str, calibration: str = "none", gain: float = 1.0) -> dict:
    """One row of the external-validation table: a (training -> test, model) pair, the primary variant."""
    from .metrics import summarize_runs

    primary = lambda df: df[(df["method"] == method) & (~df["with_location"].astype(bool))]  # noqa: E731
    runs, b, c = primary(per_run), primary(boot).set_index("metric"), primary(cons)
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


def display_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The external-validation table with estimate (95 % CI) strings, for the HTML page and the README."""
    def f(r, k, a, b):  # a t-interval over 2-3 models can leave [0, 1]; a proportion cannot
        return f"{r[k]:.3f} ({max(0.0, r[a]):.3f}-{min(1.0, r[b]):.3f})"

    rows = []
    for _, r in summary.iterrows():
        cal = "none" if r.get("calibration", "none") == "none" else f"{r['calibration']} (x{r['gain']:.3g})"
        rows.append({"training -> test": f"{r['train_cohort']} -> {r['test_cohort']}", "amplitude calibration": cal,
                     "model": r["model"],
                     "models": r["n_models"], "test patients": r["n_test_patients"],
                     "accuracy, mean over models (95 % CI)": f(r, "accuracy_mean", "accuracy_ci_low", "accuracy_ci_high"),
                     "accuracy, consensus (bootstrap 95 % CI)": f(r, "accuracy_consensus", "accuracy_boot_low",
                                                                 "accuracy_boot_high"),
                     "macro F1, consensus (bootstrap 95 % CI)": f(r, "f1_consensus", "f1_boot_low", "f1_boot_high"),
                     **{f"recall {c}": f"{r[f'recall_{c}']:.2f} (n={r[f'n_{c}']})" for c in CLASSES}})
    return pd.DataFrame(rows)


__all__ = ["CALIBRATIONS", "PROB_COLS", "amplitude_gain", "baseline_external_predictions",
           "check_disjoint", "cohort_key", "display_table", "evaluate_arm", "external_cohorts",
           "external_patient_predictions", "external_settings", "external_split", "external_test_ids",
           "median_frame_rms", "predict_cohort", "run_id", "summary_rows"]
