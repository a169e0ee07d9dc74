"""Which patients does every model miss? The overlap of consensus errors between arms of one cohort.

A recipe's head-room is bounded by the patients no model gets right: when a CNN and a random forest on
hand-made features, two very different readers of the same signals, both misdiagnose a patient, the next CNN
variant is unlikely to get that patient either. Each arm is ``name=path``, where path is

* a DAG's (or an ablation's) ``patient_predictions.tsv``, e.g. results/baseline/<cohort>/rf/patient_predictions.tsv
  or results/evaluate/<cohort>/patient_predictions.tsv, or
* a folder of training runs, ``<run_id>/predictions.tsv`` each (``benchmarks/ablation.py``'s
  results/ablation/<cohort>/<variant>/), voted here with config.yaml's stage 2 as the DAG does.

Patients are called by the consensus of the logistic-regression stage 2 without muscle location (the primary
result), over the runs of the cohort's folds table that tested them.

    python benchmarks/error_overlap.py --cohort messekher2023 \\
        nemgnet=results/ablation/messekher2023/e16_s0 rf=results/baseline/messekher2023/rf/patient_predictions.tsv
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from nemg.evaluate import consensus, patient_predictions, read_predictions, replicate_of  # noqa: E402
from nemg.labels import CLASSES  # noqa: E402


def arm_calls(path: Path, cohort: str, folds: pd.DataFrame, method: str = "logreg") -> tuple[pd.Series, pd.Series]:
    """(subject_id -> consensus call, subject_id -> diagnosis) of one arm (a patient_predictions.tsv, or a folder
    of runs to vote)."""
    if path.is_dir():
        runs = sorted(path.glob("*/predictions.tsv"))
        if not runs:
            raise ValueError(f"{path}: no <run>/predictions.tsv in this folder")
        ev = yaml.safe_load((ROOT / "config.yaml").read_text())["evaluate"]
        cw = None if ev["stage2_class_weight"] == "none" else ev["stage2_class_weight"]
        subjects = pd.read_csv(ROOT / f"results/cohort/{cohort}/subjects.tsv", sep="\t", dtype={"subject_id": str})
        recordings = pd.read_csv(ROOT / f"results/cohort/{cohort}/recordings.tsv", sep="\t",
                                 dtype={"recording_id": str, "subject_id": str})
        pp = patient_predictions(read_predictions(runs), subjects, recordings, methods=(method,), class_weight=cw,
                                 c=float(ev["stage2_c"]))
    elif path.is_file():
        pp = pd.read_csv(path, sep="\t", dtype={"subject_id": str, "run_id": str})
    else:
        raise FileNotFoundError(f"{path}: neither a patient_predictions.tsv nor a folder of runs")
    pp = pp[(pp["method"] == method) & (~pp["with_location"].astype(str).isin(["True", "true"]))]
    pp = pp[pp["run_id"].isin(folds["run_id"])]
    if pp.empty:
        raise ValueError(f"{path}: no {method} predictions without location for the runs of the folds table")
    cons = consensus(pp, replicate_of(folds))
    if cons["replicate"].nunique() > 1:
        raise ValueError(f"{path}: {cons['replicate'].nunique()} replicates; pass one seed's runs")
    return cons.set_index("subject_id")["predicted"], cons.set_index("subject_id")["diagnosis"]


def overlap(calls: dict[str, pd.Series], diagnosis: pd.Series) -> pd.DataFrame:
    """Per class and overall: patients, each arm's correct calls, patients every arm misses, and those at least
    one arm gets right (the best a per-patient choice between the arms could do)."""
    common = sorted(set.intersection(*(set(c.index) for c in calls.values())))
    y = diagnosis.reindex(common)
    ok = pd.DataFrame({name: c.reindex(common) == y for name, c in calls.items()})
    rows = []
    for cls in [*CLASSES, "all"]:
        sel = ok[(y == cls).to_numpy()] if cls != "all" else ok
        row = {"class": cls, "patients": len(sel)}
        row.update({f"{name} correct": int(sel[name].sum()) for name in calls})
        row["missed by every arm"] = int((~sel.any(axis=1)).sum())
        row["right by at least one"] = int(sel.any(axis=1).sum())
        rows.append(row)
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cohort", required=True)
    ap.add_argument("--method", default="logreg")
    ap.add_argument("arms", nargs="+", help="name=path, two or more")
    args = ap.parse_args(argv)
    folds = pd.read_csv(ROOT / f"results/folds/{args.cohort}/folds.tsv", sep="\t", dtype={"subject_id": str, "run_id": str})
    calls, diagnosis = {}, None
    for spec in args.arms:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise SystemExit(f"arm {spec!r}: expected name=path")
        calls[name], dx = arm_calls(Path(path), args.cohort, folds, args.method)
        diagnosis = dx if diagnosis is None else diagnosis.combine_first(dx)
    if len(calls) < 2:
        raise SystemExit("give two or more arms")
    print(overlap(calls, diagnosis).to_markdown(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
