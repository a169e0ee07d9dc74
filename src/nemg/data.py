"""Segments for one training run, read straight from the memory-mapped segment store.

The store (`segments.npy` float32 [n_segments, window] + `segments_index.tsv`) is opened once by
nemg.store.SegmentStore (``mmap_mode="r"``); a run keeps only integer row numbers per role, and every batch
gathers its rows from the memmap (``store.x[rows]`` copies 32 rows, never the whole array). This module is
the torch side of that: row selection per role, class weights and batches as tensors.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import torch

from nemg.folds import ROLES
from nemg.labels import CLASSES
from nemg.store import SegmentStore


def read_run(folds_tsv: str | Path, run_id: str) -> pd.DataFrame:
    """Rows of the folds table for one run (subject_id, diagnosis, role, seed, ...)."""
    folds = pd.read_csv(folds_tsv, sep="\t", dtype={"subject_id": str, "run_id": str})
    run = folds[folds["run_id"] == run_id]
    if run.empty:
        raise ValueError(f"{folds_tsv}: no rows for run_id {run_id!r}")
    bad = sorted(set(run["role"]) - set(ROLES))
    if bad:
        raise ValueError(f"{folds_tsv}: run {run_id}: unknown role(s) {bad}")
    dup = run["subject_id"][run["subject_id"].duplicated()]
    if len(dup):
        raise ValueError(f"{folds_tsv}: run {run_id}: subject(s) with two roles: {sorted(set(dup))}")
    return run


def rows_by_role(store: SegmentStore, run: pd.DataFrame) -> dict[str, np.ndarray]:
    """Segment row numbers (sorted) of each role's subjects; subjects without segments contribute none."""
    role_of = dict(zip(run["subject_id"], run["role"]))
    roles = store.index["subject_id"].map(role_of).to_numpy()
    return {r: np.flatnonzero(roles == r) for r in ROLES}


def class_weights(y: np.ndarray, n_classes: int = len(CLASSES)) -> torch.Tensor:
    """Cross-entropy weights inversely proportional to the number of training segments per class.

    w_c = n / (n_classes * n_c), so a balanced set gets all ones; a class without segments gets 0.
    """
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    w = np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1)), 0.0)
    return torch.tensor(w, dtype=torch.float32)


def probability_table(index: pd.DataFrame, run_id: str, role: str, probs: np.ndarray) -> pd.DataFrame:
    """Segment-level class probabilities as predictions.tsv holds them, one row per row of ``index``."""
    out = index[["segment", "recording_id", "subject_id"]].reset_index(drop=True)
    out.insert(0, "run_id", run_id)
    out["role"] = role
    for i, c in enumerate(CLASSES):
        out[f"p_{c}"] = probs[:, i]
    return out


def load_batch(store: SegmentStore, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Gather ``rows`` from the memmap: x float32 [B, 1, window], y int64 [B]."""
    x = torch.from_numpy(np.ascontiguousarray(store.x[rows], dtype=np.float32)).unsqueeze(1)
    return x, torch.from_numpy(store.y[rows])


def iter_batches(store: SegmentStore, rows: np.ndarray, batch_size: int, device: torch.device,
                 prefetch: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of ``rows`` in the given order, moved to ``device``.

    With ``prefetch`` (used on CUDA) the next batch is read by a background thread into pinned memory
    while the current one trains.
    """
    chunks = [rows[i:i + batch_size] for i in range(0, len(rows), batch_size)]
    if not prefetch:
        for chunk in chunks:
            x, y = load_batch(store, chunk)
            yield x.to(device), y.to(device)
        return

    def read(chunk):
        x, y = load_batch(store, chunk)
        return x.pin_memory(), y.pin_memory()

    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(read, chunks[0]) if chunks else None
        for i in range(len(chunks)):
            x, y = future.result()
            if i + 1 < len(chunks):
                future = pool.submit(read, chunks[i + 1])
            yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)
