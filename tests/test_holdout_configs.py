"""benchmarks/holdout_configs.py: a stratified, seeded, disjoint split and two valid configs that differ only in
where the networks start."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from nemg.config import deep_merge, load_config

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("holdout_configs", REPO / "benchmarks" / "holdout_configs.py")
ho = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ho)


def subjects(counts):
    return pd.DataFrame([{"subject_id": f"{d[:3]}{i:02d}", "diagnosis": d}
                         for d, n in counts.items() for i in range(n)])


def test_split_is_stratified_seeded_and_disjoint():
    s = subjects({"normal": 17, "myopathy": 65, "neuropathy": 59})
    train, held = ho.stratified_holdout(s, 1 / 3, seed=2026)
    assert not set(train) & set(held) and set(train) | set(held) == set(s["subject_id"])
    by = s.set_index("subject_id")["diagnosis"]
    assert by[held].value_counts().to_dict() == {"myopathy": 22, "neuropathy": 20, "normal": 6}
    assert ho.stratified_holdout(s, 1 / 3, seed=2026) == (train, held)
    assert ho.stratified_holdout(s, 1 / 3, seed=1)[1] != held
    # a class of two keeps one patient on each side; a class of one cannot be split
    assert len(ho.stratified_holdout(subjects({"normal": 2, "myopathy": 9, "neuropathy": 9}), 0.9, 0)[0]) == 3
    with pytest.raises(ho.HoldoutError, match="'normal' has 1 patient"):
        ho.stratified_holdout(subjects({"normal": 1, "myopathy": 3, "neuropathy": 3}), 0.5, 0)
    with pytest.raises(ho.HoldoutError, match="between 0 and 1"):
        ho.stratified_holdout(s, 1.0, 0)


def _fake_run(root, name="mine"):
    """A repository root whose DAG imported cohort ``name`` and pretrained in two stages."""
    (root / "configs").mkdir(parents=True)
    (root / "config.yaml").write_text((REPO / "config.yaml").read_text())
    cfg = root / "configs" / "mine.yaml"
    cfg.write_text(yaml.safe_dump({"cohort": {"name": name, "source": "simulated", "seed": 3},
                                   "train": {"max_epochs": 5}}))
    (root / "results/cohort" / name).mkdir(parents=True)
    subjects({"normal": 6, "myopathy": 6, "neuropathy": 6}).to_csv(root / "results/cohort" / name / "subjects.tsv",
                                                                    sep="\t", index=False)
    (root / "results/pretrain" / name / "simulated").mkdir(parents=True)
    for p in ("best.pt", "simulated/best.pt"):
        (root / "results/pretrain" / name / p).write_bytes(b"")
    return cfg


def test_two_configs_differ_only_in_the_start_and_keep_the_runs_recipe(tmp_path):
    cfg = _fake_run(tmp_path)
    out = ho.holdout_configs([str(cfg)], 1 / 3, seed=0, root=tmp_path)
    assert set(out) == {"pretrained", "first_stage"}
    a, b = out["pretrained"], out["first_stage"]
    assert a["train"].pop("init_from") == "results/pretrain/mine/best.pt"
    assert b["train"].pop("init_from") == "results/pretrain/mine/simulated/best.pt"
    assert a == b
    assert a["train"]["max_epochs"] == 5  # the run's recipe, not config.yaml's
    assert a["cohort"]["name"] == "mine_holdout" and a["cohort"]["seed"] == 3
    held = a["external"]["cohorts"]["heldout"]
    assert held["seed"] == 3 and "name" not in held and len(held["subjects"]) == 6
    assert not set(held["subjects"]) & set(a["cohort"]["subjects"])
    assert a["external"]["only"] and not a["pretrain"]["enabled"]
    # what Snakemake would load: the file on top of config.yaml
    path = tmp_path / "h.yaml"
    path.write_text(yaml.safe_dump(a))
    assert "&id" not in path.read_text()  # no YAML anchors: every section stands on its own for a reader
    assert load_config(tmp_path / "config.yaml", path)["cohort"]["subjects"] == a["cohort"]["subjects"]
    assert deep_merge(load_config(tmp_path / "config.yaml"), a)["external"]["only"]


def test_missing_dag_outputs_are_named(tmp_path):
    cfg = _fake_run(tmp_path)
    (tmp_path / "results/pretrain/mine/simulated/best.pt").unlink()
    with pytest.raises(ho.HoldoutError, match=r"simulated/best.pt: missing; the DAG .* two stages"):
        ho.holdout_configs([str(cfg)], 1 / 3, seed=0, root=tmp_path)
    (tmp_path / "results/cohort/mine/subjects.tsv").unlink()
    res = subprocess.run([sys.executable, str(REPO / "benchmarks" / "holdout_configs.py"), "--configfile", str(cfg),
                          "--out", str(tmp_path / "o")], capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 2 and "subjects.tsv: missing; run the DAG" in res.stderr
