"""The one in-memory form every loader returns: float32 microvolt samples, a rate, and metadata.

Every check that makes a recording unusable (NaN/Inf, flat line, too short) lives here, so all formats
fail the same way with the file named in the message.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: Multiply a value in these units by the factor to get microvolts.
UNIT_TO_UV: dict[str, float] = {"uv": 1.0, "µv": 1.0, "μv": 1.0, "mv": 1e3, "v": 1e6}

#: Recordings shorter than this cannot yield a single 0.4 s segment after trimming.
DEFAULT_MIN_DURATION_S = 0.5


class RecordingError(ValueError):
    """A recording file cannot be used; the message always starts with the file's path."""

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def unit_factor(units: str, path: str | Path = "<recording>") -> float:
    """Factor converting ``units`` (V, mV, uV/µV; any case) to microvolts."""
    key = str(units).strip().lower().replace("micro", "u")
    if key not in UNIT_TO_UV:
        raise RecordingError(path, f"unknown units {units!r}; expected one of V, mV, uV")
    return UNIT_TO_UV[key]


@dataclass
class Recording:
    """One needle-EMG channel.

    ``samples`` is a contiguous 1-D float32 array in microvolts; ``meta`` holds format-specific facts
    (source units, header comments, ``clipped_fraction`` ...) so that nothing read from the file is lost.
    """

    samples: np.ndarray
    fs: float
    path: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        return int(self.samples.shape[0])

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.fs


def clipped_fraction(raw: np.ndarray, lo: float | None = None, hi: float | None = None,
                     min_run: int = 5) -> float:
    """Fraction of samples at the converter rails.

    A sample counts as clipped when it reaches the stated ADC limits ``lo``/``hi`` (when the format gives
    them) or belongs to a run of >= ``min_run`` identical samples at the signal's own minimum or maximum: some
    recorders saturate short of the nominal rails (PhysioNet's emg_neuropathy stops at 32753), and a flat run
    at the extreme is what saturation looks like. A single extreme sample is not clipping.
    """
    raw = np.asarray(raw)
    if raw.size == 0:
        return 0.0
    mask = np.zeros(raw.shape, bool)
    if lo is not None:
        mask |= raw <= lo
    if hi is not None:
        mask |= raw >= hi
    if raw.size >= min_run:
        for rail in (raw.min(), raw.max()):
            at = (raw == rail).astype(np.int8)
            # run starts where a window of min_run consecutive samples all sit at the rail
            full = np.convolve(at, np.ones(min_run, np.int8), mode="valid") == min_run
            if full.any():
                covered = np.convolve(full.astype(np.int8), np.ones(min_run, np.int8), mode="full") > 0
                mask |= covered
    return float(mask.mean())


def make_recording(
    values: np.ndarray,
    fs: float,
    path: str | Path,
    units: str = "uV",
    meta: dict[str, Any] | None = None,
    *,
    min_duration_s: float = DEFAULT_MIN_DURATION_S,
    clip_limits: tuple[float | None, float | None] | None = None,
) -> Recording:
    """Validate raw values, convert to float32 µV and wrap them in a :class:`Recording`.

    ``clip_limits`` are in the same units as ``values`` (e.g. the ADC rails of an integer file); when absent
    the clipped fraction is inferred from flat runs at the extremes.
    """
    path = str(path)
    arr = np.asarray(values)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise RecordingError(path, f"expected a single channel, got an array of shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number):
        raise RecordingError(path, f"samples are not numeric (dtype {arr.dtype})")
    if np.iscomplexobj(arr):  # the cast to float32 would drop the imaginary part with only a warning
        raise RecordingError(path, f"samples are complex (dtype {arr.dtype}); a needle-EMG signal is real")
    if not (np.isfinite(fs) and fs > 0):
        raise RecordingError(path, f"invalid sampling rate {fs!r} Hz")
    n = arr.shape[0]
    if n == 0:
        raise RecordingError(path, "contains no samples")
    bad = ~np.isfinite(arr)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise RecordingError(
            path, f"contains {int(bad.sum())} NaN/Inf samples (first at sample {first}, t = {first / fs:.4f} s)"
        )
    duration = n / fs
    if duration < min_duration_s:
        raise RecordingError(
            path, f"too short: {n} samples = {duration:.3f} s at {fs:g} Hz (minimum {min_duration_s:g} s)"
        )
    if np.ptp(arr) == 0:
        raise RecordingError(path, f"flat line: all {n} samples equal {float(arr[0]):g} (disconnected electrode?)")
    factor = unit_factor(units, path)
    meta = dict(meta or {})
    lo, hi = clip_limits if clip_limits is not None else (None, None)
    meta.setdefault("clipped_fraction", clipped_fraction(arr, lo, hi))
    meta.setdefault("source_units", units)
    with np.errstate(over="ignore"):  # checked just below, with the file's name
        uv = np.ascontiguousarray(arr.astype(np.float64) * factor, dtype=np.float32)
    if not np.isfinite(uv).all():
        raise RecordingError(path, f"samples up to {np.abs(arr).max():g} {units} exceed float32's range in "
                                   f"microvolts; check the units")
    return Recording(samples=uv, fs=float(fs), path=path, meta=meta)
