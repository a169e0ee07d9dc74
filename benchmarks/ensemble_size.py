"""How many external networks the ensemble needs: consensus accuracy against the number of members.

The external validation and the model bundle diagnose with ``external.seeds`` networks, each trained on its own
training / validation split of every patient and each with a stage 2 of its own validation patients; a test
patient's call is the argmax of their mean stage-2 probabilities. A network's stage 2 does not depend on the
others, so one DAG run with n seeds answers what k < n would have given: this scores every subset of k of the
n networks (all of them, or ``--max-subsets`` drawn at random when there are more) and prints, per k, the mean,
minimum and maximum consensus accuracy and macro F1 over the subsets. On a held-out split of
``benchmarks/holdout_configs.py`` with more seeds:

    python benchmarks/holdout_configs.py --configfile configs/messekher.yaml --seed 2026 --out holdout/
    # set external.seeds: [0, 1, 2, 3, 4, 5] in holdout/holdout_pretrained.yaml, then
    snakemake --cores all --configfile holdout/holdout_pretrained.yaml
    python benchmarks/ensemble_size.py --configfile holdout/holdout_pretrained.yaml --test heldout

It reads the DAG's own files (the networks' validation scores under results/external/<cohort>/models*/ and
their test scores under results/external/<cohort>/<test>/nemgnet/) and votes with the DAG's stage 2
(``evaluate:`` settings), so with every network it reproduces the DAG's external table.
"""
from __future__ import annotations

import argparse
import importlib.util
import itertools
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from nemg.config import load_config  # noqa: E402
from nemg.evaluate import read_predictions  # noqa: E402
from nemg.external import cohort_key  # noqa: E402

_spec = importlib.util.spec_from_file_location("holdout_cv_ensemble", Path(__file__).with_name(
    "holdout_cv_ensemble.py"))
_ens = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_ens)
ensemble_patients, consensus_row, vote_settings = _ens.ensemble_patients, _ens.consensus_row, _ens.vote_settings


class SizeError(ValueError):
    pass


def subsets(run_ids: list[str], k: int, max_subsets: int, seed: int) -> list[tuple[str, ...]]:
    """Every k-subset of the networks, or ``max_subsets`` distinct ones drawn at random when there are more."""
    every = list(itertools.combinations(sorted(run_ids), k))
    if len(every) <= max_subsets:
        return every
    rng = np.random.default_rng([seed, k])
    return [every[i] for i in sorted(rng.choice(len(every), max_subsets, replace=False))]


def size_curve(pp: pd.DataFrame, max_subsets: int = 200, seed: int = 0) -> pd.DataFrame:
    """One row per ensemble size k: consensus accuracy and macro F1 over the k-subsets of ``pp``'s networks.

    ``pp``: one row per (network, test patient) with the stage-2 probabilities (``ensemble_patients``).
    """
    run_ids = sorted(pp["run_id"].unique())
    rows = []
    for k in range(1, len(run_ids) + 1):
        picks = subsets(run_ids, k, max_subsets, seed)
        scores = [consensus_row(pp[pp["run_id"].isin(s)], "") for s in picks]
        acc = np.array([r["accuracy"] for r in scores])
        f1 = np.array([r["macro_f1"] for r in scores])
        rows.append({"k": k, "n_subsets": len(picks), "accuracy_mean": acc.mean(), "accuracy_min": acc.min(),
                     "accuracy_max": acc.max(), "macro_f1_mean": f1.mean(), "macro_f1_min": f1.min(),
                     "macro_f1_max": f1.max()})
    return pd.DataFrame(rows)


def fit_predictions(xv: Path, run_ids: list[str], models: str | None) -> list[Path]:
    """The validation-score files of the networks that scored the test cohort (models/ or models_pretrained/)."""
    dirs = [models] if models else [d for d in ("models", "models_pretrained")
                                    if all((xv / d / r / "predictions.tsv").is_file() for r in run_ids)]
    if not dirs:
        raise SizeError(f"{xv}: no models*/ folder holds predictions.tsv of every network {run_ids}")
    if len(dirs) > 1:
        raise SizeError(f"{xv}: both models/ and models_pretrained/ hold networks {run_ids}; say which scored the "
                        "test cohort with --models (models_pretrained unless the pretraining saw the test cohort)")
    paths = [xv / dirs[0] / r / "predictions.tsv" for r in run_ids]
    absent = [str(p) for p in paths if not p.is_file()]
    if absent:
        raise SizeError(f"missing {absent}")
    return paths


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configfile", nargs="+", required=True, help="the run's config file(s)")
    ap.add_argument("--root", type=Path, default=Path("."), help="the run's working directory (results/ in it)")
    ap.add_argument("--test", required=True, help="the external test id (a key of external.cohorts, or <key>.rms)")
    ap.add_argument("--models", choices=["models", "models_pretrained"], default=None,
                    help="the networks' folder, when both exist")
    ap.add_argument("--max-subsets", type=int, default=200, help="subsets scored per size at most")
    ap.add_argument("--out", type=Path, default=None, help="also write the rows here (TSV)")
    args = ap.parse_args(argv)
    cfg = load_config(ROOT / "config.yaml", *args.configfile)
    name, res = cfg["cohort"]["name"], args.root / "results"
    xv = res / "external" / name
    test_key = cohort_key(args.test.removesuffix(".rms"), name)
    sheets = _ens.sheet_paths(res, name, test_key)
    test_files = sorted((xv / args.test / "nemgnet").glob("ext_s*_predictions.tsv"))
    try:
        absent = [str(p) for p in sheets.values() if not p.is_file()]
        if absent or not test_files:
            raise SizeError(f"missing {absent or xv / args.test / 'nemgnet/ext_s*_predictions.tsv'}; run the DAG "
                            f"of {' '.join(args.configfile)} first")
        run_ids = [p.name.removesuffix("_predictions.tsv") for p in test_files]
        fit = read_predictions(fit_predictions(xv, run_ids, args.models))
        pp = ensemble_patients(fit, read_predictions(test_files), **{k: _ens.read_tsv(p) for k, p in sheets.items()},
                               stage2=vote_settings(cfg))
    except (SizeError, _ens.EnsembleError) as exc:
        print(f"ensemble_size: {exc}", file=sys.stderr)
        return 2
    out = size_curve(pp, args.max_subsets)
    print(f"{name} -> {args.test}: {len(run_ids)} networks, {pp['subject_id'].nunique()} test patients")
    _ens.emit(out, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
