"""Segmentation: counts, offsets, the memory-mappable store and its index."""
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from nemg.labels import CLASSES
from nemg.segment import n_segments, samples_of, segment_signal, segment_store
from nemg.store import SegmentStore, StoreError, read_segment_store, read_signal_store, write_signal_store
from nemg.tables import s1_table


@pytest.mark.parametrize("n", [0, 3999, 4000, 4001, 4999, 5000, 12345, 26_000])
def test_count_formula(n):
    expected = 0 if n < 4000 else (n - 4000) // 1000 + 1
    assert n_segments(n, 4000, 1000) == expected
    assert segment_signal(np.arange(n, dtype=np.float32), 4000, 1000).shape == (expected, 4000)


def test_windows_are_the_right_samples():
    x = np.arange(10_500, dtype=np.float32)
    seg = segment_signal(x, 4000, 1000)
    assert seg.shape == (7, 4000) and seg.flags["C_CONTIGUOUS"]
    assert seg[3, 0] == 3000 and seg[-1, -1] == 9999  # trailing partial window (10000..10499) dropped


def test_whole_samples_required():
    assert samples_of(0.4, 10_000, "window") == 4000
    with pytest.raises(ValueError, match="window = 0.40005 s"):
        samples_of(0.40005, 10_000, "window")


def _store(tmp_path, lengths):
    arrays = [np.random.default_rng(i).normal(size=n).astype(np.float32) for i, n in enumerate(lengths)]
    index = pd.DataFrame({
        "recording_id": [f"r{i}" for i in range(len(lengths))],
        "subject_id": [f"s{i // 2}" for i in range(len(lengths))],
        "diagnosis": ["normal", "normal", "myopathy", "myopathy", "neuropathy"][: len(lengths)],
        "location": ["proximal", "distal", "distal", "proximal", "distal"][: len(lengths)],
        "muscle": "biceps", "fs_hz": 10_000.0,
    })
    write_signal_store(arrays, index, tmp_path / "signals.npy", tmp_path / "signals_index.tsv")
    return arrays


def test_segment_store_roundtrip(tmp_path):
    lengths = [4000, 12_345, 3999, 10_000, 26_000]
    arrays = _store(tmp_path, lengths)
    arr, idx = read_signal_store(tmp_path / "signals.npy", tmp_path / "signals_index.tsv")
    assert list(idx["n_samples"]) == lengths
    seg_idx = segment_store(tmp_path / "signals.npy", tmp_path / "signals_index.tsv", 0.4, 0.1,
                            tmp_path / "segments.npy", tmp_path / "segments_index.tsv")
    segs, idx2 = read_segment_store(tmp_path / "segments.npy", tmp_path / "segments_index.tsv")
    assert isinstance(segs, np.memmap) and segs.dtype == np.float32 and segs.shape[1] == 4000
    counts = idx2.groupby("recording_id").size()
    for i, n in enumerate(lengths):
        assert counts.get(f"r{i}", 0) == (0 if n < 4000 else (n - 4000) // 1000 + 1)
    row = idx2[idx2["recording_id"] == "r1"].iloc[2]
    np.testing.assert_array_equal(segs[row["segment"]], arrays[1][row["offset_samples"]:row["offset_samples"] + 4000])
    assert list(idx2.columns) == ["segment", "recording_id", "subject_id", "diagnosis", "location", "muscle",
                                  "offset_samples"]
    s1 = s1_table(tmp_path / "signals_index.tsv", seg_idx).set_index("class")
    assert s1.loc["total", "signals"] == 4  # r2 is shorter than one window
    assert s1.loc["total", "segments"] == len(idx2)
    assert s1.loc["myopathy", "proximal_distal"] == "1 / 0"


def test_mixed_rates_rejected(tmp_path):
    _store(tmp_path, [5000, 5000])
    idx = pd.read_csv(tmp_path / "signals_index.tsv", sep="\t")
    idx.loc[1, "fs_hz"] = 48_000.0
    idx.to_csv(tmp_path / "signals_index.tsv", sep="\t", index=False)
    with pytest.raises(ValueError, match="several sampling rates"):
        segment_store(tmp_path / "signals.npy", tmp_path / "signals_index.tsv", 0.4, 0.1,
                      tmp_path / "s.npy", tmp_path / "s.tsv")


def test_resampling_that_overflows_float32_names_the_recording(tmp_path):
    """Finite samples near float32's limit (a wrong unit in a sheet) overshoot to inf in the resampling filter;
    the store would pass them on to training as NaN losses."""
    from nemg.resample import resample_store

    arrays = _store(tmp_path, [5000, 5000])
    # a square wave at float32's limit: the filter's ringing overshoots it
    arrays[1] = (np.sign(np.sin(2 * np.pi * np.arange(5000) / 200)) * 3.4e38).astype(np.float32)
    index = pd.read_csv(tmp_path / "signals_index.tsv", sep="\t").drop(columns=["start", "n_samples"])
    write_signal_store(arrays, index, tmp_path / "signals.npy", tmp_path / "signals_index.tsv")
    with pytest.raises(ValueError, match=r"signals\.npy: recording r1: resampling 10000 -> 8000 Hz overflows float32"):
        resample_store(tmp_path / "signals.npy", tmp_path / "signals_index.tsv", 8000, "polyphase",
                       tmp_path / "rs.npy", tmp_path / "rs_index.tsv")


def test_damaged_store_is_named_with_its_rebuild_command(tmp_path):
    """A truncated segments.npy used to fail in train_fold with numpy's 'mmap length is greater than file size'
    (no file named); every reader now names the damaged file and the command its writer recorded."""
    from nemg.features import extract_features
    from nemg.resample import resample_store

    _store(tmp_path, [12_345, 26_000, 10_000, 10_000])
    resample_store(tmp_path / "signals.npy", tmp_path / "signals_index.tsv", 8000, "polyphase",
                   tmp_path / "rs.npy", tmp_path / "rs_index.tsv", rebuild="make rs")
    segs, idx = tmp_path / "segments.npy", tmp_path / "segments_index.tsv"
    segment_store(tmp_path / "rs.npy", tmp_path / "rs_index.tsv", 0.4, 0.1, segs, idx, rebuild="make segments")
    SegmentStore.open(segs, idx)  # intact: opens
    good = segs.read_bytes()

    segs.write_bytes(good[: len(good) // 2])
    truncated = rf"{segs}: damaged store: {len(good) // 2} bytes but segments\.npy\.check\.json records {len(good)} " \
                r"\(truncated or overwritten\); rebuild it with: make segments"
    for read in (lambda: read_segment_store(segs, idx), lambda: SegmentStore.open(segs, idx),
                 lambda: extract_features(segs, tmp_path / "f.npy", tmp_path / "f.txt", fs=8000)):
        with pytest.raises(StoreError, match=truncated):
            read()

    flipped = bytearray(good)
    flipped[-7] ^= 0xFF  # same size, one sample changed
    segs.write_bytes(bytes(flipped))
    with pytest.raises(StoreError, match=rf"{segs}: damaged store: its SHA-256 differs .*; rebuild it with: make segments"):
        read_segment_store(segs, idx)

    rs = tmp_path / "rs.npy"
    rs.write_bytes(rs.read_bytes()[:-4000])
    with pytest.raises(StoreError, match=rf"{rs}: damaged store: .*rebuild it with: make rs"):
        read_signal_store(rs, tmp_path / "rs_index.tsv")

    # a store from before sidecars existed is still size-checked against its .npy header
    segs.write_bytes(good[:-4000])
    (tmp_path / "segments.npy.check.json").unlink()
    with pytest.raises(StoreError, match=rf"{segs}: damaged store: {len(good) - 4000} bytes but its \.npy header "
                                         rf"describes {len(good)}"):
        SegmentStore.open(segs, idx)


def test_segment_store_has_one_reader(tmp_path):
    """SegmentStore.open (training, prediction) is built on read_segment_store, so it refuses what the reader
    refuses; before, it had its own checks and opened an index whose rows were out of order."""
    _store(tmp_path, [12_345, 26_000])
    segs, idx = tmp_path / "segments.npy", tmp_path / "segments_index.tsv"
    segment_store(tmp_path / "signals.npy", tmp_path / "signals_index.tsv", 0.4, 0.1, segs, idx)
    x, index = read_segment_store(segs, idx)
    store = SegmentStore.open(segs, idx)
    assert isinstance(store.x, np.memmap) and store.window == x.shape[1] == 4000
    pd.testing.assert_frame_equal(store.index, index)
    assert store.y.tolist() == [CLASSES.index(d) for d in index["diagnosis"]]

    good = pd.read_csv(idx, sep="\t", dtype=str)
    cases = {"rows out of order": (good.iloc[::-1], r"column 'segment' is not the row number"),
             "missing column": (good.drop(columns="muscle"), r"missing column\(s\) muscle"),
             "one row short": (good.iloc[:-1], rf"{len(good) - 1} rows but {segs} holds {len(good)} segments")}
    for name, (bad, message) in cases.items():
        bad.to_csv(idx, sep="\t", index=False)
        for read in (read_segment_store, SegmentStore.open):
            with pytest.raises(StoreError, match=rf"{idx}: {message}"):
                read(segs, idx)
    good.assign(diagnosis="other").to_csv(idx, sep="\t", index=False)
    read_segment_store(segs, idx)  # a store need not be labelled with CLASSES; a model's store must
    with pytest.raises(StoreError, match=rf"{idx}: unknown diagnosis \['other'\]"):
        SegmentStore.open(segs, idx)


def test_store_labels_and_run_ids_import_without_torch():
    """The plotting, baseline and preprocessing envs have no torch and read stores, labels and run ids."""
    code = ("import importlib.abc, sys\n"
            "class NoTorch(importlib.abc.MetaPathFinder):\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.partition('.')[0] == 'torch':\n"
            "            raise ModuleNotFoundError(name, name=name)\n"
            "sys.meta_path.insert(0, NoTorch())\n"
            "import nemg.store, nemg.labels, nemg.folds, nemg.segment, nemg.explain, nemg.evaluate")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
