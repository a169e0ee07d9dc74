"""External validation: train on every patient of one cohort, diagnose every patient of another.

Cross-validation inside one data set shares its hospital, needle, amplifier and referral pattern between the
training and the test patients; a second data set shares none of that. Here the training cohort's patients are
split once per seed into training and validation patients (validation: early stopping and the stage-2 fit of
divide-and-vote, exactly the role it has in nested CV), and the test cohort is scored with the same model,
the same preprocessing and the same divide-and-vote. No test-cohort patient is seen by any fit.

The test cohort is preprocessed with the *training* run's settings (trim, resampling rate, window and hop),
so the network sees inputs of the shape and rate it was trained on; only its cohort section (source, data
folder, subject subset) comes from the external entry.

This module is what the DAG needs to plan and prepare the runs, and imports no torch: settings, the external
cohorts, the split, the disjointness check and the amplitude calibration. The later steps live beside their
cross-validation counterparts: :func:`nemg.predict.predict_cohort` scores the test cohort,
:func:`nemg.baseline.baseline_external_predictions` fits the classical baselines,
:func:`nemg.evaluate.external_patient_predictions` votes and :func:`nemg.evaluate.evaluate_arm` and
:func:`nemg.evaluate.external_summary_row` evaluate, :func:`nemg.tables.external_display_table` formats.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import yaml

from .config import ConfigError, deep_merge, fill_defaults, resolve_path, validate_config
from .folds import EXTERNAL_SCHEME as SCHEME
from .folds import FOLD_COLUMNS, FoldError, external_run_id, stratified_folds

log = logging.getLogger(__name__)
#: amplitude calibration -> suffix of the test id (``<name>.<suffix>``); "none" keeps the plain name
CALIBRATIONS = {"none": "", "median_rms": "rms", "median_rms_polarity": "rmsp"}


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


def _cohort_entry(name: str, entry, where: str, config: Mapping, repo: str | Path, base: Mapping,
                  problems: list[str]) -> dict | None:
    """The full cohort section of one entry (a config file path or an inline section) named ``name``; problems
    are appended, naming ``where``."""
    if isinstance(entry, str):
        path = resolve_path(entry, repo)
        if not path.is_file():
            problems.append(f"{where}: config file not found: {path}")
            return None
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            problems.append(f"{where}: {path} is not valid YAML: {exc}")
            return None
        if not isinstance(data, dict) or not isinstance(data.get("cohort"), dict):
            problems.append(f"{where}: {path} has no cohort: section")
            return None
        section = data["cohort"]
    elif isinstance(entry, dict):
        section = entry
    else:
        problems.append(f"{where}: expected a config file path or a cohort section, got {type(entry).__name__}")
        return None
    cohort = deep_merge(dict(base), section)
    cohort["name"] = name
    try:
        validate_config(deep_merge(dict(config), {"cohort": cohort}), source=where)
    except ConfigError as exc:
        problems += [f"{where}: {p}" for p in exc.problems]
        return None
    return fill_defaults({"cohort": cohort})["cohort"]


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
        cohort = _cohort_entry(name, entry, where, config, repo, base, problems)
        if cohort is not None:
            out[name] = cohort
    if problems:
        raise ConfigError(problems, "external validation config")
    return out


def same_patients(a: Mapping, b: Mapping, repo: str | Path) -> str | None:
    """Why two cohort sections may hold the same patients (the same public data set, the same subjects sheet,
    the same simulation seed), or None. Subject subsets are not compared: two subsets of one data set may share
    patients, and whether they do is the user's bookkeeping, not this check's."""
    if a["source"] != b["source"]:
        return None
    if a["source"] == "public" and a["public"]["dataset"] == b["public"]["dataset"]:
        return f"both read the public data set {a['public']['dataset']!r}"
    if a["source"] == "sheets":
        sa, sb = (resolve_path(c["sheets"]["subjects"], repo) for c in (a, b))
        if sa.resolve() == sb.resolve():
            return f"both read the subjects sheet {sa}"
    if a["source"] == "simulated" and a.get("seed") == b.get("seed"):
        return f"both are simulated with seed {a.get('seed')}"
    return None


def describe_cohort(c: Mapping) -> str:
    """A cohort section in words, for model cards: "the public data set 'n2001' (6 selected)"."""
    if c["source"] == "public":
        what = f"the public data set {c['public']['dataset']!r}"
    elif c["source"] == "sheets":
        what = f"the subjects sheet {c['sheets']['subjects']}"
    else:
        what = f"a simulated cohort (seed {c.get('seed')})"
    return what + (f" ({len(c['subjects'])} selected)" if c.get("subjects") else "")


def pretraining_cohort(config: Mapping, repo: str | Path, name: str, base_cohort: Mapping | None = None) -> dict:
    """The full cohort section of ``pretrain.cohort`` (a config file path or an inline cohort section), named
    ``name``. Refused when it holds this run's own patients: the pretrained network starts every cross-validation
    network, so its patients would reach every test fold."""
    entry = config["pretrain"]["cohort"]
    problems: list[str] = []
    base = dict(base_cohort if base_cohort is not None else config["cohort"])
    cohort = _cohort_entry(name, entry, "pretrain.cohort", config, repo, base, problems)
    if cohort is not None:
        why = same_patients(cohort, config["cohort"], repo)
        if why:
            problems.append(f"pretrain.cohort: holds this run's own patients ({why}); pretraining on them would "
                            "put every test patient into the network every fold starts from")
    if problems:
        raise ConfigError(problems, "pretraining config")
    return cohort


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
        rid = external_run_id(seed)
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
CALIBRATION_FRAME_S = 0.1  # frames of the median-RMS calibration's level: ~10 motor-unit discharges at 10 Hz


def _centred_frames(x: np.ndarray, fs_hz: float, frame_s: float) -> np.ndarray | None:
    """[frames, samples] of ``frame_s`` frames, each frame's mean removed (offset and slow drift ignored); None if
    shorter than a frame."""
    n = int(round(frame_s * float(fs_hz)))
    k = len(x) // n
    if k == 0:
        return None
    frames = np.asarray(x[:k * n], dtype=np.float64).reshape(k, n)
    return frames - frames.mean(axis=1, keepdims=True)


def _median_rms(squares: np.ndarray) -> float:
    """The median over frames of each frame's RMS, from the squared centred frames."""
    return float(np.median(np.sqrt(squares.mean(axis=1))))


def recording_frame_rms(x: np.ndarray, fs_hz: float, frame_s: float = CALIBRATION_FRAME_S) -> float | None:
    """One recording's median RMS in ``frame_s`` frames, each frame's mean removed; None if shorter than a frame."""
    frames = _centred_frames(x, fs_hz, frame_s)
    return None if frames is None else _median_rms(frames ** 2)


# The training recordings' levels a new recording is checked against: wide enough that 2 % of the training
# recordings themselves fall outside, narrow enough that a cohort recorded 8 times quieter shows (docs/predict.md).
LEVEL_QUANTILES = (0.01, 0.99)


def level_range(levels: Sequence[float | None] | None) -> dict:
    """``{"recording_range_uv": [low, high], "range_quantiles": [...], "n_recordings": n}`` of the training
    recordings' levels (recordings shorter than a frame left out); empty without levels."""
    kept = [float(v) for v in levels or () if v is not None]
    if not kept:
        return {}
    low, high = np.quantile(kept, LEVEL_QUANTILES)
    return {"recording_range_uv": [float(low), float(high)], "range_quantiles": list(LEVEL_QUANTILES),
            "n_recordings": len(kept)}


def median_of_levels(levels: Sequence[float | None], where: str, frame_s: float = CALIBRATION_FRAME_S) -> float:
    """The median over recordings of :func:`recording_frame_rms` (recordings shorter than a frame left out)."""
    kept = [v for v in levels if v is not None]
    if not kept or not np.median(kept) > 0:
        raise ValueError(f"{where}: no recording long enough ({frame_s} s) with a non-zero amplitude to calibrate")
    return float(np.median(kept))


def signal_store_levels(signals: str | Path, index: str | Path,
                        frame_s: float = CALIBRATION_FRAME_S) -> list[float | None]:
    """:func:`recording_frame_rms` of every recording of a resampled signal store, in the store's order."""
    from .store import iter_signals, read_signal_store

    arr, idx = read_signal_store(signals, index)
    return [recording_frame_rms(x, float(row["fs_hz"]), frame_s) for row, x in iter_signals(arr, idx)]


def median_frame_rms(signals: str | Path, index: str | Path, frame_s: float = CALIBRATION_FRAME_S) -> float:
    """Median over recordings of each recording's median RMS in ``frame_s`` frames (frame mean removed).

    Label-free and robust: the frame median ignores bursts and artifacts inside a recording, removing each
    frame's mean ignores DC offset and slow drift, the median over recordings ignores odd recordings.
    """
    return median_of_levels(signal_store_levels(signals, index, frame_s), str(signals), frame_s)


# ---------------------------------------------------------------------------------------------- polarity
# A recording's polarity is the sign of its skewness: a needle's motor-unit potentials are spikes on a quiet
# baseline, so their main phase sets the sign of the third moment. Recordings of one site mostly agree (needle
# position turns some over), but sites need not: an amplifier or a file format that stores the clinical display's
# "negative up" inverts every recording. A cohort's polarity is its majority, called only when at least
# 0.5 + POLARITY_MARGIN of its recordings agree.
POLARITY_MARGIN = 0.1


def recording_level_and_skewness(x: np.ndarray, fs_hz: float,
                                 frame_s: float = CALIBRATION_FRAME_S) -> tuple[float | None, float | None]:
    """:func:`recording_frame_rms` and :func:`recording_skewness` of one recording from one framing."""
    frames = _centred_frames(x, fs_hz, frame_s)
    if frames is None:
        return None, None
    squares = frames ** 2
    m2 = float(squares.mean())
    skew = float((squares * frames).mean() / m2 ** 1.5) if m2 > 0 else None
    return _median_rms(squares), skew


def recording_skewness(x: np.ndarray, fs_hz: float, frame_s: float = CALIBRATION_FRAME_S) -> float | None:
    """Skewness of one recording with each ``frame_s`` frame's mean removed (offset and drift ignored, as by
    :func:`recording_frame_rms`); None if shorter than a frame or flat."""
    return recording_level_and_skewness(x, fs_hz, frame_s)[1]


def cohort_polarity(skews: Sequence[float | None]) -> dict:
    """``{"negative_share", "polarity", "n_recordings"}`` of a cohort from its recordings' skewness: polarity -1
    when at least 0.5 + POLARITY_MARGIN of them skew negative, +1 when at most 0.5 - POLARITY_MARGIN do, 0
    (unclear) otherwise or without recordings."""
    kept = np.array([v for v in skews if v is not None], dtype=float)
    if not len(kept):
        return {"negative_share": float("nan"), "polarity": 0, "n_recordings": 0}
    share = float((kept < 0).mean())
    polarity = -1 if share >= 0.5 + POLARITY_MARGIN else 1 if share <= 0.5 - POLARITY_MARGIN else 0
    return {"negative_share": share, "polarity": polarity, "n_recordings": int(len(kept))}


def polarity_factor(train: int, test: int) -> int:
    """-1 when both cohorts' polarities are clear and opposite (the test cohort is inverted), else 1."""
    return -1 if train * test < 0 else 1


def signal_store_levels_and_skewness(signals: str | Path, index: str | Path, frame_s: float = CALIBRATION_FRAME_S
                                     ) -> tuple[list[float | None], list[float | None]]:
    """:func:`recording_frame_rms` and :func:`recording_skewness` of every recording of a resampled signal store,
    in the store's order, from one read of it."""
    from .store import iter_signals, read_signal_store

    arr, idx = read_signal_store(signals, index)
    pairs = [recording_level_and_skewness(x, float(row["fs_hz"]), frame_s) for row, x in iter_signals(arr, idx)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def amplitude_gain(train_signals, train_index, test_signals, test_index,
                   calibration: str = "median_rms") -> pd.DataFrame:
    """The factor that brings the test cohort's typical amplitude to the training cohort's (``median_rms``), and
    with ``median_rms_polarity`` its polarity to the training cohort's as well (the factor is then negative where
    the two cohorts' polarities are clear and opposite).

    One scalar per test cohort, from unlabelled signals only (no diagnosis is used): what a site would do by
    matching its amplifier chain to the reference lab's. It cannot undo differences in the class mix or in the
    contraction protocol, and it changes absolute amplitudes, the cue the diagnosis rests on. Both cohorts'
    polarities are reported with either calibration.
    """
    if calibration not in ("median_rms", "median_rms_polarity"):
        raise ValueError(f"amplitude_gain: unknown calibration {calibration!r}")
    train, train_skews = signal_store_levels_and_skewness(train_signals, train_index)
    test, test_skews = signal_store_levels_and_skewness(test_signals, test_index)
    train_rms = median_of_levels(train, str(train_signals))
    test_rms = median_of_levels(test, str(test_signals))
    train_pol = cohort_polarity(train_skews)
    test_pol = cohort_polarity(test_skews)
    flip = polarity_factor(train_pol["polarity"], test_pol["polarity"])
    scale = train_rms / test_rms
    # how far the test cohort lies outside what the training recordings span, before and after the factor
    # (the range nemg predict checks each recording against; docs/external.md, "Amplitude calibration")
    low, high = level_range(train)["recording_range_uv"]
    levels = np.array([v for v in test if v is not None])
    outside = lambda x: float(np.mean((x < low) | (x > high)))  # noqa: E731
    return pd.DataFrame([{"calibration": calibration, "train_median_rms_uv": train_rms,
                          "test_median_rms_uv": test_rms,
                          "gain": scale * flip if calibration == "median_rms_polarity" else scale,
                          "train_range_low_uv": low, "train_range_high_uv": high,
                          "test_outside_range_recorded": outside(levels),
                          "test_outside_range_calibrated": outside(levels * scale),
                          "train_negative_share": train_pol["negative_share"],
                          "test_negative_share": test_pol["negative_share"], "polarity": flip}])


__all__ = ["CALIBRATIONS", "CALIBRATION_FRAME_S", "LEVEL_QUANTILES", "POLARITY_MARGIN", "SCHEME", "amplitude_gain",
           "check_disjoint", "cohort_key", "cohort_polarity", "external_cohorts", "external_settings", "external_split",
           "external_test_ids", "level_range", "median_frame_rms", "median_of_levels", "polarity_factor",
           "recording_frame_rms", "recording_level_and_skewness", "recording_skewness", "signal_store_levels",
           "signal_store_levels_and_skewness"]
