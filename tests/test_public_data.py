"""The real public files load as their PROVENANCE.md describes, and each imported cohort validates with the
expected per-class counts. Needs ../shared/data (or NEMG_SHARED_DATA); skipped otherwise. A handful of files per
set, to stay fast.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest

from nemg.cohort import read_cohort
from nemg.datasets import DATASETS, import_dataset
from nemg.io import load_recording

pytestmark = pytest.mark.shared_data

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def shared() -> Path:
    root = Path(os.environ.get("NEMG_SHARED_DATA") or REPO.parent / "shared" / "data")
    if not root.is_dir():
        pytest.skip(f"public data not found at {root} (set NEMG_SHARED_DATA to the shared data folder)")
    return root


def folder(shared: Path, name: str) -> Path:
    path = shared / DATASETS[name].folder
    if not path.is_dir():
        pytest.skip(f"{path} not present")
    return path


# ---------------------------------------------------------------------------------------------------------------
# loading real files


def test_n2001_signals(shared):
    src = folder(shared, "n2001")
    rec = load_recording(src / "N2001C01BB51.hea", "wfdb", sampling_rate_hz=23437.5, units="uV")
    assert rec.fs == 23437.5 and rec.n_samples == 262_124 and rec.samples.dtype == np.float32
    raw = np.fromfile(src / "N2001C01BB51.bin", "<i2")
    # the file's first int16 is 20480 junk; the 20-byte offset must skip it (and the 10 trailing values)
    assert raw[0] == 20480
    np.testing.assert_allclose(rec.samples, raw[10:10 + 262_124] / 13.107, rtol=1e-6, atol=1e-4)
    assert abs(rec.samples[0]) < 10.0 and abs(rec.samples).max() < 2500.1  # int16 / 13.107 adu/µV
    assert rec.meta["clipped_fraction"] == 0.0
    clipped = load_recording(src / "N2001A03BB55.hea", "wfdb")  # the worst ADC saturation of the set
    assert clipped.meta["clipped_fraction"] > 0.01
    assert clipped.samples.min() == pytest.approx(-32768 / 13.107, abs=0.01)  # the negative rail


def test_messekher_signals(shared):
    src = folder(shared, "messekher2023")
    with open(src / "RECORDS.csv", newline="") as fh:
        n_samples = {row["included_as"]: int(row["n_samples"]) for row in csv.DictReader(fh) if row["included_as"]}
    picked = ["01_Deltoid/Healthy/EMG _001 _01_ RD_Hea.asc.xz",  # 163 841 samples
              "02_Biceps Brachii/Neuropathy/EMG _356 _53_ LB_Neu.asc.xz"]  # 163 840 samples
    assert {n_samples[p] for p in picked} == {163_840, 163_841}
    for rel in picked:
        rec = load_recording(src / rel, "asc", sampling_rate_hz=32768, units="uV")
        assert rec.fs == 32768.0 and rec.n_samples == n_samples[rel]
        assert -25_089.8 - 0.01 <= rec.samples.min() and rec.samples.max() <= 11_793.8 + 0.01
        assert np.ptp(rec.samples) > 100.0  # µV, not V or mV
        # values sit on a 25/32 µV grid rounded to 0.1 µV
        grid = np.round(rec.samples[:1000].astype(np.float64) / 0.78125) * 0.78125
        assert np.abs(rec.samples[:1000] - grid).max() < 0.06


@pytest.mark.parametrize("record, n, header_units", [
    ("emg_healthy", 50_860, "mV"), ("emg_myopathy", 110_337, "mv"), ("emg_neuropathy", 147_858, "mV"),
])
def test_emgdb_signals(shared, record, n, header_units):
    src = folder(shared, "emgdb")
    rec = load_recording(src / f"{record}.hea", "wfdb", sampling_rate_hz=4000, units="mV")
    assert rec.fs == 4000.0 and rec.n_samples == n and rec.meta["source_units"] == header_units
    raw = np.fromfile(src / f"{record}.dat", "<i2")
    np.testing.assert_allclose(rec.samples, raw / 10.0, rtol=1e-6)  # 10000 adu/mV = 10 adu/µV
    if record == "emg_neuropathy":  # clipped near the int16 limits, ±3.2767 mV
        assert rec.samples.max() == pytest.approx(3275.3, abs=0.05)
        assert rec.samples.min() == pytest.approx(-3276.7, abs=0.05)
    else:
        assert np.abs(rec.samples).max() < 3000.0


# ---------------------------------------------------------------------------------------------------------------
# imported cohorts


EXPECTED = {  # class -> (subjects, recordings), from the PROVENANCE files
    "n2001": {"normal": (9, 72), "myopathy": (6, 48), "neuropathy": (7, 51)},
    "messekher2023": {"normal": (17, 66), "myopathy": (65, 66), "neuropathy": (59, 66)},
    "emgdb": {"normal": (1, 1), "myopathy": (1, 1), "neuropathy": (1, 1)},
}
LOCATION = {"n2001": "proximal", "messekher2023": "proximal", "emgdb": "distal"}
ONE_RECORDING = {"n2001": "N2001M02BB03", "messekher2023": "EMG_151_01_RD_Neu", "emgdb": "emg_neuropathy"}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_imported_cohort(shared, tmp_path, name):
    src = folder(shared, name)
    s_tsv, r_tsv = import_dataset(name, src, tmp_path / name)
    cohort = read_cohort(s_tsv, r_tsv)
    subj, rec = cohort.subjects, cohort.with_diagnosis()
    counts = {cls: (int((subj["diagnosis"] == cls).sum()), int((rec["diagnosis"] == cls).sum()))
              for cls in EXPECTED[name]}
    assert counts == EXPECTED[name]
    assert set(rec["location"]) == {LOCATION[name]}
    # the sheets point at the shared files themselves, never at copies
    for p in rec["path"]:
        assert Path(p).resolve().is_relative_to(src.resolve())
    assert not any(Path(p).is_absolute() for p in rec["path_in_sheet"])
    x = cohort.load(ONE_RECORDING[name])
    assert x.n_samples > 0 and x.fs in (23437.5, 32768.0, 4000.0)


def test_n2001_contraction_level_confounder(shared, tmp_path):
    _, r_tsv = import_dataset("n2001", folder(shared, "n2001"), tmp_path)
    cohort = read_cohort(tmp_path / "subjects.tsv", r_tsv)
    rec = cohort.with_diagnosis()
    assert set(rec.loc[rec["diagnosis"] != "normal", "contraction_level"]) == {"low"}
    assert dict(rec.loc[rec["diagnosis"] == "normal", "contraction_level"].value_counts()) == {"low": 36, "moderate": 36}
    s = cohort.subjects.set_index("subject_id")
    assert (s.loc["N2001A01", "sex"], s.loc["N2001A01", "age"]) == ("M", 56.0)
    assert s["sex"].notna().all() and s["age"].notna().all()


def test_messekher_subject_keys(shared, tmp_path):
    s_tsv, r_tsv = import_dataset("messekher2023", folder(shared, "messekher2023"), tmp_path)
    cohort = read_cohort(s_tsv, r_tsv)
    rec = cohort.recordings
    # patient 53 of the neuropathy class gave two left-biceps recordings; healthy subjects give 4 sites
    assert (rec["subject_id"] == "neuropathy_53").sum() == 2
    healthy = rec[rec["subject_id"].str.startswith("healthy_")]
    assert healthy.groupby("subject_id")["recording_id"].count().max() <= 4
    assert set(rec["muscle"]) == {"Deltoid", "Biceps brachii"} and set(rec["side"]) == {"left", "right"}
    assert cohort.subjects["sex"].isna().all() and cohort.subjects["age"].isna().all()
