"""A workflow step's log: everything the step writes to stderr goes to one file.

Log records, warnings, tracebacks and progress bars all write to ``sys.stderr``; replacing it (not only adding a
logging handler) puts them all in the step's log, including what the imports after this call print.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_to_file(path: str | Path, *, append: bool = False) -> None:
    """Send stderr and INFO-level logging to ``path``; ``append`` keeps an earlier attempt's log (a resumed job)."""
    sys.stderr = open(path, "a" if append else "w")
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format=FORMAT)
