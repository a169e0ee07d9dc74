"""Held-out patients diagnosed by the cross-validation's networks, beside the external ensemble.

The model bundle's members are the external-validation networks: a few networks (``external.seeds``) trained on
every patient with ``external.val_fraction`` held out for early stopping and the stage-2 fit. A nested 5 x 3
cross-validation leaves 15 other networks behind, each trained on a different part of the cohort and each with
a stage 2 of its own inner-validation patients. This asks whether those 15, averaged as the DAG's consensus
averages its runs, diagnose patients nobody trained on better than the external ensemble, on a run of
``benchmarks/holdout_configs.py``'s ``holdout_cv.yaml`` (both ensembles trained on the same patients):

    python benchmarks/holdout_configs.py --configfile configs/messekher.yaml --seed 2026 --out holdout/
    snakemake --cores all --configfile holdout/holdout_cv.yaml
    python benchmarks/holdout_cv_ensemble.py --configfile holdout/holdout_cv.yaml --out holdout/cv_2026.tsv

Every network's stage 2 is fit by the DAG's own divide-and-vote (``nemg.evaluate.external_patient_predictions``,
the ``evaluate:`` stage-2 settings of the config) on its validation patients only; the CV's own test-role
scores (training-cohort patients) are not used. Rows: the 15 networks' consensus, their mean accuracy one by one,
each outer fold's three networks, the external ensemble (which reproduces the DAG's external table) and the
QEMG models' DAG rows for reference.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from nemg.config import load_config, stage2_settings  # noqa: E402
from nemg.evaluate import external_patient_predictions, read_predictions  # noqa: E402
from nemg.external import cohort_key  # noqa: E402
from nemg.labels import CLASSES, PROB_COLS  # noqa: E402
from nemg.metrics import classification_metrics  # noqa: E402


class EnsembleError(ValueError):
    pass


def vote_settings(cfg: dict) -> dict:
    """The keywords of nemg.evaluate.patient_predictions that the DAG's primary votes use (workflow STAGE2)."""
    return {"methods": [cfg["evaluate"]["primary_method"]], **stage2_settings(cfg["evaluate"])}


def ensemble_patients(fit: pd.DataFrame, test: pd.DataFrame, train_subjects: pd.DataFrame,
                      train_recordings: pd.DataFrame, test_subjects: pd.DataFrame, test_recordings: pd.DataFrame,
                      stage2: dict) -> pd.DataFrame:
    """One row per (network, test patient): the stage-2 probabilities, without muscle location.

    ``fit``: every network's segment scores of its stage-2 fit patients (role ``stage2['fit_on']``; other roles
    are dropped, so a CV run's own test patients never enter); ``test``: its scores of the held-out patients.
    """
    roles = set(test["role"])
    if roles != {"test"}:
        raise EnsembleError(f"held-out scores must all have role test, got {sorted(roles)}")
    fit = fit[fit["role"] == stage2["fit_on"]]
    missing = sorted(set(test["run_id"]) - set(fit["run_id"]))
    if missing:
        raise EnsembleError(f"networks {missing[:3]} scored the held-out patients but have no "
                            f"{stage2['fit_on']} patients to fit a stage 2 on")
    pp = external_patient_predictions(pd.concat([fit, test], ignore_index=True), train_subjects, train_recordings,
                                      test_subjects, test_recordings, **stage2)
    return pp[~pp["with_location"].astype(bool)].reset_index(drop=True)


def consensus_row(pp: pd.DataFrame, name: str) -> dict:
    """Consensus (mean probabilities over the networks) accuracy, macro F1 and recall per class."""
    c = pp.groupby(["subject_id", "diagnosis"], sort=True)[PROB_COLS].mean().reset_index()
    predicted = np.array(CLASSES)[c[PROB_COLS].to_numpy().argmax(axis=1)]
    m = classification_metrics(c["diagnosis"], predicted)
    return {"ensemble": name, "n_networks": int(pp["run_id"].nunique()), "n_patients": len(c),
            "accuracy": m["accuracy"], "macro_f1": m["f1"],
            **{f"recall_{k}": m[f"recall_{k}"] for k in CLASSES}}


def read_tsv(path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype={"recording_id": str, "subject_id": str})


def sheet_paths(results: Path, name: str, test_key: str) -> dict[str, Path]:
    """The training cohort's and the test cohort's sheets in a run's results/, by ensemble_patients' keywords."""
    return {k: results / "cohort" / c / f"{s}.tsv" for k, (c, s) in {
        "train_subjects": (name, "subjects"), "train_recordings": (name, "recordings"),
        "test_subjects": (test_key, "subjects"), "test_recordings": (test_key, "recordings")}.items()}


def emit(table: pd.DataFrame, out: Path | None) -> None:
    """Print the rows, and write them as TSV when asked."""
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(out, sep="\t", index=False, float_format="%.4g")


def member_accuracy(pp: pd.DataFrame) -> float:
    return float(np.mean([(g["predicted"] == g["diagnosis"]).mean() for _, g in pp.groupby("run_id")]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configfile", nargs="+", required=True, help="the holdout run's config file(s)")
    ap.add_argument("--root", type=Path, default=Path("."), help="the run's working directory (results/ in it)")
    ap.add_argument("--test", default="heldout", help="the external test cohort of the held-out patients")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None, help="also write the rows here (TSV)")
    args = ap.parse_args(argv)
    from nemg.predict import predict_cohort

    cfg = load_config(ROOT / "config.yaml", *args.configfile)
    name, res = cfg["cohort"]["name"], args.root / "results"
    test_key = cohort_key(args.test, name)
    sheets = sheet_paths(res, name, test_key)
    cv_nets = sorted((res / "train" / name).glob("nested_*/best.pt"))
    xv = res / "external" / name
    ext_dir = xv / "models_pretrained" if (xv / "models_pretrained").is_dir() else xv / "models"
    ext_fit = sorted(ext_dir.glob("ext_s*/predictions.tsv"))
    ext_test = sorted((xv / args.test / "nemgnet").glob("ext_s*_predictions.tsv"))
    seg = res / "segment" / test_key
    needed = [*sheets.values(), seg / "segments.npy", seg / "segments_index.tsv"]
    absent = [str(p) for p in needed if not p.is_file()]
    if absent or not cv_nets or not ext_fit or not ext_test:
        print(f"holdout_cv_ensemble: missing {absent or 'the CV or external networks'}; run "
              f"`snakemake --configfile {' '.join(args.configfile)}` (holdout_cv.yaml: external.only false) first",
              file=sys.stderr)
        return 2
    s = {k: read_tsv(p) for k, p in sheets.items()}
    stage2 = vote_settings(cfg)
    test = pd.concat([predict_cohort(p, seg / "segments.npy", seg / "segments_index.tsv",
                                     batch_size=int(cfg["train"]["eval_batch_size"]), device="cpu",
                                     num_threads=args.threads) for p in cv_nets], ignore_index=True)
    cv = ensemble_patients(read_predictions([p.with_name("predictions.tsv") for p in cv_nets]), test, **s,
                           stage2=stage2)
    ext = ensemble_patients(read_predictions(ext_fit), read_predictions(ext_test), **s, stage2=stage2)
    rows = [consensus_row(cv, f"cross-validation networks ({cv['run_id'].nunique()})"),
            {"ensemble": "... each alone, mean", "n_networks": 1, "accuracy": member_accuracy(cv)}]
    outer = cv["run_id"].str.extract(r"_o(\d+)_")[0]
    per_outer = [consensus_row(g, "") for _, g in cv.groupby(outer)]
    rows.append({"ensemble": "one outer fold's networks, mean over folds",
                 "n_networks": per_outer[0]["n_networks"],
                 **{k: float(np.mean([r[k] for r in per_outer])) for k in ("accuracy", "macro_f1")}})
    rows.append(consensus_row(ext, f"external ensemble ({ext['run_id'].nunique()}, the bundle's members)"))
    rows.append({"ensemble": "... each alone, mean", "n_networks": 1, "accuracy": member_accuracy(ext)})
    table = xv / "external_validation.tsv"
    if table.is_file():  # the QEMG models on the same split, from the DAG's own table
        t = pd.read_csv(table, sep="\t")
        for _, r in t[(t["test_cohort"] == args.test) & (t["model"] != "nemgnet")].iterrows():
            rows.append({"ensemble": f"DAG: {r['model']}", "n_networks": int(r["n_models"]),
                         "n_patients": int(r["n_test_patients"]), "accuracy": r["accuracy_consensus"],
                         "macro_f1": r["f1_consensus"], **{f"recall_{k}": r[f"recall_{k}"] for k in CLASSES}})
    emit(pd.DataFrame(rows).astype({"n_patients": "Int64"}), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
