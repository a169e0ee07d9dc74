"""Signal and segment stores on disk: their writers, their readers and the integrity sidecar every reader checks.

Two on-disk forms, both plain ``.npy`` + ``.tsv`` so they open with ``np.load(..., mmap_mode="r")``:

* **signal store** (trimmed and resampled recordings, ragged): ``signals.npy`` is every kept recording's
  float32 samples back to back; ``signals_index.tsv`` has one row per recording with ``start`` and
  ``n_samples`` (its slice of the array), ``fs_hz`` and the ids.
* **segment store** (docs/architecture.md, "Preprocessing"): ``segments.npy`` float32
  ``[n_segments, window_samples]``, C-contiguous, and ``segments_index.tsv`` (one row per segment, same order):
  :data:`SEGMENT_INDEX_COLUMNS`.

Every store array carries a sidecar ``<array>.check.json`` (its byte size, SHA-256 and the command that rebuilds
it), written after the array is complete and checked by every reader, so a truncated or overwritten store fails
with its name and the rebuild command instead of numpy's "mmap length is greater than file size".

Torch-free: the preprocessing, baseline and plotting envs read stores too. How windows are cut from recordings
is nemg.segment's business; batching segments for a network is nemg.data's.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from .fileio import sha256_file, write_atomic
from .labels import CLASS_INDEX, CLASSES

log = logging.getLogger(__name__)

SIGNAL_INDEX_REQUIRED = ("recording_id", "start", "n_samples", "fs_hz")
SEGMENT_INDEX_COLUMNS = ("segment", "recording_id", "subject_id", "diagnosis", "location", "muscle",
                         "offset_samples")
# ids that look like numbers (subject 007) must keep their spelling, or joins with the sample sheets fail
_ID_DTYPES = {"recording_id": str, "subject_id": str}


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


# ------------------------------------------------------------------------------------------------------ writers

def _write_array(path: str | Path, shape: tuple[int, ...], fill: Callable[[np.ndarray], None],
                 rebuild: str | None) -> None:
    """Create a float32 ``.npy`` of ``shape`` and let ``fill`` write it in place (a memmap: a store can be larger
    than memory). The sidecar is removed first and written last, so a sidecar always describes a whole array."""
    store_check_path(path).unlink(missing_ok=True)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
    fill(out)
    out.flush()
    del out
    write_store_check(path, rebuild)


def write_signal_store(arrays: Sequence[np.ndarray], index: pd.DataFrame, out_signals: str | Path,
                       out_index: str | Path, *, rebuild: str | None = None) -> pd.DataFrame:
    """Write ragged 1-D arrays back to back (float32) and their index (adds ``start`` and ``n_samples``).

    ``rebuild``: the command that rebuilds this store, quoted by readers that find it damaged.
    """
    if len(arrays) != len(index):
        raise StoreError(f"{out_index}: {len(arrays)} arrays but {len(index)} index rows")
    lengths = np.array([a.shape[0] for a in arrays], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if len(lengths) else np.zeros(0, np.int64)

    def fill(out: np.ndarray) -> None:
        for a, s, n in zip(arrays, starts, lengths):
            out[s:s + n] = a

    _write_array(out_signals, (int(lengths.sum()),), fill, rebuild)
    index = index.reset_index(drop=True).copy()
    index["start"] = starts
    index["n_samples"] = lengths
    index["duration_s"] = lengths / index["fs_hz"].astype(float)
    index.to_csv(out_index, sep="\t", index=False, float_format="%.10g")
    return index


def write_segment_store(out_segments: str | Path, out_index: str | Path, n_segments: int, window: int,
                        fill: Callable[[np.ndarray], Iterable[tuple]], *, rebuild: str | None = None) -> pd.DataFrame:
    """Write a segment store of ``n_segments`` windows of ``window`` samples.

    ``fill(out)`` writes the float32 ``[n_segments, window]`` array in place and returns the index rows, one
    tuple per segment in :data:`SEGMENT_INDEX_COLUMNS` order. ``rebuild`` as for :func:`write_signal_store`.
    Returns the index.
    """
    rows: list[tuple] = []
    _write_array(out_segments, (n_segments, window), lambda out: rows.extend(fill(out)), rebuild)
    index = pd.DataFrame(rows, columns=list(SEGMENT_INDEX_COLUMNS))
    index.to_csv(out_index, sep="\t", index=False)
    return index


# ------------------------------------------------------------------------------------------------------ readers

def _open_store(array: str | Path, index: str | Path) -> tuple[np.ndarray, pd.DataFrame]:
    if not Path(index).is_file():
        raise StoreError(f"{index}: file not found")
    verify_store(array)
    return np.load(array, mmap_mode="r"), pd.read_csv(index, sep="\t", dtype=_ID_DTYPES)


def _require_columns(idx: pd.DataFrame, index: str | Path, need: Sequence[str]) -> None:
    missing = [c for c in need if c not in idx.columns]
    if missing:
        raise StoreError(f"{index}: missing column(s) {', '.join(sorted(missing))}")


def read_signal_store(signals: str | Path, index: str | Path) -> tuple[np.ndarray, pd.DataFrame]:
    """Open a signal store (memory-mapped) and check that the index matches the array."""
    arr, idx = _open_store(signals, index)
    _require_columns(idx, index, SIGNAL_INDEX_REQUIRED)
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


def read_segment_store(segments: str | Path, index: str | Path) -> tuple[np.ndarray, pd.DataFrame]:
    """Open the segment store memory-mapped; checks columns, shape, dtype and row count against the index."""
    arr, idx = _open_store(segments, index)
    _require_columns(idx, index, SEGMENT_INDEX_COLUMNS)
    if arr.ndim != 2 or arr.dtype != np.float32 or not arr.flags["C_CONTIGUOUS"]:
        raise StoreError(f"{segments}: expected a C-contiguous 2-D float32 array, got {arr.dtype} {arr.shape}")
    if arr.shape[0] != len(idx):
        raise StoreError(f"{index}: {len(idx)} rows but {segments} holds {arr.shape[0]} segments")
    if not (idx["segment"].to_numpy() == np.arange(len(idx))).all():
        raise StoreError(f"{index}: column 'segment' is not the row number 0..{len(idx) - 1}")
    return arr, idx


@dataclass
class SegmentStore:
    """A segment store as a model sees it: the memmap, its index and each segment's class as a number.

    Training and prediction keep only row numbers and gather batches from ``x`` (``x[rows]`` copies those rows,
    never the whole array).
    """
    x: np.ndarray  # memmap float32 [n_segments, window_samples]
    index: pd.DataFrame  # one row per segment, same order as x
    y: np.ndarray  # int64 class per segment (CLASSES order: the network's output units)

    @classmethod
    def open(cls, segments_npy: str | Path, index_tsv: str | Path) -> "SegmentStore":
        x, index = read_segment_store(segments_npy, index_tsv)
        unknown = sorted(set(index["diagnosis"]) - set(CLASSES))
        if unknown:
            raise StoreError(f"{index_tsv}: unknown diagnosis {unknown}; expected {list(CLASSES)}")
        y = index["diagnosis"].map(CLASS_INDEX).to_numpy(np.int64)
        return cls(x=x, index=index, y=y)

    @property
    def window(self) -> int:
        return int(self.x.shape[1])


__all__ = [
    "CHECK_SUFFIX", "SEGMENT_INDEX_COLUMNS", "SIGNAL_INDEX_REQUIRED", "SegmentStore", "StoreError", "iter_signals",
    "read_segment_store", "read_signal_store", "store_check_path", "verify_store", "write_segment_store",
    "write_signal_store", "write_store_check",
]
