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

``--fit`` changes which patients a logistic regression is fit on: ``run`` each run's own validation patients
(the DAG's), ``outer`` one regression per outer fold on the validation patients of all its inner runs pooled
(cross-fitting: every outer-training patient, each scored by the one network that did not train on it, three
times the patients of a run's fit), applied to each inner run's test patients. ``--ensemble`` votes the
``--ablation`` variants as one arm: every network of every variant that tested a patient joins its consensus
(three seeds of one recipe: nine networks per patient instead of three):

    python benchmarks/stage2_sweep.py messekher2023:balanced --c 10 --fit run outer --ablation sp2_e28_s0
    python benchmarks/stage2_sweep.py messekher2023:balanced --c 10 --ensemble --ablation sp2_e28_s0 sp2_e28_s1
"""
from __future__ import annotations

import argparse
import glob
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from nemg.evaluate import consensus, patient_predictions, read_predictions, replicate_of
from nemg.labels import CLASSES, PROB_COLS
from nemg.metrics import classification_metrics
from nemg.vote import combined_features, feature_columns, fit_stage2, stage2_probs

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


FITS = ("run", "outer")


def outer_fold_predictions(predictions: pd.DataFrame, subjects: pd.DataFrame, recordings: pd.DataFrame,
                           folds: pd.DataFrame, *, class_weight: str | None = None, c: float = 1.0) -> pd.DataFrame:
    """Divide-and-vote with one logistic regression per outer fold, fit on its inner runs' validation patients
    pooled (``--fit outer``); rows as :func:`nemg.evaluate.patient_predictions` gives (logreg, both variants)."""
    diagnosis = subjects.set_index("subject_id")["diagnosis"]
    locations = recordings.set_index("recording_id")["location"]
    runs = folds.drop_duplicates("run_id").set_index("run_id")
    out = []
    for with_location in (False, True):
        feats = {r: combined_features(g, None, locations, with_location) for r, g in predictions.groupby("run_id")}
        for key, ids in runs.loc[sorted(feats)].groupby(["scheme", "seed", "repeat", "outer"]).groups.items():
            fit = pd.concat([feats[r][feats[r]["role"] == "val"] for r in ids])
            if fit.empty:  # repeated k-fold runs have no validation patients: nothing to fit, as in the DAG
                continue
            if fit["subject_id"].duplicated().any():
                raise ValueError(f"outer fold {key}: a patient validates in two inner runs; not a nested split")
            cols = feature_columns(fit)
            model = fit_stage2(fit[cols].to_numpy(float), fit["subject_id"].map(diagnosis).to_numpy(), 0,
                               class_weight, c)
            for r in ids:
                test = feats[r][feats[r]["role"] == "test"].reset_index(drop=True)
                if set(test["subject_id"]) & set(fit["subject_id"]):
                    raise AssertionError(f"run {r}: its outer fold's stage-2 fit set contains its test patients")
                probs = stage2_probs(test, "logreg", model)
                rows = test[["run_id", "subject_id"]].assign(diagnosis=test["subject_id"].map(diagnosis),
                                                             predicted=np.array(CLASSES)[probs.argmax(axis=1)])
                rows[PROB_COLS] = probs
                out.append(rows.assign(method="logreg", with_location=with_location, fit_on="val"))
    if not out:
        raise ValueError("no outer fold has validation patients to fit on")
    return pd.concat(out, ignore_index=True)


def ensemble(found: dict[str, pd.DataFrame], folds: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Several variants' networks as one arm: run ids prefixed by the variant, the folds table repeated to match
    (each variant's run keeps its replicate, so a patient's consensus is over every variant's networks)."""
    preds, fold_rows = [], []
    for variant, p in found.items():
        preds.append(p.assign(run_id=variant + ":" + p["run_id"]))
        f = folds[folds["run_id"].isin(p["run_id"].unique())]
        fold_rows.append(f.assign(run_id=variant + ":" + f["run_id"]))
    return pd.concat(preds, ignore_index=True), pd.concat(fold_rows, ignore_index=True)


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
    ap.add_argument("--fit", nargs="+", choices=FITS, default=["run"],
                    help="stage-2 fit set: run = each run's validation patients (the DAG's), outer = the outer "
                         "fold's inner runs' validation patients pooled (one row each)")
    ap.add_argument("--ensemble", action="store_true",
                    help="vote the --ablation variants as one arm (every variant's networks per patient)")
    args = ap.parse_args(argv)
    if args.ensemble and (None in args.ablation or len(args.ablation) < 2):
        ap.error("--ensemble needs two or more --ablation variants")
    by_aggregate = args.aggregate != ["mean"]  # the column only when asked for: docs/evaluation.md's table has none
    by_fit = args.fit != ["run"]
    header = (["data set", "model"] + ["segments"] * by_aggregate + ["stage-2 fit"] * by_fit
              + [f"C = {c:g}" for c in args.c] + ["argmax (no fit)"])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for spec in args.cohorts:
        cohort, _, weight = spec.partition(":")
        cw = "balanced" if weight == "balanced" else None
        subjects = read_tsv(args.root / f"results/cohort/{cohort}/subjects.tsv")
        recordings = read_tsv(args.root / f"results/cohort/{cohort}/recordings.tsv")
        folds = read_tsv(args.root / f"results/folds/{cohort}/folds.tsv")
        models, members = {}, {}
        for variant in args.ablation:
            found = arms(args.root, cohort, variant)
            members[variant] = found.pop(f"nEMGNet ({variant})" if variant else "nEMGNet")
            if not args.ensemble:
                models[f"nEMGNet ({variant})" if variant else "nEMGNet"] = members[variant]
            # the QEMG arms do not depend on the variant: one row each, not one per variant
            models.update({k: v for k, v in found.items() if k not in models})
        arm_folds = {name: folds for name in models}
        if args.ensemble:
            name = f"nEMGNet ({' + '.join(members)})"
            models = {name: None, **models}
            models[name], arm_folds[name] = ensemble(members, folds)
        for name, raw in models.items():
            folds_run = arm_folds[name][arm_folds[name]["run_id"].isin(raw["run_id"].unique())]
            for how in args.aggregate:
                preds = aggregated(raw, how)
                argmax = score(patient_predictions(preds, subjects, recordings, methods=["argmax"]), folds_run)
                for fit in args.fit:
                    if fit == "run":
                        cells = [score(patient_predictions(preds, subjects, recordings, methods=["logreg"],
                                                           class_weight=cw, c=c), folds_run) for c in args.c]
                    else:
                        cells = [score(outer_fold_predictions(preds, subjects, recordings, folds_run,
                                                              class_weight=cw, c=c), folds_run) for c in args.c]
                    cells = [how] * by_aggregate + [fit] * by_fit + cells + [argmax]
                    lines.append(f"| {cohort}{' (balanced)' if cw else ''} | {name} | " + " | ".join(cells) + " |")
                    print(lines[-1], file=sys.stderr, flush=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
