"""How much of a lever's measured effect is noise: a recipe's consensus accuracy over every way of picking its runs.

One seed of nested 5 x 3 gives one consensus accuracy per recipe, and on Messekher that number moves by about
as much as the levers under test (three training seeds of the shipped recipe: 0.745 / 0.723 / 0.688). When a
recipe has been trained more than once on the same folds (several seeds, or several pretraining draws), each
inner run ``i0``, ``i1``, ``i2`` of an outer fold can be taken from any of those trainings: every such pick is a
legitimate one-seed result of the recipe (the same folds, each network trained by the recipe), and all of them
together say what the recipe gives on average and how far one seed strays, at no extra training. The picks
share networks, so they are not independent: the spread is a floor on a fresh seed's, the mean an estimate of
the recipe's own.

    python benchmarks/recipe_spread.py --cohort messekher2023 pre_sim180m_s0 pre_sim180m_s1 pre_sim180m_s2

Each argument is a directory of ``results/ablation/<cohort>/`` (or a path) holding one ``predictions.tsv`` per
run of the cohort's folds table (``benchmarks/ablation.py --runs all`` writes these), or one predictions table
of every run (the DAG's ``results/baseline/<cohort>/rf/predictions.tsv``, kept from runs with
``baseline: {seed_offset: k}``); every run is voted with the DAG's divide-and-vote once, then the picks are
scored. ``--table T`` appends the summary row to T;

    python benchmarks/recipe_spread.py --markdown docs/results/recipe_spread.tsv   # the docs table

``--ensemble`` instead averages the trainings' segment probabilities run by run and votes that once: what the
recipe gives when each run is an ensemble of those networks (one pick, at the trainings' summed cost).
"""
from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))


def picks(patients: dict[str, pd.DataFrame], folds: pd.DataFrame) -> pd.DataFrame:
    """Score every pick of one training per inner-fold index.

    ``patients``: training name -> its patient predictions (nemg.evaluate.patient_predictions of all runs of
    ``folds``, one arm). A pick assigns a training to each inner index (``i0`` from one, ``i1`` from another ...);
    one row per pick with its consensus accuracy, macro F1 and per-class recall (benchmarks/ablation.score).
    """
    from ablation import score
    from nemg.folds import parse_run_id

    inner = {r: parse_run_id(r).inner for r in folds["run_id"].unique()}
    indices = sorted(set(inner.values()))
    names = list(patients)
    for name, pp in patients.items():
        missing = sorted(set(inner) - set(pp["run_id"]))
        if missing:
            raise ValueError(f"{name}: no patient predictions for {len(missing)} run(s) of the folds table, e.g. "
                             f"{missing[0]}; it must hold every run (benchmarks/ablation.py --runs all)")
    rows = []
    for pick in itertools.product(names, repeat=len(indices)):
        parts = [patients[name][patients[name]["run_id"].map(inner) == k] for k, name in zip(indices, pick)]
        rows.append({"pick": " ".join(pick), "n_trainings": len(set(pick)), **score(pd.concat(parts), folds)})
    return pd.DataFrame(rows)


def summary(scored: pd.DataFrame) -> dict:
    """Mean, standard deviation and range of the picks' consensus accuracy, and their mean macro F1."""
    acc = scored["consensus_accuracy"].to_numpy(float)
    return {"n_picks": len(acc), "mean_accuracy": round(float(acc.mean()), 4),
            "sd_accuracy": round(float(acc.std()), 4), "min_accuracy": round(float(acc.min()), 4),
            "max_accuracy": round(float(acc.max()), 4), "mean_macro_f1": round(float(scored["macro_f1"].mean()), 4)}


def load_predictions(cohort: str, directory: str | Path, run_ids: list[str]) -> pd.DataFrame:
    """The segment predictions of one training's runs (a directory of runs, or one table of every run)."""
    from nemg.evaluate import read_predictions

    d = Path(directory)
    if d.is_file():  # one table of every run, e.g. the DAG's results/baseline/<cohort>/rf/predictions.tsv
        preds = read_predictions([d])
        missing = sorted(set(run_ids) - set(preds["run_id"]))
        if missing:
            raise SystemExit(f"{d}: no predictions for {len(missing)} of {len(run_ids)} runs (e.g. {missing[0]})")
        return preds
    if not d.is_dir():
        d = ROOT / "results" / "ablation" / cohort / str(directory)
    files = [d / r / "predictions.tsv" for r in run_ids]
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise SystemExit(f"{d}: {len(missing)} of {len(files)} runs have no predictions.tsv (e.g. {missing[0]}); "
                         f"train them all with benchmarks/ablation.py --runs all")
    return read_predictions(files)


SEGMENT_KEY = ["run_id", "role", "subject_id", "recording_id", "segment"]


def average_predictions(trainings: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Segment probabilities averaged over trainings of the same folds (an ensemble of their networks per run).

    Every training must hold the same segments of the same runs and roles; the averaged table then goes through
    the divide-and-vote like one training's, so its stage 2 is fitted on the ensemble's validation scores."""
    names = list(trainings)
    prob = [c for c in trainings[names[0]].columns if c.startswith("p_")]
    tables = {n: t.sort_values(SEGMENT_KEY, kind="stable").reset_index(drop=True) for n, t in trainings.items()}
    first = tables[names[0]]
    for n in names[1:]:
        t = tables[n]
        if len(t) != len(first) or not t[SEGMENT_KEY].astype(str).equals(first[SEGMENT_KEY].astype(str)):
            raise ValueError(f"{n}: its segment predictions are not those of {names[0]} (different runs, roles or "
                             f"segments); an ensemble averages trainings of the same folds and segment store")
        if sorted(c for c in t.columns if c.startswith("p_")) != sorted(prob):
            raise ValueError(f"{n}: its classes differ from {names[0]}'s")
    out = first.copy()
    out[prob] = sum(tables[n][prob].to_numpy(float) for n in names) / len(names)
    return out


def markdown(tsv: str | Path) -> str:
    """docs/training.md's table of recipe spreads, one line per row of the TSV written with ``--table``."""
    t = pd.read_csv(tsv, sep="\t")
    lines = ["| data set | recipe | trainings | picks | mean consensus accuracy (sd) | range | mean macro F1 |",
             "|---|---|---|---|---|---|---|"]
    for _, r in t.iterrows():
        lines.append(f"| {r['cohort']} | {r['recipe']} | {r['trainings'].replace(' ', ', ')} | {r['n_picks']} | "
                     f"{r['mean_accuracy']:.3f} ({r['sd_accuracy']:.3f}) | {r['min_accuracy']:.3f}-"
                     f"{r['max_accuracy']:.3f} | {r['mean_macro_f1']:.3f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["--markdown"]:  # --markdown TSV: the docs table
        print(markdown(argv[1]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cohort", required=True)
    ap.add_argument("--label", default=None, help="name of the recipe in the printed row (default: the dirs)")
    ap.add_argument("--table", default=None, help="append the summary row to this TSV")
    ap.add_argument("--ensemble", action="store_true",
                    help="average the trainings' segment probabilities per run and vote that once (one pick: "
                         "what an ensemble of their networks gives, at their summed training cost)")
    ap.add_argument("trainings", nargs="+", help="ablation directories (names under results/ablation/<cohort>/)")
    args = ap.parse_args(argv)
    folds = pd.read_csv(ROOT / f"results/folds/{args.cohort}/folds.tsv", sep="\t",
                        dtype={"subject_id": str, "run_id": str})
    run_ids = sorted(folds["run_id"].unique())
    from ablation import vote  # the DAG's divide-and-vote (logreg stage 2, config.yaml's C and class weight)

    preds = {str(t): load_predictions(args.cohort, t, run_ids) for t in args.trainings}
    if args.ensemble:
        preds = {"ensemble": average_predictions(preds)}
    patients = {name: vote(args.cohort, p) for name, p in preds.items()}
    row = {"cohort": args.cohort, "recipe": args.label or " ".join(map(str, args.trainings)),
           "trainings": " ".join(map(str, args.trainings)), **summary(picks(patients, folds))}
    print(pd.DataFrame([row]).to_string(index=False))
    if args.table:
        out = Path(args.table)
        old = pd.read_csv(out, sep="\t", dtype=str) if out.exists() else pd.DataFrame()
        if len(old):
            old = old[~((old["cohort"] == row["cohort"]) & (old["recipe"] == row["recipe"]))]
        pd.concat([old, pd.DataFrame([row]).astype(str)], ignore_index=True).to_csv(out, sep="\t", index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
