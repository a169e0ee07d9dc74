"""One signal under two patients: identical windows in a segment store.

The sample sheets refuse two rows that name one file (nemg.cohort); a file copied under another name, or one
exported twice, reaches the store as two recordings with the same samples. Where those recordings belong to two
patients, a test patient's windows can sit in another's training set, and no patient-level split can see it.
Every non-constant window is hashed (a constant one, e.g. a stretch of zeros, is the same in any recording and
says nothing), and a hash held by two subjects is that leak. The same signal twice within one patient only
weighs it double in the vote, and is reported, not refused.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from .fileio import write_atomic

#: windows hashed per read of the memory-mapped store
CHUNK = 2048


class SharedSignalError(ValueError):
    """Recordings of different subjects share windows."""

    def __init__(self, problems: list[str], source: str):
        self.problems = list(problems)
        super().__init__(f"{source}: {len(problems)} pair(s) of recordings of different subjects share identical "
                         "windows (the same signal under two patients: a copied or twice-exported file?); a test "
                         "patient's windows could be in another patient's training set:\n  - "
                         + "\n  - ".join(problems))


def window_hashes(segments: np.ndarray) -> list[str | None]:
    """A 128-bit digest of each window's bytes, None for a constant window."""
    out: list[str | None] = []
    for start in range(0, len(segments), CHUNK):
        block = np.ascontiguousarray(segments[start:start + CHUNK])
        constant = block.min(axis=1) == block.max(axis=1)
        out += [None if c else hashlib.blake2b(w.tobytes(), digest_size=16).hexdigest()
                for w, c in zip(block, constant)]
    return out


def shared_windows(segments: np.ndarray, index: pd.DataFrame) -> pd.DataFrame:
    """Pairs of recordings that share identical non-constant windows: recording_a, subject_a, recording_b,
    subject_b, windows (how many), same_subject; sorted, one row per pair."""
    if len(segments) != len(index):
        raise ValueError(f"{len(segments)} windows but {len(index)} index rows")
    h = index[["recording_id", "subject_id"]].astype(str).assign(h=window_hashes(segments)).dropna(subset=["h"])
    dup = h[h.duplicated("h", keep=False)]
    rows = []
    for _, g in dup.groupby("h", sort=False):
        recs = g.drop_duplicates("recording_id").sort_values("recording_id").to_numpy()
        for i in range(len(recs)):
            for j in range(i + 1, len(recs)):
                rows.append((recs[i][0], recs[i][1], recs[j][0], recs[j][1]))
    cols = ["recording_a", "subject_a", "recording_b", "subject_b"]
    pairs = pd.DataFrame(rows, columns=cols)
    pairs = pairs.groupby(cols, sort=True).size().rename("windows").reset_index()
    pairs["same_subject"] = pairs["subject_a"] == pairs["subject_b"]
    return pairs


def check_store_file(segments_npy: str | Path, index_tsv: str | Path, out_report: str | Path) -> pd.DataFrame:
    """The workflow's gate: raise :class:`SharedSignalError` when two subjects share a window; otherwise write a
    report (and the pairs within one subject, which only weigh a signal twice) and return the pairs."""
    segments = np.load(segments_npy, mmap_mode="r")
    index = pd.read_csv(index_tsv, sep="\t", dtype={"subject_id": str, "recording_id": str},
                        usecols=["recording_id", "subject_id"])
    pairs = shared_windows(segments, index)
    across = pairs[~pairs["same_subject"]]
    if len(across):
        raise SharedSignalError([f"recording {r.recording_a} (subject {r.subject_a}) and recording {r.recording_b} "
                                 f"(subject {r.subject_b}): {r.windows} identical window(s)"
                                 for r in across.itertuples()], str(segments_npy))
    lines = [f"shared-signal check passed: {segments_npy}",
             f"{len(index)} windows of {index['recording_id'].nunique()} recordings and "
             f"{index['subject_id'].nunique()} subjects hashed; no window is shared by two subjects."]
    if len(pairs):
        lines.append(f"WARNING: {len(pairs)} pair(s) of recordings of one subject share windows (the same signal "
                     f"twice counts double in that patient's vote):")
        lines += [f"  {r.recording_a} and {r.recording_b} (subject {r.subject_a}): {r.windows} window(s)"
                  for r in pairs.itertuples()]
    write_atomic(out_report, "\n".join(lines) + "\n")
    return pairs
