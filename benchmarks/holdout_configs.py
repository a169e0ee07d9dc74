"""Configs for a held-out check of the model a site would deploy: train on part of a cohort, diagnose the rest.

Cross-validation estimates the recipe on networks trained on part of a cohort; the model bundle (`snakemake
model`) and the external networks are trained on every patient with `external.val_fraction` held out for early
stopping. This writes configs that do the latter on a stratified part of the cohort and score the patients
left out as an external test cohort, with the DAG's own external validation (the same split, stage 2, QEMG
baselines and tables), once from each starting point a public config's external networks can have:

* ``<out>/holdout_pretrained.yaml``: from the run's pretraining (``results/pretrain/<cohort>/best.pt``), as the
  cross-validation's networks, the bundle and every test cohort the pretraining did not see;
* ``<out>/holdout_first_stage.yaml``: from its simulated first stage (``.../simulated/best.pt``), as the external
  networks that score the cohort the pretraining saw (configs/messekher.yaml's N2001);
* ``<out>/holdout_cv.yaml``: the first with the training part's cross-validation on too (``external.only:
  false``), so that ``benchmarks/holdout_cv_ensemble.py`` can diagnose the held-out patients with the 15
  cross-validation networks as well (docs/external.md, "The cross-validation's networks as the ensemble").

All reuse the pretraining networks of a finished DAG of ``--configfile`` (no pretraining is rerun) and share one
cohort name, so a second run reuses the first's preprocessing and retrains only the networks (copy
``results/external/<name>/`` away between two runs). holdout_cv.yaml trains the same external networks as
holdout_pretrained.yaml, so run right after it, it adds only the cross-validation:

    python benchmarks/holdout_configs.py --configfile configs/messekher.yaml --seed 2026 --out holdout/
    snakemake --cores all --configfile holdout/holdout_pretrained.yaml
    snakemake --cores all --configfile holdout/holdout_cv.yaml        # optional: + the 15 CV networks
    python benchmarks/holdout_cv_ensemble.py --configfile holdout/holdout_cv.yaml
    cp -r results/external/messekher2023_holdout holdout/pretrained
    snakemake --cores all --configfile holdout/holdout_first_stage.yaml

The split is stratified by diagnosis (``--fraction`` of each class held out, at least one patient) and drawn from
``--seed``; it reads the patients from the DAG's ``results/cohort/<cohort>/subjects.tsv``.
"""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from nemg.config import load_config, validate_config  # noqa: E402

STARTS = {"pretrained": "results/pretrain/{cohort}/best.pt",
          "first_stage": "results/pretrain/{cohort}/simulated/best.pt"}


class HoldoutError(ValueError):
    pass


def stratified_holdout(subjects: pd.DataFrame, fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """(training ids, held-out ids): ``fraction`` of each diagnosis held out (rounded, at least one, never all)."""
    if not 0 < fraction < 1:
        raise HoldoutError(f"--fraction must be between 0 and 1, got {fraction}")
    rng = np.random.default_rng(seed)
    held: list[str] = []
    for diagnosis, group in subjects.groupby("diagnosis", sort=True):
        ids = sorted(map(str, group["subject_id"]))
        if len(ids) < 2:
            raise HoldoutError(f"diagnosis {diagnosis!r} has {len(ids)} patient(s): nothing to both train and test on")
        k = min(len(ids) - 1, max(1, round(len(ids) * fraction)))
        held += [str(x) for x in rng.choice(ids, k, replace=False)]
    train = sorted(set(map(str, subjects["subject_id"])) - set(held))
    return train, sorted(held)


def holdout_configs(configfiles: list[str], fraction: float, seed: int, root: Path = ROOT) -> dict[str, dict]:
    """Start name -> the config (on top of config.yaml) that trains on the rest and tests on the held-out part."""
    cfg = load_config(root / "config.yaml", *configfiles)
    cohort = cfg["cohort"]
    name = cohort["name"]
    sheet = root / "results/cohort" / name / "subjects.tsv"
    if not sheet.is_file():
        raise HoldoutError(f"{sheet}: missing; run the DAG of {configfiles} first (it imports the cohort)")
    subjects = pd.read_csv(sheet, sep="\t", dtype={"subject_id": str})
    train, held = stratified_holdout(subjects, fraction, seed)
    out = {}
    for start, pattern in STARTS.items():
        init = pattern.format(cohort=name)
        if not (root / init).is_file():
            raise HoldoutError(f"{root / init}: missing; the DAG of {configfiles} must have pretrained in two stages "
                               "(pretrain.enabled, pretrain.cohort, pretrain.simulated_first)")
        # deep copies throughout: a dict shared by two sections would be written as a YAML anchor and alias
        test = copy.deepcopy({k: v for k, v in cohort.items() if k != "name"})
        # the whole run config (its preprocessing and recipe: the pretraining networks were trained with them),
        # with the cohort split, no cross-validation, and the networks' start fixed
        run = copy.deepcopy(cfg)
        run["cohort"] = {**copy.deepcopy(cohort), "name": f"{name}_holdout", "subjects": train}
        run["external"] = {**cfg["external"], "cohorts": {"heldout": {**test, "subjects": held}}, "only": True,
                           "amplitude_calibration": ["none"]}
        run["pretrain"] = {**cfg["pretrain"], "enabled": False}
        run["train"] = {**cfg["train"], "init_from": init}
        # a whole config already, so what a run would see on top of config.yaml is this one
        validate_config(run, source=f"holdout_{start}")
        out[start] = run
    # the same networks and split, and the training part's own nested CV besides: one run gives both ensembles
    cv = copy.deepcopy(out["pretrained"])
    cv["external"]["only"] = False
    validate_config(cv, source="holdout_cv")
    out["cv"] = cv
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configfile", nargs="+", required=True, help="the finished DAG's config file(s)")
    ap.add_argument("--fraction", type=float, default=1 / 3, help="share of each diagnosis held out")
    ap.add_argument("--seed", type=int, default=2026, help="seed of the split")
    ap.add_argument("--out", type=Path, required=True, help="folder for the configs")
    args = ap.parse_args(argv)
    try:
        configs = holdout_configs(args.configfile, args.fraction, args.seed)
    except HoldoutError as exc:
        print(f"holdout_configs: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    for start, cfg in configs.items():
        path = args.out / f"holdout_{start}.yaml"
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        held = cfg["external"]["cohorts"]["heldout"]["subjects"]
        print(f"{path}: train on {len(cfg['cohort']['subjects'])} patients, test on {len(held)}, "
              f"networks from {cfg['train']['init_from']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
