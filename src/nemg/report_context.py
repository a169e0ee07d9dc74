"""What the report's landing page (workflow/report/workflow.rst) states beyond the config itself.

``snakemake --report`` renders the landing page with only the config in scope, so the workflow computes this
dict when it is parsed and puts it into the config (``report_context``) for the page to read.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from .labels import CLASSES
from .results_table import git_commit

#: the config key the workflow puts this dict under; not part of the config a run is given (the manifest drops it)
CONFIG_KEY = "report_context"


def config_label(configfiles: Sequence[str | Path], repo: str | Path) -> str:
    """The config files of a run in the order they apply, repository-relative where they are inside it.

    The workflow's own config.yaml (its ``configfile:``) applies first and the ``--configfile`` files on top,
    whatever order Snakemake lists them in."""
    repo = Path(repo).resolve()
    paths = [Path(f).resolve() for f in configfiles]
    default = repo / "config.yaml"
    ordered = [p for p in paths if p == default] + [p for p in paths if p != default]
    return " + ".join(str(p.relative_to(repo)) if p.is_relative_to(repo) else str(p) for p in ordered) or "(none)"


def class_counts(subjects: str | Path) -> str:
    """'20 normal, 19 myopathy, 19 neuropathy' from a subjects sheet; '' when the sheet does not exist yet."""
    path = Path(subjects)
    if not path.is_file():
        return ""
    diagnosis = pd.read_csv(path, sep="\t", dtype=str)["diagnosis"]
    counts = diagnosis.value_counts()
    parts = [f"{int(counts.get(c, 0))} {c}" for c in CLASSES]
    other = sorted(set(counts.index) - set(CLASSES))
    return ", ".join(parts + [f"{int(counts[c])} {c}" for c in other])


def report_context(repo: str | Path, *, configfiles: Sequence[str | Path], subjects: str | Path, n_runs: int, baselines: Sequence[str], external_tests: Sequence[str],
                   physicians: str, snakemake_version: str) -> dict:
    counts = class_counts(subjects)
    return {
        "configfiles": config_label(configfiles, repo),
        "commit": git_commit(Path(repo)),
        "snakemake": snakemake_version,
        "n_subjects": sum(int(part.split()[0]) for part in counts.split(", ")) if counts else 0,
        "class_counts": counts,
        "n_runs": int(n_runs),
        "baselines": ", ".join(baselines),
        "external_tests": ", ".join(external_tests),
        "physicians": physicians,
    }
