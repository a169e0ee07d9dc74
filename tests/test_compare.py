"""nemg compare: two runs' manifests, their outputs stage by stage, and whether a difference has a cause."""
import hashlib

import pytest
import yaml

from nemg.cli import main
from nemg.compare import compare

CPU = {"label": "AMD family 25 model 17", "vendor": "AMD"}
RUN = {"nemg_version": "0.1.0", "git_commit": "a" * 40, "git_dirty": False, "python": "3.11.7",
       "packages": {"torch": "2.13.0+cpu", "numpy": "2.4.6"}, "cpu": CPU}
FILES = {"results/cohort/sim/subjects.tsv": b"s1\tnormal\n",
         "results/segment/sim/segments.npy": b"\x00" * 64,
         "results/train/sim/r0/best.pt": b"weights-a",
         "results/train/sim/r0/curve.tsv": b"update\telapsed_s\n50\t1.25\n",
         "results/figures/sim/fig1.pdf": b"%PDF CreationDate 1",
         "results/evaluate/sim/table2.tsv": b"metric\tvalue\naccuracy\t0.9\n"}


def manifest(folder, files=FILES, run=RUN, config=None):
    folder.mkdir(parents=True)
    (folder / "run.yaml").write_text(yaml.safe_dump(run))
    (folder / "config.yaml").write_text(yaml.safe_dump(config or {"cohort": {"name": "sim"}}))
    rows = [f"{p}\t{len(d)}\t{hashlib.sha256(d).hexdigest()}" for p, d in files.items()]
    (folder / "files.tsv").write_text("path\tsize_bytes\tsha256\n" + "\n".join(rows) + "\n")
    return folder


def test_identical_runs_with_other_timings_and_dates(tmp_path, capsys):
    other = {**FILES, "results/train/sim/r0/curve.tsv": b"update\telapsed_s\n50\t1.31\n",
             "results/figures/sim/fig1.pdf": b"%PDF CreationDate 2"}
    a, b = manifest(tmp_path / "a"), manifest(tmp_path / "b", other)
    c = compare(a, b)
    assert c.identical and c.record == [] and c.config_equal
    assert c.stages["train"].identical == 1 and c.stages["train"].volatile == 1
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "verdict: identical" in out and "times or dates" in out


def test_another_kind_of_cpu_explains_different_networks(tmp_path, capsys):
    changed = {**FILES, "results/train/sim/r0/best.pt": b"weights-b",
               "results/evaluate/sim/table2.tsv": b"metric\tvalue\naccuracy\t0.93\n"}
    a = manifest(tmp_path / "a")
    b = manifest(tmp_path / "b", changed, {**RUN, "cpu": {"label": "Intel family 6 model 167"}})
    c = compare(a, b)
    assert not c.identical and c.n_differ == 2
    assert c.stages["train"].differ == ["results/train/sim/r0/best.pt"] and c.stages["segment"].identical == 1
    assert c.record == [("cpu", "AMD family 25 model 17", "Intel family 6 model 167")]
    assert main(["compare", str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert "different kinds of CPU (AMD family 25 model 17 / Intel family 6 model 167)" in out
    assert "results/evaluate/sim/table2.tsv" in out  # the first differing file of each stage is named


def test_a_difference_without_a_cause_is_flagged(tmp_path):
    a = manifest(tmp_path / "a")
    b = manifest(tmp_path / "b", {**FILES, "results/segment/sim/segments.npy": b"\x01" * 64})
    assert compare(a, b).verdict().startswith("DIFFERENT WITH NO CAUSE IN THE RECORDS")


@pytest.mark.parametrize("run_b, config_b, expected", [
    ({**RUN, "packages": {"torch": "2.13.0+cpu", "numpy": "2.5.0"}}, None, "another packages.numpy"),
    ({**RUN, "git_commit": "b" * 40}, None, "another git_commit"),
    (RUN, {"cohort": {"name": "sim", "seed": 1}}, "another config"),
    ({k: v for k, v in RUN.items() if k != "cpu"}, None, "does not record its CPU"),
])
def test_the_records_say_why_runs_differ(tmp_path, run_b, config_b, expected):
    a = manifest(tmp_path / "a")
    b = manifest(tmp_path / "b", {**FILES, "results/train/sim/r0/best.pt": b"other"}, run_b, config_b)
    assert expected in compare(a, b).verdict()


def test_outputs_in_one_run_only(tmp_path):
    fewer = {p: d for p, d in FILES.items() if "evaluate" not in p}
    more = {**FILES, "results/external/sim/x.tsv": b"x"}
    c = compare(manifest(tmp_path / "a", more), manifest(tmp_path / "b", fewer))
    assert c.stages["evaluate"].only_a == ["results/evaluate/sim/table2.tsv"]
    assert c.stages["external"].only_a == ["results/external/sim/x.tsv"] and not c.identical
    assert "DIFFERENT WITH NO CAUSE" in c.verdict()


def test_unreadable_manifests_name_the_file(tmp_path, capsys):
    a = manifest(tmp_path / "a")
    assert main(["compare", str(a), str(tmp_path / "nope")]) == 2
    assert "nope: no such manifest folder" in capsys.readouterr().err
    b = manifest(tmp_path / "b")
    (b / "files.tsv").write_text("path\tsize_bytes\tsha256\nresults/x\tten\tabc\n")
    assert main(["compare", str(a), str(b)]) == 2
    assert "files.tsv, line 2" in capsys.readouterr().err
    (b / "run.yaml").write_text("- a list\n")
    assert main(["compare", str(a), str(b)]) == 2
    assert "run.yaml: not a mapping" in capsys.readouterr().err
