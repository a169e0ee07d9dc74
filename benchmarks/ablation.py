"""Ablation of the CPU recipe: train one model/training variant on a cohort's folds and score it per patient.

Reads a cohort the DAG has already preprocessed (results/segment, results/folds, results/cohort of
``--cohort``), trains the chosen runs of its folds table with nemg.train.train_run (``--jobs`` processes of
one thread each, as the DAG does on a CPU), votes them with the DAG's divide-and-vote and prints the
patient-level consensus accuracy, macro F1 and per-class recall, with the QEMG baselines on the same runs
where the DAG has made them (results/baseline/<cohort>/<model>/patient_predictions.tsv). One TSV row per call
is appended to ``--table`` (default results/ablation/ablation.tsv); docs/training.md's ablation table is
built from it.

    python benchmarks/ablation.py --cohort messekher2023 --variant gap_s2 \\
        --model '{"preset": "cpu"}' --train '{"max_epochs": 10, "lr_schedule": "cosine"}' --runs all

``--runs inner0`` trains one inner fold per outer fold (5 runs: every patient tested once, a third of the
cost) for screening; ``all`` is the protocol (15 runs per seed).

    python benchmarks/ablation.py --markdown results/ablation/ablation.tsv   # the docs table from the TSV
"""
from __future__ import annotations

import argparse
import json
import os
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def _train_one(args):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import logging

    from nemg.train import train_run

    logging.basicConfig(level=logging.WARNING)
    seg, idx, folds, run_id, out, model_cfg, train_cfg = args
    t0 = time.perf_counter()
    res = train_run(seg, idx, folds, run_id, out, model_cfg, {**train_cfg, "num_threads": 1, "progress": False})
    return run_id, time.perf_counter() - t0, res


# config files applied on top of config.yaml, as the DAG's --configfile (main's --configfile)
CONFIGFILES: list[Path] = []


def _config() -> dict:
    from nemg.config import deep_merge

    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    for path in CONFIGFILES:
        if not Path(path).is_file():
            raise SystemExit(f"--configfile {path}: no such file")
        cfg = deep_merge(cfg, yaml.safe_load(Path(path).read_text()) or {})
    return cfg


def run_configs(model_json: str = "{}", train_json: str = "{}", cohort: str | None = None) -> tuple[dict, dict]:
    """(model, train) configs of a variant: config.yaml's sections (with --configfile's on top) and the JSON
    overrides on top of them, as the DAG builds them. Without config.yaml's model: the library's default preset
    would apply, the paper network, whose every update takes ~20 s on one CPU thread (a variant call then looks
    hung).

    With pretrain.enabled (in config.yaml, or in a --configfile such as the one a DAG ran with) the runs start,
    as in the DAG, from the cohort's pretrained network (results/pretrain/<cohort>/best.pt, made by the DAG),
    unless the overrides set ``init_from`` themselves (``null``: a random initialisation)."""
    from nemg.config import deep_merge

    cfg = _config()
    overrides = json.loads(train_json)
    # merged as the DAG merges config files: '{"augment": {"mixup": 0.4}}' changes one augmentation, not all
    train = deep_merge(cfg["train"], overrides)
    if (cfg.get("pretrain") or {}).get("enabled") and "init_from" not in overrides and cohort is not None:
        best = ROOT / f"results/pretrain/{cohort}/best.pt"
        if not best.is_file():
            raise SystemExit(f"{best} is missing: the config pretrains (pretrain.enabled); make it with "
                             f"`snakemake {best.relative_to(ROOT)} --configfile configs/<the cohort's config>.yaml`, "
                             f"or start from scratch with --train '{{\"init_from\": null}}'")
        train["init_from"] = str(best)
    return deep_merge(cfg.get("model") or {}, json.loads(model_json)), train


def claim(out_root: Path):
    """An exclusive lock on a variant's output folder: a second call with the same cohort and variant stops here,
    naming the folder, instead of writing the same runs' checkpoints at the same time (one of two such calls
    once died renaming a last.pt the other had just moved). The lock goes with the returned file's process."""
    import fcntl

    out_root.mkdir(parents=True, exist_ok=True)
    fh = open(out_root / ".lock", "w")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise SystemExit(f"{out_root} is being written by another ablation.py call with this cohort and variant; "
                         "wait for it, or pick another --variant") from None
    return fh


def _recorded_train(train_json: str, train_cfg: dict) -> str:
    """The row's ``train`` column: the overrides as given, and the starting checkpoint by path and sha256 (a path
    alone, e.g. results/pretrain/<cohort>/best.pt, names whichever network was last made there)."""
    init = train_cfg.get("init_from")
    if not init:
        return train_json
    from nemg.fileio import sha256_file

    return json.dumps({**json.loads(train_json), "init_from": f"{init} (sha256 {sha256_file(init)[:16]})"})


def _config_evaluate() -> dict:
    """config.yaml's evaluate: section, whose stage-2 C and class weight the DAG votes with (no shipped config
    overrides them but configs/paper.yaml)."""
    return _config()["evaluate"]


def vote(cohort: str, preds: pd.DataFrame, c: float | None = None, class_weight: str | None = None) -> pd.DataFrame:
    """The DAG's divide-and-vote (logreg stage 2) of a cohort's run predictions; stage-2 C and class weight
    (none | balanced) default to config.yaml's evaluate: section, as the DAG's."""
    from nemg.evaluate import patient_predictions

    ev = _config_evaluate()
    subjects = pd.read_csv(ROOT / f"results/cohort/{cohort}/subjects.tsv", sep="\t", dtype={"subject_id": str})
    recordings = pd.read_csv(ROOT / f"results/cohort/{cohort}/recordings.tsv", sep="\t",
                             dtype={"recording_id": str, "subject_id": str})
    weight = class_weight or ev["stage2_class_weight"]
    return patient_predictions(preds, subjects, recordings, methods=("logreg",),
                               class_weight=None if weight == "none" else weight,  # as common/settings.smk
                               c=float(c or ev["stage2_c"]))


def _git_commit() -> str:
    from nemg.results_table import git_commit

    return git_commit(ROOT)


def _run_commit(cohort: str) -> str:
    """The commit the DAG run was made at (its manifest), not the checkout's HEAD; HEAD without a manifest."""
    from nemg.results_table import run_commit

    return run_commit(ROOT, cohort) or _git_commit()


def score(patients: pd.DataFrame, folds: pd.DataFrame, method: str = "logreg") -> dict:
    """Consensus accuracy, macro F1 and per-class recall of one arm's patient predictions (no location)."""
    from nemg.evaluate import consensus, replicate_of
    from nemg.labels import CLASSES
    from nemg.metrics import classification_metrics, per_class_metrics

    pp = patients[(patients["method"] == method) & (~patients["with_location"].astype(str).isin(["True", "true"]))]
    cons = consensus(pp, replicate_of(folds))
    m = classification_metrics(cons["diagnosis"], cons["predicted"])
    rec = per_class_metrics(cons["diagnosis"], cons["predicted"]).set_index("class")["recall"]
    return {"consensus_accuracy": round(m["accuracy"], 4), "macro_f1": round(m["f1"], 4),
            **{f"recall_{c}": round(float(rec[c]), 4) for c in CLASSES}, "n_patients": int(cons["subject_id"].nunique())}


def markdown(tsv: str | Path) -> str:
    """docs/training.md's ablation table: one line per (cohort, variant), QEMG rows of the same runs beside."""
    t = pd.read_csv(tsv, sep="\t")
    # per data set: whole DAG runs, then screening variants in the order they were run, then the QEMG rows
    kind = np.where(t["runs"] == "all", 0, np.where(t["variant"].str.startswith("qemg_"), 2, 1))
    t = t.assign(_kind=kind, _order=range(len(t))).sort_values(["cohort", "_kind", "_order"], kind="stable")
    lines = ["| data set | variant | runs | consensus accuracy | macro F1 | recall normal / myopathy / neuropathy | "
             "stage-2 C | s per run (1 thread) |", "|---|---|---|---|---|---|---|---|"]
    for _, r in t.iterrows():
        cost = f"{r['mean_run_s']:.0f}" if pd.notna(r.get("mean_run_s")) else "—"
        # rows from before evaluate.stage2_c existed were voted with sklearn's default C = 1
        c = f"{r['stage2_c']:g}" if pd.notna(r.get("stage2_c")) else "1"
        lines.append(f"| {r['cohort']} | {r['variant']} | {r['runs']} ({r['n_runs']}) | {r['consensus_accuracy']:.3f} | "
                     f"{r['macro_f1']:.3f} | {r['recall_normal']:.2f} / {r['recall_myopathy']:.2f} / "
                     f"{r['recall_neuropathy']:.2f} | {c} | {cost} |")
    return "\n".join(lines)


def append_rows(out: Path, rows: list[dict]) -> None:
    """Add ``rows`` to the TSV ``out``, one row per (cohort, variant, runs): a rerun replaces its row, the QEMG
    rows are written once.

    The commit is read back as text: a short hash of digits only (``9713163``) would otherwise come back as a
    float once another row leaves the column empty, and be written as ``9713163.0``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    new = pd.DataFrame(rows)
    if out.exists():
        old = pd.read_csv(out, sep="\t", dtype={"commit": str, "variant": str, "cohort": str})
        keys = ["cohort", "variant", "runs"]
        keep = ~old.set_index(keys).index.isin(new.set_index(keys).index)
        new = pd.concat([old[keep], new], ignore_index=True)
    new.to_csv(out, sep="\t", index=False)


def from_dag(cohort: str, variant: str, patients: str | None = None,
             table: str | Path = ROOT / "results/ablation/ablation.tsv") -> int:
    """Append the row of a whole DAG run (all runs of its folds): its own patient_predictions.tsv (or a saved
    copy) scored like the screening rows, with the mean train_fold job time from benchmarks/."""
    patients = patients or None  # "" on the command line: the DAG's own file, as when left out
    folds = pd.read_csv(ROOT / f"results/folds/{cohort}/folds.tsv", sep="\t", dtype={"subject_id": str, "run_id": str})
    pp = pd.read_csv(patients or ROOT / f"results/evaluate/{cohort}/patient_predictions.tsv", sep="\t",
                     dtype={"subject_id": str, "run_id": str})
    secs = [float(pd.read_csv(f, sep="\t")["s"].iloc[0]) for f in (ROOT / f"benchmarks/train/{cohort}").glob("*.tsv")]
    row = {"cohort": cohort, "variant": variant, "runs": "all", "n_runs": int(pp["run_id"].nunique()),
           **score(pp, folds[folds["run_id"].isin(pp["run_id"].unique())]),
           "mean_run_s": round(float(np.mean(secs)), 1) if secs and patients is None else float("nan"),
           "stage2_c": float(_config_evaluate()["stage2_c"]), "commit": _run_commit(cohort)}
    append_rows(Path(table), [row])
    print(pd.DataFrame([row]).to_string(index=False))
    return 0


def main(argv=None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["--markdown"]:
        print(markdown(argv[1] if len(argv) > 1 else ROOT / "results/ablation/ablation.tsv"))
        return 0
    if argv[:1] == ["--from-dag"]:  # --from-dag COHORT VARIANT [PATIENTS_TSV]: score a whole DAG run's CNN
        return from_dag(*argv[1:])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cohort", required=True)
    ap.add_argument("--variant", required=True)
    ap.add_argument("--model", default="{}", help="model config on top of config.yaml's model: (JSON)")
    ap.add_argument("--train", default="{}", help="train config on top of config.yaml's train: (JSON)")
    ap.add_argument("--runs", default="inner0", help="inner0 | all | comma-separated run ids")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--class-weight", default=None,
                    help="stage-2 class weight: none | balanced (default: config.yaml's evaluate.stage2_class_weight)")
    ap.add_argument("--stage2-c", type=float, default=None,
                    help="stage-2 inverse L2 strength (default: config.yaml's evaluate.stage2_c, as the DAG)")
    ap.add_argument("--table", default=str(ROOT / "results/ablation/ablation.tsv"))
    ap.add_argument("--configfile", nargs="+", default=[], type=Path,
                    help="config files on top of config.yaml, as the DAG's (e.g. configs/messekher.yaml: its "
                         "pretraining then starts every run, as in the DAG)")
    args = ap.parse_args(argv)
    CONFIGFILES[:] = args.configfile

    from nemg.evaluate import read_predictions

    model_cfg, train_cfg = run_configs(args.model, args.train, args.cohort)
    c = args.cohort
    seg, idx = ROOT / f"results/segment/{c}/segments.npy", ROOT / f"results/segment/{c}/segments_index.tsv"
    folds_tsv = ROOT / f"results/folds/{c}/folds.tsv"
    folds = pd.read_csv(folds_tsv, sep="\t", dtype={"subject_id": str, "run_id": str})
    run_ids = sorted(folds["run_id"].unique())
    if args.runs == "inner0":
        run_ids = [r for r in run_ids if r.endswith("_i0")]
    elif args.runs != "all":
        run_ids = args.runs.split(",")
    out_root = ROOT / f"results/ablation/{c}/{args.variant}"
    lock = claim(out_root)  # held until the process ends
    jobs = [(str(seg), str(idx), str(folds_tsv), r, str(out_root / r), model_cfg, train_cfg) for r in run_ids]
    t0 = time.perf_counter()
    # spawn, not fork: a forked child inherits the parent's torch / OpenMP thread state and can spin forever
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(_train_one, jobs))
    wall = time.perf_counter() - t0
    for run_id, secs, res in results:
        print(f"  {run_id}: {secs:.0f} s, {res['updates']} updates, {res['epochs']} epochs, best val_acc "
              f"{res['best_val_acc']:.3f} @ {res['best_update']} ({res['stop_reason']})")

    config_c = float(_config_evaluate()["stage2_c"])
    stage2_c = args.stage2_c or config_c
    pp = vote(c, read_predictions([out_root / r / "predictions.tsv" for r in run_ids]), c=stage2_c,
              class_weight=args.class_weight)
    run_folds = folds[folds["run_id"].isin(run_ids)]
    row = {"cohort": c, "variant": args.variant, "runs": args.runs, "n_runs": len(run_ids), **score(pp, run_folds),
           "stage2_c": stage2_c,
           "train_wall_s": round(wall, 1),
           "mean_run_s": round(float(np.mean([s for _, s, _ in results])), 1),
           "model": json.dumps(model_cfg, sort_keys=True), "train": _recorded_train(args.train, train_cfg),
           "commit": _git_commit()}
    rows = [row]
    for bl in ("logreg", "rf"):
        f = ROOT / f"results/baseline/{c}/{bl}/patient_predictions.tsv"
        if f.is_file():
            bp = pd.read_csv(f, sep="\t", dtype={"subject_id": str, "run_id": str})
            bp = bp[bp["run_id"].isin(run_ids)]
            if not bp.empty:
                # the DAG's own vote of the baseline, with config.yaml's stage-2 C
                rows.append({"cohort": c, "variant": f"qemg_{bl}", "runs": args.runs, "n_runs": len(run_ids),
                             **score(bp, run_folds), "stage2_c": config_c})
    table = pd.DataFrame(rows)
    print(table.drop(columns=["model", "train", "commit"], errors="ignore").to_string(index=False))
    append_rows(Path(args.table), rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
