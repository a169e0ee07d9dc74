"""Resampling to the model's rate (10 kHz in the study) from any source rate, with anti-aliasing.

Two methods (config ``preprocess.resample.method``; the trade-off is discussed in docs/preprocessing.md):

* ``polyphase`` (default): exact rational ratio ``up/down`` (48 k -> 10 k is 5/24, 23 437.5 -> 10 k is 32/75,
  32 768 -> 10 k is 625/2048, 4 k -> 10 k is 5/2) with a linear-phase Kaiser-windowed FIR low-pass at
  ``CUTOFF`` x the lower of the two Nyquist frequencies. It is local (no wrap-around between the end and the
  start of a trimmed recording), its cost is linear in length, and its stop band is below -80 dB.
* ``fft``: ``scipy.signal.resample`` -- what the study used. An ideal brick-wall filter at the new Nyquist,
  but it treats the recording as periodic, so the jump from its last to its first sample rings into both
  edges, and a non-integer ``n * rate_out / rate_in`` is rounded to whole samples.

A ratio that is not a ratio of small integers (``up``, ``down`` <= ``MAX_FACTOR``) falls back to ``fft`` with a
warning in the log.
"""
from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import signal as sps

log = logging.getLogger(__name__)

METHODS = ("polyphase", "fft")
#: Kaiser window beta of the polyphase low-pass; 10 gives ~ -100 dB side lobes.
KAISER_BETA = 10.0
#: Half-length of the low-pass in zero crossings of its sinc (per side).
ZERO_CROSSINGS = 24
#: Pass-band edge of the anti-aliasing filter as a fraction of the lower Nyquist frequency. 0.9 keeps
#: everything up to 4.5 kHz at a 10 kHz output and reaches the full stop band before 5 kHz, so nothing folds back.
CUTOFF = 0.9
#: Largest up / down factor accepted for the polyphase method.
MAX_FACTOR = 4096


def rational_ratio(rate_in: float, rate_out: float) -> tuple[int, int] | None:
    """``(up, down)`` with ``rate_out / rate_in == up / down`` exactly (to 1e-9), or None when no small ratio exists."""
    if rate_in <= 0 or rate_out <= 0:
        raise ValueError(f"sampling rates must be positive (got {rate_in!r} -> {rate_out!r})")
    frac = (Fraction(rate_out).limit_denominator(10**6) / Fraction(rate_in).limit_denominator(10**6))
    frac = frac.limit_denominator(MAX_FACTOR)
    if abs(float(frac) - rate_out / rate_in) > 1e-9 * rate_out / rate_in:
        return None
    if frac.numerator > MAX_FACTOR or frac.denominator > MAX_FACTOR:
        return None
    return frac.numerator, frac.denominator


def lowpass_taps(up: int, down: int) -> np.ndarray:
    """FIR anti-aliasing / anti-imaging filter for ``resample_poly`` (gain ``up`` is applied by scipy)."""
    m = max(up, down)
    half = ZERO_CROSSINGS * m
    taps = sps.firwin(2 * half + 1, CUTOFF / m, window=("kaiser", KAISER_BETA))
    return taps


def resample(x: np.ndarray, rate_in: float, rate_out: float, method: str = "polyphase") -> np.ndarray:
    """Resample a 1-D signal; returns float32. Identity when the rates are equal."""
    if method not in METHODS:
        raise ValueError(f"unknown resampling method {method!r}; expected one of {', '.join(METHODS)}")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"expected a 1-D signal, got shape {x.shape}")
    if rate_in == rate_out:
        return x.astype(np.float32)
    ratio = rational_ratio(rate_in, rate_out)
    if method == "polyphase" and ratio is None:
        log.warning("%g Hz -> %g Hz is not a ratio of integers <= %d; using FFT resampling", rate_in, rate_out,
                    MAX_FACTOR)
        method = "fft"
    if method == "polyphase":
        up, down = ratio
        y = sps.resample_poly(x, up, down, window=lowpass_taps(up, down), padtype="mean")
    else:
        n_out = int(round(x.shape[0] * rate_out / rate_in))
        y = sps.resample(x, n_out)
    return np.ascontiguousarray(y, dtype=np.float32)


def resample_store(signals: str | Path, index: str | Path, rate_hz: float, method: str,
                   out_signals: str | Path, out_index: str | Path, *, rebuild: str | None = None) -> pd.DataFrame:
    """Resample every recording of a signal store to ``rate_hz``; writes a new store, same order and ids.

    ``rebuild``: the command that rebuilds the new store (see :func:`nemg.store.write_signal_store`).
    """
    from .store import iter_signals, read_signal_store, write_signal_store

    arr, idx = read_signal_store(signals, index)
    arrays, rows = [], []
    for row, x in iter_signals(arr, idx):
        fs_in = float(row["fs_hz"])
        with np.errstate(over="ignore"):  # checked just below, with the recording named
            y = resample(np.asarray(x), fs_in, rate_hz, method)
        if not np.isfinite(y).all():  # a filter's overshoot of samples near float32's limit: inf, then NaN losses
            raise ValueError(f"{signals}: recording {row['recording_id']}: resampling {fs_in:g} -> {rate_hz:g} Hz "
                             f"overflows float32 (samples up to {np.abs(x).max():.3g} uV); check the recording's "
                             f"units")
        arrays.append(y)
        new = {k: v for k, v in row.items() if k not in ("start", "n_samples", "duration_s", "fs_hz")}
        ratio = rational_ratio(fs_in, rate_hz)
        used = method if (method == "fft" or ratio is not None or fs_in == rate_hz) else "fft"
        new.update(fs_hz=float(rate_hz), source_fs_hz=fs_in, resample_method="none" if fs_in == rate_hz else used)
        rows.append(new)
    out = write_signal_store(arrays, pd.DataFrame(rows), out_signals, out_index, rebuild=rebuild)
    for fs_in, grp in out.groupby("source_fs_hz"):
        log.info("%d recordings %g Hz -> %g Hz (%s)", len(grp), fs_in, rate_hz, grp["resample_method"].iloc[0])
    return out
