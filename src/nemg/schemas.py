"""Find the JSON schemas (YAML-encoded) shared by the library and the workflow.

They live in the repository's ``workflow/schemas/`` so that Snakemake's ``validate()`` and the library use the
same files; a wheel install carries a copy inside the package (see pyproject.toml).
"""
from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

_PACKAGED = Path(__file__).parent / "schemas"
_REPO = Path(__file__).resolve().parents[2] / "workflow" / "schemas"


def schema_path(name: str) -> Path:
    """Path of ``<name>.schema.yaml``, preferring the repository copy (the one users edit)."""
    for base in (_REPO, _PACKAGED):
        p = base / f"{name}.schema.yaml"
        if p.is_file():
            return p
    raise FileNotFoundError(f"schema {name!r} not found in {_REPO} or {_PACKAGED}")


@cache
def load_schema(name: str) -> dict:
    with open(schema_path(name)) as fh:
        return yaml.safe_load(fh)
