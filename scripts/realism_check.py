#!/usr/bin/env python
"""Realism check of the simulated cohort: generate (or read) a cohort, detect MUAPs, print the per-class table
next to the reference values, the feature baseline's accuracy and the simulated raters' confusion matrices.

    python scripts/realism_check.py --out results/realism            # generate the default cohort, seed 2024
    python scripts/realism_check.py --cohort results/simulated        # analyse an existing cohort
Writes realism_table.tsv, realism_muaps.tsv, realism_features.tsv and realism_summary.md under --out.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from nemg import realism
from nemg.simulate import simulate_cohort


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("results/realism"))
    ap.add_argument("--cohort", type=Path, help="existing cohort directory (subjects.tsv, recordings.tsv)")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--params", type=Path, help="JSON file of DEFAULT_PARAMS overrides")
    ap.add_argument("--jobs", type=int, default=1)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    lines = []
    if args.cohort is None:
        overrides = json.loads(args.params.read_text()) if args.params else {}
        t0 = time.perf_counter()
        simulate_cohort(overrides, args.out / "cohort", args.seed, n_jobs=args.jobs)
        lines.append(f"generation: {time.perf_counter() - t0:.1f} s wall ({args.jobs} process(es), seed {args.seed})")
        cohort = args.out / "cohort"
    else:
        cohort = args.cohort
    muaps, feats = realism.analyse_cohort(cohort / "subjects.tsv", cohort / "recordings.tsv")
    table = realism.class_table(muaps, feats)
    base = realism.feature_baseline(feats)
    table.to_csv(args.out / "realism_table.tsv", sep="\t")
    muaps.to_csv(args.out / "realism_muaps.tsv", sep="\t", index=False)
    feats.to_csv(args.out / "realism_features.tsv", sep="\t", index=False)
    lines += ["", table.to_markdown() if hasattr(table, "to_markdown") else table.to_string(), "",
              f"feature baseline (logistic regression, 5-fold by patient x 5): per recording "
              f"{base['per_recording']:.3f} (sd {base['per_recording_sd']:.3f}), per patient "
              f"{base['per_patient']:.3f} (sd {base['per_patient_sd']:.3f}); "
              f"{base['n_recordings']} recordings, {base['n_patients']} patients"]
    ratings = cohort / "ratings.tsv"
    if ratings.exists():
        lines += ["", "simulated raters, patient level (rows: true class; columns: label):",
                  realism.rater_confusion(cohort / "subjects.tsv", ratings).to_string()]
    text = "\n".join(lines)
    (args.out / "realism_summary.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
