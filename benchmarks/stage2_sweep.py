"""Stage-2 regularisation sweep: re-vote a finished run's segment scores with several logistic-regression C.

Reads what the DAG wrote for each cohort (results/train/<c>/*/predictions.tsv for nEMGNet,
results/baseline/<c>/<m>/predictions.tsv for the QEMG models, the cohort sheets and the folds table), votes every
arm again with each C (and the parameter-free argmax for reference) through nemg.evaluate.patient_predictions,
the DAG's own divide-and-vote, and prints the consensus accuracy / macro F1 / lowest per-class recall as a
markdown table (docs/evaluation.md, "Stage-2 regularisation"). Nothing is retrained; a cohort takes seconds.

    python benchmarks/stage2_sweep.py simulated messekher2023:balanced n2001 --c 1 10 100

``<cohort>:balanced`` votes with the class-balanced stage 2 (as configs/messekher.yaml does). ``--ablation V
[V ...]`` reads nEMGNet's scores from the ablation harness's runs (results/ablation/<cohort>/V/,
benchmarks/ablation.py) instead of the DAG's, e.g. to see training variants under each stage-2 setting.

``--aggregate`` changes what the divide-and-vote averages over a recording's and a patient's segments before the
stage 2 (docs/training.md, "How the segments are averaged"): ``mean`` the probabilities (the study's),
``logmean`` their logarithms (a geometric mean: the segments as independent witnesses, a confident segment
weighs more), ``share`` the one-hot argmax (the share of segments called each class, a majority vote):

    python benchmarks/stage2_sweep.py messekher2023 --c 10 --aggregate mean logmean share --ablation sp2_e16_s0
"""
from __future__ import annotations

import argparse
import glob
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from nemg.evaluate import consensus, patient_predictions, read_predictions, replicate_of
from nemg.labels import PROB_COLS
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


AGGREGATES = ("mean", "logmean", "share")
LOG_FLOOR = 1e-4  # a segment scored 0 for a class would veto it for the whole patient under a plain log


def aggregated(predictions: pd.DataFrame, how: str) -> pd.DataFrame:
    """Segment scores mapped so that the vote's averages become the ``how`` aggregate (see the module doc)."""
    if how == "mean":
        return predictions
    p = predictions[PROB_COLS].to_numpy(float)
    if how == "logmean":
        q = np.log(np.clip(p, LOG_FLOOR, 1.0))
    elif how == "share":
        q = np.eye(len(PROB_COLS))[p.argmax(axis=1)]
    else:
        raise ValueError(f"unknown aggregate {how!r}; choose from {AGGREGATES}")
    out = predictions.copy()
    out[PROB_COLS] = q
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
    ap.add_argument("--ablation", nargs="+", default=[None], metavar="VARIANT",
                    help="nEMGNet's scores from results/ablation/<cohort>/<variant>/ (several: one row each)")
    ap.add_argument("--aggregate", nargs="+", choices=AGGREGATES, default=["mean"],
                    help="what the vote averages over segments: mean (the study's), logmean, share (one row each)")
    args = ap.parse_args(argv)
    by_aggregate = args.aggregate != ["mean"]  # the column only when asked for: docs/evaluation.md's table has none
    header = ["data set", "model"] + ["segments"] * by_aggregate + [f"C = {c:g}" for c in args.c] + ["argmax (no fit)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for spec in args.cohorts:
        cohort, _, weight = spec.partition(":")
        cw = "balanced" if weight == "balanced" else None
        subjects = read_tsv(args.root / f"results/cohort/{cohort}/subjects.tsv")
        recordings = read_tsv(args.root / f"results/cohort/{cohort}/recordings.tsv")
        folds = read_tsv(args.root / f"results/folds/{cohort}/folds.tsv")
        models = {}
        for variant in args.ablation:
            found = arms(args.root, cohort, variant)
            # the QEMG arms do not depend on the variant: one row each, not one per variant
            models.update({k: v for k, v in found.items() if k not in models})
        for name, raw in models.items():
            folds_run = folds[folds["run_id"].isin(raw["run_id"].unique())]
            for how in args.aggregate:
                preds = aggregated(raw, how)
                cells = [score(patient_predictions(preds, subjects, recordings, methods=["logreg"], class_weight=cw,
                                                   c=c), folds_run) for c in args.c]
                cells.append(score(patient_predictions(preds, subjects, recordings, methods=["argmax"]), folds_run))
                cells = [how] * by_aggregate + cells
                lines.append(f"| {cohort}{' (balanced)' if cw else ''} | {name} | " + " | ".join(cells) + " |")
                print(lines[-1], file=sys.stderr, flush=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
