"""Signal stores and segmentation into fixed windows (the CNN's inputs).

Two on-disk forms, both plain ``.npy`` + ``.tsv`` so they open with ``np.load(..., mmap_mode="r")``:

* **signal store** (trimmed and resampled recordings, ragged): ``signals.npy`` is every kept recording's
  float32 samples back to back; ``signals_index.tsv`` has one row per recording with ``start`` and
  ``n_samples`` (its slice of the array), ``fs_hz`` and the ids.
* **segment store** (docs/architecture.md, "Preprocessing"): ``segments.npy`` float32
  ``[n_segments, window_samples]``, C-contiguous, and ``segments_index.tsv`` (one row per segment, same order):
  ``segment``, ``recording_id``, ``subject_id``, ``diagnosis``, ``location``, ``muscle``, ``offset_samples``.

Every store array carries a sidecar ``<array>.check.json`` (its byte size, SHA-256 and the command that rebuilds
it), written after the array is complete and checked by every reader, so a truncated or overwritten store fails
with its name and the rebuild command instead of numpy's "mmap length is greater than file size".

Windows are ``window_s`` long every ``hop_s``; a trailing partial window is dropped, so a recording of ``n``
samples gives ``floor((n - window) / hop) + 1`` segments (none when ``n < window``).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from .fileio import sha256_file, write_atomic

log = logging.getLogger(__name__)

SEGMENT_INDEX_COLUMNS = ("segment", "recording_id", "subject_id", "diagnosis", "location", "muscle",
                         "offset_samples")


class StoreError(ValueError):
    """A signal or segment store is missing, inconsistent or does not match its index."""


# --------------------------------------------------------------------------------------------- integrity check

CHECK_SUFFIX = ".check.json"


def store_check_path(array: str | Path) -> Path:
    return Path(str(array) + CHECK_SUFFIX)


def write_store_check(array: str | Path, rebuild: str | None = None) -> Path:
    """Record a finished store array's size and SHA-256 in its sidecar (atomically, after the array)."""
    array = Path(array)
    check = store_check_path(array)
    record = {"file": array.name, "bytes": array.stat().st_size, "sha256": sha256_file(array), "rebuild": rebuild}
    write_atomic(check, json.dumps(record, indent=1) + "\n")
    return check


def _clear_store_check(array: str | Path) -> None:
    # a sidecar from an earlier write must not outlive an array that is about to be rewritten
    store_check_path(array).unlink(missing_ok=True)


def verify_store(array: str | Path) -> None:
    """Raise :class:`StoreError` naming ``array`` as damaged when it differs from what its writer recorded.

    Without a sidecar (a store written before sidecars existed) the size is still checked against the
    ``.npy`` header, which catches truncation.
    """
    array = Path(array)
    if not array.is_file():
        raise StoreError(f"{array}: file not found")
    size = array.stat().st_size
    check = store_check_path(array)
    if not check.is_file():
        log.warning("%s: no %s sidecar (written by an older nemg); checking its size against its header only",
                    array, CHECK_SUFFIX)
        expected, rebuild = _npy_expected_size(array), None
        if expected is not None and size != expected:
            _damaged(array, f"{size} bytes but its .npy header describes {expected}", rebuild)
        return
    try:
        record = json.loads(check.read_text())
        expected, digest, rebuild = int(record["bytes"]), str(record["sha256"]), record.get("rebuild")
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"{check}: unreadable store sidecar ({exc}); rebuild {array} by rerunning the step "
                         f"that wrote it") from exc
    if size != expected:
        _damaged(array, f"{size} bytes but {check.name} records {expected} (truncated or overwritten)", rebuild)
    if sha256_file(array) != digest:
        _damaged(array, f"its SHA-256 differs from the one {check.name} records (changed after it was written)",
                 rebuild)


def _npy_expected_size(array: Path) -> int | None:
    try:
        with open(array, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(fh)
            return fh.tell() + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    except (ValueError, OSError) as exc:
        raise StoreError(f"{array}: damaged store: not a readable .npy file ({exc})") from exc


def _damaged(array: Path, problem: str, rebuild: str | None) -> None:
    how = f"rebuild it with: {rebuild}" if rebuild else "rebuild it by rerunning the step that wrote it"
    raise StoreError(f"{array}: damaged store: {problem}; {how}")


# ------------------------------------------------------------------------------------------------ signal store

def write_signal_store(arrays: Sequence[np.ndarray], index: pd.DataFrame, out_signals: str | Path,
                       out_index: str | Path, *, rebuild: str | None = None) -> pd.DataFrame:
    """Write ragged 1-D arrays back to back (float32) and their index (adds ``start`` and ``n_samples``).

    ``rebuild``: the command that rebuilds this store, quoted by readers that find it damaged.
    """
    if len(arrays) != len(index):
        raise StoreError(f"{out_index}: {len(arrays)} arrays but {len(index)} index rows")
    _clear_store_check(out_signals)
    lengths = np.array([a.shape[0] for a in arrays], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if len(lengths) else np.zeros(0, np.int64)
    Path(out_signals).parent.mkdir(parents=True, exist_ok=True)
    out = np.lib.format.open_memmap(out_signals, mode="w+", dtype=np.float32, shape=(int(lengths.sum()),))
    for a, s, n in zip(arrays, starts, lengths):
        out[s:s + n] = a
    out.flush()
    del out
    write_store_check(out_signals, rebuild)
    index = index.reset_index(drop=True).copy()
    index["start"] = starts
    index["n_samples"] = lengths
    index["duration_s"] = lengths / index["fs_hz"].astype(float)
    index.to_csv(out_index, sep="\t", index=False, float_format="%.10g")
    return index


def _open_store(array: str | Path, index: str | Path) -> tuple[np.ndarray, pd.DataFrame]:
    """Memory-map an array store and read its index (ids stay strings even when they look like numbers)."""
    if not Path(index).is_file():
        raise StoreError(f"{index}: file not found")
    verify_store(array)
    return np.load(array, mmap_mode="r"), pd.read_csv(index, sep="\t", dtype={"recording_id": str, "subject_id": str})


def read_signal_store(signals: str | Path, index: str | Path) -> tuple[np.ndarray, pd.DataFrame]:
    """Open a signal store (memory-mapped) and check that the index matches the array."""
    arr, idx = _open_store(signals, index)
    need = {"recording_id", "start", "n_samples", "fs_hz"}
    if not need <= set(idx.columns):
        raise StoreError(f"{index}: missing column(s) {', '.join(sorted(need - set(idx.columns)))}")
    if arr.ndim != 1 or arr.dtype != np.float32:
        raise StoreError(f"{signals}: expected a 1-D float32 array, got {arr.dtype} {arr.shape}")
    end = int((idx["start"] + idx["n_samples"]).max()) if len(idx) else 0
    if end != arr.shape[0]:
        raise StoreError(f"{index}: rows cover {end} samples but {signals} holds {arr.shape[0]}")
    return arr, idx


def iter_signals(signals: np.ndarray, index: pd.DataFrame) -> Iterable[tuple[dict, np.ndarray]]:
    for row in index.to_dict("records"):
        s, n = int(row["start"]), int(row["n_samples"])
        yield row, signals[s:s + n]


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
    logged by name. ``gain`` multiplies every sample (amplitude calibration of an external test cohort; 1 for
    everything else). ``rebuild`` as for :func:`write_signal_store`. Returns the segment index.
    """
    if not (np.isfinite(gain) and gain > 0):
        raise ValueError(f"{signals}: amplitude gain must be a positive finite number, got {gain}")
    arr, idx = read_signal_store(signals, index)
    rates = sorted(set(idx["fs_hz"].astype(float)))
    if len(rates) != 1:
        raise StoreError(f"{index}: recordings at several sampling rates {rates}; resample first")
    fs = rates[0]
    window = samples_of(window_s, fs, "preprocess.segment.window_s")
    hop = samples_of(hop_s, fs, "preprocess.segment.hop_s")
    counts = [n_segments(int(n), window, hop) for n in idx["n_samples"]]
    total = int(sum(counts))
    Path(out_segments).parent.mkdir(parents=True, exist_ok=True)
    _clear_store_check(out_segments)
    out = np.lib.format.open_memmap(out_segments, mode="w+", dtype=np.float32, shape=(total, window))
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
    out.flush()
    del out
    write_store_check(out_segments, rebuild)
    seg_index = pd.DataFrame(rows, columns=list(SEGMENT_INDEX_COLUMNS))
    seg_index.to_csv(out_index, sep="\t", index=False)
    log.info("%d recordings -> %d segments of %d samples (hop %d) at %g Hz%s", len(idx), total, window, hop, fs,
             f", amplitudes x {gain:.4g}" if gain != 1 else "")
    return seg_index


def read_segment_store(segments: str | Path, index: str | Path) -> tuple[np.ndarray, pd.DataFrame]:
    """Open the segment store memory-mapped; checks shape, dtype and row count against the index."""
    arr, idx = _open_store(segments, index)
    if arr.ndim != 2 or arr.dtype != np.float32 or not arr.flags["C_CONTIGUOUS"]:
        raise StoreError(f"{segments}: expected a C-contiguous 2-D float32 array, got {arr.dtype} {arr.shape}")
    if arr.shape[0] != len(idx):
        raise StoreError(f"{index}: {len(idx)} rows but {segments} holds {arr.shape[0]} segments")
    if not (idx["segment"].to_numpy() == np.arange(len(idx))).all():
        raise StoreError(f"{index}: column 'segment' is not the row number 0..{len(idx) - 1}")
    return arr, idx


def segments_per_recording(n_samples: Sequence[int], window: int, hop: int) -> list[int]:
    return [n_segments(int(n), window, hop) for n in n_samples]


__all__ = [
    "StoreError", "write_signal_store", "read_signal_store", "iter_signals", "samples_of", "n_segments",
    "segment_offsets", "segment_signal", "segment_store", "read_segment_store", "SEGMENT_INDEX_COLUMNS",
    "segments_per_recording", "verify_store", "write_store_check", "store_check_path",
]
