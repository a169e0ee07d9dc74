"""Every benchmark and helper script imports against the current library.

They run outside the DAG and most have no test of their own, so a name removed from nemg (as TRAIN_DEFAULTS
was when the defaults moved into the schema) would otherwise surface only when someone runs them: on a lent
GPU, the worst place to find out."""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((REPO / "benchmarks").glob("*.py")) + sorted((REPO / "scripts").glob("*.py"))

IMPORT_ALL = """
import importlib.util, sys
for path in sys.argv[1:]:
    spec = importlib.util.spec_from_file_location("script_under_test", path)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))  # runs no main(): __name__ is not __main__
"""


def test_every_benchmark_and_script_imports():
    assert len(SCRIPTS) >= 5, SCRIPTS
    res = subprocess.run([sys.executable, "-c", IMPORT_ALL, *map(str, SCRIPTS)], cwd=REPO, capture_output=True,
                         text=True, timeout=300,
                         env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr[-3000:]
