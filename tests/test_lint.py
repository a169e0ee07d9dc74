"""Conventions of the Snakemake workflow catalog: snakefmt-clean rule files and a valid catalog settings file."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def snakefmt_exe():
    exe = Path(sys.executable).with_name("snakefmt")
    return str(exe) if exe.is_file() else shutil.which("snakefmt")


def test_snakefmt_clean():
    exe = snakefmt_exe()
    if exe is None:
        pytest.skip("snakefmt is not installed (pip install -e '.[test]' brings the pinned version)")
    # from the repository root, so that snakefmt reads [tool.snakefmt] (line length 120) in pyproject.toml
    res = subprocess.run([exe, "--check", "-v", "Snakefile", "workflow"], cwd=REPO, capture_output=True, text=True,
                         timeout=300)
    out = res.stdout + res.stderr
    changed = re.findall(r'In file "([^"]+)":\s+Formatted content is different', out)
    assert res.returncode == 0, f"snakefmt would reformat {len(changed)} file(s): {', '.join(sorted(changed))}" \
                                f" (run `snakefmt Snakefile workflow`)\n{out[-2000:] if not changed else ''}"


def test_workflow_catalog_settings():
    """.snakemake-workflow-catalog.yml: only keys the catalog reads, and its claims hold for this repository."""
    settings = yaml.safe_load((REPO / ".snakemake-workflow-catalog.yml").read_text())
    usage = settings["usage"]
    assert set(usage) <= {"mandatory-flags", "software-stack-deployment", "report"}, usage
    deployment = usage["software-stack-deployment"]
    assert set(deployment) <= {"conda", "apptainer", "apptainer+conda", "singularity", "singularity+conda"}
    assert deployment["conda"] is True and usage["report"] is True
    # conda: every rule names an environment file that exists; report: the rules declare report() outputs
    rule_files = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]
    text = {p: p.read_text() for p in rule_files}
    # a rule that runs code (script / shell / run) names its env; a target rule (inputs only) needs none
    blocks = [(p, m.group(1), m.group(2)) for p, t in text.items()
              for m in re.finditer(r"^rule (\w+):\n(.*?)(?=^\S|\Z)", t, re.M | re.S)]
    runs_code = [(p, name) for p, name, body in blocks if re.search(r"^\s+(script|shell|run|notebook):", body, re.M)]
    without_env = [name for p, name, body in blocks if (p, name) in runs_code and "conda:" not in body]
    assert runs_code and not without_env, without_env
    envs = [(p, e) for p, t in text.items() for e in re.findall(r'^\s+conda:\s*\n\s+"([^"]+)"', t, re.M)]
    missing = [f"{p.name}: {e}" for p, e in envs if not (p.parent / e).resolve().is_file()]
    assert not missing, missing
    assert any("report(" in t or "report_item(" in t for t in text.values())
