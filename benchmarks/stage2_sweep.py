"""Stage-2 regularisation sweep: re-vote a finished run's segment scores with several logistic-regression C.

Reads what the DAG wrote for each cohort (results/train/<c>/*/predictions.tsv for nEMGNet,
results/baseline/<c>/<m>/predictions.tsv for the QEMG models, the cohort sheets and the folds table), votes every
arm again with each C (and the parameter-free argmax for reference) through nemg.evaluate.patient_predictions,
the DAG's own divide-and-vote, and prints the consensus accuracy / macro F1 / lowest per-class recall as a
markdown table (docs/evaluation.md, "Stage-2 regularisation"). Nothing is retrained; a cohort takes seconds.

    python benchmarks/stage2_sweep.py simulated messekher2023:balanced n2001 --c 1 10 100

``<cohort>:balanced`` votes with the class-balanced stage 2 (as configs/messekher.yaml does). ``--ablation V``
reads nEMGNet's scores from the ablation harness's runs (results/ablation/<cohort>/V/, benchmarks/ablation.py)
instead of the DAG's, e.g. to see a training variant under each stage-2 setting.
"""
from __future__ import annotations

import argparse
import glob
import sys
from pathlib import Path

import pandas as pd

from nemg.evaluate import consensus, patient_predictions, read_predictions, replicate_of
from nemg.metrics import classification_metrics

ROOT = Path(__file__).resolve().parents[1]


def read_tsv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype={"subject_id": str, "recording_id": str, "run_id": str})


def arms(root: Path, cohort: str, ablation: str | None = None) -> dict[str, pd.DataFrame]:
    folder = root / (f"results/ablation/{cohort}/{ablation}" if ablation else f"results/train/{cohort}")
    cnn = sorted(glob.glob(str(folder / "*/predictions.tsv")))
    if not cnn:
        raise SystemExit(f"{folder}: no */predictions.tsv (run the DAG or the ablation for {cohort} first)")
    out = {f"nEMGNet ({ablation})" if ablation else "nEMGNet": read_predictions(cnn)}
    for m in ("logreg", "rf"):
        f = root / f"results/baseline/{cohort}/{m}/predictions.tsv"
        if f.is_file():
            out[f"QEMG {m}"] = read_predictions([f])
    return out


def score(pp: pd.DataFrame, folds: pd.DataFrame) -> str:
    cons = consensus(pp, replicate_of(folds))
    cons = cons[~cons["with_location"].astype(bool)]
    m = classification_metrics(cons["diagnosis"], cons["predicted"])
    low = min(float((g["predicted"] == c).mean()) for c, g in cons.groupby("diagnosis"))
    return f"{m['accuracy']:.3f} / {m['f1']:.3f} / {low:.2f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cohorts", nargs="+", help="cohort names, optionally <name>:balanced")
    ap.add_argument("--c", nargs="+", type=float, default=[1.0, 10.0, 100.0])
    ap.add_argument("--root", type=Path, default=ROOT)
    ap.add_argument("--ablation", help="nEMGNet's scores from results/ablation/<cohort>/<this variant>/")
    args = ap.parse_args(argv)
    header = ["data set", "model"] + [f"C = {c:g}" for c in args.c] + ["argmax (no fit)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for spec in args.cohorts:
        cohort, _, weight = spec.partition(":")
        cw = "balanced" if weight == "balanced" else None
        subjects = read_tsv(args.root / f"results/cohort/{cohort}/subjects.tsv")
        recordings = read_tsv(args.root / f"results/cohort/{cohort}/recordings.tsv")
        folds = read_tsv(args.root / f"results/folds/{cohort}/folds.tsv")
        for name, preds in arms(args.root, cohort, args.ablation).items():
            folds_run = folds[folds["run_id"].isin(preds["run_id"].unique())]
            cells = [score(patient_predictions(preds, subjects, recordings, methods=["logreg"], class_weight=cw,
                                               c=c), folds_run) for c in args.c]
            cells.append(score(patient_predictions(preds, subjects, recordings, methods=["argmax"]), folds_run))
            lines.append(f"| {cohort}{' (balanced)' if cw else ''} | {name} | " + " | ".join(cells) + " |")
            print(lines[-1], file=sys.stderr, flush=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
