"""benchmarks/ablation.py: a variant is config.yaml's recipe with only the named keys changed."""
import importlib.util
from pathlib import Path

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
