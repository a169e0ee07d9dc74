"""benchmarks/holdout_configs.py: a stratified, seeded, disjoint split and valid configs that differ only in
where the networks start (and whether the training part is cross-validated too); benchmarks/holdout_cv_ensemble.py:
the held-out patients voted by each network's own stage 2, fit on its validation patients only."""
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
spec = importlib.util.spec_from_file_location("holdout_cv_ensemble", REPO / "benchmarks" / "holdout_cv_ensemble.py")
ce = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ce)


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
    assert set(out) == {"pretrained", "first_stage", "cv"}
    a, b, cv = out["pretrained"], out["first_stage"], out["cv"]
    # the cross-validated config trains the same external networks and cross-validates the training part
    assert cv["external"].pop("only") is False and a["external"]["only"] is True
    assert cv == {**a, "external": {k: v for k, v in a["external"].items() if k != "only"}}
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


def _scores(run_id, role, patients, probs):
    """Two segments per patient's one recording, each with the patient's class probabilities."""
    return pd.DataFrame([{"run_id": run_id, "segment": k, "recording_id": f"{p}_r", "subject_id": p, "role": role,
                          "p_normal": q[0], "p_myopathy": q[1], "p_neuropathy": q[2]}
                         for p, q in zip(patients, probs) for k in range(2)])


def test_each_network_votes_with_its_own_stage2_fit_on_validation_patients_only():
    classes = ["normal", "myopathy", "neuropathy"]
    train = pd.DataFrame({"subject_id": [f"t{i}" for i in range(9)], "diagnosis": classes * 3})
    test = pd.DataFrame({"subject_id": ["h0", "h1", "h2"], "diagnosis": classes})
    recs = lambda s: pd.DataFrame({"recording_id": s["subject_id"] + "_r", "subject_id": s["subject_id"],  # noqa: E731
                                   "location": "proximal"})
    onehot = [[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]]
    # run a: validation patients t0-t5 scored as their class; its CV test patients (t6-t8) scored as one class,
    # which would wreck its stage 2 if they entered the fit
    fit = pd.concat([_scores("a", "val", [f"t{i}" for i in range(6)], onehot * 2),
                     _scores("a", "test", ["t6", "t7", "t8"], [onehot[0]] * 3),
                     _scores("b", "val", [f"t{i}" for i in range(3, 9)], onehot * 2)])
    held = pd.concat([_scores("a", "test", ["h0", "h1", "h2"], onehot),
                      _scores("b", "test", ["h0", "h1", "h2"], [onehot[2], onehot[1], onehot[0]])])
    stage2 = ce.vote_settings(load_config(REPO / "config.yaml"))
    assert stage2["methods"] == ["logreg"] and stage2["fit_on"] == "val"
    pp = ce.ensemble_patients(fit, held, train, recs(train), test, recs(test), stage2)
    assert sorted(pp["run_id"].unique()) == ["a", "b"] and set(pp["subject_id"]) == {"h0", "h1", "h2"}
    by = pp.set_index(["run_id", "subject_id"])["predicted"]
    assert [by["a", h] for h in ("h0", "h1", "h2")] == classes  # its own, class-faithful stage 2
    assert [by["b", h] for h in ("h0", "h1", "h2")] == ["neuropathy", "myopathy", "normal"]
    row = ce.consensus_row(pp, "two")
    assert row["n_networks"] == 2 and row["n_patients"] == 3
    mean = pp.groupby("subject_id")[["p_normal", "p_myopathy", "p_neuropathy"]].mean()
    assert row["accuracy"] == pytest.approx(sum(mean.loc[h].to_numpy().argmax() == i
                                                for i, h in enumerate(["h0", "h1", "h2"])) / 3)
    assert ce.member_accuracy(pp) == pytest.approx((1 + 1 / 3) / 2)
    # a held-out patient among the training patients, a network without validation patients: refused
    with pytest.raises(ValueError, match="t0"):
        ce.ensemble_patients(fit, pd.concat([held, _scores("a", "test", ["t0"], [onehot[0]])]), train,
                             recs(train), pd.concat([test, train.head(1)]), pd.concat([recs(test), recs(train.head(1))]),
                             stage2)
    with pytest.raises(ce.EnsembleError, match=r"\['c'\] .* no val patients"):
        ce.ensemble_patients(fit, pd.concat([held, _scores("c", "test", ["h0"], [onehot[0]])]), train,
                             recs(train), test, recs(test), stage2)


spec = importlib.util.spec_from_file_location("ensemble_size", REPO / "benchmarks" / "ensemble_size.py")
es = importlib.util.module_from_spec(spec)
spec.loader.exec_module(es)


def _patient_probs(run, calls):
    """Stage-2 rows of one network: test patient -> the class it calls with probability 0.6."""
    rows = []
    for sid, (truth, call) in calls.items():
        p = {c: 0.2 for c in ("normal", "myopathy", "neuropathy")}
        p[call] = 0.6
        rows.append({"run_id": run, "subject_id": sid, "diagnosis": truth, "predicted": call,
                     **{f"p_{c}": v for c, v in p.items()}})
    return pd.DataFrame(rows)


def test_ensemble_size_scores_every_subset_of_the_networks():
    truth = {"h0": "normal", "h1": "myopathy", "h2": "neuropathy"}
    right = {h: (d, d) for h, d in truth.items()}
    # a and b are right on every patient; c calls everyone neuropathy (right on h2 only)
    pp = pd.concat([_patient_probs("a", right), _patient_probs("b", right),
                    _patient_probs("c", {h: (d, "neuropathy") for h, d in truth.items()})])
    curve = es.size_curve(pp).set_index("k")
    assert curve["n_subsets"].tolist() == [3, 3, 1]
    assert curve.loc[1, "accuracy_mean"] == pytest.approx((1 + 1 + 1 / 3) / 3)
    assert (curve.loc[1, "accuracy_min"], curve.loc[1, "accuracy_max"]) == (pytest.approx(1 / 3), 1.0)
    # any two of them (a+c: 0.4 vs 0.4 on h0, h1 -> ties go to the first class) and all three
    pairs = [es.consensus_row(pp[pp["run_id"].isin(s)], "")["accuracy"] for s in (("a", "b"), ("a", "c"), ("b", "c"))]
    assert curve.loc[2, "accuracy_mean"] == pytest.approx(sum(pairs) / 3) and curve.loc[2, "accuracy_max"] == 1.0
    assert curve.loc[3, "accuracy_mean"] == 1.0  # two right networks outvote one wrong one
    # more subsets than asked for: a seeded draw of distinct ones
    ids = [f"n{i}" for i in range(8)]
    drawn = es.subsets(ids, 4, max_subsets=10, seed=0)
    assert len(drawn) == len(set(drawn)) == 10 and drawn == es.subsets(ids, 4, 10, 0)
    assert len(es.subsets(ids, 7, 10, 0)) == 8


def test_ensemble_size_needs_to_know_which_networks_scored_the_test_cohort(tmp_path):
    for d in ("models", "models_pretrained"):
        for r in ("ext_s0", "ext_s1"):
            (tmp_path / d / r).mkdir(parents=True)
            (tmp_path / d / r / "predictions.tsv").write_text("")
    with pytest.raises(es.SizeError, match="both models/ and models_pretrained/"):
        es.fit_predictions(tmp_path, ["ext_s0", "ext_s1"], None)
    assert es.fit_predictions(tmp_path, ["ext_s0"], "models_pretrained")[0].parent.parent.name == "models_pretrained"
    (tmp_path / "models" / "ext_s1" / "predictions.tsv").unlink()
    assert es.fit_predictions(tmp_path, ["ext_s0", "ext_s1"], None)[1].parts[-3] == "models_pretrained"
    with pytest.raises(es.SizeError, match="no models"):
        es.fit_predictions(tmp_path, ["ext_s9"], None)
    with pytest.raises(es.SizeError, match="missing"):
        es.fit_predictions(tmp_path, ["ext_s1"], "models")
