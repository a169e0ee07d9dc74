"""Artifact trimming: cut needle / patient-movement artifacts off the start and end of each recording.

The study removed such artifacts by hand "at the beginning and end" of every signal. Here they are found
automatically, frame by frame, with three documented criteria (docs/preprocessing.md):

* **envelope** -- the RMS of the high-passed signal (``highpass_hz``, default 20 Hz: the study's lower filter
  edge) in a frame exceeds ``envelope_factor`` x the median frame RMS of the recording's middle half.
  Needle movement gives broadband bursts far above the interference pattern of a steady contraction.
* **baseline** -- the median of the *unfiltered* signal steps by more than ``baseline_factor`` x the median
  frame RMS between neighbouring frames. Movement shifts or drags the baseline abruptly; motor unit
  potentials, being short and biphasic, barely move a frame median, and slow drift moves it gradually.
* **flat** -- the frame's standard deviation is below ``FLAT_FRACTION`` of the median frame RMS (needle out of
  the muscle, dead channel, amplifier blocked at a rail). Recordings flat for more than half their frames are
  excluded.

Only artifacts near an edge are cut. The kept signal starts after the last artifact frame within the first
``edge_window_s`` seconds (a needle still settling makes the stretch before a movement burst unreliable too,
and the study cut "the beginning" as a whole), then at the first run of ``min_clean_s`` of clean frames from
there; the end is found the same way from the other side. ``pad_s`` of extra margin goes into the artifact
side. Artifacts in
the middle of a recording are left alone (the study did the same). The manual columns ``trim_start_s`` /
``trim_end_s`` of the sample sheet override the automatic choice, each edge separately.

Nothing is dropped silently: every recording gets one row in the QC table with what was cut, why, the
clipping fraction and the remaining duration; recordings shorter than ``min_duration_s`` after trimming are
marked ``excluded`` with the reason, and are left out of the trimmed store.
"""
from __future__ import annotations

import logging
import math
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import signal as sps

from .recording import RecordingError, clipped_fraction

log = logging.getLogger(__name__)

#: QC table columns, in order (docs/preprocessing.md explains each one).
QC_COLUMNS = (
    "recording_id", "subject_id", "diagnosis", "location", "muscle", "fs_hz", "duration_s",
    "auto_start_s", "auto_end_s", "auto_start_reason", "auto_end_reason",
    "manual_start_s", "manual_end_s", "trim_start_s", "trim_end_s", "start_source", "end_source",
    "cut_start_s", "cut_end_s", "remaining_s", "clipped_fraction", "clipped_fraction_kept",
    "status", "exclusion_reason",
)


@dataclass(frozen=True)
class TrimParams:
    """Settings of the automatic detector (config section ``preprocess.trim``)."""

    auto: bool = True  #: run the automatic detector; False = manual trims only
    frame_s: float = 0.1  #: analysis frame; also the resolution of automatic cuts
    highpass_hz: float = 20.0  #: high-pass before the envelope criterion (the study's lower filter edge)
    envelope_factor: float = 3.0  #: frame RMS / median frame RMS above this = artifact
    baseline_factor: float = 3.0  #: |step of the frame median| / median frame RMS above this = artifact
    min_clean_s: float = 0.5  #: the kept signal starts / ends with at least this much clean signal
    edge_window_s: float = 2.0  #: artifact frames this close to an edge cut everything up to the edge
    pad_s: float = 0.05  #: extra margin cut beyond a detected artifact
    min_duration_s: float = 0.4  #: shorter after trimming -> excluded (one 0.4 s window)

    @classmethod
    def from_config(cls, cfg: dict[str, Any] | None) -> "TrimParams":
        cfg = dict(cfg or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise ValueError(f"preprocess.trim: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**cfg)


@dataclass
class EdgeArtifacts:
    """What the detector found: the clean interval ``[start_s, end_s)`` and why each edge was cut."""

    start_s: float
    end_s: float
    start_reason: str = ""  #: "", "envelope", "baseline", "envelope+baseline", "flat", "no clean stretch"
    end_reason: str = ""


#: A frame whose raw standard deviation is below this fraction of the median frame RMS is "flat" (dead
#: channel, needle out of the muscle, amplifier blocked at a rail).
FLAT_FRACTION = 1e-3
#: Recordings flat for more than this fraction of their frames are excluded outright.
MAX_FLAT_FRACTION = 0.5


@dataclass
class FrameFlags:
    """Per-frame criteria of one recording (all arrays have one entry per frame; the last may be partial)."""

    envelope: np.ndarray  #: frame RMS / median frame RMS (high-passed signal)
    step: np.ndarray  #: largest |change of the frame median| to a neighbouring frame / median frame RMS
    flat: np.ndarray  #: bool, frame is flat
    frame_len: int
    params: TrimParams

    @property
    def envelope_bad(self) -> np.ndarray:
        return self.envelope > self.params.envelope_factor

    @property
    def baseline_bad(self) -> np.ndarray:
        return self.step > self.params.baseline_factor

    @property
    def bad(self) -> np.ndarray:
        return self.envelope_bad | self.baseline_bad | self.flat


def frame_features(x: np.ndarray, fs: float, params: TrimParams) -> FrameFlags:
    """Envelope ratio, baseline-step ratio and flatness of every frame of ``x``.

    Ratios are in units of the median frame RMS of the high-passed signal over the non-flat frames of the
    recording's middle half, so they do not depend on gain or units and edge artifacts do not bias them. The
    baseline criterion uses *steps* of the frame median between neighbouring frames, so a slow drift (N2001 is
    high-passed at 2 Hz only) is not mistaken for an artifact.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or x.shape[0] == 0 or not np.isfinite(x).all():
        raise ValueError("trimming needs a non-empty 1-D signal of finite values")
    n = x.shape[0]
    frame_len = max(1, int(round(params.frame_s * fs)))
    n_frames = math.ceil(n / frame_len)
    pad = n_frames * frame_len - n
    xf = np.pad(x, (0, pad), mode="edge").reshape(n_frames, frame_len)
    raw_sd = xf.std(axis=1)
    if 0 < params.highpass_hz < fs / 2 and n > 27:
        sos = sps.butter(4, params.highpass_hz, "highpass", fs=fs, output="sos")
        y = sps.sosfiltfilt(sos, x - np.median(x))
    else:
        y = x - np.median(x)
    # edge-pad so the partial last frame is judged on its own samples only
    yf = np.pad(y, (0, pad), mode="edge").reshape(n_frames, frame_len)
    rms = np.sqrt(np.mean(yf * yf, axis=1))
    # reference level: the middle half of the recording, where edge artifacts are not (so they may cover up
    # to half of it without biasing the reference); the whole recording when the middle is dead
    live = raw_sd > 0
    middle = np.zeros(n_frames, bool)
    middle[n_frames // 4: max(n_frames // 4 + 1, n_frames - n_frames // 4)] = True
    pool = rms[live & middle] if (live & middle).any() else rms[live]
    ref = float(np.median(pool)) if pool.size else 0.0
    if ref <= 0 or not np.isfinite(ref):
        inf = np.full(n_frames, np.inf)
        return FrameFlags(inf, inf, np.ones(n_frames, bool), frame_len, params)
    flat = raw_sd < FLAT_FRACTION * ref
    med = np.median(xf, axis=1)
    d = np.abs(np.diff(med)) / ref
    step = np.zeros(n_frames)
    if n_frames > 1:
        step[:-1] = d
        step[1:] = np.maximum(step[1:], d)
    return FrameFlags(rms / ref, step, flat, frame_len, params)


def _reasons(flags: FrameFlags, sl: slice) -> str:
    parts = []
    for name, arr in (("envelope", flags.envelope_bad), ("baseline", flags.baseline_bad), ("flat", flags.flat)):
        if arr[sl].any():
            parts.append(name)
    return "+".join(parts)


def detect_edge_artifacts(x: np.ndarray, fs: float, params: TrimParams | None = None) -> EdgeArtifacts:
    """Find artifacts touching the start or end of ``x``; returns the clean interval in seconds."""
    params = params or TrimParams()
    n = int(np.asarray(x).shape[0])
    duration = n / fs
    flags = frame_features(x, fs, params)
    frame_len = flags.frame_len
    if flags.flat.mean() > MAX_FLAT_FRACTION:
        return EdgeArtifacts(0.0, 0.0, "flat", "flat")
    bad = flags.bad
    n_frames = bad.shape[0]
    need = max(1, math.ceil(params.min_clean_s / params.frame_s - 1e-9))
    clean = ~bad
    # runs[i] = True when frames i .. i+need-1 are all clean
    if n_frames < need:
        runs = np.zeros(0, bool)
    else:
        c = np.concatenate([[0], np.cumsum(clean.astype(int))])
        runs = (c[need:] - c[:-need]) == need
    starts = np.flatnonzero(runs)
    if starts.size == 0:
        return EdgeArtifacts(0.0, 0.0, "no clean stretch", "no clean stretch")
    # within the edge windows, the last artifact frame bounds the cut even if clean-looking frames precede it
    window = min(int(round(params.edge_window_s / params.frame_s)), n_frames // 3)
    bad_head = np.flatnonzero(bad[:window])
    bad_tail = np.flatnonzero(bad[n_frames - window:]) + (n_frames - window) if window else np.zeros(0, int)
    lo = int(bad_head[-1]) + 1 if bad_head.size else 0
    hi = int(bad_tail[0]) - need if bad_tail.size else n_frames - need  # last admissible run start
    admissible = starts[(starts >= lo) & (starts <= hi)]
    if admissible.size == 0:
        # edge artifacts leave no clean run between them: fall back to the plain clean-run rule
        admissible = starts
    first, last = int(admissible[0]), int(admissible[-1]) + need - 1  # first / last clean frame kept
    start_s, start_reason = 0.0, ""
    if first > 0:
        start_reason = _reasons(flags, slice(0, first))
        start_s = min(first * frame_len / fs + params.pad_s, duration)
    end_s, end_reason = duration, ""
    if last < n_frames - 1:
        end_reason = _reasons(flags, slice(last + 1, None))
        end_s = max(min((last + 1) * frame_len / fs, duration) - params.pad_s, 0.0)
    if end_s < start_s:
        end_s = start_s
    return EdgeArtifacts(start_s, end_s, start_reason, end_reason)


def _opt_float(v: Any) -> float | None:
    if v is None:
        return None
    if isinstance(v, str):
        v = v.strip()
        if v == "":
            return None
    v = float(v)
    return None if math.isnan(v) else v


def decide_trim(
    duration_s: float,
    auto: EdgeArtifacts | None,
    manual_start_s: float | None = None,
    manual_end_s: float | None = None,
    *,
    where: str = "<recording>",
) -> tuple[float, float, str, str]:
    """Combine automatic and manual trims: ``(start_s, end_s, start_source, end_source)``.

    A manual value replaces the automatic one for its edge. Manual values outside the recording are an error
    naming ``where`` (a small overshoot of one millisecond past the end is accepted as rounding).
    """
    if manual_start_s is not None and not (0 <= manual_start_s < duration_s):
        raise ValueError(f"{where}: trim_start_s = {manual_start_s:g} s lies outside the recording "
                         f"(duration {duration_s:.4f} s)")
    if manual_end_s is not None:
        if manual_end_s <= 0 or manual_end_s > duration_s + 1e-3:
            raise ValueError(f"{where}: trim_end_s = {manual_end_s:g} s lies outside the recording "
                             f"(duration {duration_s:.4f} s)")
        manual_end_s = min(manual_end_s, duration_s)
    if manual_start_s is not None:
        start, s_src = manual_start_s, "manual"
    elif auto is not None:
        start, s_src = auto.start_s, "auto" if auto.start_reason else "none"
    else:
        start, s_src = 0.0, "none"
    if manual_end_s is not None:
        end, e_src = manual_end_s, "manual"
    elif auto is not None:
        end, e_src = auto.end_s, "auto" if auto.end_reason else "none"
    else:
        end, e_src = duration_s, "none"
    if manual_start_s is not None and manual_end_s is not None and manual_end_s <= manual_start_s:
        raise ValueError(f"{where}: trim_end_s ({manual_end_s:g}) must be greater than trim_start_s "
                         f"({manual_start_s:g})")
    end = max(end, start)
    return float(start), float(end), s_src, e_src


def trim_samples(x: np.ndarray, fs: float, start_s: float, end_s: float) -> np.ndarray:
    """The kept interval ``[start_s, end_s)`` as samples (sample i is kept when start <= i/fs < end)."""
    i0 = int(math.ceil(start_s * fs - 1e-9))
    i1 = int(math.ceil(end_s * fs - 1e-9))
    i0, i1 = max(0, min(i0, x.shape[0])), max(0, min(i1, x.shape[0]))
    return x[i0:max(i0, i1)]


def trim_recording(
    samples: np.ndarray,
    fs: float,
    params: TrimParams,
    *,
    manual_start_s: float | None = None,
    manual_end_s: float | None = None,
    clipped: float | None = None,
    where: str = "<recording>",
) -> tuple[np.ndarray, dict[str, Any]]:
    """Trim one recording; returns the kept samples (empty when excluded) and its QC row (without ids)."""
    samples = np.asarray(samples)
    n = samples.shape[0]
    duration = n / fs
    auto = detect_edge_artifacts(samples, fs, params) if params.auto else None
    start, end, s_src, e_src = decide_trim(duration, auto, manual_start_s, manual_end_s, where=where)
    kept = trim_samples(samples, fs, start, end)
    remaining = kept.shape[0] / fs
    status, why = "kept", ""
    if auto is not None and auto.start_reason in ("flat", "no clean stretch") and s_src != "manual":
        status, why = "excluded", f"automatic trimming: {auto.start_reason}"
    elif remaining < params.min_duration_s:
        status, why = "excluded", (f"too short after trimming: {remaining:.3f} s < min_duration_s "
                                   f"{params.min_duration_s:g} s")
    if status == "excluded":
        kept = samples[:0]
    qc = {
        "fs_hz": float(fs),
        "duration_s": duration,
        "auto_start_s": None if auto is None else auto.start_s,
        "auto_end_s": None if auto is None else auto.end_s,
        "auto_start_reason": "" if auto is None else auto.start_reason,
        "auto_end_reason": "" if auto is None else auto.end_reason,
        "manual_start_s": manual_start_s,
        "manual_end_s": manual_end_s,
        "trim_start_s": start,
        "trim_end_s": end,
        "start_source": s_src,
        "end_source": e_src,
        "cut_start_s": start,
        "cut_end_s": duration - end,
        "remaining_s": remaining if status == "kept" else 0.0,
        "clipped_fraction": clipped if clipped is not None else clipped_fraction(samples),
        "clipped_fraction_kept": clipped_fraction(kept) if kept.size else float("nan"),
        "status": status,
        "exclusion_reason": why,
    }
    return kept, qc


# ----------------------------------------------------------------------------------------------- cohort level

def _trim_one(job: tuple[dict[str, Any], dict[str, Any]]) -> tuple[np.ndarray, dict[str, Any]]:
    from .cohort import load_row

    row, param_dict = job
    params = TrimParams(**param_dict)
    # too short is decided after trimming (excluded, not an error); everything else fails as `cohort check` does
    rec = load_row(row, min_duration_s=0.0)
    where = f"recording {row['recording_id']!r} ({row['path']})"
    kept, qc = trim_recording(
        rec.samples, rec.fs, params,
        manual_start_s=_opt_float(row.get("trim_start_s")),
        manual_end_s=_opt_float(row.get("trim_end_s")),
        clipped=float(rec.meta.get("clipped_fraction", float("nan"))),
        where=where,
    )
    return np.ascontiguousarray(kept, dtype=np.float32), qc


def trim_cohort(
    subjects_tsv: str | Path,
    recordings_tsv: str | Path,
    params: TrimParams,
    out_signals: str | Path,
    out_index: str | Path,
    out_qc: str | Path,
    *,
    n_jobs: int = 1,
    rebuild: str | None = None,
) -> pd.DataFrame:
    """Trim every recording of a cohort; write the trimmed signal store and the QC table.

    ``rebuild``: the command that rebuilds the store (see :func:`nemg.store.write_signal_store`).

    Recordings are processed in ``n_jobs`` processes; the output order is the sample sheet's, so the result
    does not depend on ``n_jobs``. Returns the QC table.
    """
    from .cohort import read_cohort
    from .store import write_signal_store

    cohort = read_cohort(subjects_tsv, recordings_tsv)
    rec = cohort.with_diagnosis()
    rows = [{k: (None if (isinstance(v, float) and math.isnan(v)) else v) for k, v in r.items()}
            for r in rec.to_dict("records")]
    jobs = [(r, asdict(params)) for r in rows]
    if n_jobs > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=n_jobs) as pool:
            results = list(pool.map(_trim_one, jobs, chunksize=max(1, len(jobs) // (4 * n_jobs))))
    else:
        results = [_trim_one(j) for j in jobs]

    qc_rows, kept_rows, arrays = [], [], []
    extra = [c for c in rec.columns if c.startswith("sim_artifact_")]
    for r, (kept, qc) in zip(rows, results):
        ids = {k: r.get(k) for k in ("recording_id", "subject_id", "diagnosis", "location", "muscle")}
        qc_rows.append({**ids, **qc, **{c: r.get(c) for c in extra}})
        if qc["status"] == "kept":
            kept_rows.append({**ids, "fs_hz": qc["fs_hz"], "source_start_s": qc["trim_start_s"]})
            arrays.append(kept)
        else:
            log.warning("excluded %s (subject %s): %s", ids["recording_id"], ids["subject_id"],
                        qc["exclusion_reason"])
    qc_df = pd.DataFrame(qc_rows, columns=list(QC_COLUMNS) + extra)
    Path(out_qc).parent.mkdir(parents=True, exist_ok=True)
    qc_df.to_csv(out_qc, sep="\t", index=False, float_format="%.6g")
    if not arrays:
        raise RecordingError(recordings_tsv, "no recording left after trimming; see the QC table " + str(out_qc))
    write_signal_store(arrays, pd.DataFrame(kept_rows), out_signals, out_index, rebuild=rebuild)
    n_ex = int((qc_df["status"] == "excluded").sum())
    log.info("trimmed %d recordings: %d kept, %d excluded; %.1f s cut in total", len(qc_df), len(arrays), n_ex,
             float(qc_df["cut_start_s"].sum() + qc_df["cut_end_s"].sum()))
    return qc_df
