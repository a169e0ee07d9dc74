"""Sample sheets: a valid cohort reads; broken sheets report every problem at once with file and row."""
from __future__ import annotations

import numpy as np
import pytest

from nemg.cli import main
from nemg.cohort import CohortError, read_cohort, read_recordings, summarize

FS = 4000.0

SUBJECTS = """subject_id\tdiagnosis\tsex\tage\tnote
P1\tnormal\tF\t41\tfree column
P2\tmyopathy\tM\t\t
P3\tneuropathy\t\t67\t
"""

RECORDINGS = """recording_id\tsubject_id\tmuscle\tside\tlocation\tpath\tformat\tsampling_rate_hz\tunits\ttrim_start_s\ttrim_end_s
r1\tP1\tbiceps\tleft\tproximal\tsig/r1.npy\tnpy\t4000\tuV\t\t
r2\tP2\tdeltoid\tright\tproximal\tsig/r2.npy\tnpy\t4000\tmV\t0.1\t1.5
r3\tP3\ttibialis anterior\t\tdistal\tsig/r3.npy\tnpy\t4000\t\t\t
r4\tP3\tbiceps\tleft\tproximal\tsig/r4.npy\tnpy\t4000\tuV\t\t
"""


def make_cohort(tmp_path, subjects=SUBJECTS, recordings=RECORDINGS, seconds=(2.0, 2.0, 3.0, 1.0)):
    (tmp_path / "sig").mkdir(exist_ok=True)
    rng = np.random.default_rng(1)
    for i, sec in enumerate(seconds, 1):
        np.save(tmp_path / "sig" / f"r{i}.npy", rng.normal(0, 50, int(sec * FS)))
    (tmp_path / "subjects.tsv").write_text(subjects)
    (tmp_path / "recordings.tsv").write_text(recordings)
    return tmp_path / "subjects.tsv", tmp_path / "recordings.tsv"


def test_valid_cohort(tmp_path):
    s, r = make_cohort(tmp_path)
    cohort = read_cohort(s, r)
    assert list(cohort.subjects["subject_id"]) == ["P1", "P2", "P3"]
    assert cohort.subjects.loc[1, "age"] is None and cohort.subjects.loc[0, "age"] == 41.0
    assert cohort.subjects.loc[0, "note"] == "free column"
    assert cohort.recordings.loc[1, "trim_start_s"] == 0.1
    rec = cohort.load("r2")
    assert rec.meta["source_units"] == "mV" and np.abs(rec.samples).max() > 1000  # mV -> µV
    assert cohort.warnings == []
    table = summarize(cohort).set_index("class")
    assert table.loc["neuropathy", "recordings"] == 2
    assert table.loc["neuropathy", "distal"] == 1 and table.loc["neuropathy", "proximal"] == 1
    assert table.loc["neuropathy", "total_duration_s"] == 4.0
    assert table.loc["all", "total_duration_s"] == 8.0


def test_every_problem_reported_with_file_and_row(tmp_path):
    subjects = SUBJECTS + "P1\tnormal\tF\t30\t\nP4\tneuropathic\tX\told\t\nP5\tnormal\tM\t50\t\n"
    recordings = RECORDINGS + (
        "r1\tP1\tbiceps\tleft\tproximal\tsig/r1.npy\tnpy\t4000\tuV\t\t\n"
        "r6\tP9\tbiceps\tleft\tmiddle\tsig/missing.npy\tnpy\t\tkV\t2\t1\n"
        "r7\tP3\tbiceps\tleft\tdistal\tsig\tnpy\t4000\tuV\t\t\n"
        "r8\tP3\tbiceps\tright\tdistal\tsig/r1.npy\tnpy\t4000\tuV\t\t\n"
    )
    s, r = make_cohort(tmp_path, subjects, recordings)
    with pytest.raises(CohortError) as info:
        read_cohort(s, r)
    problems = info.value.problems
    expected = [
        f"{s}, row 6: column age: 'old' is not a number",
        f"{s}, row 6: column diagnosis: 'neuropathic' is not allowed (expected normal, myopathy, neuropathy)",
        f"{s}, row 6: column sex: 'X' is not allowed (expected F, M, empty)",
        f"{r}, row 7: column location: 'middle' is not allowed (expected proximal, distal)",
        f"{r}, row 7: column units: 'kV' is not allowed (expected V, mV, uV, empty)",
        f"{s}: duplicate subject_id 'P1' in rows 2, 5",
        f"{r}: duplicate recording_id 'r1' in rows 2, 6",
        f"{r}, row 7: unknown subject_id 'P9' (not in subjects.tsv)",
        f"{r}, row 7: sampling_rate_hz is required for format npy",
        f"{r}, row 7: trim_end_s (1) must be greater than trim_start_s (2)",
        f"{s}, row 6: subject 'P4' has no recordings in recordings.tsv",
        f"{s}, row 7: subject 'P5' has no recordings in recordings.tsv",
        f"{r}, row 7: recording 'r6': file not found: {tmp_path / 'sig' / 'missing.npy'}",
        f"{r}, row 8: recording 'r7': is a folder, not a signal file: {tmp_path / 'sig'}",
        # r1 (P1) and r8 (P3) are one file: a copied row's path would put one patient's signal in another's
        f"{r}, rows 2, 6, 9: recordings 'r1', 'r1', 'r8' read the same signal ({tmp_path / 'sig' / 'r1.npy'}): "
        f"subjects P1, P3 would share it, so one patient's signal could be in another's training set",
    ]
    assert sorted(problems) == sorted(expected)
    assert str(info.value).startswith("15 problems in the cohort sample sheets:")


def test_missing_sheet_and_columns(tmp_path):
    with pytest.raises(CohortError, match="subjects.tsv: sample sheet not found"):
        read_cohort(tmp_path / "subjects.tsv", tmp_path / "recordings.tsv")
    s, r = make_cohort(tmp_path, recordings=RECORDINGS.replace("location", "site"))
    with pytest.raises(CohortError, match=r"recordings.tsv: missing column\(s\) location"):
        read_cohort(s, r)


def test_missing_class_is_a_warning(tmp_path):
    s, r = make_cohort(tmp_path, SUBJECTS.replace("myopathy", "normal"))
    cohort = read_cohort(s, r)
    assert cohort.warnings == [f"{s}: no subjects with diagnosis 'myopathy'"]


def test_cli_cohort_check(tmp_path, capsys):
    make_cohort(tmp_path)
    assert main(["cohort", "check", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "cohort OK" in out and "neuropathy" in out
    (tmp_path / "sig" / "r3.npy").unlink()
    assert main(["cohort", "check", str(tmp_path / "recordings.tsv"), str(tmp_path / "subjects.tsv")]) == 1
    err = capsys.readouterr().err
    assert "recording 'r3': file not found" in err


def test_empty_sheet_is_named_not_a_traceback(tmp_path, capsys):
    s, r = make_cohort(tmp_path)
    r.write_text("")
    with pytest.raises(CohortError, match=r"recordings.tsv: the sheet is empty \(no header row\)"):
        read_cohort(s, r)
    assert main(["cohort", "check", str(s), str(r)]) != 0  # the CLI reports it instead of a pandas traceback
    out = capsys.readouterr()
    assert "the sheet is empty" in out.err + out.out


def test_misspelled_optional_column_is_an_error_with_a_suggestion(tmp_path):
    """'unit' for 'units' would be dropped silently and mV samples read as µV, 1000x too small."""
    s, r = make_cohort(tmp_path, recordings=RECORDINGS.replace("\tunits\t", "\tunit\t"))
    with pytest.raises(CohortError, match=r"recordings.tsv: unknown column 'unit' \(did you mean 'units'\?\)"):
        read_cohort(s, r)
    # a free column that resembles nothing known is still passed through (subjects.tsv's 'note')
    (tmp_path / "ok").mkdir()
    assert "note" in read_cohort(*make_cohort(tmp_path / "ok")).subjects.columns


def test_cli_cohort_check_reads_every_signal_and_lists_every_problem(tmp_path, capsys):
    """Each broken file the trim stage would fail on is reported by the check, all at once, with its file;
    header-only probing said "cohort OK" for all but the EDF and added the 0.2 s file's duration to the totals."""
    import wfdb

    from nemg.io import write_edf

    rng = np.random.default_rng(2)
    sig = tmp_path / "sig"
    sig.mkdir()
    good = rng.normal(0, 50, int(2 * FS))
    np.save(sig / "ok.npy", good)
    np.save(sig / "nan.npy", np.where(np.arange(good.size) == 100, np.nan, good))
    np.save(sig / "flat.npy", np.full(good.size, 3.0))
    np.save(sig / "short.npy", good[: int(0.2 * FS)])
    for name in ("half", "rate"):
        wfdb.wrsamp(name, fs=FS, units=["uV"], sig_name=["EMG"], p_signal=good[:, None], fmt=["16"],
                    adc_gain=[10.0], baseline=[0], write_dir=str(sig))
    dat = sig / "half.dat"
    dat.write_bytes(dat.read_bytes()[: dat.stat().st_size // 2])
    edf = write_edf(sig / "claims50.edf", good, FS)  # 2 records of 1 s
    raw = bytearray(edf.read_bytes())
    raw[236:244] = b"50".ljust(8)
    edf.write_bytes(bytes(raw))
    rows = [("ok", "ok.npy", "npy", FS), ("nan", "nan.npy", "npy", FS), ("flat", "flat.npy", "npy", FS),
            ("short", "short.npy", "npy", FS), ("half", "half.hea", "wfdb", ""), ("rate", "rate.hea", "wfdb", 8000),
            ("edf", "claims50.edf", "edf", "")]
    head = "recording_id\tsubject_id\tmuscle\tside\tlocation\tpath\tformat\tsampling_rate_hz\n"
    (tmp_path / "recordings.tsv").write_text(head + "".join(
        f"{rid}\tP{i % 3 + 1}\tbiceps\t\tproximal\tsig/{path}\t{fmt}\t{fs}\n" for i, (rid, path, fmt, fs) in enumerate(rows)))
    (tmp_path / "subjects.tsv").write_text(SUBJECTS)
    r = tmp_path / "recordings.tsv"

    assert main(["cohort", "check", str(tmp_path)]) == 1
    out = capsys.readouterr()
    assert "cohort OK" not in out.out
    expected = {
        "nan": f"{sig / 'nan.npy'}: contains 1 NaN/Inf samples (first at sample 100",
        "flat": f"{sig / 'flat.npy'}: flat line: all 8000 samples equal 3 (disconnected electrode?)",
        "short": f"{sig / 'short.npy'}: too short: 800 samples = 0.200 s",
        "half": f"{sig / 'half.dat'}: truncated: 8000 bytes but the header half.hea needs 16000",
        "rate": "wrong sampling rate: the sample sheet says 8000 Hz but the file says 4000 Hz",
        "edf": f"{sig / 'claims50.edf'}: truncated: 16000 data bytes but the header announces 50 records",
    }
    row = {rid: i + 2 for i, (rid, *_) in enumerate(rows)}
    for rid, problem in expected.items():
        assert f"{r}, row {row[rid]}: recording '{rid}': " in out.err and problem in out.err, rid
    assert "6 problems in the cohort sample sheets" in out.err
    # only the one readable recording counts towards the totals: 2.0 s, not 2.0 + 0.2 + ...
    total = out.out.strip().splitlines()[-1].split()
    assert total[0] == "all" and float(total[-1]) == 2.0

    # --quick reads headers only: it still sees what headers and file sizes show, not NaN or flat samples
    assert main(["cohort", "check", "--quick", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    for rid in ("short", "half", "rate", "edf"):
        assert f"recording '{rid}': " in err, rid
    assert "too short: 0.200 s" in err and "the sample sheet says 8000 Hz but the file says 4000 Hz" in err
    assert "NaN" not in err and "flat line" not in err


def test_one_signal_in_two_rows_is_refused_unless_they_are_different_channels(tmp_path):
    np.save(tmp_path / "a.npy", np.random.default_rng(0).normal(size=8000))
    (tmp_path / "sub").mkdir()
    head = "recording_id\tsubject_id\tmuscle\tside\tlocation\tpath\tformat\tsampling_rate_hz\tchannel\n"
    sheet = tmp_path / "recordings.tsv"
    # two channels of one multi-channel file are two signals
    sheet.write_text(head + "x\tP1\tbiceps\tleft\tproximal\ta.npy\tnpy\t4000\t0\n"
                            "y\tP2\tbiceps\tleft\tproximal\ta.npy\tnpy\t4000\t1\n")
    assert len(read_recordings(sheet)) == 2
    # the same file by two spellings of its path, one patient: counted twice in the vote
    sheet.write_text(head + "x\tP1\tbiceps\tleft\tproximal\ta.npy\tnpy\t4000\t\n"
                            "y\tP1\tdeltoid\tleft\tproximal\tsub/../a.npy\tnpy\t4000\t\n")
    with pytest.raises(CohortError, match=r"rows 2, 3: recordings 'x', 'y' read the same signal \(.*a\.npy\): "
                                          r"subject P1 would count it twice"):
        read_recordings(sheet)
