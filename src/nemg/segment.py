"""Segmentation into fixed windows (the CNN's inputs): a signal store in, a segment store out.

Both stores, their integrity sidecars and their readers are nemg.store's; this module holds the window arithmetic.
Windows are ``window_s`` long every ``hop_s``; a trailing partial window is dropped, so a recording of ``n``
samples gives ``floor((n - window) / hop) + 1`` segments (none when ``n < window``).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .store import StoreError, iter_signals, read_signal_store, write_segment_store

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------------- segmentation

def samples_of(seconds: float, fs: float, what: str) -> int:
    """``seconds * fs`` as a whole number of samples; anything else is a configuration error."""
    n = seconds * fs
    if abs(n - round(n)) > 1e-6 * max(1.0, n) or round(n) < 1:
        raise ValueError(f"{what} = {seconds:g} s at {fs:g} Hz is {n:g} samples; it must be a whole number >= 1")
    return int(round(n))


def n_segments(n_samples: int, window: int, hop: int) -> int:
    """``floor((n - window) / hop) + 1`` windows fit in ``n`` samples (0 when ``n < window``)."""
    if window < 1 or hop < 1:
        raise ValueError(f"window ({window}) and hop ({hop}) must be >= 1 sample")
    return 0 if n_samples < window else (n_samples - window) // hop + 1


def segment_offsets(n_samples: int, window: int, hop: int) -> np.ndarray:
    return np.arange(n_segments(n_samples, window, hop), dtype=np.int64) * hop


def segment_signal(x: np.ndarray, window: int, hop: int) -> np.ndarray:
    """All full windows of ``x`` as a ``[n, window]`` array (a copy, C-contiguous)."""
    x = np.asarray(x)
    k = n_segments(x.shape[0], window, hop)
    if k == 0:
        return np.zeros((0, window), dtype=x.dtype)
    view = np.lib.stride_tricks.sliding_window_view(x, window)[::hop][:k]
    return np.ascontiguousarray(view)


def read_gain(paths: Sequence[str | Path]) -> float:
    """The factor in an amplitude_gain.tsv (nemg.external.amplitude_gain); 1 when ``paths`` is empty."""
    return float(pd.read_csv(list(paths)[0], sep="\t")["gain"].iloc[0]) if len(paths) else 1.0


def segment_store(signals: str | Path, index: str | Path, window_s: float, hop_s: float,
                  out_segments: str | Path, out_index: str | Path, gain: float = 1.0,
                  rebuild: str | None = None) -> pd.DataFrame:
    """Cut every recording of a (resampled) signal store into windows; write the segment store.

    All recordings must share one sampling rate. Recordings shorter than one window give no segment and are
    logged by name. ``gain`` multiplies every sample (amplitude calibration of an external test cohort, negative
    where its polarity is inverted too; 1 for everything else). ``rebuild`` as for
    :func:`nemg.store.write_signal_store`. Returns the segment index.
    """
    if not (np.isfinite(gain) and gain != 0):
        raise ValueError(f"{signals}: amplitude gain must be a finite non-zero number, got {gain}")
    arr, idx = read_signal_store(signals, index)
    rates = sorted(set(idx["fs_hz"].astype(float)))
    if len(rates) != 1:
        raise StoreError(f"{index}: recordings at several sampling rates {rates}; resample first")
    fs = rates[0]
    window = samples_of(window_s, fs, "preprocess.segment.window_s")
    hop = samples_of(hop_s, fs, "preprocess.segment.hop_s")
    counts = segments_per_recording(idx["n_samples"], window, hop)
    total = int(sum(counts))

    def fill(out: np.ndarray) -> list[tuple]:
        rows = []
        pos = 0
        for (row, x), k in zip(iter_signals(arr, idx), counts):
            if k == 0:
                log.warning("recording %s: %d samples < one window (%d); no segment", row["recording_id"],
                            int(row["n_samples"]), window)
                continue
            out[pos:pos + k] = segment_signal(x, window, hop) * np.float32(gain) if gain != 1 else \
                segment_signal(x, window, hop)
            for j, off in enumerate(segment_offsets(int(row["n_samples"]), window, hop)):
                rows.append((pos + j, row["recording_id"], row["subject_id"], row["diagnosis"], row["location"],
                             row["muscle"], int(off)))
            pos += k
        return rows

    seg_index = write_segment_store(out_segments, out_index, total, window, fill, rebuild=rebuild)
    log.info("%d recordings -> %d segments of %d samples (hop %d) at %g Hz%s", len(idx), total, window, hop, fs,
             f", amplitudes x {gain:.4g}" if gain != 1 else "")
    return seg_index


def segments_per_recording(n_samples: Sequence[int], window: int, hop: int) -> list[int]:
    return [n_segments(int(n), window, hop) for n in n_samples]


__all__ = [
    "n_segments", "read_gain", "samples_of", "segment_offsets", "segment_signal", "segment_store",
    "segments_per_recording",
]
