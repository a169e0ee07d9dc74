"""Embedded simulated needle-EMG cohort (the project's default data). Everything it writes is SIMULATED.

Public contract (docs/architecture.md, docs/simulator.md):
- ``DEFAULT_PARAMS``: every tunable, a plain nested dict; ``merge_params(overrides)`` deep-merges overrides
  and raises a ValueError naming any unknown key.
- ``simulate_cohort(params, out_dir, seed) -> dict(subjects=Path, recordings=Path, ratings=Path)``.
"""
from .cohort import MUSCLES, SIMULATED_NOTE, simulate_cohort
from .params import DEFAULT_PARAMS, merge_params

__all__ = ["DEFAULT_PARAMS", "MUSCLES", "SIMULATED_NOTE", "merge_params", "simulate_cohort"]
