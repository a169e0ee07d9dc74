"""nemg.shared_signals: one signal under two patients is refused, twice under one is reported, and a constant
window (the same in any recording) is neither."""
import numpy as np
import pandas as pd
import pytest

from nemg.shared_signals import SharedSignalError, check_store_file, shared_windows


def store(tmp_path, windows, owners):
    """A segment store of ``windows`` (rows) and an index giving each (recording, subject)."""
    np.save(tmp_path / "segments.npy", np.asarray(windows, dtype=np.float32))
    pd.DataFrame({"segment": range(len(owners)), "recording_id": [r for r, _ in owners],
                  "subject_id": [s for _, s in owners]}).to_csv(tmp_path / "index.tsv", sep="\t", index=False)
    return tmp_path / "segments.npy", tmp_path / "index.tsv"


def test_a_window_of_two_subjects_is_refused_naming_both(tmp_path):
    rng = np.random.default_rng(0)
    w = rng.normal(size=(6, 64))
    # r3 (subject B) is a copy of r1 (subject A): its two windows are r1's
    windows = [w[0], w[1], w[2], w[0], w[1], w[3]]
    owners = [("r1", "A"), ("r1", "A"), ("r2", "A"), ("r3", "B"), ("r3", "B"), ("r4", "C")]
    npy, idx = store(tmp_path, windows, owners)
    pairs = shared_windows(np.load(npy), pd.read_csv(idx, sep="\t"))
    assert pairs.to_dict("records") == [{"recording_a": "r1", "subject_a": "A", "recording_b": "r3",
                                         "subject_b": "B", "windows": 2, "same_subject": False}]
    with pytest.raises(SharedSignalError, match=r"segments\.npy: 1 pair\(s\) of recordings of different subjects "
                                                r"share identical windows.*\n  - recording r1 \(subject A\) and "
                                                r"recording r3 \(subject B\): 2 identical window\(s\)"):
        check_store_file(npy, idx, tmp_path / "report.txt")
    assert not (tmp_path / "report.txt").exists()


def test_twice_in_one_subject_is_reported_and_constant_windows_are_ignored(tmp_path):
    rng = np.random.default_rng(1)
    w = rng.normal(size=(3, 64))
    flat = np.zeros(64)
    # r2 repeats r1's first window within subject A; every subject has an all-zero stretch
    windows = [w[0], flat, w[0], w[1], flat, w[2], flat]
    owners = [("r1", "A"), ("r1", "A"), ("r2", "A"), ("r3", "B"), ("r3", "B"), ("r4", "C"), ("r4", "C")]
    npy, idx = store(tmp_path, windows, owners)
    pairs = check_store_file(npy, idx, tmp_path / "report.txt")
    assert pairs[["recording_a", "recording_b", "windows"]].values.tolist() == [["r1", "r2", 1]]
    text = (tmp_path / "report.txt").read_text()
    assert "7 windows of 4 recordings and 3 subjects hashed; no window is shared by two subjects." in text
    assert "WARNING: 1 pair(s) of recordings of one subject share windows" in text
    assert "  r1 and r2 (subject A): 1 window(s)" in text
    # a window equal to another only up to a last bit is another window
    w2 = w[1].astype(np.float32).copy()
    w2[5] = np.nextafter(w2[5], np.float32(np.inf))
    npy, idx = store(tmp_path, [w[1], w2], [("r1", "A"), ("r2", "B")])
    assert check_store_file(npy, idx, tmp_path / "report.txt").empty


def test_the_index_must_match_the_store():
    with pytest.raises(ValueError, match="3 windows but 2 index rows"):
        shared_windows(np.ones((3, 4), np.float32), pd.DataFrame({"recording_id": ["a", "b"],
                                                                   "subject_id": ["A", "B"]}))
