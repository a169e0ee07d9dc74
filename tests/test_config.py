"""Config validation: every shipped config is valid; a wrong key or value gives a message naming it. Defaults:
the schema is their one home, and a config leaving a key out gets its default."""
import copy
import re
from pathlib import Path

import pytest
import yaml

from nemg.config import ConfigError, fill_defaults, load_config, section_defaults, validate_config
from nemg.schemas import load_schema

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


def default():
    return load_config(REPO / "config.yaml")


@pytest.mark.parametrize("overlay", [None] + CONFIGS, ids=lambda p: "default" if p is None else p.name)
def test_shipped_configs_are_valid(overlay):
    paths = [REPO / "config.yaml"] + ([overlay] if overlay else [])
    cfg = load_config(*paths)
    assert cfg["preprocess"]["segment"]["window_s"] == 0.4


def test_paper_config_is_the_study_protocol():
    cfg = load_config(REPO / "config.yaml", REPO / "configs" / "paper.yaml")
    assert cfg["preprocess"]["resample"] == {"rate_hz": 10000, "method": "fft"}
    # the study's nested 5 x 3 (15 CNNs per seed) with the published network and epoch budget
    assert cfg["folds"]["nested"] == {"outer": 5, "inner": 3} and "nested" in cfg["folds"]["schemes"]
    assert cfg["model"]["preset"] == "paper" and cfg["train"]["max_epochs"] == 100


def test_paper_config_switches_off_every_nemg_deviation():
    """config.yaml's CPU recipe deviates from the paper; configs/paper.yaml must undo each deviation exactly."""
    from nemg.model import PRESETS, resolve_size
    from nemg.train import resolve_train_cfg

    cfg = load_config(REPO / "config.yaml", REPO / "configs" / "paper.yaml")
    assert resolve_size(cfg["model"]) == {**PRESETS["paper"], "max_channels": None, "min_channels": None,
                                        "log_input_uv": None, "stem_pool_stride": 1, "rms_to_head": False,
                                "head_dropout": 0.0}
    train = resolve_train_cfg(cfg["train"])
    # the schema's train defaults hold the published recipe; only run-time settings may differ from it
    runtime_only = {"device", "num_threads", "bf16", "compile", "checkpoint_every", "keep_last", "progress",
                    "eval_batch_size", "deterministic", "predict_train", "seed_offset"}
    paper = resolve_train_cfg({})
    assert {k: v for k, v in train.items() if k not in runtime_only} == \
        {k: v for k, v in paper.items() if k not in runtime_only}
    assert train["augment"] == section_defaults("train.augment") and paper["lr"] == 1e-3 and train["patience"] == 100
    assert cfg["evaluate"]["stage2_c"] == 1.0  # sklearn's default, as in the released code
    assert fill_defaults(cfg)["pretrain"]["enabled"] is False  # every network from a random initialisation
    assert cfg["evaluate"]["stage2_class_weight"] == section_defaults("evaluate")["stage2_class_weight"] == "none"
    # ... while the default config does deviate (otherwise this test proves nothing)
    default_train = resolve_train_cfg(default()["train"])
    assert default_train["train_hop_factor"] != paper["train_hop_factor"]
    assert resolve_size(default()["model"]) != PRESETS["paper"]
    assert default()["evaluate"]["stage2_c"] != 1.0
    assert default()["evaluate"]["stage2_class_weight"] == "balanced"


def test_every_shipped_config_votes_with_the_default_stage2():
    """One recipe for every data set: no public-data config retunes the divide-and-vote (paper.yaml alone may)."""
    for path in sorted((REPO / "configs").glob("*.yaml")):
        if path.name != "paper.yaml":
            over = yaml.safe_load(path.read_text()) or {}
            assert not set(over.get("evaluate") or {}) & {"stage2_class_weight", "stage2_c", "methods"}, path.name


def test_unknown_key_names_it_and_suggests():
    cfg = default()
    cfg["preprocess"]["segment"]["hop"] = 0.1
    cfg["preprocces"] = {}
    with pytest.raises(ConfigError) as exc:
        validate_config(cfg)
    msg = str(exc.value)
    assert "unknown key 'hop' at preprocess.segment (did you mean 'hop_s'?)" in msg
    assert "unknown key 'preprocces' at the top level (did you mean 'preprocess'?)" in msg


@pytest.mark.parametrize("path,value,expected", [
    (("preprocess", "segment", "hop_s"), -0.1, "preprocess.segment.hop_s: -0.1 is not allowed: must be > 0"),
    (("preprocess", "resample", "method"), "linear",
     "preprocess.resample.method: 'linear' is not allowed; expected one of 'polyphase', 'fft'"),
    (("cohort", "source"), "s3", "cohort.source: 's3' is not allowed"),
    (("folds", "nested", "outer"), "5", "folds.nested.outer: '5' has the wrong type (str); expected integer (Snakemake"
     " passes the values inside a --config mapping as text"),
    (("cohort", "name"), 5, "cohort.name: 5 has the wrong type (int); expected string"),
    (("folds", "seeds"), [], "folds.seeds"),
    (("preprocess", "segment", "window_s"), 0.40005, "must be a whole number of samples"),
])
def test_wrong_values_name_the_key(path, value, expected):
    cfg = default()
    node = cfg
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    with pytest.raises(ConfigError, match=None) as exc:
        validate_config(cfg)
    assert expected in str(exc.value)
    # the --config hint only where text would have parsed as the wanted type
    assert ("--config mapping" in str(exc.value)) == (value == "5")


def test_hop_longer_than_the_window_is_an_error():
    cfg = default()
    cfg["preprocess"]["segment"].update(window_s=0.4, hop_s=0.8)  # would skip 0.4 s of signal after every window
    with pytest.raises(ConfigError) as exc:
        validate_config(cfg)
    assert ("preprocess.segment.hop_s: 0.8 s is longer than preprocess.segment.window_s (0.4 s): 0.4 s of every "
            "signal between two windows would never be used; set hop_s <= window_s") in str(exc.value)
    cfg["preprocess"]["segment"]["hop_s"] = 0.4  # back to back windows skip nothing
    validate_config(cfg)


def test_sheets_source_needs_sheets():
    cfg = default()
    cfg["cohort"]["source"] = "sheets"
    with pytest.raises(ConfigError, match="cohort.sheets.subjects: required when cohort.source is 'sheets'"):
        validate_config(cfg)


@pytest.mark.parametrize("source", ["sheets", "public"])
def test_real_patients_need_a_cohort_name_of_their_own(source):
    cfg = default()
    cfg["cohort"]["source"] = source
    cfg["cohort"]["sheets"] = {"subjects": "s.tsv", "recordings": "r.tsv"}
    with pytest.raises(ConfigError, match=rf"cohort.name: 'simulated' .* but cohort.source is '{source}': give the "
                                          r"cohort a name of its own"):
        validate_config(cfg)
    cfg["cohort"]["name"] = "my_clinic"
    validate_config(cfg)


def test_bad_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("cohort: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_overlay_merges(tmp_path):
    over = tmp_path / "o.yaml"
    over.write_text(yaml.safe_dump({"folds": {"nested": {"outer": 4}}}))
    cfg = load_config(REPO / "config.yaml", over)
    assert cfg["folds"]["nested"] == {"outer": 4, "inner": 3}


# ------------------------------------------------------------------------------------------------- defaults

#: The defaults as the modules and rule files held them before the schema became their one home (nemg.train's
#: TRAIN_DEFAULTS, nemg.augment's AUGMENT_OFF, nemg.baseline's BASELINE_DEFAULTS, nemg.features' FEATURE_DEFAULTS,
#: nemg.explain's AM_DEFAULTS, explain.smk's EXPLAIN_DEFAULTS, baseline.smk's BASELINE_CFG, nemg.external's
#: EXTERNAL_DEFAULTS and the rule files' inline fallbacks): the values, their types and (train, features) order.
OLD_TRAIN = {
    "lr": 1e-3, "batch_size": 32, "max_epochs": 100, "eval_every": 50, "patience": 100, "eval_batch_size": 256,
    "device": "auto", "num_threads": None, "bf16": True, "bf16_cpu": False, "compile": False, "seed_offset": 0,
    "checkpoint_every": 1,
    "keep_last": False, "deterministic": True, "progress": True, "predict_train": False, "lr_schedule": "constant",
    "weight_decay": 0.0, "label_smoothing": 0.0, "ema_decay": 0.0, "bag_size": 1, "select_on": "accuracy",
    "init_from": None, "finetune_lr": None, "train_hop_factor": 1, "val_hop_factor": 1,
    "augment": {"polarity_flip": 0.0, "gain_jitter": 0.0, "noise": 0.0, "shift": 0.0,
                "mixup": 0.0, "spectral_tilt": 0.0},  # {} = AUGMENT_OFF
    "aux_qemg": 0.0, "aux_features": None,
}
OLD_FEATURES = {
    "turn_uv": 100.0, "nss_turn_uv": 20.0, "nss_small_uv": 100.0, "zc_deadband_uv": 10.0, "welch_nperseg": 1000,
    "f_low": 20.0, "f_high": 5000.0, "bands": [[20, 100], [100, 250], [250, 500], [500, 1000], [1000, 2000], [2000, 5000]],
    "muap_k": 5.0, "muap_min_uv": 20.0, "chunk": 1024,
}
OLD_AM = {"objective": "log_softmax", "steps": 300, "lr": 0.2, "l2": 0.001, "tv": 0.01, "jitter_ms": 5.0,
          "blur_ms": 0.2, "init_std": 1.0, "clip": 20.0, "seed": 0}
OLD_EXPLAIN = {"runs": "first_outer", **OLD_AM, "device": None, "method": None, "fit_on": None, "n_examples": 3,
               "n_segments": 2}
OLD_CLASSIFIER = {"logreg_c": 1.0, "rf_trees": 200, "rf_min_samples_leaf": 5, "rf_max_depth": None, "seed_offset": 0}
OLD_BASELINE = {"enabled": True, "models": ["logreg", "rf"], "combine": [], "threads": 2, **OLD_CLASSIFIER,
                "features": OLD_FEATURES}
OLD_EXTERNAL = {"cohorts": {}, "seeds": [0], "val_fraction": 0.2, "only": False, "amplitude_calibration": ["none"]}


def typed(value):
    """``value`` with the type of every leaf, so that 100 and 100.0 (or True and 1) differ."""
    if isinstance(value, dict):
        return [(k, typed(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [typed(v) for v in value]
    return type(value).__name__, value


@pytest.mark.parametrize("section,old", [
    ("train", OLD_TRAIN), ("train.augment", OLD_TRAIN["augment"]), ("baseline.features", OLD_FEATURES),
    ("explain", OLD_EXPLAIN), ("external", OLD_EXTERNAL),
])
def test_schema_defaults_are_the_old_defaults(section, old):
    assert typed(section_defaults(section)) == typed(old)  # order too: resolved train configs go into best.pt


def test_baseline_and_inline_defaults_are_the_old_ones():
    assert sorted(typed(section_defaults("baseline"))) == sorted(typed(OLD_BASELINE))
    assert section_defaults("evaluate") == {"stage2_class_weight": "none"}  # evaluate.smk's .get(..., "none")
    assert section_defaults("model") == {"preset": "paper"}  # nemg.model's `or "paper"`
    assert section_defaults("cohort") == {"recordings_where": {}}  # cohort.smk's `or {}`


def test_library_resolution_uses_the_schema_defaults():
    from nemg.baseline import classifier_params
    from nemg.explain import am_settings
    from nemg.external import external_settings
    from nemg.features import feature_params
    from nemg.model import PRESETS, resolve_size
    from nemg.train import resolve_train_cfg

    assert typed(resolve_train_cfg({})) == typed(OLD_TRAIN)
    assert resolve_train_cfg({"max_epochs": 12})["max_epochs"] == 12
    assert typed(classifier_params({"rf_trees": 20})) == typed({**OLD_CLASSIFIER, "rf_trees": 20})
    assert typed(feature_params({"turn_uv": 50.0})) == typed({**OLD_FEATURES, "turn_uv": 50.0})
    assert typed(am_settings({"steps": 40, "seed": None})) == typed({**OLD_AM, "steps": 40})
    assert external_settings({"external": {"seeds": [1, 2]}}) == {**OLD_EXTERNAL, "seeds": [1, 2]}
    assert external_settings({}) == OLD_EXTERNAL
    assert resolve_size({}) == {**PRESETS["paper"], "max_channels": None, "min_channels": None,
                                "log_input_uv": None, "stem_pool_stride": 1, "rms_to_head": False,
                                "head_dropout": 0.0}
    with pytest.raises(ValueError, match="unknown key"):
        am_settings({"stepz": 3})


def test_a_config_without_an_optional_key_gets_its_schema_default():
    given = default()
    cfg = copy.deepcopy(given)
    del cfg["train"]["max_epochs"], cfg["explain"], cfg["baseline"]["features"], cfg["external"]["seeds"]
    cfg["train"]["augment"] = None  # present, even as null: kept (nemg.augment reads null as off)
    validate_config(cfg)
    filled = fill_defaults(cfg)
    assert filled["train"]["max_epochs"] == 100  # the schema's (paper) default, not config.yaml's 12
    assert filled["train"]["augment"] is None and filled["train"]["lr"] == given["train"]["lr"]
    assert filled["explain"] == section_defaults("explain")
    assert filled["baseline"]["features"] == OLD_FEATURES and filled["baseline"]["rf_trees"] == 200
    assert filled["external"]["seeds"] == [0]
    # the given keys keep their order, filled ones follow; the input is not modified
    assert list(filled["train"])[:-1] == list(cfg["train"]) and list(filled["train"])[-1] == "max_epochs"
    assert "max_epochs" not in cfg["train"] and "explain" not in cfg
    validate_config(filled)
    # a whole config file: load_config fills too, and the shipped config.yaml leaves only the features out
    assert load_config(REPO / "config.yaml") == fill_defaults(given)
    assert fill_defaults(yaml.safe_load((REPO / "config.yaml").read_text())) == given


def test_section_defaults_are_fresh_copies():
    section_defaults("baseline.features")["bands"].append([1, 2])
    assert section_defaults("baseline.features")["bands"] == OLD_FEATURES["bands"]
    with pytest.raises(KeyError, match="no section 'trian'"):
        section_defaults("trian")


def keys_with_defaults(schema: dict) -> set[str]:
    keys = set()
    for key, sub in schema.get("properties", {}).items():
        keys |= ({key} if "default" in sub else set()) | keys_with_defaults(sub)
    return keys


def test_defaults_live_only_in_the_schema():
    """No module or rule file keeps its own copy of a config default: no *_DEFAULTS dict, no config key read with
    a fallback (``d.get("key", default)``, ``d.get("key") or default``). Rule files and scripts read the filled
    config (CFG in common.smk), so there they may not fall back on anything at all."""
    keys = "|".join(sorted(keys_with_defaults(load_schema("config"))))
    literal = r"""(?:["'][^"']*["']|-?[\d.]+(?:e-?\d+)?|True|False|None|\[[^\]]*\]|\{[^}]*\}|\(\))"""
    defaults_dict = re.compile(r"^[ \t]*[A-Z][A-Z0-9_]*_DEFAULTS\b[^=\n]*=(?!=)", re.M)
    library = re.compile(rf"""\.get\(\s*["']({keys})["']\s*(?:,\s*{literal}\s*\)|\)\s*or\s+{literal})""")
    workflow = re.compile(r"""(?<!environ)\.get\(\s*["'][^"']+["']\s*(?:,|\)\s*or\b)|\bconfig\.get\(""")
    src = sorted((REPO / "src" / "nemg").rglob("*.py"))
    rules = [REPO / "Snakefile", *sorted((REPO / "workflow").rglob("*.smk")),
             *sorted((REPO / "workflow" / "scripts").glob("*.py"))]
    problems = set()
    for path in src + rules:
        text = path.read_text()
        patterns = [defaults_dict, library] + ([workflow] if path in rules else [])
        for pattern in patterns:
            for m in pattern.finditer(text):
                line = text.count("\n", 0, m.start()) + 1
                problems.add(f"{path.relative_to(REPO)}:{line}: {text.splitlines()[line - 1].strip()}")
    assert len(src) > 30 and len(rules) > 30 and not problems, "\n".join(sorted(problems))


def _recipe_table() -> list[tuple[str, str, str]]:
    """(dotted key, paper value, CPU-recipe value) per key of docs/training.md's config table."""
    text = (REPO / "docs" / "training.md").read_text()
    head = "| key | paper (`configs/paper.yaml`) | CPU recipe (`config.yaml`) | why |"
    assert head in text, "docs/training.md lost its config table"
    rows = []
    for line in text[text.index(head):].splitlines()[2:]:
        if not line.startswith("|"):
            break
        key_cell, paper_cell, cpu_cell = [c.strip() for c in line.strip("|").split("|")][:3]
        keys = re.findall(r"`([^`]+)`", key_cell)
        section = keys[0].rsplit(".", 1)[0]
        keys = [keys[0]] + [f"{section}.{k}" for k in keys[1:]]
        paper_vals, cpu_vals = paper_cell.split(", "), cpu_cell.split(", ")
        assert len(paper_vals) == len(cpu_vals) == len(keys), line
        rows += [(k, p.strip("`"), c.strip("`")) for k, p, c in zip(keys, paper_vals, cpu_vals)]
    return rows


def _same(doc: str, value) -> bool:
    if doc == "off":
        return isinstance(value, dict) and not any(value.values())
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(doc) == float(value)
    return doc == str(value)


def test_cpu_recipe_table_matches_config_yaml():
    """docs/training.md's table of the paper's and the CPU recipe's settings is what the two configs set."""
    cpu = fill_defaults(load_config(REPO / "config.yaml"))
    paper = fill_defaults(load_config(REPO / "config.yaml", REPO / "configs" / "paper.yaml"))
    rows = _recipe_table()
    assert {"model.preset", "train.max_epochs", "train.eval_every", "train.val_hop_factor"} <= {k for k, _, _ in rows}
    for key, paper_doc, cpu_doc in rows:
        section, name = key.split(".")
        assert _same(cpu_doc, cpu[section][name]), f"{key}: docs say {cpu_doc}, config.yaml has {cpu[section][name]}"
        assert _same(paper_doc, paper[section][name]), f"{key}: docs say {paper_doc}, paper has {paper[section][name]}"


def test_train_runtime_keys_are_train_keys_and_split_the_section():
    from nemg.config import TRAIN_RUNTIME_KEYS, split_train_runtime

    train = section_defaults("train")
    assert set(TRAIN_RUNTIME_KEYS) <= set(train)
    learn, runtime = split_train_runtime(train)
    assert set(runtime) == set(TRAIN_RUNTIME_KEYS) and {**learn, **runtime} == train
    # what a run learns from stays in the params Snakemake compares: the recipe and the device
    assert {"lr", "max_epochs", "seed_offset", "device", "bag_size", "augment"} <= set(learn)


def test_fast_config_changes_only_the_stem_pooling():
    """configs/fast.yaml is the default recipe with block 1's max-pool at stride 2 and nothing else, so what
    docs/training.md measured for it (and for the shipped recipe beside it) stays true of it."""
    from nemg.model import resolve_size

    base = load_config(REPO / "config.yaml")
    fast = load_config(REPO / "config.yaml", REPO / "configs" / "fast.yaml")
    assert resolve_size(fast["model"]) == {**resolve_size(base["model"]), "stem_pool_stride": 2}
    assert {k: v for k, v in fast.items() if k != "model"} == {k: v for k, v in base.items() if k != "model"}
    with_data = load_config(REPO / "config.yaml", REPO / "configs" / "messekher.yaml", REPO / "configs" / "fast.yaml")
    assert with_data["cohort"]["name"] == "messekher2023" and with_data["model"]["stem_pool_stride"] == 2


def test_bf16_cpu_config_changes_only_the_cpu_arithmetic():
    """configs/bf16_cpu.yaml is the default recipe with bf16 autocast on the CPU and nothing else."""
    base = load_config(REPO / "config.yaml")
    amx = load_config(REPO / "config.yaml", REPO / "configs" / "bf16_cpu.yaml")
    assert base["train"]["bf16_cpu"] is False and amx["train"] == {**base["train"], "bf16_cpu": True}
    assert {k: v for k, v in amx.items() if k != "train"} == {k: v for k, v in base.items() if k != "train"}


def test_gain_free_config_changes_the_trunk_and_the_pretraining_only():
    """configs/gain_free.yaml is the recipe docs/external.md measured across sites: the data set's config with the
    gain-free trunk and no pretraining, nothing else (a data set's folds, external cohorts and seeds stay)."""
    from nemg.model import resolve_size

    for data in ("messekher.yaml", "n2001.yaml"):
        base = load_config(REPO / "config.yaml", REPO / "configs" / data)
        free = load_config(REPO / "config.yaml", REPO / "configs" / data, REPO / "configs" / "gain_free.yaml")
        assert resolve_size(free["model"]) == {**resolve_size(base["model"]), "rms_to_head": True}
        assert free["pretrain"] == {**base["pretrain"], "enabled": False}
        assert {k: v for k, v in free.items() if k not in ("model", "pretrain")} == \
            {k: v for k, v in base.items() if k not in ("model", "pretrain")}
        assert free["external"]["amplitude_calibration"] == ["none", "median_rms"]
