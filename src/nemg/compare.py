"""Compare two runs by their manifests (``nemg compare``): did a rerun reproduce a run, and if not, is that expected?

A reviewer who reruns a study on their own machine, or a team that reruns it after a change, wants to know which
outputs match the reference run bit for bit, where they start to differ, and whether the difference has a cause
in what the runs were made with. Both runs' manifests (:mod:`nemg.manifest`) hold the SHA-256 of every output and
the run's record (commit, config, package versions, CPU), so the comparison needs neither run's files on disk.

What it reports:

* the record: every field of ``run.yaml`` that shapes the numbers and differs (commit and tree state, Python,
  package versions, the CPU's label), and whether the merged configs are equal;
* the outputs, stage by stage (``results/<stage>/...``): identical, different, only in one run; files that carry
  a time or a date by design (:data:`VOLATILE`: training curves' elapsed seconds, the QEMG fits' seconds, PDF
  creation dates; the list is what differed between two runs of the CI config on one machine) are counted apart and never make runs "differ";
* a verdict: identical; different with a cause in the record (another commit, config or package, or another kind
  of CPU: CPU training is bit-reproducible on one kind of CPU only, so networks and everything computed from them
  differ); or different with no cause in the record, which should not happen (exit status 1 either way).

Standard library and PyYAML only, like :mod:`nemg.manifest`.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .manifest import CONFIG, FILES, RUN, ManifestError, cpu_label, read_files_table

#: outputs that differ between two runs of the same code on the same machine by design (path patterns)
VOLATILE = {
    "*/curve.tsv": "training curve: elapsed seconds per evaluation",
    "*/fit_times.tsv": "QEMG baseline: seconds per fit",
    "*.pdf": "PDF figure: creation date",
}
#: run.yaml fields that can change a run's numbers; ``cpu`` is compared by its label
RECORD_FIELDS = ("git_commit", "git_dirty", "python", "nemg_version")


@dataclass
class StageDiff:
    identical: int = 0
    differ: list[str] = field(default_factory=list)
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)
    volatile: int = 0  # volatile files present in both runs (equal or not)


@dataclass
class Comparison:
    a: Path
    b: Path
    record: list[tuple[str, str, str]]  # (field, value in a, value in b) for every field that differs
    config_equal: bool
    cpu: tuple[str, str]
    stages: dict[str, StageDiff]

    @property
    def n_differ(self) -> int:
        return sum(len(s.differ) + len(s.only_a) + len(s.only_b) for s in self.stages.values())

    @property
    def identical(self) -> bool:
        return self.n_differ == 0

    def verdict(self) -> str:
        if self.identical:
            return "identical: every output matches bit for bit" + (
                " (files that carry times or dates aside)" if any(s.volatile for s in self.stages.values()) else "")
        made = [f for f, _, _ in self.record if f != "cpu"] + ([] if self.config_equal else ["config"])
        if made:
            return (f"different, as expected: the runs were made with another {', '.join(made)}")
        ca, cb = self.cpu
        if "cpu" in {f for f, _, _ in self.record}:
            if "unknown" in (ca, cb):
                return ("different, cause unknown: a manifest does not record its CPU (written before nemg did), "
                        "and nothing else in the records differs")
            return (f"different, as expected: trained on different kinds of CPU ({ca} / {cb}); CPU training is "
                    "bit-reproducible on one kind of CPU only, so the networks and everything computed from them "
                    "differ in their last bits, and a few patients' calls may move")
        return ("DIFFERENT WITH NO CAUSE IN THE RECORDS: same code, config, packages and kind of CPU; a step that "
                "is not deterministic, or outputs changed after the run (check each with `nemg verify`)")

    def report(self, show: int = 3) -> str:
        lines = [f"A: {self.a}", f"B: {self.b}"]
        if self.record:
            lines.append("record: " + "; ".join(f"{f} {va} -> {vb}" for f, va, vb in self.record))
        else:
            lines.append("record: the same code, Python, packages and kind of CPU (" + self.cpu[0] + ")")
        lines.append("config: " + ("the same" if self.config_equal else "DIFFERENT (compare the two config.yaml)"))
        lines.append(f"{'stage':<12} {'identical':>9} {'differ':>7} {'only A':>7} {'only B':>7}  first differing")
        for name, s in self.stages.items():
            first = (s.differ + s.only_a + s.only_b)[:show]
            vol = f" (+{s.volatile} with times or dates)" if s.volatile else ""
            lines.append(f"{name:<12} {s.identical:>9} {len(s.differ):>7} {len(s.only_a):>7} {len(s.only_b):>7}  "
                         + (", ".join(first) if first else "-") + vol)
        lines.append("verdict: " + self.verdict())
        return "\n".join(lines)


def volatile(path: str) -> bool:
    return any(fnmatch.fnmatch(path, pattern) for pattern in VOLATILE)


def stage_of(path: str) -> str:
    parts = path.split("/")
    return parts[1] if parts[0] == "results" and len(parts) > 2 else parts[0]


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ManifestError(f"{path}: cannot be read ({exc})") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: not a mapping")
    return data


def compare(a: str | Path, b: str | Path) -> Comparison:
    """Compare the runs whose manifest folders are ``a`` and ``b`` (e.g. two ``results/manifest/<cohort>``)."""
    a, b = Path(a), Path(b)
    for d in (a, b):
        if not d.is_dir():
            raise ManifestError(f"{d}: no such manifest folder")
    run_a, run_b = _read_yaml(a / RUN), _read_yaml(b / RUN)
    record = [(f, str(run_a.get(f)), str(run_b.get(f))) for f in RECORD_FIELDS if run_a.get(f) != run_b.get(f)]
    pa, pb = run_a.get("packages") or {}, run_b.get("packages") or {}
    record += [(f"packages.{p}", str(pa.get(p)), str(pb.get(p))) for p in sorted(set(pa) | set(pb))
               if pa.get(p) != pb.get(p)]
    cpu = (cpu_label(run_a), cpu_label(run_b))
    # an unrecorded CPU is not a known difference, but neither is it a known match
    if cpu[0] != cpu[1] or "unknown" in cpu:
        record.append(("cpu", *cpu))
    config_equal = _read_yaml(a / CONFIG) == _read_yaml(b / CONFIG)

    files_a = {p: sha for p, _, sha in read_files_table(a / FILES)}
    files_b = {p: sha for p, _, sha in read_files_table(b / FILES)}
    stages: dict[str, StageDiff] = {}
    for path in sorted(set(files_a) | set(files_b)):
        s = stages.setdefault(stage_of(path), StageDiff())
        if path in files_a and path in files_b:
            if volatile(path):
                s.volatile += 1
            elif files_a[path] == files_b[path]:
                s.identical += 1
            else:
                s.differ.append(path)
        elif path in files_a:
            s.only_a.append(path)
        else:
            s.only_b.append(path)
    return Comparison(a, b, record, config_equal, cpu, stages)


__all__ = ["VOLATILE", "Comparison", "StageDiff", "compare", "stage_of", "volatile"]
