"""Run manifest: what it records, and `nemg verify` flagging changed and missing outputs."""
import hashlib
import os
import subprocess

import pytest
import yaml

from nemg import __version__
from nemg.cli import main
from nemg.manifest import (PACKAGES, ManifestError, cpu_info, expand_files, git_state, read_files_table, verify,
                           write_manifest)


def git(repo, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                   capture_output=True)


@pytest.fixture
def run(tmp_path):
    """A run's working directory with outputs (one of them a folder) and its manifest; the code is a git repo."""
    repo = tmp_path / "code"
    repo.mkdir()
    (repo / "Snakefile").write_text("rule all:\n")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "init")
    work = tmp_path / "work"
    (work / "results" / "evaluate").mkdir(parents=True)
    (work / "results" / "evaluate" / "table2.tsv").write_text("metric\tvalue\naccuracy\t0.75\n")
    (work / "results" / "train").mkdir()
    (work / "results" / "train" / "best.pt").write_bytes(bytes(range(256)) * 4)
    (work / "results" / "cohort" / "signals").mkdir(parents=True)
    (work / "results" / "cohort" / "signals" / "r1.dat").write_bytes(b"\x00\x01" * 50)
    (work / "results" / "cohort" / "signals" / "r2.hea").write_text("r2 1 10000 10\n")
    files = ["results/evaluate/table2.tsv", "results/train/best.pt", "results/cohort/signals"]
    config = {"cohort": {"name": "ci", "seed": 1}, "folds": {"seeds": [0]}}
    cwd = os.getcwd()
    os.chdir(work)  # the workflow runs the script in the run's working directory
    try:
        write_manifest("results/manifest/ci", files, config, repo, versions={"snakemake": "9.27.1"})
    finally:
        os.chdir(cwd)
    return work, repo, work / "results" / "manifest" / "ci"


def test_manifest_records_files_config_commit_and_versions(run):
    work, repo, man = run
    rows = read_files_table(man / "files.tsv")
    assert [r[0] for r in rows] == ["results/cohort/signals/r1.dat", "results/cohort/signals/r2.hea",
                                    "results/evaluate/table2.tsv", "results/train/best.pt"]  # the folder expanded
    for path, size, sha in rows:
        data = (work / path).read_bytes()
        assert size == len(data) and sha == hashlib.sha256(data).hexdigest()
    assert yaml.safe_load((man / "config.yaml").read_text()) == {"cohort": {"name": "ci", "seed": 1},
                                                                 "folds": {"seeds": [0]}}
    info = yaml.safe_load((man / "run.yaml").read_text())
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    assert info["git_commit"] == head and info["git_dirty"] is False and info["git_changes"] == []
    assert info["nemg_version"] == __version__
    assert set(info["packages"]) == set(PACKAGES) and info["packages"]["snakemake"] == "9.27.1"
    assert info["packages"]["numpy"] != "not installed"
    assert info["n_files"] == 4 and info["total_bytes"] == sum(r[1] for r in rows)
    assert (man / info["root_from_manifest"]).resolve() == work.resolve()
    assert info["cpu"] == cpu_info() and info["cpu"]["label"]  # the machine's kind decides the last bits


def test_git_state_sees_edits_and_new_files(run, tmp_path):
    _, repo, _ = run
    assert git_state(repo).dirty is False
    (repo / "Snakefile").write_text("rule all:\n    input: 'x'\n")
    state = git_state(repo)
    assert state.dirty and any("Snakefile" in c for c in state.changed)
    git(repo, "checkout", "-q", "--", "Snakefile")
    (repo / "new_rule.smk").write_text("rule x:\n")  # an untracked rule file changes a run as much as an edit
    assert git_state(repo).dirty
    outside = tmp_path / "not_a_repo"
    outside.mkdir()
    assert git_state(outside).commit is None


def test_verify_passes_on_an_unchanged_run_from_any_folder(run, tmp_path, capsys):
    work, _, man = run
    result = verify(man)
    assert result.ok and result.n_files == 4 and not result.changed and not result.missing
    cwd = os.getcwd()
    os.chdir(tmp_path)  # the run's folder comes from the manifest, not from where verify is called
    try:
        assert main(["verify", str(man)]) == 0
    finally:
        os.chdir(cwd)
    assert "verify OK: all 4 files match" in capsys.readouterr().out


def test_verify_flags_a_changed_and_a_missing_output(run, capsys):
    work, _, man = run
    (work / "results" / "evaluate" / "table2.tsv").write_text("metric\tvalue\naccuracy\t0.95\n")  # same size
    (work / "results" / "cohort" / "signals" / "r2.hea").unlink()
    result = verify(man)
    assert not result.ok
    assert [p for p, _ in result.changed] == ["results/evaluate/table2.tsv"]
    assert "same size" in result.changed[0][1]
    assert result.missing == ["results/cohort/signals/r2.hea"]
    assert main(["verify", str(man)]) == 1
    err = capsys.readouterr().err
    assert "verify FAILED: 1 changed and 1 missing of 4 files" in err
    assert "changed  results/evaluate/table2.tsv" in err and "missing  results/cohort/signals/r2.hea" in err


def test_verify_with_an_explicit_root(run, tmp_path):
    work, _, man = run
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "results").symlink_to(work / "results")
    assert verify(man, root=copy).ok
    assert verify(man, root=tmp_path).missing  # the wrong folder: every file missing, none silently passed


def test_unreadable_manifests_name_the_file(run, tmp_path, capsys):
    work, _, man = run
    assert main(["verify", str(tmp_path / "nowhere")]) == 2
    assert "nowhere: no such manifest folder" in capsys.readouterr().err
    (man / "files.tsv").write_text("path\tsize_bytes\tsha256\nresults/x.tsv\tten\tabc\n")
    with pytest.raises(ManifestError, match=r"files.tsv, line 2: expected path, size in bytes and a SHA-256"):
        verify(man)
    (man / "files.tsv").write_text("something else\n")
    assert main(["verify", str(man)]) == 2
    assert "files.tsv: not a manifest file table" in capsys.readouterr().err


def test_a_listed_output_that_does_not_exist_is_an_error(tmp_path):
    with pytest.raises(ManifestError, match="nope.tsv: listed as an output of the run but does not exist"):
        expand_files([tmp_path / "nope.tsv"])
    with pytest.raises(ManifestError, match="nope.tsv"):
        write_manifest(tmp_path / "m", ["nope.tsv"], {}, tmp_path, root=tmp_path)


def test_a_store_comes_with_its_integrity_sidecar(tmp_path):
    """A store's <file>.check.json is written beside it, not declared as a rule output: the manifest lists it."""
    import numpy as np

    from nemg.store import store_check_path, write_store_check

    store = tmp_path / "segments.npy"
    np.save(store, np.zeros((3, 4), np.float32))
    assert expand_files([store]) == [store]
    write_store_check(store)
    assert expand_files([store]) == [store, store_check_path(store)]


INTEL = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 143
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx2 fma avx512f avx512_bf16 amx_bf16 amx_tile

processor\t: 1
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 999
"""
AMD = "vendor_id : AuthenticAMD\ncpu family : 25\nmodel : 17\nmodel name : AMD EPYC 9R14\nflags : avx2 fma avx512f\n"
ARM = "processor : 0\nBogoMIPS : 50.00\nFeatures : fp asimd sve\nCPU implementer : 0x41\nCPU part : 0xd40\n"


@pytest.mark.parametrize("text, label, isa", [
    (INTEL, "Intel family 6 model 143", ["avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16"]),
    (AMD, "AMD family 25 model 17", ["avx2", "fma", "avx512f"]),
    (ARM, None, ["asimd", "sve"]),
    (None, None, []),  # no /proc/cpuinfo (macOS, Windows)
])
def test_cpu_info_names_the_kind_of_cpu(tmp_path, text, label, isa):
    path = tmp_path / "cpuinfo"
    if text is not None:
        path.write_text(text)
    info = cpu_info(path)
    if label:
        assert info["label"] == label  # the first logical CPU's, not a later one's
        assert info["family"] == int(label.split()[2]) and info["model"] == int(label.split()[-1])
    else:
        assert info["label"] and info["family"] is None and info["model"] is None  # still a name, never empty
    assert info["isa"] == isa and info["logical_cpus"] == os.cpu_count()
