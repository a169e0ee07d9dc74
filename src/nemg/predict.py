"""Diagnose new patients with a model bundle (nemg.bundle): ``nemg predict MODEL_DIR INPUT...``.

Every step is the pipeline's own function with the bundle's settings: nemg.io.load_recording (any format to
float32 microvolts), nemg.trim.trim_recording, nemg.resample.resample (any source rate to the model's),
nemg.segment.segment_signal, nemg.train.predict_logits for each member, and nemg.vote's divide-and-vote with
the member's saved stage 2; the members' patient probabilities are averaged as in the DAG's consensus.

A recording the pipeline would have skipped (too short after trimming, below the model's lowest source rate)
is an error here, not a silent exclusion: a diagnosis from a subset of what the user gave would not say so.
``skip_unusable`` (``--skip-unusable``) leaves exactly those recordings out instead and says so: they are listed
with their reason (``per_patient.attrs["skipped"]``, ``skipped_recordings.tsv``), each patient's count of them is a
column, and a patient left with none is not diagnosed. Every other input error (an unreadable file, NaN samples,
wrong units) still stops the run: those are a broken sheet, not a recording the QC rejects.

Recordings of another amplifier chain can be scaled first, as the external validation's median-RMS calibration
does (docs/external.md): ``calibrate`` takes the gain from the input recordings themselves (the bundle's
training-cohort median frame RMS over theirs; a sheet of at least ``MIN_CALIBRATION_PATIENTS`` patients), ``gain``
applies a known one (e.g. the factor an earlier ``calibrate`` printed for the same site, for one new patient).

:func:`predict_cohort` scores a whole preprocessed segment store under one training checkpoint instead (the
external test cohort of nemg.external).
"""
from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .bundle import Bundle
from .external import LEVEL_QUANTILES
from .labels import CLASSES, LOCATIONS, PROB_COLS
from .vote import combined_features, signal_scores, stage2_probs, uninformed_patients

RECORDING_FILE = "recording_predictions.tsv"
PATIENT_FILE = "patient_predictions.tsv"
SKIPPED_FILE = "skipped_recordings.tsv"
SKIPPED_COLUMNS = ["recording_id", "subject_id", "path", "reason"]
# A site's median amplitude over fewer patients would mostly be those patients' own (a myopathic patient's small
# potentials scaled up to the training cohort's typical level: the diagnostic cue calibrated away). The external
# validation calibrated on 22 and 141 patients.
MIN_CALIBRATION_PATIENTS = 10


class PredictError(ValueError):
    """Input that cannot be diagnosed; the message starts with the file it concerns."""


class UnusableRecording(PredictError):
    """A readable recording that the pipeline's own QC leaves out (nothing usable after trimming, shorter than a
    window, sampled below the model's lowest source rate): what ``skip_unusable`` may skip."""


class AmplitudeOutOfRange(PredictError):
    """``strict_amplitude``: a recording's level (after any gain) lies outside the training recordings' range."""


# ------------------------------------------------------------------------------------------------------ input
def _is_sheet(path: Path) -> bool:
    return path.suffix.lower() == ".tsv"


def _recording_id(path: Path, taken: set[str]) -> str:
    """The file's stem, or a longer name where files in different folders share it (ids must be unique)."""
    for rid in (path.name.split(".")[0], path.name, str(path)):
        if rid not in taken:
            return rid
    return str(path.resolve())


def recordings_from_files(paths: Sequence[str | Path], *, subject_id: str = "patient", location: str | None = None,
                          sampling_rate_hz: float | None = None, units: str | None = None) -> pd.DataFrame:
    """A recordings sheet (as nemg.cohort.read_recordings returns it) for signal files of one patient."""
    from .io import SELF_DESCRIBING_RATE, guess_format, missing_file, signal_file

    rows, seen, given = [], set(), {}
    for p in map(Path, paths):
        if not (p.is_file() or p.with_suffix(".hea").is_file()):
            raise PredictError(f"{p}: {missing_file(p)}")
        fmt = guess_format(p)
        # a file given twice would count twice in the patient's vote; a WFDB record is one file by its header
        key = signal_file(p, fmt)
        if key in given:
            raise PredictError(f"{p}: the same recording as {given[key]}, given twice")
        given[key] = p
        rid = _recording_id(p, seen)
        seen.add(rid)
        # --rate is for files without one (npy, csv, asc); a WFDB/EDF/WAV file's own rate is used as it is
        rows.append({"recording_id": rid, "subject_id": subject_id, "muscle": None, "side": None,
                     "location": location, "path": str(p.resolve()), "format": fmt,
                     "sampling_rate_hz": None if fmt in SELF_DESCRIBING_RATE else sampling_rate_hz,
                     "units": units, "trim_start_s": None, "trim_end_s": None,
                     "channel": None})
    if not rows:
        raise PredictError("no input files")
    return pd.DataFrame(rows)


def read_input(inputs: Sequence[str | Path], *, subject_id: str = "patient", location: str | None = None,
               sampling_rate_hz: float | None = None, units: str | None = None
               ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """``(recordings, subjects or None)`` from a recordings.tsv (+ optional subjects.tsv) or one patient's files.

    Sheets are validated exactly as the pipeline's own (nemg.cohort), every problem at once.
    """
    from .cohort import read_cohort, read_recordings

    paths = [Path(p) for p in inputs]
    sheets = [p for p in paths if _is_sheet(p)]
    if not sheets:
        return recordings_from_files(paths, subject_id=subject_id, location=location,
                                     sampling_rate_hz=sampling_rate_hz, units=units), None
    if len(sheets) != len(paths) or len(sheets) > 2:
        raise PredictError(f"give a recordings.tsv (and optionally its subjects.tsv), or signal files of one "
                           f"patient, not both: {' '.join(map(str, paths))}")
    for p in sheets:
        if not p.is_file():
            raise PredictError(f"{p}: sample sheet not found")
    has_path = []
    for p in sheets:
        try:
            has_path.append("path" in pd.read_csv(p, sep="\t", nrows=0).columns)
        except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise PredictError(f"{p}: not a readable tab-separated sample sheet ({exc})") from None
    if sum(has_path) != 1:
        raise PredictError(f"{' '.join(map(str, sheets))}: expected exactly one recordings sheet (with a 'path' "
                           f"column)")
    rec_tsv = sheets[has_path.index(True)]
    if len(sheets) == 1:
        recordings, subjects = read_recordings(rec_tsv), None
    else:
        cohort = read_cohort(sheets[has_path.index(False)], rec_tsv)
        recordings, subjects = cohort.recordings, cohort.subjects
    if recordings.empty:
        raise PredictError(f"{rec_tsv}: no recordings (the sheet has its header line only)")
    return recordings, subjects


# ------------------------------------------------------------------------------------------------ preprocess
def _opt(v):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) or v == "" else v


def recording_segments(bundle: Bundle, row: dict) -> np.ndarray:
    """One recording loaded, trimmed, resampled and cut into windows with the bundle's settings."""
    return _windows(bundle, row, _resampled(bundle, row))


def _resampled(bundle: Bundle, row: dict) -> np.ndarray:
    """One recording loaded, trimmed and resampled to the model's rate (the DAG's resampled-signal store)."""
    from .io import load_recording
    from .resample import resample
    from .trim import TrimParams, trim_recording

    pre = bundle.preprocessing
    path = row["path"]
    rec = load_recording(path, row["format"], sampling_rate_hz=_opt(row.get("sampling_rate_hz")),
                         units=_opt(row.get("units")), channel=_opt(row.get("channel")), min_duration_s=0.0)
    rate, low = float(pre["resample"]["rate_hz"]), float(pre["resample"]["min_source_rate_hz"])
    if not (math.isfinite(rec.fs) and rec.fs >= low):
        raise UnusableRecording(f"{path}: sampled at {rec.fs:g} Hz, below {low:g} Hz, the lowest rate of the "
                                f"recordings this model was trained on (its training signals carried frequencies "
                                f"this rate cannot hold)")
    where = f"recording {row['recording_id']!r} ({path})"
    kept, qc = trim_recording(rec.samples, rec.fs, TrimParams(**pre["trim"]),
                              manual_start_s=_opt(row.get("trim_start_s")), manual_end_s=_opt(row.get("trim_end_s")),
                              clipped=float(rec.meta.get("clipped_fraction", float("nan"))), where=where)
    if qc["status"] != "kept":
        raise UnusableRecording(f"{path}: not usable after trimming ({qc['exclusion_reason']}; the recording is "
                                f"{qc['duration_s']:.3f} s long)")
    # float32 between trimming and resampling, as the DAG's trimmed-signal store holds it
    x = resample(np.ascontiguousarray(kept, dtype=np.float32), rec.fs, rate, pre["resample"]["method"])
    if not np.isfinite(x).all():  # the filter's overshoot of samples near float32's limit: the network gives NaN
        raise PredictError(f"{path}: resampling to {rate:g} Hz overflows float32 (samples up to "
                           f"{np.abs(kept).max():.3g} uV); check the recording's units")
    return x


def _windows(bundle: Bundle, row: dict, x: np.ndarray) -> np.ndarray:
    from .segment import segment_signal

    pre = bundle.preprocessing
    seg = segment_signal(x, int(pre["segment"]["window_samples"]), int(pre["segment"]["hop_samples"]))
    if len(seg) == 0:
        raise UnusableRecording(f"{row['path']}: {len(x) / float(pre['resample']['rate_hz']):.3f} s after trimming "
                                f"and resampling, shorter than one {pre['segment']['window_s']} s window")
    return seg


def prepare(bundle: Bundle, recordings: pd.DataFrame, *, levels: dict | None = None,
            skipped: list | None = None, skews: dict | None = None) -> tuple[np.ndarray, pd.DataFrame]:
    """Segments of every recording, in the sheet's order, and their index (the segment-store columns).

    ``levels``: a dict to fill with recording id -> median frame RMS (µV) of its resampled signal
    (nemg.external.recording_frame_rms, as the DAG's calibration computes it), for :func:`calibration_gain`;
    ``skews`` likewise with its skewness (nemg.external.recording_skewness: which way its spikes point).
    ``skipped``: a list to append an :class:`UnusableRecording` to (a dict of ``SKIPPED_COLUMNS``) instead of
    raising it; None raises. Recordings that none is usable of are an error either way.
    """
    from .external import CALIBRATION_FRAME_S, recording_level_and_skewness

    if bundle.with_location:
        bad = recordings[~recordings["location"].isin(LOCATIONS)]
        if len(bad):
            raise PredictError(f"{bad['path'].iloc[0]}: this model's stage 2 uses muscle location; give each "
                               f"recording's location (proximal or distal; --location for signal files)")
    arrays, rows = [], []
    rate = float(bundle.preprocessing["resample"]["rate_hz"])
    # the frames of the bundle's own reference level, so that both levels are the same measure
    frame_s = float((bundle.preprocessing.get("amplitude_reference") or {}).get("frame_s", CALIBRATION_FRAME_S))
    for row in recordings.to_dict("records"):
        try:
            x = _resampled(bundle, row)
            seg = _windows(bundle, row, x)
        except UnusableRecording as exc:
            if skipped is None:
                raise
            skipped.append({"recording_id": row["recording_id"], "subject_id": row["subject_id"],
                            "path": row["path"], "reason": str(exc).removeprefix(f"{row['path']}: ")})
            continue
        if levels is not None or skews is not None:
            level, skew = recording_level_and_skewness(x, rate, frame_s)
            if levels is not None:
                levels[row["recording_id"]] = level
            if skews is not None:
                skews[row["recording_id"]] = skew
        hop = int(bundle.preprocessing["segment"]["hop_samples"])
        for j in range(len(seg)):
            rows.append((row["recording_id"], row["subject_id"], row.get("location"), j * hop))
        arrays.append(seg)
    if not arrays:
        raise PredictError(f"{recordings['path'].iloc[0]}: none of the {len(recordings)} recording(s) is usable "
                           f"(first: {skipped[0]['reason']})")
    index = pd.DataFrame(rows, columns=["recording_id", "subject_id", "location", "offset_samples"])
    index.insert(0, "segment", np.arange(len(index)))
    return np.ascontiguousarray(np.concatenate(arrays)), index


# ------------------------------------------------------------------------------------------------- ensemble
def score_segments(bundle: Bundle, segments: np.ndarray, index: pd.DataFrame, *, num_threads: int | None = None,
                   device: str = "cpu", networks: dict | None = None) -> pd.DataFrame:
    """Segment probabilities under every member, in the training predictions' format (role ``test``)."""
    import torch

    from .data import probability_table
    from .store import SegmentStore
    from .train import pick_device, predict_logits, runtime

    dev = pick_device(device)
    nets = networks if networks is not None else bundle.networks(str(dev))
    store = SegmentStore(x=segments, index=index, y=np.zeros(len(index), np.int64))
    rows = np.arange(len(index))
    frames = []
    # inference kernels on CPU are deterministic without the global switch (training needs it, not this)
    with runtime(dev, num_threads, False):
        for run_id, net in nets.items():
            p = torch.softmax(predict_logits(net, store, rows, int(bundle.meta["model"]["eval_batch_size"]), dev),
                              1).numpy()
            frames.append(probability_table(index, run_id, "test", p))
    return pd.concat(frames, ignore_index=True)


def predict_cohort(checkpoint: str | Path, segments_npy: str | Path, index_tsv: str | Path, *,
                   batch_size: int = 256, device: str = "auto", num_threads: int | None = None) -> pd.DataFrame:
    """Segment-level class probabilities of every segment of a store under a trained checkpoint (role test):
    an external test cohort under one externally trained model (nemg.external)."""
    import torch

    from .data import SegmentStore, probability_table
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
    return probability_table(store.index, meta["run_id"], "test", torch.softmax(logits, 1).numpy())


def _member_votes(bundle: Bundle, predictions: pd.DataFrame, recordings: pd.DataFrame, models: dict,
                  extra: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """Each member's stage-2 probabilities per patient (nemg.vote's features; ``extra``: the combined arm's other
    model's segment scores, seen beside the network's)."""
    st2 = bundle.meta["stage2"]
    locations = recordings.set_index("recording_id")["location"]
    per_run = []
    for run_id, run in predictions.groupby("run_id", sort=True):
        other = None if extra is None else {k: v[v["run_id"] == run_id] for k, v in extra.items()}
        feats = combined_features(run, other, locations, st2["with_location"])
        probs = stage2_probs(feats, st2["method"], models[run_id])
        per_run.append(pd.DataFrame(probs, columns=PROB_COLS).assign(subject_id=feats["subject_id"].to_numpy(),
                                                                    run_id=run_id))
    return pd.concat(per_run, ignore_index=True)


def qemg_scores(bundle: Bundle, segments: np.ndarray, index: pd.DataFrame) -> pd.DataFrame:
    """The combined arm's QEMG logistic-regression probabilities of every segment under each member, in the
    training predictions' format: the features of nemg.features.segment_features with the bundle's settings,
    stored as float32 as the DAG's feature store keeps them."""
    from .baseline import logreg_probs
    from .data import probability_table
    from .features import feature_params, segment_features

    comb = bundle.combined
    if comb is None:
        raise PredictError(f"{bundle.path}: this bundle has no combined arm (build it with bundle.combined: true)")
    chunk = max(1, int(feature_params(comb["feature_params"])["chunk"]))  # the DAG's own bound on memory
    feats = np.concatenate([segment_features(np.asarray(segments[i:i + chunk]), float(comb["rate_hz"]),
                                             comb["feature_params"]).astype(np.float32)
                            for i in range(0, len(segments), chunk)])
    if not np.isfinite(feats).all():
        raise PredictError("non-finite QEMG features of the input segments")
    return pd.concat([probability_table(index, m["run_id"], "test", logreg_probs(m["combined"]["qemg"], feats))
                      for m in bundle.meta["members"]], ignore_index=True)


def diagnose_combined(bundle: Bundle, predictions: pd.DataFrame, qemg: pd.DataFrame,
                      recordings: pd.DataFrame) -> pd.DataFrame:
    """Per patient, the combined arm's call and probabilities (``combined_predicted``, ``combined_p_<class>``):
    each member's combined stage 2 on the network's and the QEMG model's patient scores, then their mean."""
    pp = _member_votes(bundle, predictions, recordings, bundle.combined_models(), extra={"logreg": qemg})
    order = list(dict.fromkeys(recordings["subject_id"]))
    out = pp.groupby("subject_id")[PROB_COLS].mean().loc[order]
    out.insert(0, "predicted", np.array(CLASSES)[out[PROB_COLS].to_numpy().argmax(axis=1)])
    return out.add_prefix("combined_").reset_index()


def diagnose(bundle: Bundle, predictions: pd.DataFrame, recordings: pd.DataFrame,
             subjects: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(per recording, per patient)``: divide-and-vote per member, then the members' mean probabilities."""
    locations = recordings.set_index("recording_id")["location"]
    signals = signal_scores(predictions)
    pp = _member_votes(bundle, predictions, recordings, bundle.stage2_models())
    order = list(dict.fromkeys(recordings["subject_id"]))
    patients = pp.groupby("subject_id")[PROB_COLS].mean().loc[order].reset_index()
    patients.insert(1, "predicted", np.array(CLASSES)[patients[PROB_COLS].to_numpy().argmax(axis=1)])
    n_rec = recordings.groupby("subject_id").size()
    patients.insert(2, "n_recordings", patients["subject_id"].map(n_rec).to_numpy())
    patients.insert(3, "n_models", pp["run_id"].nunique())
    if subjects is not None:  # a subjects sheet carries the known diagnosis: shown beside the model's
        patients.insert(1, "diagnosis", patients["subject_id"].map(subjects.set_index("subject_id")["diagnosis"]))

    segs = predictions.groupby("recording_id").size() / predictions["run_id"].nunique()
    rec = signals.groupby(["recording_id", "subject_id"], sort=False)[PROB_COLS].mean().reset_index()
    rec = rec.set_index("recording_id").loc[list(recordings["recording_id"])].reset_index()
    rec.insert(2, "predicted", np.array(CLASSES)[rec[PROB_COLS].to_numpy().argmax(axis=1)])
    rec.insert(2, "n_segments", rec["recording_id"].map(segs).astype(int).to_numpy())
    rec.insert(2, "location", rec["recording_id"].map(locations).to_numpy())
    rec["path"] = rec["recording_id"].map(recordings.set_index("recording_id")["path"]).to_numpy()
    return rec, patients


def calibration_gain(bundle: Bundle, recordings: pd.DataFrame, levels: dict, *,
                     min_patients: int = MIN_CALIBRATION_PATIENTS, skews: dict | None = None) -> dict:
    """The median-RMS calibration of the external validation for these recordings: the bundle's training-cohort
    median frame RMS over theirs (``levels`` from :func:`prepare`). No diagnosis is used.

    With ``skews`` (from :func:`prepare`) and a bundle that records its training cohort's polarity, also both
    cohorts' share of recordings skewing negative and ``polarity`` (-1: the two clearly point opposite ways, as
    the DAG's amplitude_gain.tsv reports it). Reported, not applied: turning a site over did not change a
    Messekher model's calls on N2001 (docs/external.md, "Polarity")."""
    from .external import cohort_polarity, median_of_levels, polarity_factor

    ref = _calibration_reference(bundle, recordings, min_patients)
    site = median_of_levels([levels[r] for r in recordings["recording_id"]], str(recordings["path"].iloc[0]),
                            float(ref["frame_s"]))
    reference = float(ref["median_frame_rms_uv"])
    out = {"calibration": "median_rms", "gain": reference / site, "reference_median_rms_uv": reference,
           "site_median_rms_uv": site, "n_recordings": len(recordings),
           "n_patients": int(recordings["subject_id"].nunique())}
    if skews is not None and ref.get("polarity"):
        site_pol = cohort_polarity([skews[r] for r in recordings["recording_id"]])
        out.update(reference_negative_share=float(ref["polarity"]["negative_share"]),
                   site_negative_share=site_pol["negative_share"],
                   polarity=polarity_factor(int(ref["polarity"]["polarity"]), site_pol["polarity"]))
    return out


def _calibration_reference(bundle: Bundle, recordings: pd.DataFrame, min_patients: int) -> dict:
    """The bundle's amplitude reference, once these recordings are known to be enough to calibrate on."""
    ref = bundle.preprocessing.get("amplitude_reference")
    if not ref:
        raise PredictError(f"{bundle.path / 'model.json'}: no amplitude reference (the bundle predates nemg predict "
                           f"--calibrate); rebuild it with `snakemake model`, or give a known factor with --gain")
    n_patients = int(recordings["subject_id"].nunique())
    if n_patients < min_patients:
        raise PredictError(f"{recordings['path'].iloc[0]}: calibrating needs the recordings of at least "
                           f"{min_patients} patients of the site, got {n_patients}: on fewer the site's median "
                           f"amplitude is mostly these patients' own, and scaling it to the training cohort's would "
                           f"remove the cue the diagnosis rests on. Calibrate once on a sheet of the site's "
                           f"recordings and give the printed factor with --gain")
    return ref


def predict(bundle: Bundle, recordings: pd.DataFrame, subjects: pd.DataFrame | None = None, *,
            num_threads: int | None = None, device: str = "cpu", networks: dict | None = None,
            calibrate: bool = False, gain: float | None = None, skip_unusable: bool = False,
            strict_amplitude: bool = False,
            min_calibration_patients: int = MIN_CALIBRATION_PATIENTS) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Load, preprocess, score and vote: ``(per recording, per patient)``.

    ``networks``: the bundle's networks already built (``bundle.networks()``), for a caller diagnosing many
    patients one at a time; None builds them from the weights files. ``calibrate`` / ``gain``: scale every
    segment by the median-RMS calibration of these recordings (:func:`calibration_gain`) or by a known factor, as
    the DAG scales a calibrated external test cohort; both tables then carry an ``amplitude_gain`` column, and
    the per-patient table's ``attrs["calibration"]`` says how the factor was found. Every recording's level (its
    median frame RMS after any gain) is checked against the training recordings' (:func:`amplitude_check`); the
    per-patient table counts each patient's recordings outside that range (``n_outside_range``).
    ``skip_unusable``: leave out
    the recordings the pipeline's QC would (:class:`UnusableRecording`) instead of stopping; the per-patient table
    then has an ``n_skipped`` column and ``attrs["skipped"]`` (dicts of ``SKIPPED_COLUMNS``); a patient
    without a usable recording has no row, only its entries there. The calibration is measured on the recordings used.
    ``strict_amplitude``: a recording outside the training range is an :class:`AmplitudeOutOfRange` error instead
    of a count and a warning, raised before the networks run (and so is a bundle that records no range).
    """
    if calibrate and gain is not None:
        raise PredictError("give either --calibrate (the factor from these recordings) or --gain (a known one)")
    if gain is not None and not (math.isfinite(gain) and gain > 0):
        raise PredictError(f"--gain must be a positive finite number, got {gain}")
    if calibrate:  # before minutes of loading and resampling: a bundle or a sheet that cannot calibrate
        _calibration_reference(bundle, recordings, min_calibration_patients)
    levels: dict = {}
    skews: dict = {}
    skipped = [] if skip_unusable else None
    segments, index = prepare(bundle, recordings, levels=levels, skipped=skipped, skews=skews)
    if skipped:
        recordings = recordings[~recordings["recording_id"].isin({s["recording_id"] for s in skipped})]
    _refuse_unseen_locations(bundle, recordings)
    calibration = None
    if calibrate:
        calibration = calibration_gain(bundle, recordings, levels, min_patients=min_calibration_patients,
                                       skews=skews)
        gain = calibration["gain"]
    elif gain is not None:
        calibration = {"calibration": "given", "gain": float(gain)}
    # once, before the networks: strict refuses here rather than after minutes of scoring on a large sheet
    level_table = recordings[["recording_id", "subject_id"]].copy()
    check = amplitude_check(bundle, level_table, levels, gain)
    if strict_amplitude:
        _refuse_out_of_range(bundle, recordings, check, gain)
    if gain is not None:
        segments = segments * np.float32(gain)  # as nemg.segment.segment_store scales a calibrated cohort
    scores = score_segments(bundle, segments, index, num_threads=num_threads, device=device, networks=networks)
    _check_finite(scores, recordings)
    per_recording, per_patient = diagnose(bundle, scores, recordings, subjects)
    if bundle.combined is not None:  # beside the network's call, never instead of it
        combined = diagnose_combined(bundle, scores, qemg_scores(bundle, segments, index), recordings)
        per_patient = per_patient.merge(combined, on="subject_id", how="left", validate="one_to_one")
    per_recording = per_recording.merge(level_table.drop(columns="subject_id"), on="recording_id", how="left")
    per_patient.attrs["amplitude_check"] = check
    if check:  # beside the diagnosis it concerns: the patient table is what a reader opens first
        _insert_patient_count(per_patient, "n_outside_range", [r["subject_id"] for r in check["outside"]])
    if calibration is not None:
        per_recording["amplitude_gain"] = calibration["gain"]
        per_patient["amplitude_gain"] = calibration["gain"]
        per_patient.attrs["calibration"] = calibration
    if skip_unusable:
        _insert_patient_count(per_patient, "n_skipped", [s["subject_id"] for s in skipped])
        # plain records, not a DataFrame: pandas compares attrs when it combines frames
        per_patient.attrs["skipped"] = skipped
    return per_recording, per_patient


def _refuse_unseen_locations(bundle: Bundle, recordings: pd.DataFrame) -> None:
    """A stage 2 with muscle location that was fit on no patient recorded at some location reads a patient
    recorded only there as its prior (nemg.vote.fit_locations): refused, before the networks run. Bundles from
    before nemg recorded each member's fit locations are not checked."""
    if not bundle.with_location:
        return
    locations_of = {str(s): set(g) for s, g in recordings.groupby("subject_id", sort=False)["location"]}
    for m in bundle.meta["members"]:
        fit_locs = (m.get("stage2") or {}).get("fit_locations")
        if not fit_locs:
            continue
        blind = uninformed_patients(locations_of, fit_locs)
        if blind:
            sid, locs = next(iter(blind.items()))
            seen = [loc for loc, n in fit_locs.items() if n > 0]
            first = recordings.loc[recordings["subject_id"].astype(str) == sid, "path"].iloc[0]
            raise PredictError(
                f"{first}: patient {sid!r} has only {' and '.join(locs)} recordings, but this model's stage 2 reads "
                f"muscle location and member {m['run_id']} was fit on no patient with a {' or '.join(locs)} "
                f"recording (only {' and '.join(seen)}): its call would be its prior, not these recordings. Add "
                f"recordings of a {' or '.join(seen)} muscle, or use a bundle built with bundle.with_location: false"
                + (f" ({len(blind) - 1} more patient(s) like this)" if len(blind) > 1 else ""))


def _insert_patient_count(per_patient: pd.DataFrame, column: str, subject_ids: list) -> None:
    """A column after ``n_recordings``: how often each patient's id occurs in ``subject_ids`` (0 when never)."""
    counts = pd.Series(subject_ids, dtype=object).value_counts()
    per_patient.insert(per_patient.columns.get_loc("n_recordings") + 1, column,
                       per_patient["subject_id"].map(counts).fillna(0).astype(int))


def amplitude_check(bundle: Bundle, per_recording: pd.DataFrame, levels: dict, gain: float | None) -> dict:
    """Each recording's level beside the training recordings' range; adds ``level_uv`` (and, when the bundle
    records the range, ``in_training_range``) to ``per_recording`` (any table with ``recording_id`` and
    ``subject_id``) and returns the summary for the warning, ``{}`` when the bundle records no range.

    Amplitude is the main cue of both the network and the QEMG features, and a cohort recorded with another
    amplifier chain is read as one or two classes (docs/external.md): a recording louder or quieter than nearly
    every training recording is outside what the model was validated on, whatever it is called.
    """
    scale = 1.0 if gain is None else float(gain)
    per_recording["level_uv"] = per_recording["recording_id"].map(levels).astype(float) * scale
    ref = bundle.preprocessing.get("amplitude_reference") or {}
    if "recording_range_uv" not in ref:  # a bundle from before the range was recorded: nothing to check against
        return {}
    low, high = (float(v) for v in ref["recording_range_uv"])
    inside = per_recording["level_uv"].between(low, high)
    per_recording["in_training_range"] = inside
    outside = per_recording.loc[~inside, ["recording_id", "subject_id", "level_uv"]]
    quantiles = ref.get("range_quantiles") or list(LEVEL_QUANTILES)
    return {"range_uv": [low, high], "quantiles": quantiles, "n_recordings": len(per_recording),
            "n_outside": len(outside), "outside": outside.to_dict("records")}


def _refuse_out_of_range(bundle: Bundle, recordings: pd.DataFrame, check: dict, gain: float | None) -> None:
    """:class:`AmplitudeOutOfRange` naming the first recording outside the training range and how many are
    (``check`` from :func:`amplitude_check`)."""
    if not check:  # strict must not pass for want of a range to check against
        raise AmplitudeOutOfRange(f"{bundle.path / 'model.json'}: the bundle records no training amplitude range "
                                  f"(it predates the check), so --strict-amplitude cannot check; rebuild it with "
                                  f"`snakemake model`")
    if not check["n_outside"]:
        return
    (low, high), first = check["range_uv"], check["outside"][0]
    path = recordings.set_index("recording_id").loc[first["recording_id"], "path"]
    patients = sorted({r["subject_id"] for r in check["outside"]})
    after = "" if gain is None else f" after the gain x {float(gain):.6g}"
    raise AmplitudeOutOfRange(
        f"{path}: median frame RMS {first['level_uv']:.4g} uV{after}, outside the training recordings' range "
        f"{low:.4g}-{high:.4g} uV; {check['n_outside']} of {check['n_recordings']} recording(s) are, of patient(s) "
        f"{', '.join(patients[:10])}{' and more' if len(patients) > 10 else ''}. --strict-amplitude refuses to "
        f"diagnose them (without it they are diagnosed with a warning); recordings of another amplifier chain: "
        f"--calibrate or --gain (docs/predict.md)")


def _check_finite(scores: pd.DataFrame, recordings: pd.DataFrame) -> None:
    """Refuse NaN segment probabilities: the vote's means skip them, so a diagnosis would quietly rest on fewer
    segments or members than it says (or be 'normal', the argmax of NaN)."""
    bad = scores[~np.isfinite(scores[PROB_COLS].to_numpy()).all(axis=1)]
    if len(bad):
        first = bad.iloc[0]
        path = recordings.set_index("recording_id").loc[first["recording_id"], "path"]
        raise PredictError(f"{path}: member {first['run_id']} gives non-finite class probabilities for "
                           f"{(bad['recording_id'] == first['recording_id']).sum()} segment(s)")


# ------------------------------------------------------------------------------------------------------ output
def write_predictions(out_dir: str | Path, per_recording: pd.DataFrame, per_patient: pd.DataFrame) -> list[Path]:
    """Both tables (and the skipped recordings, when ``per_patient.attrs`` has them) written to temporary files
    first and renamed only when all exist: never half an output."""
    out = Path(out_dir)
    made = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    tables = {RECORDING_FILE: per_recording, PATIENT_FILE: per_patient}
    if "skipped" in per_patient.attrs:
        tables[SKIPPED_FILE] = pd.DataFrame(per_patient.attrs["skipped"], columns=SKIPPED_COLUMNS)
    pairs = [(out / f".{name}.tmp", out / name) for name in tables]
    try:
        for (tmp, _), df in zip(pairs, tables.values()):
            df.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
        for tmp, final in pairs:
            os.replace(tmp, final)
        if SKIPPED_FILE not in tables:  # an earlier run's list would describe other predictions than these
            (out / SKIPPED_FILE).unlink(missing_ok=True)
    except BaseException:  # a full disk or an interrupt: leave no temporary file and no empty folder behind
        for tmp, _ in pairs:
            tmp.unlink(missing_ok=True)
        if made:
            with contextlib.suppress(OSError):
                out.rmdir()
        raise
    return [final for _, final in pairs]


def format_patients(per_patient: pd.DataFrame) -> str:
    """The per-patient table for the terminal."""
    show = per_patient.copy()
    for c in [c for c in show.columns if c.removeprefix("combined_") in PROB_COLS]:
        show[c] = show[c].map(lambda v: f"{v:.3f}")
    return show.rename(columns={f"p_{c}": c for c in CLASSES}).to_string(index=False)


__all__ = ["AmplitudeOutOfRange", "MIN_CALIBRATION_PATIENTS", "PATIENT_FILE", "PredictError", "RECORDING_FILE",
           "SKIPPED_COLUMNS", "SKIPPED_FILE", "UnusableRecording", "amplitude_check", "calibration_gain", "diagnose",
           "diagnose_combined", "format_patients", "predict", "predict_cohort", "prepare", "qemg_scores",
           "read_input", "recording_segments", "recordings_from_files", "score_segments", "write_predictions"]
