#!/usr/bin/env python
"""docs/results/real_data.tsv from the DAG's own outputs, and the README's marked results tables from it.

One row per data set x model x variant (within-set nested CV; external validation on each test cohort):
consensus accuracy with its patient-bootstrap 95 % CI, macro F1, per-class recall, wall time, the commit and
the CPU of the run (one row set per data set and kind of CPU). What it reads per cohort, and when a cohort is
skipped or refused: nemg.results_table.

Usage: python scripts/real_data_table.py [--cohorts simulated n2001 messekher2023 ...]
                                         [--out docs/results/real_data.tsv] [--readme README.md]
                                         [--root <another checkout's run>] [--cpu LABEL]
"""
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))  # runs from a checkout without `pip install -e .`

from nemg.results_table import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(default_root=REPO))
