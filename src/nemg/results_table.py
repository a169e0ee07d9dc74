"""docs/results/real_data.tsv: the headline numbers of every data set, model and variant, read from the DAG's own
outputs, and the README's results tables regenerated from that file (``scripts/real_data_table.py``).

One row per (data set, model, variant):

* ``variant`` ``cv``: within-set nested cross-validation, the stage-2 ``method`` without muscle location (the
  Table 2 variant). Consensus accuracy with its patient-bootstrap 95 % CI and the macro F1 are the bootstrap
  table's point estimates (mean over replicates); per-class recall is that of the consensus calls
  (:func:`nemg.baseline.per_class_recall`).
* ``variant`` ``external:<test>``: trained on every patient of the data set, tested on another (``<test>.rms``:
  amplitude-calibrated), from ``external_validation.tsv`` (:func:`nemg.evaluate.external_summary_row`).

Each row names the ``commit`` and the ``cpu`` (:func:`nemg.manifest.cpu_info`'s label) of the run it comes from.
CPU training is bit-reproducible on one kind of CPU, not across kinds, so the same commit run on two kinds of CPU
is two measurements: the file keeps one row set per (data set, CPU). A new run replaces the rows of its own data
set and CPU and keeps those of other CPUs; the README's main tables show, per data set, the rows of the CPU it
was first recorded on (the first in the file), and the ``cross-cpu-table`` block sets the CPUs side by side.

Inputs per cohort ``<c>`` (paths relative to the repository root):

* ``results/evaluate/<c>/{per_run_metrics,patient_consensus,bootstrap_ci}.tsv`` (nEMGNet);
* ``results/evaluate/<c>/model_comparison.tsv``: which arms were compared; each ``baseline_<m>`` arm reads
  ``results/baseline/<c>/<m>/{per_run_metrics,patient_consensus,bootstrap_ci}.tsv``, any other arm ``<a>`` the
  same three files under ``results/evaluate/<c>/<a>/``;
* ``results/external/<c>/external_validation.tsv``;
* wall time, Snakemake benchmark files (column ``s``): ``benchmarks/train/<c>/<run_id>.tsv`` for every run of
  nEMGNet's ``per_run_metrics.tsv``; ``benchmarks/baseline/<c>/{features,<m>_predictions}.tsv``;
  ``benchmarks/external/<c>/train_ext_s<seed>.tsv`` (``train_pretrained_ext_s<seed>.tsv`` when the prediction
  jobs' logs, ``logs/external/<c>/<test>_predict_ext_s<seed>.log``, name ``models_pretrained/``) +
  ``<test>_predict_ext_s<seed>.tsv`` (nEMGNet) and ``<test>_<m>_predictions.tsv`` (baselines).

A cohort with none of its model outputs (``results/{train,evaluate,external}/<c>/``, ``results/baseline/<c>/<m>/``)
is skipped; one with some but not all of the files above is an error that names every missing file, so a table
is never published from half a run.

No snakemake or torch import: the script runs in any environment that has the library's tables stack.
"""
from __future__ import annotations

import argparse
import io
import logging
import math
import re
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .baseline import MODELS as BASELINE_MODELS, per_class_recall
from .folds import EXTERNAL_SCHEME, run_id_regex
from .labels import CLASSES
from .manifest import cpu_info, cpu_label

log = logging.getLogger(__name__)

COLUMNS = ["dataset", "model", "variant", "method", "n_patients", "n_runs", "accuracy", "accuracy_ci_low",
           "accuracy_ci_high", "macro_f1", *(f"recall_{c}" for c in CLASSES), "amplitude_gain", "wall_s", "commit",
           "cpu"]
ARM_FILES = ("per_run_metrics.tsv", "patient_consensus.tsv", "bootstrap_ci.tsv")
# the paths whose edits change what the DAG computes; an edit elsewhere (docs, tests) does not make numbers dirty
CODE_PATHS = ("src", "workflow", "configs", "config.yaml")
MARKERS = {"real-data-table": lambda df: reference_rows(df[df["dataset"] != "simulated"]),
           "default-run-table": lambda df: reference_rows(df[df["dataset"] == "simulated"])}
#: the cross-CPU block compares these models (the combined arms follow from them)
CROSS_CPU_MODELS = ("nemgnet", "qemg_logreg", "qemg_rf")
MODEL_LABELS = {"nemgnet": "nEMGNet", "qemg_logreg": "QEMG + logistic regression",
                "qemg_rf": "QEMG + random forest",
                "combined_logreg": "nEMGNet + QEMG logreg scores (combined stage 2)",
                "combined_rf": "nEMGNet + QEMG rf scores (combined stage 2)"}
MODEL_ORDER = ("nemgnet", "qemg_logreg", "qemg_rf", "combined_logreg", "combined_rf")
MODEL_STAGES = ("train", "evaluate", "external")


class ResultsTableError(RuntimeError):
    """A cohort's outputs are incomplete or inconsistent."""


# --------------------------------------------------------------------------------------------------- inputs
def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype={"subject_id": str, "run_id": str, "replicate": str})


def _primary(df: pd.DataFrame, method: str) -> pd.DataFrame:
    return df[(df["method"] == method) & (~df["with_location"].astype(bool))]


def model_name(arm: str) -> str:
    """model_comparison / external arm name -> the table's model name."""
    if arm in ("nEMGNet", "nemgnet"):
        return "nemgnet"
    if arm.startswith("baseline_"):
        return "qemg_" + arm.removeprefix("baseline_")
    if arm in BASELINE_MODELS:  # external_evaluate names the baseline arms by their bare model
        return "qemg_" + arm
    return arm.lower()


def arm_dir(root: Path, cohort: str, arm: str) -> Path:
    if arm == "nEMGNet":
        return root / "results/evaluate" / cohort
    if arm.startswith("baseline_"):
        return root / "results/baseline" / cohort / arm.removeprefix("baseline_")
    # a future arm (e.g. a combined stage 2) writes the same three tables in a folder of its own name
    return root / "results/evaluate" / cohort / arm


def comparison_arms(path: Path) -> list[str]:
    """The arms model_comparison.tsv compares, in its column order."""
    suffix = "_consensus_bootstrap"
    arms = [c.removesuffix(suffix) for c in pd.read_csv(path, sep="\t", nrows=0).columns if c.endswith(suffix)]
    if not arms:
        raise ResultsTableError(f"{path}: no '<arm>{suffix}' columns")
    return arms


def discover_cohorts(root: Path) -> list[str]:
    """Every cohort with a model output; test cohorts preprocessed for another run (``<test>_for_<c>``) are not
    data sets of their own."""
    names = set()
    for stage in (*MODEL_STAGES, "baseline"):
        d = root / "results" / stage
        if d.is_dir():
            names.update(p.name for p in d.iterdir() if p.is_dir() and "_for_" not in p.name)
    return sorted(names)


def _baseline_model_dirs(root: Path, cohort: str) -> list[Path]:
    d = root / "results/baseline" / cohort
    return sorted(p for p in d.iterdir() if p.is_dir()) if d.is_dir() else []


def has_outputs(root: Path, cohort: str) -> bool:
    # results/baseline/<c>/features.npy alone is not a model output: an external-only run makes it too
    return any((root / "results" / s / cohort).is_dir() for s in MODEL_STAGES) or bool(
        _baseline_model_dirs(root, cohort))


def _require(paths: Iterable[Path], root: Path, cohort: str) -> None:
    missing = [p for p in paths if not p.is_file()]
    if missing:
        names = ", ".join(str(_rel(p, root)) for p in missing)
        raise ResultsTableError(f"cohort {cohort}: partial outputs, missing {names} (finish the DAG for this "
                                f"cohort, or leave it out with --cohorts)")


def _rel(p: Path, root: Path) -> Path:
    try:
        return p.relative_to(root)
    except ValueError:
        return p


# ------------------------------------------------------------------------------------------------ wall time
def benchmark_seconds(path: Path) -> float:
    b = pd.read_csv(path, sep="\t")
    # a repeat()-ed benchmark has one row per measurement of the same job: its cost is one of them, not the sum
    return float(b["s"].mean())


def wall_seconds(files: Sequence[Path], what: str, root: Path) -> float:
    """Sum of the jobs' benchmark times; NaN (and a message) when any job's file is missing, since a partial sum
    would understate the cost."""
    if not files:
        return math.nan
    missing = [f for f in files if not f.is_file()]
    if missing:
        log.info("%s: no wall time (%d of %d benchmark files missing, e.g. %s)", what, len(missing), len(files),
                 _rel(missing[0], root))
        return math.nan
    return float(sum(benchmark_seconds(f) for f in files))


def _matching(folder: Path, pattern: str) -> list[Path]:
    rx = re.compile(pattern)
    return sorted(p for p in folder.iterdir() if rx.fullmatch(p.name)) if folder.is_dir() else []


# --------------------------------------------------------------------------------------------------- rows
def _qemg_benchmarks(root: Path, cohort: str, model: str) -> list[Path]:
    # the features job serves every baseline model; each row counts it, as the cost of that model alone
    return [root / "benchmarks/baseline" / cohort / f for f in ("features.tsv", f"{model}_predictions.tsv")]


def _pretrain_benchmarks(root: Path, cohort: str) -> list[Path]:
    """The pretraining jobs every network of the run started from, when its recorded config pretrained
    (results/manifest/<cohort>/config.yaml): their cost is part of each network's. None without a manifest."""
    path = root / "results/manifest" / cohort / "config.yaml"
    if not path.is_file():
        return []
    try:
        recorded = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ResultsTableError(f"{_rel(path, root)}: unreadable run config ({exc})") from exc
    # a run recorded before the pretraining existed has no such section: it did not pretrain
    pre = recorded["pretrain"] if isinstance(recorded, dict) and isinstance(recorded.get("pretrain"), dict) else {}
    if not pre.get("enabled"):
        return []
    bench = root / "benchmarks/pretrain" / cohort
    return [bench / "pretrain.tsv"] + ([bench / "simulated" / "pretrain.tsv"] if pre.get("simulated_first") else [])


def cv_rows(root: Path, cohort: str, method: str) -> list[dict]:
    """Within-set cross-validation: one row per arm of model_comparison.tsv (nEMGNet alone without baselines)."""
    ev = root / "results/evaluate" / cohort
    comparison = ev / "model_comparison.tsv"
    baselines = _baseline_model_dirs(root, cohort)
    if comparison.is_file():
        arms = comparison_arms(comparison)
        if "nEMGNet" not in arms:
            raise ResultsTableError(f"{_rel(comparison, root)}: no nEMGNet arm")
    else:
        # without the comparison the arms are those begun on disk: name every file they still lack at once
        arms = ["nEMGNet"] + [f"baseline_{d.name}" for d in baselines]
    _require(([comparison] if baselines else []) + [arm_dir(root, cohort, a) / f for a in arms for f in ARM_FILES],
             root, cohort)
    pretraining = _pretrain_benchmarks(root, cohort)  # read once: every network of the run started from it
    rows = []
    for arm in arms:
        d = arm_dir(root, cohort, arm)
        per_run, cons, boot = (_read(d / f) for f in ARM_FILES)
        b = _primary(boot, method).set_index("metric")
        if not {"accuracy", "f1"} <= set(b.index):
            raise ResultsTableError(f"{_rel(d / 'bootstrap_ci.tsv', root)}: no accuracy / f1 rows of stage-2 "
                                    f"method {method!r} without location")
        recall = per_class_recall({arm: cons}, method).iloc[0]
        # every run of the cohort trained a CNN; stale benchmark files of runs no longer in the folds table (an
        # earlier config) are left out by naming the runs
        cnn_files = [root / "benchmarks/train" / cohort / f"{r}.tsv" for r in sorted(per_run["run_id"].unique())]
        cnn_files += pretraining
        if arm == "nEMGNet":
            files = cnn_files
        elif arm.startswith("baseline_"):
            files = _qemg_benchmarks(root, cohort, arm.removeprefix("baseline_"))
        elif arm.startswith("combined_"):  # both models' jobs; the stage 2 itself takes seconds
            files = cnn_files + _qemg_benchmarks(root, cohort, arm.removeprefix("combined_"))
        else:
            files = []  # an arm's jobs are not known here
        rows.append({"dataset": cohort, "model": model_name(arm), "variant": "cv", "method": method,
                     "n_patients": int(b.loc["accuracy", "n_patients"]),
                     "n_runs": int(_primary(per_run, method)["run_id"].nunique()),
                     "accuracy": b.loc["accuracy", "estimate"], "accuracy_ci_low": b.loc["accuracy", "boot_low"],
                     "accuracy_ci_high": b.loc["accuracy", "boot_high"], "macro_f1": b.loc["f1", "estimate"],
                     **{f"recall_{c}": recall[f"recall_{c}"] for c in CLASSES}, "amplitude_gain": math.nan,
                     "wall_s": wall_seconds(files, f"{cohort} {model_name(arm)} cv", root)})
    return rows


def _external_files(bench: Path, logs_dir: Path, test: str, model: str, n_models: int, what: str) -> list[Path]:
    """The benchmark files of one external arm's jobs: nEMGNet's training and scoring per model (seed), a QEMG
    model's fit-and-score job, both for a combined arm (its stage 2 takes seconds); [] when they cannot be told."""
    ext_run = run_id_regex(EXTERNAL_SCHEME)
    if model.startswith("combined_"):
        cnn = _external_files(bench, logs_dir, test, "nemgnet", n_models, what)
        qemg = _external_files(bench, logs_dir, test, "qemg_" + model.removeprefix("combined_"), n_models, what)
        return cnn + qemg if cnn and qemg else []
    if model.startswith("qemg_"):
        return [bench / f"{test}_{model.removeprefix('qemg_')}_predictions.tsv"]
    if model != "nemgnet":
        return []
    pred_files = _matching(bench, rf"{re.escape(test)}_predict_{ext_run}\.tsv")
    # the networks that scored this cohort: models_pretrained/ (rule train_external_pretrained) when the predict
    # jobs' logs name them, else models/ (rule train_external; runs from before there were two sets)
    runs = [p.name.removeprefix(f"{test}_predict_").removesuffix(".tsv") for p in pred_files]
    logs = [logs_dir / f"{test}_predict_{r}.log" for r in runs]
    pretrained = any("/models_pretrained/" in f.read_text(errors="replace") for f in logs if f.is_file())
    train_files = _matching(bench, rf"train_{'pretrained_' if pretrained else ''}{ext_run}\.tsv")
    # one training and one prediction job per model (seed); other counts mean stale or missing files
    if len(train_files) == len(pred_files) == n_models:
        return train_files + pred_files
    log.info("%s: no wall time (%d models, %d training and %d prediction benchmark files)", what, n_models,
             len(train_files), len(pred_files))
    return []


def external_rows(root: Path, cohort: str) -> list[dict]:
    """External validation: one row per (test cohort, arm) of external_validation.tsv."""
    path = root / "results/external" / cohort / "external_validation.tsv"
    _require([path], root, cohort)
    table = pd.read_csv(path, sep="\t")
    other = sorted(set(table["train_cohort"]) - {cohort})
    if other:
        raise ResultsTableError(f"{_rel(path, root)}: rows of training cohort(s) {other}, expected {cohort}")
    bench = root / "benchmarks/external" / cohort
    rows = []
    for _, r in table.iterrows():
        test, n_models, model = str(r["test_cohort"]), int(r["n_models"]), model_name(str(r["model"]))
        what = f"{cohort} {model} external:{test}"
        wall = wall_seconds(_external_files(bench, root / "logs/external" / cohort, test, model, n_models, what), what,
                            root)
        rows.append({"dataset": cohort, "model": model, "variant": f"external:{test}", "method": r["method"],
                     "n_patients": int(r["n_test_patients"]), "n_runs": n_models,
                     "accuracy": r["accuracy_consensus"], "accuracy_ci_low": r["accuracy_boot_low"],
                     "accuracy_ci_high": r["accuracy_boot_high"], "macro_f1": r["f1_consensus"],
                     **{f"recall_{c}": r[f"recall_{c}"] for c in CLASSES}, "amplitude_gain": r["gain"],
                     "wall_s": wall})
    return rows


def cohort_rows(root: Path, cohort: str, method: str) -> list[dict] | None:
    """Every row of one cohort; None when it has no model outputs at all."""
    if not has_outputs(root, cohort):
        return None
    cv_started = (root / "results/train" / cohort).is_dir() or (root / "results/evaluate" / cohort).is_dir() \
        or bool(_baseline_model_dirs(root, cohort))
    rows = cv_rows(root, cohort, method) if cv_started else []
    if (root / "results/external" / cohort).is_dir():
        rows += external_rows(root, cohort)
    return rows


# ------------------------------------------------------------------------------------------------- the table
def git_commit(root: Path) -> str:
    """Short HEAD, '-dirty' when tracked code or configs differ from it; 'unknown' outside a git checkout."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout

    try:
        head = git("rev-parse", "--short", "HEAD").strip()
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", *(f":(top){p}" for p in CODE_PATHS)).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def _touches_code(porcelain_line: str) -> bool:
    paths = porcelain_line[3:].split(" -> ")  # "XY path" or "XY old -> new" for a rename
    return any(p == c or p.startswith(c + "/") for p in paths for c in CODE_PATHS)


def run_record(root: Path, cohort: str) -> dict | None:
    """A cohort's run.yaml (results/manifest/<cohort>/, written by the last job of the run); None without a
    manifest (a run from before manifests existed, or one still in progress)."""
    path = root / "results/manifest" / cohort / "run.yaml"
    if not path.is_file():
        return None
    try:
        run = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ResultsTableError(f"{_rel(path, root)}: unreadable run manifest ({exc})") from exc
    if not isinstance(run, dict) or "git_commit" not in run:
        raise ResultsTableError(f"{_rel(path, root)}: unreadable run manifest (no git_commit)")
    return run


def run_commit(root: Path, cohort: str, run: dict | None = None) -> str | None:
    """The commit a cohort's run was made with (``run``: its run.yaml, read when not given): short hash, '-dirty'
    when the code or configs differed from it then. None without a manifest."""
    run = run_record(root, cohort) if run is None else run
    if run is None:
        return None
    commit = str(run["git_commit"])[:7]
    return commit + ("-dirty" if any(_touches_code(line) for line in run.get("git_changes") or []) else "")


def run_cpu(run: dict | None, given: str | None = None) -> str:
    """The CPU a run was made on: its run.yaml's, else ``given``, else this machine's for a run without a
    manifest (one in progress here) and "unknown" for a manifest that predates the record."""
    recorded = None if run is None else cpu_label(run)
    if recorded is None or recorded == "unknown":
        return given or (cpu_info()["label"] if recorded is None else recorded)
    return recorded


def _variant_key(v: str) -> tuple:
    return (v != "cv", v)


def _model_key(m: str) -> tuple:
    return (MODEL_ORDER.index(m) if m in MODEL_ORDER else len(MODEL_ORDER), m)


def _cpu_order(df: pd.DataFrame) -> dict[tuple[str, str], int]:
    """(data set, CPU) -> its rank among the data set's CPUs, in order of first appearance."""
    order: dict[tuple[str, str], int] = {}
    for d, c in zip(df["dataset"], df["cpu"]):
        order.setdefault((d, c), sum(k[0] == d for k in order))
    return order


def sort_rows(df: pd.DataFrame, earlier: pd.DataFrame | None = None) -> pd.DataFrame:
    """By data set, then its CPUs in order of first appearance (the reference first; in ``earlier``, the table as
    it was, before ``df``'s own), variant and model."""
    rank = _cpu_order(df if earlier is None else pd.concat([earlier[["dataset", "cpu"]], df[["dataset", "cpu"]]]))
    keys = [(d, rank[d, c], _variant_key(v), _model_key(m))
            for d, c, v, m in zip(df["dataset"], df["cpu"], df["variant"], df["model"])]
    return df.iloc[sorted(range(len(df)), key=keys.__getitem__)].reset_index(drop=True)


def reference_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Per data set, the rows of its first CPU in the table (the one its figures were first recorded on)."""
    rank = _cpu_order(df)
    return df[np.array([rank[d, c] == 0 for d, c in zip(df["dataset"], df["cpu"])], dtype=bool)]


def read_table(path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype={"dataset": str, "commit": str, "cpu": str}, keep_default_na=False,
                       na_values=["NaN", ""])


# --------------------------------------------------------------------------------------------------- README
def _fmt_wall(s: float) -> str:
    if s is None or not np.isfinite(s):
        return "—"
    s = int(s + 0.5)  # half up: round() would show 6.5 s as 6 s and 7.5 s as 8 s
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


def _fmt_variant(r) -> str:
    if r["variant"] == "cv":
        return "within-set CV"
    test = r["variant"].removeprefix("external:")
    gain = r["amplitude_gain"]
    scaled = ""
    if np.isfinite(gain) and test.endswith(".rmsp"):  # a negative factor: the polarity inverted too
        scaled = f" (amplitude × {abs(gain):.3g}{', polarity inverted' if gain < 0 else ', polarity kept'})"
    elif np.isfinite(gain) and test.endswith(".rms"):
        scaled = f" (amplitude × {gain:.3g})"
    return f"external → {test}{scaled}"


def markdown_table(df: pd.DataFrame, source: str) -> str:
    """The README's view of the TSV: same numbers, rounded as the README rounds them."""
    if df.empty:
        return f"_No rows in `{source}` yet: run `python scripts/real_data_table.py` after the DAG._"
    lines = ["| data set | model | variant | n | consensus accuracy (patient-bootstrap 95 % CI) | macro F1 | "
             "recall normal / myopathy / neuropathy | job time (summed) |",
             "|---|---|---|---|---|---|---|---|"]
    for _, r in df.iterrows():
        recall = " / ".join(f"{r[f'recall_{c}']:.2f}" for c in CLASSES)
        lines.append(f"| {r['dataset']} | {MODEL_LABELS.get(r['model'], r['model'])} | {_fmt_variant(r)} | "
                     f"{int(r['n_patients'])} | {r['accuracy']:.3f} ({r['accuracy_ci_low']:.3f}–"
                     f"{r['accuracy_ci_high']:.3f}) | {r['macro_f1']:.3f} | {recall} | {_fmt_wall(r['wall_s'])} |")
    methods = ", ".join(sorted(set(df["method"].astype(str))))
    lines += ["", f"Generated by `scripts/real_data_table.py` from `{source}` (stage 2: {methods}, without "
                  f"location; {_provenance(df)}); edits between the markers are overwritten."]
    return "\n".join(lines)


def _provenance(df: pd.DataFrame) -> str:
    """'commit `x` on <cpu>', or per data set when the rows come from several runs."""
    def runs(g):
        return ", ".join(f"`{c}` on {u}" for c, u in sorted(set(zip(g["commit"], g["cpu"]))))

    by_set = {d: runs(g) for d, g in df.groupby("dataset", sort=True)}
    if len(set(by_set.values())) == 1:
        return "commit " + next(iter(by_set.values()))
    return "runs of commit " + "; ".join(f"{d} {r}" for d, r in by_set.items())


def cross_cpu_markdown(df: pd.DataFrame, source: str) -> str:
    """The data sets run on more than one kind of CPU: consensus accuracy / macro F1 per CPU, side by side."""
    rank = _cpu_order(df)
    multi = sorted({d for (d, _), r in rank.items() if r > 0})
    if not multi:
        return f"_Every data set in `{source}` has been run on one kind of CPU so far._"
    lines = ["| data set | variant | model | CPU: consensus accuracy / macro F1 (commit) |", "|---|---|---|---|"]
    for d in multi:
        rows = df[(df["dataset"] == d) & df["model"].isin(CROSS_CPU_MODELS)]
        cpus = sorted(set(rows["cpu"]), key=lambda c: rank[d, c])
        for (variant, model), g in sorted(rows.groupby(["variant", "model"]),
                                          key=lambda kv: (_variant_key(kv[0][0]), _model_key(kv[0][1]))):
            first = g.iloc[0]
            cells = []
            for c in cpus:
                r = g[g["cpu"] == c]
                cells.append(f"{c}: {r.iloc[0]['accuracy']:.3f} / {r.iloc[0]['macro_f1']:.3f} "
                             f"(`{r.iloc[0]['commit']}`)" if len(r) else f"{c}: —")
            lines.append(f"| {d} | {_fmt_variant(first)} | {MODEL_LABELS.get(model, model)} | "
                         f"{'<br>'.join(cells)} |")
    lines += ["", f"Generated by `scripts/real_data_table.py` from `{source}` (the first CPU of each data set is the "
                  "one the tables above show); edits between the markers are overwritten."]
    return "\n".join(lines)


def replace_block(text: str, name: str, body: str) -> str | None:
    """``text`` with everything between ``<!-- name:begin -->`` and ``<!-- name:end -->`` replaced by ``body``;
    None when the text has no such pair."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    nb, ne = text.count(begin), text.count(end)
    if nb == ne == 0:
        return None
    if nb != 1 or ne != 1 or text.index(begin) > text.index(end):
        raise ResultsTableError(f"README: expected one '{begin}' followed by one '{end}', found {nb} and {ne}")
    i, j = text.index(begin) + len(begin), text.index(end)
    return text[:i] + "\n" + body + "\n" + text[j:]


# PAPER.md, v1 Table 2: the published model / physicians, shown beside the default run for orientation
PUBLISHED_V1 = {"accuracy": (0.875, 0.694), "precision": (0.820, 0.602), "recall": (0.820, 0.537),
                "specificity": (0.904, 0.773), "f1": (0.820, 0.524)}
TABLE2_COHORT = "simulated"


def table2_markdown(root: Path, cohort: str = TABLE2_COHORT) -> str | None:
    """The default run's Table 2 (results/evaluate/<cohort>/table2.tsv) as markdown; None when not produced."""
    path = root / "results" / "evaluate" / cohort / "table2.tsv"
    if not path.is_file():
        return None
    t = pd.read_csv(path, sep="\t")
    has_phys = "physicians_mean_ci_raters" in t.columns
    head = ["metric", "model, mean over runs (95 % CI)", "model, consensus calls (patient bootstrap 95 % CI)"]
    head += ["simulated physicians, mean over raters (95 % CI)"] if has_phys else []
    head += ["published v1: model / physicians"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in t.iterrows():
        cells = [r["metric"], str(r["model_mean_ci_runs"]), str(r["model_consensus_bootstrap"])]
        cells += [str(r["physicians_mean_ci_raters"])] if has_phys else []
        pub = PUBLISHED_V1.get(r["metric"])
        cells.append(f"{pub[0]:.3f} / {pub[1]:.3f}" if pub else "—")
        lines.append("| " + " | ".join(c.replace("-", "–") if "(" in c else c for c in cells) + " |")
    lines += ["", f"Generated by `scripts/real_data_table.py` from `{_rel(path, root)}`; edits between the markers "
                  "are overwritten."]
    return "\n".join(lines)


def render_readme(text: str, table: pd.DataFrame, source: str, root: Path | None = None) -> tuple[str, list[str]]:
    """``text`` with every marked block regenerated from ``table`` (and, given ``root``, the default run's
    Table 2), and the names of those blocks."""
    done = []
    body = table2_markdown(root) if root is not None else None
    if body is not None:
        new = replace_block(text, "default-table2", body)
        if new is not None:
            text = new
            done.append("default-table2")
    for name, select in MARKERS.items():
        new = replace_block(text, name, markdown_table(select(table), source))
        if new is not None:
            text = new
            done.append(name)
    new = replace_block(text, "cross-cpu-table", cross_cpu_markdown(table, source))
    if new is not None:
        text = new
        done.append("cross-cpu-table")
    return text, done


# ------------------------------------------------------------------------------------------------------ CLI
def primary_method(root: Path) -> str:
    """evaluate.primary_method of config.yaml (the public configs keep it)."""
    try:
        with open(root / "config.yaml") as fh:
            return str(yaml.safe_load(fh)["evaluate"]["primary_method"])
    except (OSError, KeyError, TypeError):
        return "logreg"


def build(root: Path, cohorts: Sequence[str], method: str, cpu: str | None = None
          ) -> tuple[pd.DataFrame, list[str]]:
    """Rows of every cohort with outputs and the cohorts produced. Each cohort's rows are stamped with the commit
    its run was made with (its manifest), or the working tree's when it has none: data sets rerun at different
    commits (a long public-data run is not redone for every change) say so row by row. Likewise the CPU: the
    manifest's, else ``cpu`` when given (a manifest from before the CPU was recorded), else this machine's for a
    run without a manifest (one still in progress here) and "unknown" for an older manifest."""
    rows, produced, errors = [], [], []
    for c in cohorts:
        try:
            r = cohort_rows(root, c, method)
        except ResultsTableError as exc:  # every cohort's problem in one go, not one per rerun
            errors.append(str(exc))
            continue
        if r is None:
            log.warning("%s: no model outputs under results/ (train, evaluate, baseline/<model>, external): skipped",
                        c)
            continue
        log.info("%s: %d rows", c, len(r))
        run = run_record(root, c)
        commit = run_commit(root, c, run) or git_commit(root)
        rows += [{**row, "commit": commit, "cpu": run_cpu(run, cpu)} for row in r]
        produced.append(c)
    if errors:
        raise ResultsTableError("\n".join(errors))
    return pd.DataFrame(rows, columns=COLUMNS), produced


def main(argv: Sequence[str] | None = None, default_root: Path | None = None) -> int:
    """``default_root``: the repository the caller lives in (the script's), when --root is not given."""
    ap = argparse.ArgumentParser(description="docs/results/real_data.tsv from the DAG's outputs, and the README's "
                                             "results tables from it (nemg.results_table).")
    ap.add_argument("--root", type=Path, default=default_root or Path(__file__).resolve().parents[2],
                    help="repository root (results/, benchmarks/, git)")
    ap.add_argument("--cohorts", nargs="+", help="cohort names (default: every cohort with model outputs)")
    ap.add_argument("--out", type=Path, help="TSV to write (default <root>/docs/results/real_data.tsv)")
    ap.add_argument("--readme", type=Path, help="README whose marked blocks to regenerate (default <root>/README.md)")
    ap.add_argument("--no-readme", action="store_true", help="write the TSV only")
    ap.add_argument("--method", help="stage-2 method of the cv rows (default: evaluate.primary_method of config.yaml)")
    ap.add_argument("--fresh", action="store_true",
                    help="drop the TSV's rows of data sets not produced by this call (default: keep them)")
    ap.add_argument("--cpu", help="CPU label for runs whose manifest does not record one (written before nemg "
                                  "recorded it; e.g. 'AMD family 25 model 17', as nemg.manifest.cpu_info writes it)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    log.setLevel(logging.INFO)  # the progress lines also when a caller (pytest, a notebook) set up logging first
    root = args.root.resolve()
    out = args.out or root / "docs/results/real_data.tsv"
    readme = args.readme or root / "README.md"
    cohorts = args.cohorts or discover_cohorts(root)
    try:
        new, produced = build(root, cohorts, args.method or primary_method(root), args.cpu)
    except ResultsTableError as exc:
        log.error("error: %s", exc)
        return 1
    if not produced:
        log.error("error: no cohort of %s has outputs; %s left as it is", cohorts or "results/", out)
        return 1
    table, earlier = new, None
    if out.is_file() and not args.fresh:
        old = read_table(out)
        missing = [c for c in COLUMNS if c not in old.columns]
        if missing:
            log.error("error: %s lacks column(s) %s that this script writes (an older format): add them, or rerun "
                      "with --fresh", out, ", ".join(missing))
            return 1
        replaced = set(zip(new["dataset"], new["cpu"]))
        kept = old[np.array([(d, c) not in replaced for d, c in zip(old["dataset"], old["cpu"])], dtype=bool)]
        if len(kept):
            # data sets whose runs are not at hand now keep their figures, each stamped with its own commit, and so
            # do a data set's runs on other kinds of CPU (another measurement, not a stale one)
            log.info("kept %d earlier rows of %s", len(kept),
                     ", ".join(sorted({f"{d} ({c})" for d, c in zip(kept["dataset"], kept["cpu"])})))
            table = pd.concat([kept, new], ignore_index=True)
        # a data set's CPUs keep their order (its reference first, whichever was rerun); a new CPU's rows follow
        earlier = old
    table = sort_rows(table, earlier)[COLUMNS]
    tsv = table.to_csv(sep="\t", index=False, float_format="%.6g", na_rep="NaN")
    readme_text = None
    if not args.no_readme:
        if not readme.is_file():
            log.error("error: no README at %s (--no-readme writes the TSV only)", readme)
            return 1
        # the README is built from the TSV as written (read back), so its numbers are the file's, rounded; and it
        # is rendered before anything is written, so a malformed README leaves both files as they were
        written = read_table(io.StringIO(tsv))
        # the default run's Table 2 block shows the run at hand only if it is the one the main table shows (a run
        # on another kind of CPU goes to the cross-CPU block, not over the reference's Table 2)
        sim = reference_rows(written[written["dataset"] == TABLE2_COHORT])["cpu"]
        here = run_cpu(run_record(root, TABLE2_COHORT), args.cpu)
        t2_root = root if sim.empty or here == sim.iloc[0] else None
        if t2_root is None:
            log.info("default-table2 left as it is: %s's run here is not on its reference CPU (%s)", TABLE2_COHORT,
                     sim.iloc[0])
        try:
            # the TSV as the README's reader finds it: relative to the README (--root may be another checkout's run)
            source = str(_rel(out.resolve(), readme.resolve().parent))
            readme_text, done = render_readme(readme.read_text(), written, source, t2_root)
        except ResultsTableError as exc:
            log.error("error: %s", exc)
            return 1
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(tsv)
    log.info("wrote %s (%d rows)", out, len(table))
    if readme_text is not None:
        readme.write_text(readme_text)
        log.info("%s: %s", readme, f"regenerated {', '.join(done)}" if done else "no marked block to regenerate")
    return 0


__all__ = ["COLUMNS", "ResultsTableError", "build", "cohort_rows", "cross_cpu_markdown", "cv_rows",
           "discover_cohorts", "external_rows", "git_commit", "main", "markdown_table", "read_table", "reference_rows",
           "render_readme", "replace_block", "run_cpu"]
