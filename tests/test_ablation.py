"""benchmarks/ablation.py: a variant is config.yaml's recipe with only the named keys changed."""
import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from nemg.model import resolve_size

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("ablation", REPO / "benchmarks" / "ablation.py")
ablation = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ablation)
CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())


def test_a_variant_without_model_keys_trains_the_default_network_not_the_paper_one():
    # the library's own default is the published network (~20 s per update on one thread): a call without
    # --model once trained it and looked hung
    model, train = ablation.run_configs()
    assert resolve_size(model) == resolve_size(CONFIG["model"])
    assert resolve_size(model) != resolve_size({"preset": "paper"})
    assert train == CONFIG["train"]


def test_a_variant_overrides_only_the_keys_it_names():
    model, train = ablation.run_configs('{"max_channels": 64}', '{"max_epochs": 16, "seed_offset": 2}')
    assert model == {**CONFIG["model"], "max_channels": 64}
    assert train == {**CONFIG["train"], "max_epochs": 16, "seed_offset": 2}
    # a nested key changes that key only, as a config file on top would (a shallow merge once dropped the rest)
    _, train = ablation.run_configs(train_json='{"augment": {"mixup": 0.4}}')
    assert train["augment"] == {**CONFIG["train"]["augment"], "mixup": 0.4}
    assert set(train["augment"]) > {"mixup"}
    model, _ = ablation.run_configs('{"preset": "tiny"}')
    assert resolve_size(model) == resolve_size({"preset": "tiny"})


def test_a_variant_starts_from_the_dags_pretrained_network_as_the_dag_does(tmp_path, monkeypatch):
    # a config.yaml that pretrains (the shipped one does not: pretrain.enabled is a measured switch, off)
    monkeypatch.setattr(ablation, "ROOT", tmp_path)
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg["pretrain"]["enabled"] = True
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(SystemExit, match="results/pretrain/mine/best.pt is missing"):
        ablation.run_configs(cohort="mine")
    best = tmp_path / "results" / "pretrain" / "mine" / "best.pt"
    best.parent.mkdir(parents=True)
    best.write_bytes(b"")
    assert ablation.run_configs(cohort="mine")[1]["init_from"] == str(best)
    assert ablation.run_configs(train_json='{"init_from": null}', cohort="mine")[1]["init_from"] is None
    monkeypatch.setattr(ablation, "ROOT", REPO)
    assert ablation.run_configs(cohort="mine")[1]["init_from"] is None  # the shipped config: random weights
    # a config file on top (--configfile), as the DAG's: its pretraining starts the runs
    overlay = tmp_path / "mine.yaml"
    overlay.write_text(yaml.safe_dump({"pretrain": {"enabled": True}, "train": {"max_epochs": 3}}))
    monkeypatch.setattr(ablation, "CONFIGFILES", [overlay])
    with pytest.raises(SystemExit, match="results/pretrain/mine/best.pt is missing"):
        ablation.run_configs(cohort="mine")
    train = ablation.run_configs(train_json='{"init_from": null}', cohort="mine")[1]
    assert train["max_epochs"] == 3 and train["train_hop_factor"] == CONFIG["train"]["train_hop_factor"]  # merged, not replaced
    monkeypatch.setattr(ablation, "CONFIGFILES", [tmp_path / "gone.yaml"])
    with pytest.raises(SystemExit, match="--configfile .*gone.yaml: no such file"):
        ablation.run_configs(cohort="mine")


def test_a_row_names_its_starting_checkpoint_by_hash(tmp_path):
    # a path alone names whichever network was last made there; the row keeps which one it was
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    a.write_bytes(b"one network")
    b.write_bytes(b"another")
    rec = {p: json.loads(ablation._recorded_train('{"seed_offset": 1}', {"init_from": str(p)})) for p in (a, b)}
    assert rec[a]["seed_offset"] == 1 and rec[a]["init_from"].startswith(f"{a} (sha256 ")
    assert rec[a]["init_from"].split("sha256 ")[1] != rec[b]["init_from"].split("sha256 ")[1]
    assert ablation._recorded_train('{"seed_offset": 1}', {"init_from": None}) == '{"seed_offset": 1}'


spec_o = importlib.util.spec_from_file_location("error_overlap", REPO / "benchmarks" / "error_overlap.py")
error_overlap = importlib.util.module_from_spec(spec_o)
spec_o.loader.exec_module(error_overlap)


def test_error_overlap_counts_the_patients_every_arm_misses(tmp_path):
    import pandas as pd

    dx = pd.Series({"a": "normal", "b": "myopathy", "c": "myopathy", "d": "neuropathy"})
    cnn = pd.Series({"a": "normal", "b": "normal", "c": "myopathy", "d": "myopathy"})
    rf = pd.Series({"a": "myopathy", "b": "myopathy", "c": "normal", "d": "myopathy"})
    t = error_overlap.overlap({"cnn": cnn, "rf": rf}, dx).set_index("class")
    assert t.loc["all"].to_dict() == {"patients": 4, "cnn correct": 2, "rf correct": 1, "missed by every arm": 1,
                                      "right by at least one": 3}
    assert t.loc["myopathy", "missed by every arm"] == 0 and t.loc["myopathy", "right by at least one"] == 2
    assert t.loc["neuropathy", "missed by every arm"] == 1

    # from a patient_predictions.tsv: the consensus of the runs that tested a patient, primary variant only
    folds = pd.DataFrame({"scheme": "nested", "seed": 0, "repeat": 0, "outer": 0, "inner": [0, 1],
                          "run_id": ["nested_s0_o0_i0", "nested_s0_o0_i1"], "subject_id": "b",
                          "diagnosis": "myopathy", "role": "test"})
    pp = pd.DataFrame({"run_id": ["nested_s0_o0_i0", "nested_s0_o0_i1", "nested_s0_o0_i0"], "subject_id": "b",
                       "diagnosis": "myopathy", "p_normal": [0.6, 0.1, 0.9], "p_myopathy": [0.3, 0.8, 0.05],
                       "p_neuropathy": [0.1, 0.1, 0.05], "method": ["logreg", "logreg", "argmax"],
                       "with_location": False})
    pp.to_csv(tmp_path / "pp.tsv", sep="\t", index=False)
    calls, diagnosis = error_overlap.arm_calls(tmp_path / "pp.tsv", "unused", folds)
    assert calls.to_dict() == {"b": "myopathy"} and diagnosis.to_dict() == {"b": "myopathy"}
    with pytest.raises(FileNotFoundError, match="nowhere"):
        error_overlap.arm_calls(tmp_path / "nowhere", "unused", folds)


spec_s = importlib.util.spec_from_file_location("recipe_spread", REPO / "benchmarks" / "recipe_spread.py")
recipe_spread = importlib.util.module_from_spec(spec_s)
spec_s.loader.exec_module(recipe_spread)


def _spread_case():
    """Nested 2 x 2 over four patients (one test patient per class pair), and two trainings: one calls every test
    patient right, the other every one wrong."""
    import pandas as pd

    from nemg.folds import run_id

    diag = {"a": "normal", "b": "myopathy", "c": "neuropathy", "d": "normal"}
    tests = {0: ["a", "b"], 1: ["c", "d"]}
    folds, rows = [], {"right": [], "wrong": []}
    for outer, tested in tests.items():
        for inner in (0, 1):
            rid = run_id("nested", 0, 0, outer, inner)
            for s in diag:
                folds.append({"scheme": "nested", "seed": 0, "repeat": 0, "outer": outer, "inner": inner,
                              "run_id": rid, "subject_id": s, "diagnosis": diag[s],
                              "role": "test" if s in tested else "train"})
            for s in tested:
                for name, hit in (("right", True), ("wrong", False)):
                    guess = diag[s] if hit else ("myopathy" if diag[s] != "myopathy" else "neuropathy")
                    probs = {f"p_{c}": 0.8 if c == guess else 0.1 for c in ("normal", "myopathy", "neuropathy")}
                    rows[name].append({"run_id": rid, "subject_id": s, "diagnosis": diag[s], "method": "logreg",
                                       "with_location": False, "predicted": guess, **probs})
    return pd.DataFrame(folds), {k: pd.DataFrame(v) for k, v in rows.items()}


def test_recipe_spread_scores_every_pick_of_trainings_per_inner_index():
    folds, patients = _spread_case()
    scored = recipe_spread.picks(patients, folds)
    # two trainings, two inner indices: four picks; mixed picks average 0.8 against 0.1 and 0.1 against 0.8 per
    # patient, a tie argmax breaks to the first class, so only the pure picks have a known outcome
    assert sorted(scored["pick"]) == ["right right", "right wrong", "wrong right", "wrong wrong"]
    acc = scored.set_index("pick")["consensus_accuracy"]
    assert acc["right right"] == 1.0 and acc["wrong wrong"] == 0.0
    s = recipe_spread.summary(scored)
    assert s["n_picks"] == 4 and s["max_accuracy"] == 1.0 and s["min_accuracy"] == 0.0
    assert 0.0 < s["mean_accuracy"] < 1.0


def test_recipe_spread_refuses_a_training_with_runs_missing():
    folds, patients = _spread_case()
    patients["wrong"] = patients["wrong"][patients["wrong"]["run_id"] != "nested_s0_o1_i1"]
    with pytest.raises(ValueError, match="wrong: no patient predictions for 1 run.*nested_s0_o1_i1"):
        recipe_spread.picks(patients, folds)


def test_recipe_spread_table_round_trips_through_its_tsv(tmp_path, monkeypatch):
    import pandas as pd

    folds, patients = _spread_case()
    row = {"cohort": "c", "recipe": "mine", "trainings": "right wrong",
           **recipe_spread.summary(recipe_spread.picks(patients, folds))}
    tsv = tmp_path / "spread.tsv"
    pd.DataFrame([row]).to_csv(tsv, sep="\t", index=False)
    md = recipe_spread.markdown(tsv).splitlines()
    assert md[0].startswith("| data set | recipe |") and len(md) == 3
    assert md[2].startswith("| c | mine | right, wrong | 4 | ") and "| 0.000-1.000 |" in md[2]


def test_appending_rows_keeps_a_digits_only_commit_as_text_and_replaces_a_rerun(tmp_path):
    tsv = tmp_path / "ablation.tsv"
    ablation.append_rows(tsv, [{"cohort": "c", "variant": "v", "runs": "all", "consensus_accuracy": 0.5,
                                "commit": "9713163"},
                               {"cohort": "c", "variant": "qemg_rf", "runs": "all", "consensus_accuracy": 0.7}])
    ablation.append_rows(tsv, [{"cohort": "c", "variant": "w", "runs": "all", "consensus_accuracy": 0.6,
                                "commit": "0123abc"}])
    assert "9713163.0" not in tsv.read_text()  # the QEMG row's empty commit made the column a float here
    ablation.append_rows(tsv, [{"cohort": "c", "variant": "v", "runs": "all", "consensus_accuracy": 0.55,
                                "commit": "9713163"}])
    lines = tsv.read_text().splitlines()
    assert len(lines) == 4 and "9713163.0" not in tsv.read_text()
    rows = {line.split("\t")[1]: line for line in lines[1:]}
    assert rows["v"].endswith("9713163") and "0.55" in rows["v"] and rows["w"].endswith("0123abc")


def test_a_second_call_with_the_same_variant_is_refused_while_the_first_runs(tmp_path):
    held = ablation.claim(tmp_path / "v")
    with pytest.raises(SystemExit, match=r"v is being written by another ablation.py call"):
        ablation.claim(tmp_path / "v")
    ablation.claim(tmp_path / "w").close()  # another variant is free
    held.close()
    ablation.claim(tmp_path / "v").close()  # and this one once the first is done


def test_recipe_spread_ensemble_averages_segment_probabilities_of_the_same_segments():
    import numpy as np
    import pandas as pd

    seg = pd.DataFrame({"run_id": ["r1", "r1", "r2"], "segment": [3, 4, 3], "recording_id": ["x", "x", "x"],
                        "subject_id": ["a", "a", "a"], "role": ["val", "val", "test"]})
    a = seg.assign(p_normal=[0.8, 0.2, 0.6], p_myopathy=[0.1, 0.7, 0.2], p_neuropathy=[0.1, 0.1, 0.2])
    # the same segments in another order, as another training's table may list them
    b = seg.assign(p_normal=[0.2, 0.4, 0.0], p_myopathy=[0.1, 0.5, 0.2], p_neuropathy=[0.7, 0.1, 0.8]).iloc[::-1]
    avg = recipe_spread.average_predictions({"a": a, "b": b}).set_index(["run_id", "segment"])
    assert np.allclose(avg.loc[("r1", 3), ["p_normal", "p_myopathy", "p_neuropathy"]].to_numpy(float), [0.5, 0.1, 0.4])
    assert np.allclose(avg.loc[("r1", 4), ["p_normal", "p_myopathy", "p_neuropathy"]].to_numpy(float), [0.3, 0.6, 0.1])
    assert np.allclose(avg.loc[("r2", 3), ["p_normal", "p_myopathy", "p_neuropathy"]].to_numpy(float), [0.3, 0.2, 0.5])
    with pytest.raises(ValueError, match="c: its segment predictions are not those of a"):
        recipe_spread.average_predictions({"a": a, "c": a.iloc[:2]})
    with pytest.raises(ValueError, match="d: its segment predictions are not those of a"):
        recipe_spread.average_predictions({"a": a, "d": a.assign(role=["val", "test", "test"])})
