"""Load and validate the workflow configuration with messages a user can act on.

``validate_config`` checks a config dict against ``workflow/schemas/config.schema.yaml`` and a few rules a
schema cannot express (whole-sample windows, a hop no longer than the window, sheets given when the source
is ``sheets``). Every problem is reported at once, each with its dotted key, e.g.::

    config: 2 problems:
      - preprocess.segment.hop_s: -0.1 is not allowed: must be > 0
      - unknown key 'preprocces' at the top level (did you mean 'preprocess'?); allowed: cohort, ...

The schema's ``default`` entries are the only home of config defaults: ``fill_defaults`` completes a whole
config (what the workflow's rules read), ``section_defaults`` gives one section's defaults to library
functions that accept a partial dict (``nemg.train.resolve_train_cfg({})``).
"""
from __future__ import annotations

import copy
import difflib
from pathlib import Path
from typing import Any, Mapping

import yaml

from .schemas import load_schema

#: Default public-data folder, relative to the repository root (docs: ../shared/data beside the project).
DEFAULT_DATA_DIR = "../shared/data"


class ConfigError(ValueError):
    """The configuration is invalid; ``problems`` holds one line per problem, each naming the key."""

    def __init__(self, problems: list[str], source: str = "config"):
        self.problems = list(problems)
        n = len(problems)
        super().__init__(f"{source}: {n} problem{'s' if n != 1 else ''}:\n  - " + "\n  - ".join(problems))


def deep_merge(base: dict, override: dict) -> dict:
    """``override`` on top of ``base`` (nested dicts merged, everything else replaced), like Snakemake does."""
    out = copy.deepcopy(base)
    for k, v in (override or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def load_config(*paths: str | Path) -> dict:
    """Read YAML config files, each merged on top of the previous one, validate the result and fill in the
    schema defaults (the config as the workflow's rules see it)."""
    cfg: dict = {}
    for p in paths:
        cfg = deep_merge(cfg, read_config_file(p))
    return fill_defaults(validate_config(cfg, source=" + ".join(str(p) for p in paths) or "config"))


def read_config_file(path: str | Path) -> dict:
    """One YAML config file as a mapping; a missing file, a YAML syntax error (with its line and column) or a
    top level that is not a mapping is a :class:`ConfigError` naming the file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError([f"config file not found: {p}"], str(p))
    try:
        with p.open() as f:  # a stream, so that the YAML error's marks name the file
            data = yaml.safe_load(f) or {}
    except yaml.YAMLError as exc:
        raise ConfigError([f"not valid YAML: {exc}"], str(p)) from exc
    if not isinstance(data, dict):
        raise ConfigError([f"expected a mapping of sections at the top level, got {type(data).__name__}"], str(p))
    return data


def _fill(value: Any, schema: dict) -> Any:
    if not isinstance(value, dict):
        return value
    for key, sub in schema.get("properties", {}).items():
        if key not in value and "default" in sub:
            value[key] = copy.deepcopy(sub["default"])
        if key in value:
            _fill(value[key], sub)
    return value


def fill_defaults(config: Mapping) -> dict:
    """A deep copy of ``config`` with every key it leaves out set to the schema's ``default``, at every depth.

    A key that is present keeps its value, null included (null has its own meaning for some keys, e.g.
    ``explain.device``: the training device); filled keys come after the given ones, so a section's given keys
    keep their order. Keys without a default (the required ones) stay absent: validation reports those.
    """
    return _fill(copy.deepcopy(dict(config)), load_schema("config"))


#: train: settings that change how a run executes, not what it learns (threads, inference batch, progress bar,
#: checkpoint cadence, keeping last.pt): a changed value must not retrain the networks, so the training rules
#: leave them out of the params Snakemake compares (:func:`split_train_runtime`). Every other train: key, the
#: device included, is part of what a run learns.
TRAIN_RUNTIME_KEYS = ("num_threads", "eval_batch_size", "progress", "checkpoint_every", "keep_last")


def split_train_runtime(train_cfg: Mapping) -> tuple[dict, dict]:
    """(what a run learns from, how it runs) of a ``train:`` section, by :data:`TRAIN_RUNTIME_KEYS`."""
    learn = {k: v for k, v in train_cfg.items() if k not in TRAIN_RUNTIME_KEYS}
    return learn, {k: v for k, v in train_cfg.items() if k in TRAIN_RUNTIME_KEYS}


def base_lr(cfg: Mapping) -> float:
    """A run's learning rate before any schedule (nemg.train): ``finetune_lr`` when the run starts from
    pretrained weights (``init_from``) and it is set, else ``lr``.

    A start that already reads motor-unit potentials is moved less far from them: at the paper's 1e-3 the kept
    evaluation of a fine-tuned Messekher run came at a median update of 300-450 of ~600 and the three-seed
    consensus stayed at random weights' level (docs/training.md, "Fine-tuning at a lower learning rate")."""
    if cfg.get("init_from") and cfg.get("finetune_lr") is not None:
        return float(cfg["finetune_lr"])
    return float(cfg["lr"])


def stage2_settings(evaluate: Mapping) -> dict:
    """The stage-2 keywords of nemg.evaluate.patient_predictions (fit_on, seed, class_weight, c) that every
    divide-and-vote of a run shares, from its ``evaluate:`` section: the workflow's votes and the benchmarks that
    re-vote a run's scores read them here, so that they fit the same stage 2."""
    return {"fit_on": evaluate["stage2_fit_on"], "seed": int(evaluate["seed"]),
            # none: the released code's plain logistic regression; balanced: patients by inverse class frequency
            "class_weight": None if evaluate["stage2_class_weight"] == "none" else "balanced",
            "c": float(evaluate["stage2_c"])}


def section_defaults(section: str) -> dict:
    """The defaults of one config section, by dotted name: ``section_defaults("train")``,
    ``section_defaults("baseline.features")``. A fresh dict on every call, safe to modify."""
    schema = load_schema("config")
    for part in section.split("."):
        props = schema.get("properties", {})
        if part not in props:
            raise KeyError(f"config schema has no section {section!r} (at {part!r}; known: {', '.join(props)})")
        schema = props[part]
    return _fill({}, schema)


def _key(path) -> str:
    parts = [f"[{p}]" if isinstance(p, int) else str(p) for p in path]
    return ".".join(parts).replace(".[", "[") or "(top level)"


def _text_hint(inst: Any, want: str) -> str:
    """Why a number or a boolean may arrive as text: Snakemake reads the inside of a mapping given with
    ``--config key={...}`` as strings (YAML's base loader), so ``--config 'train={max_epochs: 8}'`` fails here."""
    if not isinstance(inst, str):
        return ""
    try:
        parsed = yaml.safe_load(inst)
    except yaml.YAMLError:
        return ""
    if isinstance(parsed, bool):  # before int: a bool is an int to Python, not to the schema
        fits = "boolean" in want
    else:
        fits = (("number" in want and isinstance(parsed, (int, float)))
                or ("integer" in want and isinstance(parsed, int)))
    if fits:
        return (" (Snakemake passes the values inside a --config mapping as text: put the section in a YAML file "
                "and pass it with --configfile)")
    return ""


def _describe(err) -> str:
    v = err.validator
    inst = err.instance
    if v == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        extra = sorted(set(inst) - set(allowed)) if isinstance(inst, dict) else []
        where = _key(err.absolute_path) if err.absolute_path else "the top level"
        msgs = []
        for k in extra:
            close = difflib.get_close_matches(str(k), allowed, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            msgs.append(f"unknown key {k!r} at {where}{hint}; allowed: {', '.join(allowed)}")
        return "\n  - ".join(msgs)
    key = _key(err.absolute_path)
    if v == "required":
        missing = [r for r in err.validator_value if r not in (inst or {})]
        return f"{key}: missing key(s) {', '.join(missing)}"
    if v == "enum":
        return f"{key}: {inst!r} is not allowed; expected one of {', '.join(map(repr, err.validator_value))}"
    if v == "type":
        want = err.validator_value if isinstance(err.validator_value, str) else " or ".join(err.validator_value)
        return f"{key}: {inst!r} has the wrong type ({type(inst).__name__}); expected {want}{_text_hint(inst, want)}"
    bounds = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}
    if v in bounds:
        return f"{key}: {inst!r} is not allowed: must be {bounds[v]} {err.validator_value}"
    if v == "pattern":
        return f"{key}: {inst!r} does not match the pattern {err.validator_value} ({err.schema.get('description', '')})"
    return f"{key}: {err.message}"


def validate_config(config: dict, *, source: str = "config") -> dict:
    """Raise :class:`ConfigError` listing every problem; returns ``config`` unchanged when valid."""
    import jsonschema

    if not isinstance(config, dict):
        raise ConfigError([f"expected a mapping, got {type(config).__name__}"], source)
    validator = jsonschema.Draft202012Validator(load_schema("config"))
    problems = [_describe(e) for e in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.path)))]
    if not problems:
        problems = _semantic_problems(config)
    if problems:
        raise ConfigError(problems, source)
    return config


def _semantic_problems(cfg: dict) -> list[str]:
    problems = []
    c = cfg["cohort"]
    if c["source"] == "sheets":
        for k in ("subjects", "recordings"):
            if not c["sheets"].get(k):
                problems.append(f"cohort.sheets.{k}: required when cohort.source is 'sheets'")
    if c["source"] != "simulated" and c["name"] == "simulated":
        # results/<stage>/<name>/ would then hold real patients under the simulated cohort's folders, report title
        # and README map, and a later default run would overwrite them
        problems.append(f"cohort.name: 'simulated' (config.yaml's default) names the simulated cohort, but "
                        f"cohort.source is '{c['source']}': give the cohort a name of its own (e.g. "
                        f"cohort: {{name: my_clinic}}); every results folder is results/<stage>/<cohort.name>/")
    rate = cfg["preprocess"]["resample"]["rate_hz"]
    seg = cfg["preprocess"]["segment"]
    for k in ("window_s", "hop_s"):
        n = seg[k] * rate
        if abs(n - round(n)) > 1e-6 * max(1.0, n):
            problems.append(f"preprocess.segment.{k}: {seg[k]:g} s at rate_hz {rate:g} is {n:g} samples; "
                            f"it must be a whole number of samples")
    if seg["hop_s"] > seg["window_s"]:
        problems.append(f"preprocess.segment.hop_s: {seg['hop_s']:g} s is longer than preprocess.segment.window_s "
                        f"({seg['window_s']:g} s): {seg['hop_s'] - seg['window_s']:g} s of every signal between two "
                        f"windows would never be used; set hop_s <= window_s")
    trim = cfg["preprocess"]["trim"]
    if trim["min_duration_s"] < seg["window_s"]:
        problems.append(f"preprocess.trim.min_duration_s: {trim['min_duration_s']:g} s is shorter than one "
                        f"window ({seg['window_s']:g} s); such recordings would give no segment")
    return problems


def resolve_path(path: str | Path, base: str | Path) -> Path:
    """``path`` if absolute, else ``base / path`` (config paths are relative to the repository root)."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else (Path(base) / p).resolve()
