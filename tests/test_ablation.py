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
