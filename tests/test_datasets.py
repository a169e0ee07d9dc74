"""Importers of the public data sets, on small synthetic copies that mimic each set's layout and quirks.

The real files are covered by test_public_data.py; these run everywhere, without ../shared/data.
"""
from __future__ import annotations

import lzma
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nemg.cohort import read_cohort
from nemg.datasets import (
    DATASETS,
    RECORDING_COLUMNS,
    SUBJECT_COLUMNS,
    DatasetError,
    fetch,
    import_dataset,
)
from nemg.datasets import _common
from nemg.schemas import load_schema

N2001_FS = 23437.5
N2001_N = 12_000  # 0.51 s: just above the loader's 0.5 s minimum, keeps the files tiny


# ---------------------------------------------------------------------------------------------------------------
# synthetic sources


def _n2001_header(record: str, sex: str, age: int, diagnosis: str, level: str, side: str = "Right",
                  muscle: str = "Biceps brachii (long head)", duration: str = "") -> str:
    return (
        f"{record} 1 {N2001_FS} {N2001_N}\n{record}.bin 16+20 13.1070/uV\n#gender: {sex}\n#age: {age}\n"
        f"#diagnosis: {diagnosis}\n#duration: {duration}\n#muscle: {muscle}\n#side: {side}\n"
        f"#protocol: steady isometric contraction\n#level: {level}\n#electrode: concentric needle\n"
        "#high-pass filter: 2 Hz\n#low-pass filter: 10 kHz\n#gain: 500\n"
    )


def _n2001_bin(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    digital = np.round(rng.normal(0, 100, N2001_N) * 13.107).astype("<i2")
    # like the originals: 20 junk bytes before the samples, 20 after
    path.write_bytes(b"\x00\x50" * 10 + digital.tobytes() + b"\x00" * 20)


N2001_RECORDS = [  # record, sex, age, diagnosis text, level, side
    ("N2001C01BB51", "M", 29, "healty controls", "low", "Right"),
    ("N2001C01BB52", "M", 29, "healty controls", "moderate", "Right"),
    ("N2001M02BB01", "M", 44, "Plexus scapulohumoral dystrophy", "low", "Left"),
    ("N2001A01BB02", "M", 56, "ALS", "low", "Left"),
    ("N2001A01BB01", "M", 56, "ALS", "low", "Left"),
    ("N2001A03BB01", "F", 61, "Mainly bulbar ALS", "low", "Right"),
]


@pytest.fixture
def n2001_dir(tmp_path):
    src = tmp_path / "emglab_n2001"
    src.mkdir()
    for i, (rec, sex, age, dx, level, side) in enumerate(N2001_RECORDS):
        (src / f"{rec}.hea").write_text(_n2001_header(rec, sex, age, dx, level, side))
        _n2001_bin(src / f"{rec}.bin", i)
    # headers whose signal is not in the copy: must not become recordings
    (src / "headers_without_signal").mkdir()
    (src / "headers_without_signal" / "N2001A01BB09.hea").write_text(
        _n2001_header("N2001A01BB09", "M", 56, "ALS", "low"))
    return src


MESSEKHER_FILES = [  # relative path, compressed?
    ("01_Deltoid/Healthy/EMG _001 _01_ RD_Hea.asc", True),
    ("01_Deltoid/Healthy/EMG _002 _01_ LD_Hea.asc", False),
    ("02_Biceps Brachii/Healthy/EMG _003 _01_ RB_Hea.asc", True),
    ("02_Biceps Brachii/Neuropathy/EMG _356 _53_ LB_Neu.asc", True),
    ("02_Biceps Brachii/Neuropathy/EMG _357 _53_ LB_Neu.asc", False),
    ("01_Deltoid/Neuropathy/EMG _151 _07_ RD_Neu.asc", True),
    ("01_Deltoid/Myopathy/EMG _101 _07_ LD_Myo.asc", False),
]


def _asc_text(seed: int, n: int = 20_000) -> bytes:
    rng = np.random.default_rng(seed)
    # the originals: one line of µV values on a 25/32 µV grid, printed with one decimal
    values = np.round(rng.normal(0, 200, n) / 0.78125) * 0.78125
    return (" ".join(f"{v:.1f}" for v in values) + "\n").encode()


@pytest.fixture
def messekher_dir(tmp_path):
    src = tmp_path / "messekher2023_needle_emg"
    for i, (rel, xz) in enumerate(MESSEKHER_FILES):
        p = src / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        data = _asc_text(i)
        if xz:
            Path(str(p) + ".xz").write_bytes(lzma.compress(data))
        else:
            p.write_bytes(data)
    return src


EMGDB_HEADERS = {
    "emg_healthy": ("mV", "# <age>: 44 <sex>: M <diagnoses> no history of neuromuscular disease\n"),
    "emg_myopathy": ("mv", "# <age>: 57 <sex>: M\n# <diagnoses>: myopathy due to long history of polymostis\n"
                           "# <medications>: steroids, low-dose methotrexate\n"),
    "emg_neuropathy": ("mV", "# <age>: 62 <sex>: M\n# <diagnoses>: chronic low back pain and neuropathy due to a\n"
                             "#  right L5 radiculopathy\n"),
}


@pytest.fixture
def emgdb_dir(tmp_path):
    src = tmp_path / "physionet_emgdb"
    src.mkdir()
    rng = np.random.default_rng(0)
    for rec, (unit, comments) in EMGDB_HEADERS.items():
        digital = np.round(rng.normal(0, 2000, 4000)).astype("<i2")
        (src / f"{rec}.dat").write_bytes(digital.tobytes())
        # the originals end without a final newline
        (src / f"{rec}.hea").write_text(
            f"{rec} 1 4000 {digital.size}\n{rec}.dat 16 10000/{unit} 16 0 {digital[0]} 0 0 EMG\n{comments}"
            "# EMG from 25mm concentric needle electrode placed in tibialis anterior muscle\n"
            "# patient dorsiflexed the foot gently against resistance, then relaxed"
        )
    return src


def _sheets(subjects_tsv: Path, recordings_tsv: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    read = dict(sep="\t", dtype=str, keep_default_na=False)
    return pd.read_csv(subjects_tsv, **read), pd.read_csv(recordings_tsv, **read)


def _resolved(recordings_tsv: Path, path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else (recordings_tsv.parent / p)


# ---------------------------------------------------------------------------------------------------------------
# registry and sheet contract


def test_registry_contract():
    assert set(DATASETS) == {"n2001", "messekher2023", "emgdb"}
    folders = {"n2001": "emglab_n2001", "messekher2023": "messekher2023_needle_emg", "emgdb": "physionet_emgdb"}
    for name, ds in DATASETS.items():
        assert ds.name == name and ds.folder == folders[name]
        assert ds.home.startswith("https://") and ds.base_url.startswith("https://")
        for attr in ("description", "citation", "license_note"):
            assert len(getattr(ds, attr)) > 20, f"{name}.{attr} is empty"
    assert "0dc637737e27133244daefabc50f8e159ff6404f" in DATASETS["n2001"].base_url
    assert "88b3eec4b46a58bee28ebd144309abed065126ec" in DATASETS["messekher2023"].base_url
    assert DATASETS["emgdb"].base_url == "https://physionet.org/files/emgdb/1.0.0/"


def test_columns_follow_the_schemas():
    assert tuple(load_schema("subjects")["properties"]) == SUBJECT_COLUMNS
    assert tuple(load_schema("recordings")["properties"]) == RECORDING_COLUMNS


def test_unknown_name_lists_the_valid_ones(tmp_path):
    for call in (lambda: import_dataset("n2002", tmp_path, tmp_path / "out"), lambda: fetch("n2002", tmp_path)):
        with pytest.raises(ValueError, match=r"unknown data set 'n2002'; valid names: n2001, messekher2023, emgdb"):
            call()


@pytest.mark.parametrize("name", ["n2001", "messekher2023", "emgdb"])
def test_missing_or_empty_source_folder(tmp_path, name):
    with pytest.raises(DatasetError, match=r"nowhere: .*source folder not found"):
        import_dataset(name, tmp_path / "nowhere", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"empty: no "):
        import_dataset(name, tmp_path / "empty", tmp_path / "out")
    assert not (tmp_path / "out" / "recordings.tsv").exists()


def test_sheet_path_falls_back_to_absolute(tmp_path, monkeypatch):
    f = tmp_path / "a" / "x.hea"
    assert _common.sheet_path(f, tmp_path / "out") == "../a/x.hea"

    def no_relpath(*args):
        raise ValueError("path is on mount 'D:', start on mount 'C:'")

    monkeypatch.setattr(_common.os.path, "relpath", no_relpath)
    assert _common.sheet_path(f, tmp_path / "out") == f.as_posix()


# ---------------------------------------------------------------------------------------------------------------
# N2001


def test_n2001_import(n2001_dir, tmp_path):
    out = tmp_path / "cohort"
    s_tsv, r_tsv = import_dataset("n2001", n2001_dir, out)
    assert (s_tsv, r_tsv) == (out / "subjects.tsv", out / "recordings.tsv")
    subj, rec = _sheets(s_tsv, r_tsv)
    assert tuple(subj.columns[:4]) == SUBJECT_COLUMNS and tuple(rec.columns[:11]) == RECORDING_COLUMNS
    assert list(subj["subject_id"]) == ["N2001A01", "N2001A03", "N2001C01", "N2001M02"]
    assert list(subj["diagnosis"]) == ["neuropathy", "neuropathy", "normal", "myopathy"]
    assert list(subj["sex"]) == ["M", "F", "M", "M"] and list(subj["age"]) == ["56", "61", "29", "44"]
    assert list(subj["diagnosis_detail"]) == ["ALS", "Mainly bulbar ALS", "healty controls",
                                              "Plexus scapulohumoral dystrophy"]
    assert list(rec["recording_id"]) == sorted(r[0] for r in N2001_RECORDS)  # sorted, headers_without_signal ignored
    row = rec.set_index("recording_id").loc["N2001C01BB52"]
    assert (row["subject_id"], row["side"], row["location"], row["format"]) == ("N2001C01", "right", "proximal", "wfdb")
    assert row["muscle"] == "Biceps brachii (long head)" and row["contraction_level"] == "moderate"
    assert row["sampling_rate_hz"] == "23437.5" and row["units"] == "uV" and row["trim_start_s"] == ""
    # paths are relative to the sheet and point at the source files themselves
    for path in rec["path"]:
        assert not Path(path).is_absolute()
        assert _resolved(r_tsv, path).resolve().parent == n2001_dir.resolve()
    cohort = read_cohort(s_tsv, r_tsv)
    x = cohort.load("N2001A01BB01")
    assert x.n_samples == N2001_N and x.fs == N2001_FS


def test_import_is_deterministic(n2001_dir, messekher_dir, emgdb_dir, tmp_path):
    for name, src in (("n2001", n2001_dir), ("messekher2023", messekher_dir), ("emgdb", emgdb_dir)):
        first = [p.read_bytes() for p in import_dataset(name, src, tmp_path / f"{name}1")]
        second = [p.read_bytes() for p in import_dataset(name, src, tmp_path / f"{name}2")]
        assert first == second, name


def test_n2001_header_without_signal_file(n2001_dir, tmp_path):
    (n2001_dir / "N2001M02BB01.bin").unlink()
    with pytest.raises(DatasetError, match=r"emglab_n2001: 1 header\(s\) without their signal file: N2001M02BB01\.bin"):
        import_dataset("n2001", n2001_dir, tmp_path / "out")


def test_n2001_only_headers_without_signal(tmp_path, n2001_dir):
    for f in n2001_dir.glob("N2001*"):
        f.unlink()
    with pytest.raises(DatasetError, match=r"no N2001 records .*headers_without_signal"):
        import_dataset("n2001", n2001_dir, tmp_path / "out")


def test_n2001_inconsistent_subject_and_class(n2001_dir, tmp_path):
    hea = n2001_dir / "N2001A01BB02.hea"
    hea.write_text(hea.read_text().replace("#age: 56", "#age: 57"))
    with pytest.raises(DatasetError, match=r"N2001A01BB02\.hea: subject N2001A01 has age=57\.0 here but 56\.0"):
        import_dataset("n2001", n2001_dir, tmp_path / "out")
    hea.write_text(_n2001_header("N2001A01BB02", "M", 56, "healty controls", "low"))
    with pytest.raises(DatasetError, match=r"N2001A01BB02\.hea: header diagnosis 'healty controls' contradicts"):
        import_dataset("n2001", n2001_dir, tmp_path / "out")


# ---------------------------------------------------------------------------------------------------------------
# Messekher 2023


def test_messekher_import(messekher_dir, tmp_path):
    out = tmp_path / "cohort"
    s_tsv, r_tsv = import_dataset("messekher2023", messekher_dir, out)
    subj, rec = _sheets(s_tsv, r_tsv)
    assert list(subj["subject_id"]) == ["healthy_01", "myopathy_07", "neuropathy_07", "neuropathy_53"]
    assert list(subj["diagnosis"]) == ["normal", "myopathy", "neuropathy", "neuropathy"]
    assert set(subj["sex"]) == {""} and set(subj["age"]) == {""}  # the data set does not give them
    assert list(subj["patient_id_in_class"]) == ["01", "07", "07", "53"]
    rec = rec.set_index("recording_id")
    assert list(rec.index) == sorted(rec.index) and len(rec) == len(MESSEKHER_FILES)
    assert not any(" " in rid for rid in rec.index)
    row = rec.loc["EMG_356_53_LB_Neu"]
    assert (row["subject_id"], row["muscle"], row["side"], row["location"]) == (
        "neuropathy_53", "Biceps brachii", "left", "proximal")
    assert (row["format"], row["sampling_rate_hz"], row["units"]) == ("asc", "32768", "uV")
    assert row["source_record"] == "EMG _356 _53_ LB_Neu.asc" and row["path"].endswith("LB_Neu.asc.xz")
    assert rec.loc["EMG_001_01_RD_Hea", "side"] == "right" and rec.loc["EMG_001_01_RD_Hea", "muscle"] == "Deltoid"
    assert rec.loc["EMG_002_01_LD_Hea", "path"].endswith("LD_Hea.asc")  # plain and .xz files side by side
    assert (rec["subject_id"] == "healthy_01").sum() == 3
    cohort = read_cohort(s_tsv, r_tsv)
    for rid in ("EMG_356_53_LB_Neu", "EMG_002_01_LD_Hea"):
        x = cohort.load(rid)
        assert x.fs == 32768.0 and x.n_samples == 20_000


def test_messekher_prefers_the_uncompressed_original(messekher_dir, tmp_path):
    xz = messekher_dir / "01_Deltoid/Healthy/EMG _001 _01_ RD_Hea.asc.xz"
    xz.with_suffix("").write_bytes(lzma.decompress(xz.read_bytes()))
    rec = _sheets(*import_dataset("messekher2023", messekher_dir, tmp_path / "out"))[1].set_index("recording_id")
    assert len(rec) == len(MESSEKHER_FILES)
    assert rec.loc["EMG_001_01_RD_Hea", "path"].endswith("RD_Hea.asc")


def test_messekher_bad_names(messekher_dir, tmp_path):
    bad = messekher_dir / "01_Deltoid/Myopathy/EMG 101 07 LD Myo.asc"
    bad.write_bytes(b"1 2 3")
    with pytest.raises(DatasetError, match=r"EMG 101 07 LD Myo\.asc: file name does not follow"):
        import_dataset("messekher2023", messekher_dir, tmp_path / "out")
    bad.unlink()
    wrong = messekher_dir / "01_Deltoid/Myopathy/EMG _102 _08_ LD_Neu.asc"
    wrong.write_bytes(b"1 2 3")
    with pytest.raises(DatasetError, match=r"LD_Neu\.asc: class 'Neu' in the name but the file is in Myopathy/"):
        import_dataset("messekher2023", messekher_dir, tmp_path / "out")
    wrong.unlink()
    (messekher_dir / "01_Deltoid/Myopathy/EMG _103 _09_ LB_Myo.asc").write_bytes(b"1 2 3")
    with pytest.raises(DatasetError, match=r"muscle code LB does not match 01_Deltoid/"):
        import_dataset("messekher2023", messekher_dir, tmp_path / "out")


def test_messekher_without_muscle_folders(tmp_path):
    (tmp_path / "src" / "Healthy").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"src: no Messekher 2023 muscle folders; expected '01_Deltoid' and "
                                           r"'02_Biceps Brachii'"):
        import_dataset("messekher2023", tmp_path / "src", tmp_path / "out")


# ---------------------------------------------------------------------------------------------------------------
# PhysioNet emgdb


def test_emgdb_import(emgdb_dir, tmp_path):
    s_tsv, r_tsv = import_dataset("emgdb", emgdb_dir, tmp_path / "cohort")
    subj, rec = _sheets(s_tsv, r_tsv)
    assert list(subj["subject_id"]) == ["emgdb_healthy", "emgdb_myopathy", "emgdb_neuropathy"]
    assert list(subj["diagnosis"]) == ["normal", "myopathy", "neuropathy"]
    assert list(subj["age"]) == ["44", "57", "62"] and list(subj["sex"]) == ["M", "M", "M"]
    assert subj["diagnosis_detail"].iloc[2] == "chronic low back pain and neuropathy due to a right L5 radiculopathy"
    assert subj["diagnosis_detail"].iloc[0] == "no history of neuromuscular disease"
    assert list(rec["units"]) == ["mV", "mV", "mV"]  # 'mv' in the myopathy header, normalised
    assert set(rec["location"]) == {"distal"} and set(rec["side"]) == {""}
    assert set(rec["muscle"]) == {"Tibialis anterior"} and set(rec["sampling_rate_hz"]) == {"4000"}
    cohort = read_cohort(s_tsv, r_tsv)
    x = cohort.load("emg_myopathy")
    raw = np.fromfile(emgdb_dir / "emg_myopathy.dat", "<i2")
    np.testing.assert_allclose(x.samples, raw / 10.0, rtol=1e-6)  # 10000 adu/mV -> 10 adu/µV


def test_emgdb_missing_record(emgdb_dir, tmp_path):
    (emgdb_dir / "emg_neuropathy.dat").unlink()
    with pytest.raises(DatasetError, match=r"physionet_emgdb: emgdb files missing: emg_neuropathy\.dat"):
        import_dataset("emgdb", emgdb_dir, tmp_path / "out")


def test_relative_out_dir_paths_resolve(emgdb_dir, tmp_path, monkeypatch):
    # a relative out_dir (the CLI's usual case) still yields paths that resolve from the sheet's folder
    monkeypatch.chdir(tmp_path)
    import_dataset("emgdb", os.path.relpath(emgdb_dir), "rel/out")
    rec = _sheets(tmp_path / "rel/out/subjects.tsv", tmp_path / "rel/out/recordings.tsv")[1]
    for path in rec["path"]:
        assert _resolved(tmp_path / "rel/out/recordings.tsv", path).resolve().parent == emgdb_dir.resolve()
