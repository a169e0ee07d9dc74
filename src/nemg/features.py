"""Classical quantitative-EMG features per segment (the baseline of issue 7; definitions in docs/baseline.md).

Every feature is computed on one segment of the segment store (float32 µV, ``fs`` Hz, usually 0.4 s at 10 kHz)
after removing the segment's mean (DC). Rates are per second of segment, so segments of another length give
comparable numbers. The extraction is vectorised numpy over a chunk of segments (the turn detector loops over
time, never over segments) and processes the memory-mapped store in chunks, so memory stays bounded whatever
the store's size. No randomness: the same store gives the same features bit for bit.

Feature groups:

* **amplitude / time domain** — RMS, peak-to-peak amplitude, waveform length (sum of absolute sample
  differences, per second), zero crossings per second with a dead band (hysteresis: a crossing counts only
  when the signal goes from above ``+deadband`` to below ``-deadband`` or back);
* **interference pattern (turns-amplitude analysis)** — Willison's turns with Stålberg's 100 µV criterion: a
  turn is a reversal of the signal's direction that is confirmed by an excursion of at least ``turn_uv`` away
  from it, and consecutive turns differ by at least ``turn_uv`` (a hysteresis peak detector, see
  :func:`zigzag_turns`). Turns per second and the mean amplitude per turn (mean absolute difference between
  consecutive turns). Number of small segments (NSS, Fuglsang-Frederiksen / Nandedkar): the signal is cut at
  every reversal of at least ``nss_turn_uv`` (a fine, noise-rejecting turn detector); a segment is the stretch
  between two consecutive such reversals, and a small segment one whose amplitude (absolute difference of its
  two end points) is below ``nss_small_uv``. Reported per second;
* **spectral** — Welch power spectrum (Hann, ``welch_nperseg`` samples, 50 % overlap; 10 Hz bins at 10 kHz);
  mean frequency (power-weighted mean) and median frequency (the frequency halving the power, linearly
  interpolated between bins) within ``[f_low, f_high]`` Hz; band powers as fractions of the power in that range;
* **MUAP level (threshold detection)** — the robust noise level sigma = median(|x|) / 0.6745; an event is a run
  of samples with |x| above max(``muap_k`` x sigma, ``muap_min_uv``); events per second, their mean peak |x|
  and their mean width (time above threshold, ms).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from .config import section_defaults

log = logging.getLogger(__name__)


def feature_params(params: dict | None = None) -> dict:
    """Every extraction parameter: ``params`` (a ``baseline.features`` section, possibly partial) on top of the
    config schema's defaults."""
    return {**section_defaults("baseline.features"), **(params or {})}


def feature_names(params: dict | None = None) -> list[str]:
    p = feature_params(params)
    bands = [f"band_{int(lo)}_{int(hi)}_hz_frac" for lo, hi in p["bands"]]
    return ["rms_uv", "peak_to_peak_uv", "waveform_length_uv_per_s", "zero_crossings_per_s",
            "turns_per_s", "amplitude_per_turn_uv", "nss_per_s",
            "mean_frequency_hz", "median_frequency_hz", *bands,
            "muap_per_s", "muap_amplitude_uv", "muap_width_ms"]


# ------------------------------------------------------------------------------------------ single features

def _2d(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x[None, :] if x.ndim == 1 else x


def centred(x: np.ndarray) -> np.ndarray:
    x = _2d(x)
    return x - x.mean(axis=1, keepdims=True)


def rms(x: np.ndarray) -> np.ndarray:
    """Root mean square of each row (µV); rows are used as given (centre them first for the AC RMS)."""
    x = _2d(x)
    return np.sqrt(np.mean(x * x, axis=1))


def waveform_length(x: np.ndarray, fs: float) -> np.ndarray:
    """Sum of |x[n+1] - x[n]| per row, divided by the row's duration (µV/s)."""
    x = _2d(x)
    return np.abs(np.diff(x, axis=1)).sum(axis=1) / (x.shape[1] / fs)


def zero_crossings(x: np.ndarray, fs: float, deadband: float = 0.0) -> np.ndarray:
    """Crossings of zero per second with hysteresis: the sign state changes only beyond +-deadband.

    Samples within the dead band keep the previous state; the count is the number of state changes between
    +1 and -1 (the state before the first sample outside the band is undefined and never counts).
    """
    x = _2d(x)
    s = np.where(x > deadband, 1, np.where(x < -deadband, -1, 0)).astype(np.int8)
    n, t = s.shape
    idx = np.where(s != 0, np.arange(t)[None, :], 0)
    np.maximum.accumulate(idx, axis=1, out=idx)
    state = np.take_along_axis(s, idx, axis=1)  # last non-zero state (0 before the first one)
    changes = (state[:, 1:] != state[:, :-1]) & (state[:, :-1] != 0) & (state[:, 1:] != 0)
    return changes.sum(axis=1) / (t / fs)


def zigzag_turns(x: np.ndarray, threshold: float, small: float | None = None):
    """Turns of each row by a hysteresis peak detector (Willison 1964 / Stålberg et al. 1983).

    A candidate extreme is followed while the signal keeps going its way; it becomes a **turn** when the
    signal then moves at least ``threshold`` back from it. The direction is first set when the signal has
    spanned ``threshold`` from the segment's start (the starting extreme is a pivot, not a turn). So every turn
    is a true reversal and consecutive turns differ by at least ``threshold``; a last extreme not yet confirmed
    by a return of ``threshold`` is not counted.

    Returns ``(n_turns, amplitude_sum, n_intervals, n_small)`` per row: the number of turns; the sum of the
    absolute differences between consecutive turns and how many such intervals there are (n_turns - 1 when
    n_turns >= 1); and how many of those intervals are smaller than ``small`` (0 when ``small`` is None).
    """
    x = _2d(x)
    n, t = x.shape
    xt = np.ascontiguousarray(x.T)
    hi, lo = xt[0].copy(), xt[0].copy()
    direction = np.zeros(n, np.int8)     # 0 undetermined, +1 following a maximum, -1 following a minimum
    cand = xt[0].copy()                  # the extreme being followed
    pivot = xt[0].copy()                 # the last turn (or the starting extreme)
    pivot_is_turn = np.zeros(n, bool)
    n_turns = np.zeros(n, np.int64)
    amp_sum = np.zeros(n)
    n_int = np.zeros(n, np.int64)
    n_small = np.zeros(n, np.int64)
    undetermined = np.ones(n, bool)
    for i in range(1, t):
        v = xt[i]
        if undetermined.any():
            u = undetermined
            np.maximum(hi, v, out=hi, where=u)
            np.minimum(lo, v, out=lo, where=u)
            up = u & (v - lo >= threshold)
            dn = u & (hi - v >= threshold) & ~up
            started = up | dn
            if started.any():
                pivot[up], pivot[dn] = lo[up], hi[dn]
                cand[started] = v[started]
                direction[up], direction[dn] = 1, -1
                undetermined &= ~started
        rising = direction == 1
        falling = direction == -1
        np.maximum(cand, v, out=cand, where=rising)
        np.minimum(cand, v, out=cand, where=falling)
        turn = (rising & (cand - v >= threshold)) | (falling & (v - cand >= threshold))
        if turn.any():
            k = np.flatnonzero(turn)
            interval = k[pivot_is_turn[k]]
            if interval.size:
                a = np.abs(cand[interval] - pivot[interval])
                amp_sum[interval] += a
                n_int[interval] += 1
                if small is not None:
                    n_small[interval] += a < small
            n_turns[k] += 1
            pivot[k] = cand[k]
            pivot_is_turn[k] = True
            cand[k] = v[k]
            direction[k] = -direction[k]
    return n_turns, amp_sum, n_int, n_small


def welch_psd(x: np.ndarray, fs: float, nperseg: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    from scipy.signal import welch

    x = _2d(x)
    nper = min(int(nperseg), x.shape[1])
    return welch(x, fs=fs, window="hann", nperseg=nper, noverlap=nper // 2, detrend="constant", axis=-1)


def spectral_features(x: np.ndarray, fs: float, *, nperseg: int = 1000, f_low: float = 20.0,
                      f_high: float | None = None, bands=None):
    """(mean frequency, median frequency, band fractions [n, n_bands]) within [f_low, f_high] Hz.

    ``bands``: [[lo, hi], ...] in Hz; None = the ``baseline.features.bands`` default.

    Band fractions: power in [lo, hi) (the last band includes hi) over the power in [f_low, f_high]. A row
    without power in the range gets 0 everywhere.
    """
    if bands is None:
        bands = feature_params()["bands"]
    f, p = welch_psd(x, fs, nperseg)
    f_high = fs / 2 if f_high is None else min(f_high, fs / 2)
    sel = (f >= f_low) & (f <= f_high)
    f_s, p_s = f[sel], p[:, sel]
    total = p_s.sum(axis=1)
    ok = total > 0
    safe = np.where(ok, total, 1.0)
    mean_f = np.where(ok, (p_s * f_s).sum(axis=1) / safe, 0.0)
    cum = np.cumsum(p_s, axis=1) / safe[:, None]
    j = np.minimum((cum < 0.5).sum(axis=1), len(f_s) - 1)  # first bin where the cumulative power reaches half
    c_hi = cum[np.arange(len(cum)), j]
    c_lo = np.where(j > 0, cum[np.arange(len(cum)), np.maximum(j - 1, 0)], 0.0)
    f_hi = f_s[j]
    f_lo = np.where(j > 0, f_s[np.maximum(j - 1, 0)], f_s[0])
    frac = np.where(c_hi > c_lo, (0.5 - c_lo) / np.where(c_hi > c_lo, c_hi - c_lo, 1.0), 1.0)
    median_f = np.where(ok, f_lo + np.clip(frac, 0, 1) * (f_hi - f_lo), 0.0)
    fracs = []
    for b, (lo, hi) in enumerate(bands):
        last = b == len(bands) - 1
        m = (f_s >= lo) & ((f_s <= hi) if last else (f_s < hi))
        fracs.append(np.where(ok, p_s[:, m].sum(axis=1) / safe, 0.0))
    return mean_f, median_f, np.stack(fracs, axis=1)


def muap_features(x: np.ndarray, fs: float, k: float = 5.0, min_uv: float = 20.0):
    """Threshold-detected events per row: (events per second, mean peak |x| (µV), mean width (ms)).

    Threshold: max(k x median(|x|) / 0.6745, min_uv) on the centred row; an event is a run of samples above it.
    Rows without events get 0 amplitude and width.
    """
    x = _2d(x)
    n, t = x.shape
    ax = np.abs(x)
    thr = np.maximum(k * np.median(ax, axis=1) / 0.6745, min_uv)
    above = ax > thr[:, None]
    pad = np.zeros((n, 1), bool)
    edges = np.diff(np.concatenate([pad, above, pad], axis=1).astype(np.int8), axis=1)
    rows_s, starts = np.nonzero(edges == 1)   # row-major: events in row order, then time order
    _, ends = np.nonzero(edges == -1)
    counts = np.bincount(rows_s, minlength=n)
    widths = np.bincount(rows_s, weights=(ends - starts), minlength=n)
    if starts.size:
        flat = np.concatenate([ax.ravel(), [0.0]])
        bounds = np.empty(2 * starts.size, np.int64)
        bounds[0::2] = rows_s * t + starts
        bounds[1::2] = rows_s * t + ends
        peaks = np.maximum.reduceat(flat, bounds)[0::2]
        amp_sum = np.bincount(rows_s, weights=peaks, minlength=n)
    else:
        amp_sum = np.zeros(n)
    safe = np.maximum(counts, 1)
    return counts / (t / fs), np.where(counts > 0, amp_sum / safe, 0.0), np.where(counts > 0, widths / safe / fs * 1e3, 0.0)


# --------------------------------------------------------------------------------------------- all features

def segment_features(x: np.ndarray, fs: float, params: dict | None = None) -> np.ndarray:
    """All features (:func:`feature_names` order) of a ``[n, window]`` array of segments; float64 [n, F]."""
    p = feature_params(params)
    xc = centred(x)
    dur = xc.shape[1] / fs
    n_turns, amp_sum, n_int, _ = zigzag_turns(xc, p["turn_uv"])
    _, _, _, n_small = zigzag_turns(xc, p["nss_turn_uv"], small=p["nss_small_uv"])
    mean_f, median_f, bands = spectral_features(xc, fs, nperseg=p["welch_nperseg"], f_low=p["f_low"],
                                                f_high=p["f_high"], bands=p["bands"])
    muap_rate, muap_amp, muap_width = muap_features(xc, fs, p["muap_k"], p["muap_min_uv"])
    cols = [rms(xc), xc.max(axis=1) - xc.min(axis=1), waveform_length(xc, fs),
            zero_crossings(xc, fs, p["zc_deadband_uv"]),
            n_turns / dur, np.where(n_int > 0, amp_sum / np.maximum(n_int, 1), 0.0), n_small / dur,
            mean_f, median_f, *bands.T, muap_rate, muap_amp, muap_width]
    return np.stack(cols, axis=1)


def extract_features(segments: str | Path, out_features: str | Path, out_names: str | Path, *,
                     fs: float = 10_000.0, params: dict | None = None) -> np.ndarray:
    """Features of every segment of a segment store, in chunks; writes float32 [N, F] and the names (one a line)."""
    p = feature_params(params)
    from .store import verify_store

    verify_store(segments)
    arr = np.load(segments, mmap_mode="r")
    if arr.ndim != 2:
        raise ValueError(f"{segments}: expected a 2-D segment store, got shape {arr.shape}")
    names = feature_names(p)
    n = arr.shape[0]
    Path(out_features).parent.mkdir(parents=True, exist_ok=True)
    out = np.lib.format.open_memmap(out_features, mode="w+", dtype=np.float32, shape=(n, len(names)))
    chunk = max(1, int(p["chunk"]))
    t0 = time.perf_counter()
    for s in range(0, n, chunk):
        out[s:s + chunk] = segment_features(np.asarray(arr[s:s + chunk]), fs, p)
        log.info("features: %d / %d segments (%.1f s)", min(s + chunk, n), n, time.perf_counter() - t0)
    out.flush()
    feats = np.asarray(out)
    del out
    Path(out_names).write_text("".join(f"{name}\n" for name in names))
    log.info("%d segments x %d features in %.1f s", n, len(names), time.perf_counter() - t0)
    return feats


def read_features(features: str | Path, names: str | Path) -> tuple[np.ndarray, list[str]]:
    x = np.load(features)
    cols = [line for line in Path(names).read_text().splitlines() if line]
    if x.ndim != 2 or x.shape[1] != len(cols):
        raise ValueError(f"{features}: shape {x.shape} does not match the {len(cols)} names in {names}")
    return x, cols
