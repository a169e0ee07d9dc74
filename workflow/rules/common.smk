# Shared set-up: config validation, cohort paths, wildcard constraints and every input function.
import os
import re
import sys
from pathlib import Path

# The library lives in src/; put it first on the path of this process and of every job (scripts run as
# subprocesses, possibly in a conda env that does not have nemg installed).
SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)
os.environ.update(PYTHONPATH=os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH", "")) if p))

from nemg.config import ConfigError, resolve_path, validate_config

try:
    validate_config(config, source="config (config.yaml + --configfile/--config)")
except ConfigError as exc:
    raise WorkflowError(str(exc)) from None

REPO = Path(workflow.basedir)
COHORT = config["cohort"]["name"]
SOURCE = config["cohort"]["source"]


wildcard_constraints:
    cohort=re.escape(COHORT),


def cohort_sheet(name):
    """results/cohort/<cohort>/<name>.tsv -- every source ends here (subjects, recordings)."""
    return f"results/cohort/{{cohort}}/{name}.tsv"


def public_source_dir():
    """The public data set's folder (never copied; the sheets point into it)."""
    from nemg.datasets import get

    pub = config["cohort"]["public"]
    return str(resolve_path(pub["data_dir"], REPO) / get(pub["dataset"]).folder)


def user_sheet(key):
    return str(resolve_path(config["cohort"]["sheets"][key], REPO))


def simulation_params():
    """The simulation section merged into nemg.simulate.DEFAULT_PARAMS (wrong keys fail here, at start-up)."""
    from nemg.simulate import merge_params

    return merge_params(config["simulation"])


def trim_params():
    return config["preprocess"]["trim"]


def final_outputs():
    """Targets of the default run: the QC figure, the S1 table, the segment store and the checked folds table."""
    return expand(
        [
            "results/trim/{cohort}/trim_qc.png",
            "results/segment/{cohort}/s1_table.tsv",
            "results/segment/{cohort}/segments.npy",
            "results/folds/{cohort}/folds.tsv",
            "results/folds/{cohort}/leakage_check.txt",
        ],
        cohort=COHORT,
    )


def ratings_path():
    """The ratings sheet of this cohort, or None."""
    r = config["evaluate"]["ratings"]
    if r in (None, "none"):
        return None
    if r == "auto":
        return "results/cohort/{cohort}/ratings.tsv" if SOURCE == "simulated" else None
    return str(resolve_path(r, REPO))


def report_item(path, caption, category="Tables"):
    """A report() output with its caption file workflow/report/<caption>.rst."""
    return report(path, caption=f"../report/{caption}.rst", category=category)
