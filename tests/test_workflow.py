"""The Snakemake workflow: dry run and lint for every config, a malformed config, and small real runs."""
import json
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))
SHARED = Path(os.environ.get("NEMG_SHARED_DATA", REPO.parent / "shared" / "data"))
# the pretraining (off in config.yaml; 180 simulated patients, minutes) is switched on and shrunk where a test
# exercises it (configs/ci.yaml has the same) and stated off in the other small real-data runs
NO_PRETRAIN = {"enabled": False}
TINY_PRETRAIN = {"enabled": True, "simulation": {"cohort": {"n_subjects": {"normal": 3, "myopathy": 3, "neuropathy": 3},
                                           "muscles_per_subject": [1, 1], "duration_s": [1.0, 1.5]}},
                 "val_fraction": 0.34, "train": {"max_epochs": 1}}
# The public-subset whole DAGs test wiring (what runs, from which weights, into which files), not learning: one
# epoch instead of the recipe's 16 keeps each of them a few minutes on a 2-core CI machine.
WIRING_RECIPE = {"max_epochs": 1}


# The whole-DAG tests' timeout is a safety net against a hung run, not a speed check: the N2001-subset DAG passed
# in minutes on a Zen 5 and ran past 900 s on a 2-core Zen 4 sharing its cores with two other jobs.
WHOLE_DAG_TIMEOUT = 2400


def snakemake(workdir, *args, timeout=600):
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(workdir), *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=workdir)


def configs_args(cfg):
    return [] if cfg is None else ["--configfile", cfg]


@pytest.mark.parametrize("cfg", [None] + CONFIGS, ids=lambda p: "default" if p is None else p.name)
def test_dry_run_and_lint(cfg, tmp_path):
    dry = snakemake(tmp_path, "-n", *configs_args(cfg))
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "segment" in dry.stdout
    # an inference-only run (external.only, configs/emgdb.yaml) has no cross-validation and makes no folds
    only = cfg is not None and ((yaml.safe_load(cfg.read_text()) or {}).get("external") or {}).get("only", False)
    assert ("make_folds" in dry.stdout) != bool(only)
    lint = snakemake(tmp_path, "--lint", *configs_args(cfg))
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "Congratulations, your workflow is in a good condition" in lint.stdout + lint.stderr


def test_broken_config_yaml_is_named_with_its_line(tmp_path):
    """Snakemake's own message for a config.yaml that is not YAML names neither the file nor the line."""
    mirror = tmp_path / "repo"
    mirror.mkdir()
    for entry in ("Snakefile", "workflow", "src", "envs", "configs"):
        (mirror / entry).symlink_to(REPO / entry)
    lines = (REPO / "config.yaml").read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith("train:"))
    lines.insert(at + 1, "  max_epochs: [3\n")
    (mirror / "config.yaml").write_text("".join(lines))
    work = tmp_path / "work"
    work.mkdir()
    res = subprocess.run([SNAKEMAKE, "-s", str(mirror / "Snakefile"), "-d", str(work), "-n"], capture_output=True,
                         text=True, timeout=600, cwd=work)
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert f"{mirror / 'config.yaml'}: 1 problem:\n  - not valid YAML: while parsing a flow sequence" in out, out[-3000:]
    assert f'in "{mirror / "config.yaml"}", line {at + 2}, column 15' in out, out[-3000:]


def test_malformed_config_gives_a_clear_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"preprocess": {"segment": {"hop_s": -1, "windw_s": 0.4}}}))
    res = snakemake(tmp_path, "-n", "--configfile", bad)
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "preprocess.segment.hop_s: -1 is not allowed: must be > 0" in out
    assert "unknown key 'windw_s' at preprocess.segment (did you mean 'window_s'?)" in out


def test_config_mapping_on_the_command_line_says_why_it_fails(tmp_path):
    """Snakemake reads the values inside `--config key={...}` as text; the error says so and what to do instead."""
    res = snakemake(tmp_path, "-n", "--config", "pretrain={enabled: true, seed: 3}")
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "pretrain.enabled: 'true' has the wrong type (str); expected boolean" in out
    assert "pretrain.seed: '3' has the wrong type (str); expected integer" in out
    assert out.count("put the section in a YAML file and pass it with --configfile") == 2, out[-2000:]


def test_first_weights_of_every_network_are_an_input(tmp_path):
    """train.init_from (a user's checkpoint) is an input of every training job, so a missing file stops the run
    naming it; with pretrain.enabled the pretraining's best.pt is; choosing both is refused at start-up."""
    mine = tmp_path / "mine.pt"
    cfg = tmp_path / "init.yaml"
    cfg.write_text(yaml.safe_dump({"train": {"init_from": str(mine)}}))
    res = snakemake(tmp_path, "-n", "--configfile", cfg)
    out = res.stdout + res.stderr
    assert res.returncode != 0 and "Missing input files" in out and str(mine) in out, out[-2000:]
    mine.write_bytes(b"")  # present: a dry run schedules the networks from it, no pretraining
    res = snakemake(tmp_path, "-n", "--configfile", cfg)
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", res.stdout + res.stderr, flags=re.M))
    assert res.returncode == 0 and jobs.get("train_fold") == "15" and "pretrain" not in jobs, res.stdout[-2000:]
    cfg.write_text(yaml.safe_dump({"pretrain": {"enabled": True}}))
    res = snakemake(tmp_path, "-n", "--configfile", cfg)
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", res.stdout + res.stderr, flags=re.M))
    assert res.returncode == 0 and jobs.get("pretrain") == "1", res.stdout[-2000:]
    assert jobs.get("simulate_cohort") == "2"  # the run's cohort and the pretraining's
    # every network waits for the pretraining: its chain goes first when jobs compete for cores
    blocks = re.split(r"^(?=rule \w+:$)", res.stdout, flags=re.M)
    prio = {(b.split(":")[0][5:], re.search(r"cohort=([^,\s]+)", b).group(1)): "priority: 10" in b
            for b in blocks if b.startswith("rule ") and "cohort=" in b}
    for rule in ("simulate_cohort", "trim", "resample", "segment"):
        assert prio[(rule, "pretrain_for_simulated")] and not prio[(rule, "simulated")], rule
    assert prio[("pretrain_split", "simulated")] and prio[("pretrain", "simulated")]
    assert not prio[("train_fold", "simulated")] and not prio[("baseline_features", "simulated")]
    cfg.write_text(yaml.safe_dump({"pretrain": {"enabled": True}, "train": {"init_from": str(mine)}}))
    res = snakemake(tmp_path, "-n", "--configfile", cfg)
    out = res.stdout + res.stderr
    assert res.returncode != 0 and "and pretrain.enabled both choose the first weights" in out, out[-2000:]
    # train.finetune_lr is the rate of the networks that start from the pretraining, not of the pretraining
    cfg.write_text(yaml.safe_dump({"pretrain": {"enabled": True, "train": {"finetune_lr": 1e-4}}}))
    res = snakemake(tmp_path, "-n", "--configfile", cfg)
    out = res.stdout + res.stderr
    assert res.returncode != 0 and "pretrain.train.finetune_lr: the pretraining stages learn at" in out, out[-2000:]
    # bundle.members: cv packs the CV's networks: `snakemake model` schedules no external training for them, and a
    # run without a nested cross-validation is refused by name
    cfg.write_text(yaml.safe_dump({"bundle": {"members": "cv"}}))
    res = snakemake(tmp_path, "-n", "model", "--configfile", cfg)
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", res.stdout + res.stderr, flags=re.M))
    assert res.returncode == 0 and jobs.get("train_fold") == "15" and "train_external" not in jobs, res.stdout[-2000:]
    assert re.search(r"rule model_bundle:\n\s+input:.*results/train/simulated/nested_s0_o4_i2/best\.pt", res.stdout)
    cfg.write_text(yaml.safe_dump({"bundle": {"members": "cv"}, "external": {"only": True}}))
    res = snakemake(tmp_path, "-n", "model", "--configfile", cfg)
    out = res.stdout + res.stderr
    assert res.returncode != 0 and "bundle.members: cv takes the nested cross-validation's networks" in out, out[-2000:]
    # bundle.combined (config.yaml: on) reads the cohort's QEMG features; without the logistic regression it is
    # refused by name, and off the bundle needs no QEMG job
    cfg.write_text("{}")
    res = snakemake(tmp_path, "-n", "model", "--configfile", cfg)
    assert re.search(r"rule model_bundle:\n\s+input:.*results/baseline/simulated/features\.npy", res.stdout), \
        (res.stdout + res.stderr)[-2000:]
    cases = [({"baseline": {"enabled": False}}, True), ({"baseline": {"models": ["rf"], "combine": []}}, True),
             ({"baseline": {"enabled": False}, "bundle": {"combined": False}}, False)]
    for overlay, refused in cases:
        cfg.write_text(yaml.safe_dump(overlay))
        res = snakemake(tmp_path, "-n", "model", "--configfile", cfg)
        out = res.stdout + res.stderr
        if refused:
            assert res.returncode != 0 and "bundle.combined: true packs the QEMG logistic regression" in out, out[-2000:]
        else:
            assert res.returncode == 0 and "baseline_features" not in job_stats(res.stdout), out[-2000:]


def test_results_readme_is_per_cohort(tmp_path):
    """Two configs run in one folder used to write the same results/README.md, the last run's index
    overwriting the other's; each cohort now has its own."""
    outputs = {}
    for cfg in (None, REPO / "configs" / "ci.yaml"):
        dry = snakemake(tmp_path, "-n", *configs_args(cfg))
        assert dry.returncode == 0, dry.stdout + dry.stderr
        block = dry.stdout.split("rule results_readme:", 1)[1]
        outputs[cfg] = block.split("output:", 1)[1].splitlines()[0].strip()
    assert outputs == {None: "results/README.simulated.md", REPO / "configs" / "ci.yaml": "results/README.ci.md"}


def job_stats(dry_run_stdout):
    """rule -> job count, from the "Job stats" table of a dry run."""
    table = dry_run_stdout.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


@pytest.mark.parametrize("order", ["reversed", "shuffled"])
def test_rule_files_in_any_include_order(order, tmp_path):
    """Every setting, path and target list lives in common.smk (and common/*.smk), so the rule files can be
    included in any order after it: the same DAG as the Snakefile's order. Before, a rule file used names that
    another rule file defined (TRAIN_RUN_IDS, EVAL, BASELINE_CFG, ...) and a reversed order failed to parse."""
    text = (REPO / "Snakefile").read_text()
    include = re.compile(r'^include: "workflow/rules/(\w+)\.smk"\n', re.M)
    rule_files = [name for name in include.findall(text) if name != "common"]
    assert include.findall(text)[0] == "common" and len(rule_files) > 5
    if order == "reversed":
        new_order = rule_files[::-1]
    else:
        new_order = list(rule_files)
        random.Random(13).shuffle(new_order)
        assert new_order not in (rule_files, rule_files[::-1])
    body = include.sub(lambda m: m.group(0) if m.group(1) == "common" else "", text)
    body = body.replace('include: "workflow/rules/common.smk"\n', 'include: "workflow/rules/common.smk"\n' + "".join(
        f'include: "workflow/rules/{name}.smk"\n' for name in new_order))
    # the Snakefile's folder is the repository root (workflow.basedir): a mirror of it with only the Snakefile new
    mirror = tmp_path / "repo"
    mirror.mkdir()
    for entry in ("workflow", "src", "envs", "config.yaml", "configs"):
        (mirror / entry).symlink_to(REPO / entry)
    (mirror / "Snakefile").write_text(body)
    workdirs = {name: tmp_path / name for name in ("shipped", order)}
    runs = {}
    for (name, workdir), snakefile in zip(workdirs.items(), (REPO / "Snakefile", mirror / "Snakefile")):
        workdir.mkdir()
        runs[name] = subprocess.run([SNAKEMAKE, "-s", str(snakefile), "-d", str(workdir), "-n"], capture_output=True,
                                    text=True, timeout=600, cwd=workdir)
        assert runs[name].returncode == 0, f"{name}:\n{runs[name].stdout[-3000:]}{runs[name].stderr[-3000:]}"
    assert job_stats(runs[order].stdout) == job_stats(runs["shipped"].stdout) != {}


def check_outputs(workdir, cohort, min_subjects):
    res = Path(workdir) / "results"
    segs = np.load(res / "segment" / cohort / "segments.npy", mmap_mode="r")
    idx = pd.read_csv(res / "segment" / cohort / "segments_index.tsv", sep="\t")
    sig = pd.read_csv(res / "resample" / cohort / "signals_index.tsv", sep="\t")
    assert segs.shape == (len(idx), 4000) and segs.dtype == np.float32
    assert set(sig["fs_hz"]) == {10_000.0}
    # segment counts per recording follow floor((n - window) / hop) + 1
    counts = idx.groupby("recording_id").size()
    expect = {r: (n - 4000) // 1000 + 1 for r, n in zip(sig["recording_id"], sig["n_samples"]) if n >= 4000}
    assert counts.to_dict() == expect
    qc = pd.read_csv(res / "trim" / cohort / "trim_qc.tsv", sep="\t")
    assert set(qc["status"]) <= {"kept", "excluded"} and len(qc) >= len(sig)
    assert (res / "trim" / cohort / "trim_qc.png").stat().st_size > 10_000
    folds = pd.read_csv(res / "folds" / cohort / "folds.tsv", sep="\t")
    assert folds["subject_id"].nunique() >= min_subjects
    assert "passed" in (res / "folds" / cohort / "leakage_check.txt").read_text()
    return folds


@pytest.mark.slow
def test_ci_config_runs_to_folds(tmp_path):
    res = snakemake(tmp_path, "folds", "preprocess", "--cores", "2", "--configfile", REPO / "configs" / "ci.yaml")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    folds = check_outputs(tmp_path, "ci", 12)
    assert set(folds["scheme"]) == {"nested", "repeated_kfold"}

    # a planted leak in the folds table stops the workflow at the leakage gate
    path = tmp_path / "results" / "folds" / "ci" / "folds.tsv"
    i = folds.index[(folds.run_id == "nested_s0_o0_i0") & (folds.role == "train")][0]
    pd.concat([folds, folds.loc[[i]].assign(role="test")]).to_csv(path, sep="\t", index=False)
    res = snakemake(tmp_path, "results/folds/ci/leakage_check.txt", "--forcerun", "check_leakage", "--cores", "1",
                    "--configfile", REPO / "configs" / "ci.yaml")
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "leakage check failed" in out and "appears 2 times" in out


N2001_FEW = ["N2001A01", "N2001A03", "N2001C01", "N2001C02", "N2001M02", "N2001M03"]
MESSEKHER_FEW = ["healthy_01", "healthy_02", "myopathy_01", "myopathy_02", "neuropathy_01", "neuropathy_02"]
# Cross-validated cohorts need 4 patients per class: nested 2 x 2 then keeps every class in every test and
# validation fold (fewer is a FoldError at make_folds); the external test cohorts above need no folds.
N2001_CV = N2001_FEW + ["N2001A04", "N2001A06", "N2001C03", "N2001C04", "N2001M04", "N2001M05"]
MESSEKHER_CV = MESSEKHER_FEW + ["healthy_03", "healthy_04", "myopathy_03", "myopathy_04", "neuropathy_03",
                                "neuropathy_04"]


def public(dataset, subjects, name=None):
    """A cohort section on the public data found by these tests (not necessarily ../shared/data)."""
    return {**({"name": name} if name else {}), "source": "public", "subjects": subjects,
            "public": {"dataset": dataset, "data_dir": str(SHARED)}}


def needs_shared(*folders):
    missing = [f for f in folders if not (SHARED / f).is_dir()]
    if missing:
        pytest.skip(f"public data {missing} not found under {SHARED} (set NEMG_SHARED_DATA)")


def check_external(workdir, train, tests, n_models):
    """The external-validation table: one row per (test cohort, model); only test-cohort patients were voted,
    and the test cohort was preprocessed under its own key, at the training run's rate."""
    xv = Path(workdir) / "results" / "external" / train
    table = pd.read_csv(xv / "external_validation.tsv", sep="\t")
    assert sorted(set(table["test_cohort"])) == sorted(tests)
    # nEMGNet, each QEMG model, and each combined stage 2 of the two (baseline.combine: [logreg, rf])
    assert set(table["model"]) == {"nemgnet", "logreg", "rf", "combined_logreg", "combined_rf"}
    assert set(table["n_models"]) == {n_models}
    assert table["accuracy_consensus"].between(0, 1).all()
    assert (xv / "external_validation.html").stat().st_size > 1000
    split = pd.read_csv(xv / "split.tsv", sep="\t", dtype={"subject_id": str})
    for test in tests:
        # a calibrated variant "<name>.rms" shares its uncalibrated twin's sheets and resampled signals
        key = f"{test.removesuffix('.rms')}_for_{train}"
        if test.endswith(".rms"):
            assert not (Path(workdir) / "results" / "trim" / f"{test}_for_{train}").exists()  # not preprocessed twice
            assert (Path(workdir) / "results" / "segment" / f"{test}_for_{train}" / "segments.npy").is_file()
        test_subjects = pd.read_csv(Path(workdir) / "results" / "cohort" / key / "subjects.tsv", sep="\t")
        pp = pd.read_csv(xv / test / "nemgnet" / "patient_predictions.tsv", sep="\t", dtype={"subject_id": str})
        assert set(pp["subject_id"]) == set(test_subjects["subject_id"])
        assert not set(pp["subject_id"]) & set(split["subject_id"])
        sig = pd.read_csv(Path(workdir) / "results" / "resample" / key / "signals_index.tsv", sep="\t")
        assert set(sig["fs_hz"]) == {10_000.0}
    return table


@pytest.mark.slow
@pytest.mark.shared_data
def test_n2001_subset_whole_dag_with_external_validation(tmp_path):
    """configs/n2001.yaml on twelve subjects: the whole DAG (no ratings sheet) plus its external validation on six
    Messekher subjects."""
    needs_shared("emglab_n2001", "messekher2023_needle_emg")
    cfg = tmp_path / "n2001_small.yaml"
    cfg.write_text(yaml.safe_dump({
        "cohort": public("n2001", N2001_CV, "n2001_small"),
        "folds": {"seeds": [0], "schemes": ["nested"], "nested": {"outer": 2, "inner": 2}},
        "external": {"cohorts": {"messekher2023": public("messekher2023", MESSEKHER_FEW)}, "seeds": [0, 1],
                     "val_fraction": 0.34, "amplitude_calibration": ["none", "median_rms"]},
        "pretrain": NO_PRETRAIN,
        "train": WIRING_RECIPE,
    }))
    res = snakemake(tmp_path, "--cores", "2", "--configfile", REPO / "configs" / "n2001.yaml", cfg,
                    timeout=WHOLE_DAG_TIMEOUT)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    folds = check_outputs(tmp_path, "n2001_small", 12)
    assert folds["run_id"].nunique() == 4
    sheet = pd.read_csv(tmp_path / "results" / "cohort" / "n2001_small" / "recordings.tsv", sep="\t")
    assert not (tmp_path / "results" / "cohort" / "n2001_small" / "signals").exists()  # data never copied
    assert len(sheet) == 96  # 8 records for each of the 12 subjects
    assert (tmp_path / "results" / "evaluate" / "n2001_small" / "model_comparison.tsv").is_file()
    table = check_external(tmp_path, "n2001_small", ["messekher2023", "messekher2023.rms"], 2)
    # the calibrated variant: the same segments, times one gain that brings Messekher's RMS to N2001's
    gain_row = pd.read_csv(tmp_path / "results" / "external" / "n2001_small" / "messekher2023.rms" /
                           "amplitude_gain.tsv", sep="\t").iloc[0]
    gain = gain_row["gain"]
    assert 0.01 < gain < 0.5  # Messekher is recorded several times louder than N2001
    # ... and the other way up: most N2001 recordings skew positive, most Messekher ones negative
    assert gain_row["train_negative_share"] < 0.5 < gain_row["test_negative_share"]
    seg = tmp_path / "results" / "segment"
    plain = np.load(seg / "messekher2023_for_n2001_small" / "segments.npy", mmap_mode="r")
    scaled = np.load(seg / "messekher2023.rms_for_n2001_small" / "segments.npy", mmap_mode="r")
    np.testing.assert_allclose(scaled[:50], plain[:50] * gain, rtol=1e-4, atol=1e-3)
    assert set(table.loc[table["test_cohort"] == "messekher2023.rms", "calibration"]) == {"median_rms"}
    assert "external validation" in (tmp_path / "results" / "README.n2001_small.md").read_text()


def job_inputs(dry_run_stdout):
    """(rule, cohort wildcard) -> the inputs of each job of a dry run (-n), as one string."""
    blocks = re.split(r"^(?=rule \w+:$)", dry_run_stdout, flags=re.M)
    out = {}
    for b in blocks:
        if b.startswith("rule ") and (m := re.search(r"wildcards: .*?cohort=([^,\s]+)", b)):
            inputs = re.search(r"^\s+input: (.*)$", b, flags=re.M)
            out.setdefault((b.split(":")[0][5:], m.group(1)), []).append(inputs.group(1) if inputs else "")
    return out


@pytest.mark.shared_data
def test_two_stage_pretraining_wiring(tmp_path):
    """pretrain.simulated_first: the pretraining on pretrain.cohort starts from a network trained on simulated
    patients; the cross-validation networks start from the second stage, and the external networks tested on the
    pretraining cohort's patients from the first (without the first stage: from random weights)."""
    needs_shared("emglab_n2001")
    cfg = tmp_path / "two_stage.yaml"
    base = {"external": {"cohorts": {"n2001": public("n2001", N2001_FEW)}, "seeds": [0],
                         "amplitude_calibration": ["none"]}}
    n2001 = public("n2001", N2001_FEW)
    cfg.write_text(yaml.safe_dump({**base, "pretrain": {"enabled": True, "cohort": n2001, "simulated_first": True}}))
    res = snakemake(tmp_path, "-n", "--configfile", cfg)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    jobs = job_stats(res.stdout)
    assert jobs["pretrain_simulated"] == jobs["pretrain"] == jobs["pretrain_simulated_split"] == 1, jobs
    assert jobs["simulate_cohort"] == 2 and jobs["import_cohort"] == 2  # run + stage 1; stage 2 + external
    assert "the external networks start from the simulated first stage" in out
    inputs = job_inputs(res.stdout)
    first, second = "results/pretrain/simulated/simulated/best.pt", "results/pretrain/simulated/best.pt"
    assert first in inputs[("pretrain", "simulated")][0]
    assert "best.pt" not in inputs[("pretrain_simulated", "simulated")][0]  # stage 1 from random weights
    assert "pretrain_simulated_for_simulated" in inputs[("pretrain_simulated_split", "simulated")][0]
    assert all(second in i for i in inputs[("train_fold", "simulated")])
    ext = inputs[("train_external", "simulated")]
    assert len(ext) == 1 and first in ext[0] and second not in ext[0]
    # the first stage's chain has the pretraining's priority too
    blocks = [b for b in re.split(r"^(?=rule \w+:$)", res.stdout, flags=re.M)
              if "cohort=pretrain_simulated_for_simulated" in b]
    assert blocks and all("priority: 10" in b for b in blocks)
    assert "train_external_pretrained" not in jobs  # no test cohort here wants networks from the pretraining
    # a test cohort the pretraining did not see, and the bundle, get networks from the pretraining like the CV's, on
    # the external split; the one it saw keeps the first stage's, and the model card is told which is which
    other = {"source": "simulated", "seed": 7, "name": "other"}
    two = {"external": {**base["external"], "cohorts": {**base["external"]["cohorts"], "other": other}},
           "pretrain": {"enabled": True, "cohort": n2001, "simulated_first": True}}
    cfg.write_text(yaml.safe_dump(two))
    res = snakemake(tmp_path, "-n", "all", "model", "--configfile", cfg)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    jobs, inputs = job_stats(res.stdout), job_inputs(res.stdout)
    assert jobs["train_external_pretrained"] == jobs["train_external"] == 1, jobs
    pre_net = inputs[("train_external_pretrained", "simulated")][0]
    assert second in pre_net and first not in pre_net and "results/external/simulated/split.tsv" in pre_net
    assert "models_pretrained/ext_s0/best.pt" in inputs[("model_bundle", "simulated")][0]
    blocks = {re.search(r"output: (\S+)", b).group(1): b for b in re.split(r"^(?=rule \w+:$)", res.stdout, flags=re.M)
              if b.startswith("rule predict_external:")}
    assert len(blocks) == 2, list(blocks)
    for out, b in blocks.items():
        seen = "/n2001/" in out
        assert ("results/external/simulated/models/ext_s0/best.pt" in b) == seen, b
        assert ("results/external/simulated/models_pretrained/ext_s0/best.pt" in b) != seen, b
    # ... and their stage 2 is fit on the validation scores of the networks that scored them
    votes = [b for b in re.split(r"^(?=rule \w+:$)", res.stdout, flags=re.M)
             if b.startswith("rule external_vote:") and "arm=nemgnet" in b]
    assert len(votes) == 2
    for b in votes:
        seen = "test=n2001" in b
        assert ("models/ext_s0/predictions.tsv" in b) == seen and ("models_pretrained/ext_s0/" in b) != seen, b
    # one stage: the external networks start from random weights
    cfg.write_text(yaml.safe_dump({**base, "pretrain": {"enabled": True, "cohort": n2001}}))
    res = snakemake(tmp_path, "-n", "model", "--configfile", cfg)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    assert "pretrain_simulated" not in job_stats(res.stdout)
    assert "best.pt" not in job_inputs(res.stdout)[("train_external", "simulated")][0]
    assert second in job_inputs(res.stdout)[("train_external_pretrained", "simulated")][0]
    assert "the external networks start from random weights" in res.stdout + res.stderr
    # a pretraining that saw no test cohort: one set of networks for every test cohort and the bundle
    cfg.write_text(yaml.safe_dump({**base, "pretrain": {"enabled": True}}))
    res = snakemake(tmp_path, "-n", "model", "--configfile", cfg)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    jobs, inputs = job_stats(res.stdout), job_inputs(res.stdout)
    assert "train_external_pretrained" not in jobs and second in inputs[("train_external", "simulated")][0], jobs
    assert "results/external/simulated/models/ext_s0/best.pt" in inputs[("model_bundle", "simulated")][0]
    # a first stage before nothing is a config mistake
    cfg.write_text(yaml.safe_dump({"pretrain": {"enabled": True, "simulated_first": True}}))
    res = snakemake(tmp_path, "-n", "--configfile", cfg)
    assert res.returncode != 0 and "pretrain.simulated_first: a first stage" in res.stdout + res.stderr


def test_auxiliary_qemg_targets_are_each_training_jobs_own_store_features(tmp_path):
    """train.aux_qemg: every training job gets the QEMG features of the store it trains on as an input (the
    pretraining's of the pretraining cohort, with pretrain.train.aux_qemg); switched off, none does."""
    cfg = tmp_path / "aux.yaml"
    sim = {"cohort": {"n_subjects": {"normal": 3, "myopathy": 3, "neuropathy": 3}}}
    both = {"simulation": sim, "train": {"aux_qemg": 0.5}, "pretrain": {**TINY_PRETRAIN, "train": {"aux_qemg": 0.5}}}
    cfg.write_text(yaml.safe_dump(both))
    res = snakemake(tmp_path, "-n", "--configfile", cfg)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    inputs, jobs = job_inputs(res.stdout), job_stats(res.stdout)
    assert inputs[("train_fold", "simulated")]
    assert all("results/baseline/simulated/features.npy" in i for i in inputs[("train_fold", "simulated")])
    assert "results/baseline/pretrain_for_simulated/features.npy" in inputs[("pretrain", "simulated")][0]
    assert jobs["baseline_features"] == 2, jobs  # the run's cohort and the pretraining's
    # the pretraining takes the run's recipe, so only pretrain.train.aux_qemg 0 keeps it to the fine-tuning
    cfg.write_text(yaml.safe_dump({**both, "pretrain": TINY_PRETRAIN}))
    res = snakemake(tmp_path, "-n", "--configfile", cfg)
    assert "results/baseline/pretrain_for_simulated/features.npy" in job_inputs(res.stdout)[("pretrain", "simulated")][0]
    cfg.write_text(yaml.safe_dump({**both, "pretrain": {**TINY_PRETRAIN, "train": {"aux_qemg": 0.0}}}))
    res = snakemake(tmp_path, "-n", "--configfile", cfg)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    inputs = job_inputs(res.stdout)
    assert "features.npy" not in inputs[("pretrain", "simulated")][0]
    assert all("results/baseline/simulated/features.npy" in i for i in inputs[("train_fold", "simulated")])
    # off (the default): no training job waits for the features
    cfg.write_text(yaml.safe_dump({"simulation": sim, "pretrain": TINY_PRETRAIN}))
    res = snakemake(tmp_path, "-n", "--configfile", cfg)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    inputs = job_inputs(res.stdout)
    assert not any("features.npy" in i for i in inputs[("train_fold", "simulated")] + inputs[("pretrain", "simulated")])
    # the path is the workflow's: a user's is refused, not silently replaced
    cfg.write_text(yaml.safe_dump({"train": {"aux_qemg": 0.5, "aux_features": "mine.npy"}}))
    res = snakemake(tmp_path, "-n", "--configfile", cfg)
    assert res.returncode != 0 and "leave it unset and set train.aux_qemg only" in res.stdout + res.stderr


@pytest.mark.slow
@pytest.mark.shared_data
def test_messekher_subset_whole_dag_with_external_validation(tmp_path):
    """configs/messekher.yaml on twelve subjects (ASCII recordings at 32 768 Hz), external validation on N2001,
    pretrained in two stages, simulated patients then N2001 (pretrain.cohort, simulated_first): the
    cross-validation networks start from the second stage, the external networks, tested on N2001, from the
    first."""
    import torch

    needs_shared("emglab_n2001", "messekher2023_needle_emg")
    cfg = tmp_path / "messekher_small.yaml"
    cfg.write_text(yaml.safe_dump({
        "cohort": public("messekher2023", MESSEKHER_CV, "messekher_small"),
        "folds": {"seeds": [0], "schemes": ["nested"], "nested": {"outer": 2, "inner": 2}},
        "external": {"cohorts": {"n2001": public("n2001", N2001_FEW)}, "seeds": [0], "val_fraction": 0.34},
        "pretrain": {**TINY_PRETRAIN, "cohort": public("n2001", N2001_FEW), "simulated_first": True},
        "train": WIRING_RECIPE,
    }))
    res = snakemake(tmp_path, "--cores", "2", "all", "model", "--configfile", REPO / "configs" / "messekher.yaml",
                    cfg, timeout=WHOLE_DAG_TIMEOUT)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    check_outputs(tmp_path, "messekher_small", 12)
    t2 = pd.read_csv(tmp_path / "results" / "evaluate" / "messekher_small" / "table2.tsv", sep="\t")
    assert "physicians_mean_ci_raters" not in t2.columns  # no ratings sheet for public data
    check_external(tmp_path, "messekher_small", ["n2001", "n2001.rms"], 1)  # the config asks for both variants
    # the pretraining read N2001's recordings where they are (never copied) and trained on its patients
    res_dir = tmp_path / "results"
    split = pd.read_csv(res_dir / "pretrain" / "messekher_small" / "split.tsv", sep="\t")
    assert set(split["subject_id"]) == set(N2001_FEW)
    assert not (res_dir / "cohort" / "pretrain_for_messekher_small" / "signals").exists()
    # ... starting from the first stage, trained on simulated patients only
    first = "results/pretrain/messekher_small/simulated/best.pt"
    stage2 = torch.load(res_dir / "pretrain" / "messekher_small" / "best.pt", weights_only=True)
    assert stage2["train_cfg"]["init_from"] == first
    sim_split = pd.read_csv(res_dir / "pretrain" / "messekher_small" / "simulated" / "split.tsv", sep="\t")
    assert len(sim_split) == 9 and sim_split["subject_id"].str.startswith("P").all()
    stage1 = torch.load(res_dir / "pretrain" / "messekher_small" / "simulated" / "best.pt", weights_only=True)
    assert stage1["train_cfg"]["init_from"] is None
    cv = torch.load(res_dir / "train" / "messekher_small" / "nested_s0_o0_i0" / "best.pt", weights_only=True)
    assert cv["train_cfg"]["init_from"] == "results/pretrain/messekher_small/best.pt"
    ext = torch.load(res_dir / "external" / "messekher_small" / "models" / "ext_s0" / "best.pt", weights_only=True)
    assert ext["train_cfg"]["init_from"] == first  # it saw no N2001 patient before its test
    # the bundle is what the cross-validation measured: its member started from the second stage, on the same split
    member = res_dir / "external" / "messekher_small" / "models_pretrained" / "ext_s0" / "best.pt"
    assert torch.load(member, weights_only=True)["train_cfg"]["init_from"] == "results/pretrain/messekher_small/best.pt"
    meta = json.loads((res_dir / "model" / "messekher_small" / "model.json").read_text())
    assert [m["init_from"] for m in meta["members"]] == ["results/pretrain/messekher_small/best.pt"]
    assert meta["external_networks_start"]["cohorts"] == ["n2001"]
    bundled = torch.load(res_dir / "model" / "messekher_small" / "weights" / "ext_s0.pt", weights_only=True)
    trained = torch.load(member, weights_only=True)["state_dict"]
    assert bundled.keys() == trained.keys() and all(torch.equal(bundled[k], trained[k]) for k in bundled)
    assert "The rows of `n2001`" in (res_dir / "model" / "messekher_small" / "MODEL_CARD.md").read_text()


@pytest.mark.slow
@pytest.mark.shared_data
def test_emgdb_inference_only_smoke(tmp_path):
    """configs/emgdb.yaml with a six-subject N2001 training cohort: no cross-validation, the three emgdb
    subjects (4 kHz, upsampled to the training rate) diagnosed by the N2001 model."""
    needs_shared("emglab_n2001", "physionet_emgdb")
    cfg = tmp_path / "emgdb_small.yaml"
    cfg.write_text(yaml.safe_dump({
        "cohort": public("n2001", N2001_FEW),
        "external": {"cohorts": {"emgdb": {"public": {"data_dir": str(SHARED)}}}, "val_fraction": 0.34},
        "pretrain": TINY_PRETRAIN,  # an inference-only run pretrains too: its external networks start there
        "train": WIRING_RECIPE,
    }))
    res = snakemake(tmp_path, "--cores", "2", "--configfile", REPO / "configs" / "emgdb.yaml", cfg,
                    timeout=WHOLE_DAG_TIMEOUT)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    table = check_external(tmp_path, "n2001_emgdb", ["emgdb", "emgdb.rms"], 1)
    assert set(table["n_test_patients"]) == {3}
    assert not (tmp_path / "results" / "train").exists()  # external.only: no cross-validation runs
    readme = (tmp_path / "results" / "README.n2001_emgdb.md").read_text()
    assert "external validation" in readme and "Table 2" not in readme and "(missing)" not in readme
    # the manifest of an inference-only run: the test cohorts' preprocessing and the external models included
    _, listed = manifest_lists_every_output(tmp_path, "n2001_emgdb")
    assert any(f.startswith("results/segment/emgdb.rms_for_n2001_emgdb/") for f in listed)
    rep = snakemake(tmp_path, "--report", tmp_path / "report.html", "--configfile", REPO / "configs" / "emgdb.yaml",
                    cfg)
    assert rep.returncode == 0, rep.stdout[-2000:] + rep.stderr[-2000:]
    assert "external_validation.html" in (tmp_path / "report.html").read_text(errors="replace")


REVIEW_FIGURES = ("training_curves", "calibration", "patient_probabilities", "recording_timeline",
                  "external_confusion")


@pytest.mark.slow
def test_ci_config_full_dag_and_report(tmp_path, capsys):
    """The whole DAG on the tiny CI cohort: training, divide-and-vote, tables, figures, the review figures,
    results/README.ci.md, the run manifest (and `nemg verify` on it) and the Snakemake report with its landing
    page.

    External validation on six more simulated subjects (own sheets: simulated cohorts share subject ids, which
    external validation refuses), so every review figure is drawn."""
    from nemg.simulate import simulate_cohort

    ext = tmp_path / "ext_data"
    simulate_cohort({"cohort": {"n_subjects": {"normal": 2, "myopathy": 2, "neuropathy": 2}, "subject_prefix": "X",
                                "muscles_per_subject": [2, 3], "duration_s": [1.0, 1.5]},
                     "artifacts": {"duration_s": [0.2, 0.5]}}, ext, seed=5)
    ext_cfg = tmp_path / "ci_external.yaml"
    ext_cfg.write_text(yaml.safe_dump({"external": {"cohorts": {"ci_external": {
        "source": "sheets", "sheets": {"subjects": str(ext / "subjects.tsv"),
                                       "recordings": str(ext / "recordings.tsv")}}}}}))
    cfg = ["--configfile", REPO / "configs" / "ci.yaml", ext_cfg]
    res = snakemake(tmp_path, "--cores", "2", *cfg, timeout=WHOLE_DAG_TIMEOUT)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    ev, fig = tmp_path / "results" / "evaluate" / "ci", tmp_path / "results" / "figures" / "ci"
    for name in ("table1", "table2", "s2_table", "failure_summary", "per_class_correct", "physician_metrics",
                 "model_vs_physicians"):
        assert (ev / f"{name}.tsv").stat().st_size > 50 and (ev / f"{name}.html").is_file(), name
    for name in ("fig1_roc_pr", "s2_fig_roc_pr_location", "fig2_confusion", "s3_fig_confusion_location",
                 "fig3_activation_maximization", "s4_fig_mispredicted", "s1_fig_model_structure"):
        for ext in ("png", "pdf"):
            assert (fig / f"{name}.{ext}").stat().st_size > 10_000, name
    t2 = pd.read_csv(ev / "table2.tsv", sep="\t")
    assert list(t2["metric"]) == ["accuracy", "precision", "recall", "specificity", "f1"]
    assert "physicians_mean_ci_raters" in t2.columns  # the simulated cohort has a ratings sheet
    # the stage-2 classifier saw only validation patients: every voted patient is a test patient of its run
    pp = pd.read_csv(ev / "patient_predictions.tsv", sep="\t")
    folds = pd.read_csv(tmp_path / "results" / "folds" / "ci" / "folds.tsv", sep="\t")
    roles = folds.set_index(["run_id", "subject_id"])["role"]
    assert (roles.loc[list(zip(pp["run_id"], pp["subject_id"]))] == "test").all()
    # the combined arms (nEMGNet + a QEMG model in one stage 2) sit beside nEMGNet alone, on the same patients
    comparison = pd.read_csv(ev / "model_comparison.tsv", sep="\t")
    assert {"nEMGNet_consensus_bootstrap", "combined_logreg_consensus_bootstrap",
            "combined_rf_consensus_bootstrap"} <= set(comparison.columns)
    combined = pd.read_csv(ev / "combined_logreg" / "patient_predictions.tsv", sep="\t")
    assert set(zip(combined["run_id"], combined["subject_id"])) == set(zip(pp["run_id"], pp["subject_id"]))
    # ... and in external validation, on the same test patients as nEMGNet alone
    xv = pd.read_csv(tmp_path / "results" / "external" / "ci" / "external_validation.tsv", sep="\t")
    assert {"nemgnet", "logreg", "rf", "combined_logreg", "combined_rf"} <= set(xv["model"])
    assert xv.groupby(["test_cohort", "model"])["n_test_patients"].first().groupby("test_cohort").nunique().eq(1).all()
    readme = (tmp_path / "results" / "README.ci.md").read_text()
    assert "Table 2" in readme and "(missing)" not in readme
    check_pretraining(tmp_path)
    check_review_figures(tmp_path, fig, ev)
    rep = snakemake(tmp_path, "--report", tmp_path / "report.html", *cfg)
    assert rep.returncode == 0, rep.stdout[-2000:] + rep.stderr[-2000:]
    assert (tmp_path / "report.html").stat().st_size > 100_000
    html = (tmp_path / "report.html").read_text(errors="replace")
    # the landing page: rendered (no Jinja or reST error), with the cohort, the config files and the commit
    assert "nemg: needle-EMG diagnosis of normal, myopathy and neuropathy -- cohort ci" in html
    assert "config.yaml + configs/ci.yaml + " in html and "report built from commit" in html
    assert "System Message" not in html and "Unknown target" not in html
    for name in REVIEW_FIGURES:  # each figure in the report under its own caption
        assert f'"results/figures/ci/{name}.png": {{"name": "{name}.png"' in html, name
    for caption in ("Training curves", "Calibration", "Every patient", "Where the call came from",
                    "External validation, confusion matrices"):  # the caption's opening, rendered
        assert f'"caption": "<p><strong>{caption}</strong>' in html, caption
    assert '"4 Calibration and patients": {' in html and '"labels": {"item": "calibration", "cohort": "ci"' in html

    # the same run again on the same machine: every output bit for bit, those with times or dates aside (what
    # nemg compare calls identical; a new output with a timestamp, or a step that is not deterministic, fails)
    from nemg.compare import compare

    first = tmp_path / "first_manifest"
    shutil.copytree(tmp_path / "results" / "manifest" / "ci", first)
    again = snakemake(tmp_path, "--cores", "2", "--forceall", *cfg, timeout=WHOLE_DAG_TIMEOUT)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    same = compare(first, tmp_path / "results" / "manifest" / "ci")
    assert same.identical, same.report(show=10)
    assert same.record == [] and same.config_equal and same.cpu[0] != "unknown"
    assert {s for s, d in same.stages.items() if d.volatile} >= {"train", "figures", "baseline"}

    # last: it edits and deletes outputs of the run
    check_manifest(tmp_path, "ci", cfg, capsys)

def check_pretraining(workdir):
    """pretrain.enabled (configs/ci.yaml switches it on, shrunk): one network on a simulated cohort of its own,
    disjoint from the run's patients, and every CV and external network starts from its weights."""
    import torch

    res = workdir / "results"
    split = pd.read_csv(res / "pretrain" / "ci" / "split.tsv", sep="\t", dtype={"subject_id": str})
    assert set(split["role"]) == {"train", "val"} and split["subject_id"].nunique() == 9
    pre_subjects = set(pd.read_csv(res / "cohort" / "pretrain_for_ci" / "subjects.tsv", sep="\t",
                                   dtype={"subject_id": str})["subject_id"])
    assert pre_subjects == set(split["subject_id"])
    pre = torch.load(res / "pretrain" / "ci" / "best.pt", weights_only=True)
    assert pre["train_cfg"]["max_epochs"] == 1 and pre["train_cfg"]["init_from"] is None  # pretrain.train applied
    cv = torch.load(res / "train" / "ci" / "nested_s0_o0_i0" / "best.pt", weights_only=True)
    assert cv["train_cfg"]["init_from"] == "results/pretrain/ci/best.pt"
    assert cv["train_cfg"]["max_epochs"] == 16  # the run's own recipe
    # the pretraining learns at train.lr, the networks that start from it at config.yaml's train.finetune_lr
    assert pre["train_cfg"]["finetune_lr"] is None and cv["train_cfg"]["finetune_lr"] == 3e-4
    logs = [workdir / "logs" / "train" / "ci" / "nested_s0_o0_i0.log", workdir / "logs" / "external" / "ci" /
            "train_ext_s0.log"]
    for log in logs:
        text = log.read_text()
        assert "initial weights from results/pretrain/ci/best.pt" in text, log
        assert "fine-tuning at learning rate 0.0003 (train.finetune_lr)" in text, log


def check_review_figures(workdir, fig, ev):
    """The review figures of a run and the numbers they draw, recomputed from the files they come from."""
    for name in REVIEW_FIGURES:
        for ext in ("png", "pdf"):
            assert (fig / f"{name}.{ext}").stat().st_size > 10_000, name
    folds = pd.read_csv(workdir / "results" / "folds" / "ci" / "folds.tsv", sep="\t")
    curves = pd.read_csv(fig / "training_curves.tsv", sep="\t")
    assert set(curves["run_id"]) == set(folds["run_id"])
    assert not curves.loc[curves["run_id"].str.startswith("rkfold"), "has_val"].any()  # no validation patients
    summary = pd.read_csv(fig / "calibration_summary.tsv", sep="\t").set_index("model")
    assert list(summary.index) == ["nEMGNet", "QEMG + logistic regression", "QEMG + random forest"]
    cons = pd.read_csv(ev / "patient_consensus.tsv", sep="\t")
    primary = cons[(cons["method"] == "logreg") & ~cons["with_location"]]
    onehot = (primary["diagnosis"].to_numpy()[:, None] == np.array(["normal", "myopathy", "neuropathy"])).astype(float)
    p = primary[["p_normal", "p_myopathy", "p_neuropathy"]].to_numpy()
    assert summary.loc["nEMGNet", "n"] == len(primary)
    assert summary.loc["nEMGNet", "brier"] == pytest.approx(((p - onehot) ** 2).sum(axis=1).mean(), abs=1e-5)
    patients = pd.read_csv(fig / "patient_probabilities.tsv", sep="\t")
    assert len(patients) == 12 and patients["physician_call"].notna().all()  # the simulated raters' majority
    timeline = pd.read_csv(fig / "recording_timeline.tsv", sep="\t", dtype={"subject_id": str})
    s4 = pd.read_csv(fig / "s4_fig_mispredicted.tsv", sep="\t", dtype={"subject_id": str})
    assert set(timeline["subject_id"]) == set(s4["subject_id"])


def manifest_lists_every_output(workdir, cohort):
    """The files of results/manifest/<cohort>/files.tsv: exactly the files the run wrote under results/."""
    man = workdir / "results" / "manifest" / cohort
    listed = [line.split("\t")[0] for line in (man / "files.tsv").read_text().splitlines()[1:]]
    written = sorted(p.relative_to(workdir).as_posix() for p in (workdir / "results").rglob("*")
                     if p.is_file() and man not in p.parents)
    assert listed == written, {"not listed": sorted(set(written) - set(listed)),
                               "listed, not written": sorted(set(listed) - set(written))}
    return man, listed


def check_manifest(workdir, cohort, cfg, capsys):
    """results/manifest/<cohort> lists every file the run wrote, with the code's commit and the config as run;
    nemg verify passes on the run as it is and flags a changed and a missing output."""
    from nemg.cli import main

    man, listed = manifest_lists_every_output(workdir, cohort)
    assert any(f.endswith("best.pt") for f in listed) and any(f.startswith("results/trim/") for f in listed)
    run = yaml.safe_load((man / "run.yaml").read_text())
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    assert run["git_commit"] == head and isinstance(run["git_dirty"], bool)
    assert "not installed" not in run["packages"].values(), run["packages"]
    recorded = yaml.safe_load((man / "config.yaml").read_text())
    # the config as given: not the report's landing-page context, which the workflow adds when parsed
    assert recorded["cohort"]["name"] == cohort and "report_context" not in recorded
    assert run["cpu"]["label"] and run["cpu"]["logical_cpus"] >= 1
    # the manifest is up to date after the run: it does not make Snakemake rerun anything
    dry = snakemake(workdir, "-n", *cfg)
    assert dry.returncode == 0 and "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-2000:]
    # ... and a changed training recipe retrains every network, CV and external (Snakemake records only params
    # that are plain values: the train: section once came from a function of threads and a change went unseen)
    recipe = workdir / "recipe.yaml"
    recipe.write_text("train: {max_epochs: 3}\n")
    dry = snakemake(workdir, "-n", *cfg, recipe)
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", dry.stdout + dry.stderr, flags=re.M))
    n_runs = pd.read_csv(workdir / "results" / "folds" / cohort / "folds.tsv", sep="\t")["run_id"].nunique()
    assert dry.returncode == 0 and int(jobs.get("train_fold", 0)) == n_runs, dry.stdout[-3000:]
    assert int(jobs.get("train_external", 0)) > 0, dry.stdout[-3000:]
    # ... while how a run executes (progress bar, checkpoint cadence, inference batch, threads) retrains nothing
    recipe.write_text("train: {progress: false, checkpoint_every: 7, keep_last: true, eval_batch_size: 64}\n")
    dry = snakemake(workdir, "-n", *cfg, recipe)
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", dry.stdout + dry.stderr, flags=re.M))
    assert dry.returncode == 0 and "train_fold" not in jobs and "train_external" not in jobs, dry.stdout[-3000:]
    # ... and another pretraining is another starting point: pretrained again, every network retrained
    recipe.write_text("pretrain: {seed: 7}\n")
    dry = snakemake(workdir, "-n", *cfg, recipe)
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", dry.stdout + dry.stderr, flags=re.M))
    assert dry.returncode == 0 and jobs.get("pretrain") == "1", dry.stdout[-3000:]
    assert jobs.get("simulate_cohort") == "1"  # only the pretraining cohort is simulated again
    assert int(jobs.get("train_fold", 0)) == n_runs and int(jobs.get("train_external", 0)) > 0, dry.stdout[-3000:]

    capsys.readouterr()
    assert main(["verify", str(man)]) == 0, capsys.readouterr()
    assert f"all {len(listed)} files match" in capsys.readouterr().out
    table2 = workdir / "results" / "evaluate" / cohort / "table2.tsv"
    table2.write_text(table2.read_text().replace("accuracy", "accuracy ", 1))
    checkpoint = next(f for f in listed if f.endswith("best.pt"))
    (workdir / checkpoint).unlink()
    assert main(["verify", str(man)]) == 1
    err = capsys.readouterr().err
    assert f"1 changed and 1 missing of {len(listed)} files" in err, err
    assert f"changed  results/evaluate/{cohort}/table2.tsv" in err and f"missing  {checkpoint}" in err


@pytest.mark.slow
def test_own_sheets_with_a_ratings_sheet_run_the_whole_dag(tmp_path):
    """A user's own sample sheets and physician ratings (here written by the simulator into a folder of the
    user's) go through the whole DAG, physician arm included."""
    from nemg.simulate import simulate_cohort

    data = tmp_path / "my_study"
    simulate_cohort({"cohort": {"n_subjects": {"normal": 4, "myopathy": 4, "neuropathy": 4},
                                "muscles_per_subject": [2, 3], "duration_s": [1.0, 1.5]},
                     "artifacts": {"duration_s": [0.2, 0.5]}}, data, seed=3)
    cfg = tmp_path / "mine.yaml"
    cfg.write_text(yaml.safe_dump({
        "cohort": {"name": "mine", "source": "sheets",
                   "sheets": {"subjects": str(data / "subjects.tsv"), "recordings": str(data / "recordings.tsv")}},
        "folds": {"seeds": [0], "schemes": ["nested"], "nested": {"outer": 2, "inner": 2}},
        "train": {"max_epochs": 1},
        "pretrain": NO_PRETRAIN,
        "evaluate": {"ratings": str(data / "ratings.tsv")},
        "explain": {"steps": 20},
    }))
    res = snakemake(tmp_path, "--cores", "2", "--configfile", cfg, timeout=WHOLE_DAG_TIMEOUT)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    ev = tmp_path / "results" / "evaluate" / "mine"
    assert (ev / "model_vs_physicians.tsv").stat().st_size > 50
    t2 = pd.read_csv(ev / "table2.tsv", sep="\t")
    assert "physicians_mean_ci_raters" in t2.columns
    assert not (tmp_path / "results" / "cohort" / "mine" / "signals").exists()  # the user's files are not copied


def test_one_signal_copied_under_two_patients_stops_the_run_before_any_table(tmp_path):
    """A file copied under another name passes the sheets (two paths) and any patient-level split; the
    shared-signal gate before both models' votes stops the run, naming both recordings."""
    from nemg.simulate import simulate_cohort

    data = tmp_path / "my_study"
    simulate_cohort({"cohort": {"n_subjects": {"normal": 2, "myopathy": 2, "neuropathy": 2},
                                "muscles_per_subject": [1, 2], "duration_s": [1.0, 1.2]},
                     "artifacts": {"duration_s": [0.2, 0.3]}}, data, seed=5)
    recs = pd.read_csv(data / "recordings.tsv", sep="\t", dtype=str)
    first, other = recs.iloc[0], recs[recs["subject_id"] != recs["subject_id"].iloc[0]].index[0]
    # the other patient's first recording becomes a renamed copy of the first patient's (a WFDB record: header
    # and samples, the header naming the new record and data file)
    record = data / Path(first["path"]).with_suffix("")
    (record.parent / "copy.dat").write_bytes(record.with_suffix(".dat").read_bytes())
    (record.parent / "copy.hea").write_text(record.with_suffix(".hea").read_text().replace(record.name, "copy"))
    recs.loc[other, "path"] = str(Path(first["path"]).parent / "copy.hea")
    recs.to_csv(data / "recordings.tsv", sep="\t", index=False)
    cfg = tmp_path / "mine.yaml"
    cfg.write_text(yaml.safe_dump({"cohort": {"name": "mine", "source": "sheets", "sheets": {
        "subjects": str(data / "subjects.tsv"), "recordings": str(data / "recordings.tsv")}}}))
    res = snakemake(tmp_path, "--cores", "2", "results/segment/mine/shared_signals_check.txt", "--configfile", cfg)
    out = res.stdout + res.stderr + "".join(p.read_text() for p in (tmp_path / "logs").rglob("*.log"))
    assert res.returncode != 0
    assert (f"recording {first['recording_id']} (subject {first['subject_id']}) and recording "
            f"{recs.loc[other, 'recording_id']} (subject {recs.loc[other, 'subject_id']})") in out, out[-3000:]
    assert not (tmp_path / "results" / "segment" / "mine" / "shared_signals_check.txt").exists()
    dry = snakemake(tmp_path, "-n", "--configfile", cfg)
    jobs = job_stats(dry.stdout)
    assert jobs.get("check_shared_signals") == 1 and "vote" in jobs, jobs
