"""Run manifest: what a run was and the SHA-256 of every file it wrote, so a reviewer can check that the files
they audit are the ones the tables came from.

A manifest is a folder (the workflow writes ``results/manifest/<cohort>/``):

- ``config.yaml``: the merged config as run (config.yaml + --configfile/--config);
- ``run.yaml``: nemg version, git commit of the code and whether its tree was dirty, Python, platform, the CPU
  (:func:`cpu_info`: a CPU-trained network's last bits, and with them a few patients' calls, depend on it), the
  versions of the packages that shape the numbers, and where the run's working directory is;
- ``files.tsv``: one row per file (``path`` relative to the working directory, ``size_bytes``, ``sha256``).

:func:`verify` (``nemg verify <folder>``) hashes the files again and lists every changed or missing one.
This module stays light (standard library and PyYAML): ``nemg verify`` should not wait for pandas or torch.
"""
from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Mapping

import yaml

from .fileio import sha256_file
from .store import store_check_path

#: the packages whose versions can change a run's numbers or figures (nemg itself is recorded from the code run)
PACKAGES = ("torch", "numpy", "scipy", "pandas", "scikit-learn", "statsmodels", "snakemake", "seaborn",
            "matplotlib", "wfdb")
FILES, RUN, CONFIG = "files.tsv", "run.yaml", "config.yaml"
COLUMNS = ("path", "size_bytes", "sha256")


class ManifestError(Exception):
    """A manifest cannot be written or read; the message names the file and the problem."""


def expand_files(paths: Iterable[str | Path]) -> list[Path]:
    """Every file named, a folder replaced by every file below it; sorted, each once.

    A path that does not exist is an error: a manifest that silently leaves out an output would vouch for less
    than it claims. A file's store sidecar (``<file>.check.json``) comes with it.
    """
    out: set[Path] = set()
    for p in map(Path, paths):
        if p.is_dir():
            out.update(f for f in p.rglob("*") if f.is_file())
        elif p.is_file():
            out.add(p)
            # a store's integrity sidecar (nemg.store.write_store_check) is written beside it, not declared
            # as a rule output: it belongs to the run's files all the same
            sidecar = store_check_path(p)
            if sidecar.is_file():
                out.add(sidecar)
        else:
            raise ManifestError(f"{p}: listed as an output of the run but does not exist")
    return sorted(out, key=lambda f: f.as_posix())


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str]:
    """Installed distribution versions; 'not installed' for a package this environment lacks."""
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


#: instruction-set extensions that decide which float kernels torch and numpy pick (and so a result's last bits)
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_bf16", "asimd", "sve")
_VENDORS = {"GenuineIntel": "Intel", "AuthenticAMD": "AMD"}


def cpu_info(cpuinfo: str | Path = "/proc/cpuinfo") -> dict:
    """The CPU this process runs on: ``label`` (e.g. "AMD family 25 model 17", what tables group runs by),
    ``model_name``, ``vendor``, ``family``, ``model``, ``logical_cpus`` and the ``isa`` extensions of
    :data:`ISA_FLAGS` it has. CPU training is bit-reproducible on one kind of CPU, not across kinds, so a run's
    numbers are only comparable bit for bit with runs of the same label. Outside Linux (no ``/proc/cpuinfo``) the
    label is :func:`platform.processor` or the machine type."""
    fields: dict[str, str] = {}
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        if not line.strip():
            break  # the first logical CPU describes them all
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    vendor = _VENDORS.get(fields.get("vendor_id", ""), fields.get("vendor_id") or fields.get("CPU implementer"))
    family = fields.get("cpu family")
    model = fields.get("model") if (fields.get("model") or "").isdigit() else None
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    if vendor and family and model:
        label = f"{vendor} family {family} model {model}"
    else:  # an ARM or non-Linux machine: the best name there is
        label = fields.get("model name") or platform.processor() or platform.machine() or "unknown"
    return {"label": label, "model_name": fields.get("model name") or platform.processor() or "unknown",
            "vendor": vendor or "unknown", "family": int(family) if family and family.isdigit() else None,
            "model": int(model) if model else None, "logical_cpus": os.cpu_count(),
            "isa": [f for f in ISA_FLAGS if f in flags]}


def cpu_label(run: Mapping) -> str:
    """The CPU label a run.yaml records (its ``cpu`` mapping's label), "unknown" for a manifest written before
    nemg recorded the CPU."""
    cpu = run.get("cpu")
    if isinstance(cpu, Mapping):
        cpu = cpu.get("label")
    return str(cpu) if cpu else "unknown"


@dataclass(frozen=True)
class GitState:
    commit: str | None  # full hash of HEAD; None outside a git checkout
    dirty: bool  # tracked files differ from HEAD, or files git does not ignore are untracked
    changed: tuple[str, ...] = ()  # `git status --porcelain` lines: what made it dirty


def git_state(repo: str | Path) -> GitState:
    """HEAD and whether the checkout holding ``repo`` differs from it (untracked, non-ignored files count: a new
    rule file changes the run as much as an edited one)."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
        status = [line for line in git("status", "--porcelain").splitlines() if line.strip()]
    except (OSError, subprocess.CalledProcessError):
        return GitState(None, False)
    return GitState(commit, bool(status), tuple(status))


def write_manifest(out_dir: str | Path, files: Iterable[str | Path], config: Mapping, repo: str | Path, *,
                   root: str | Path = ".", versions: Mapping[str, str] | None = None) -> dict[str, Path]:
    """Write ``config.yaml``, ``run.yaml`` and ``files.tsv`` into ``out_dir``; return their paths.

    ``files`` (folders are expanded) are hashed as paths relative to ``root``, the run's working directory;
    ``repo`` is the code's checkout (the workflow's base directory), whose commit is recorded. ``versions``
    overrides what this environment reports (e.g. the version of the Snakemake that ran the jobs).
    """
    from . import __version__

    # absolute without resolving links: results/ may be a link to scratch space, and its paths still belong here
    out_dir, root = _absolute(out_dir), _absolute(root)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for f in expand_files(_absolute(Path(root, p)) for p in files):
        rel = f.relative_to(root) if f.is_relative_to(root) else f
        rows.append((rel.as_posix(), f.stat().st_size, sha256_file(f)))
    git = git_state(repo)
    run = {
        "nemg_version": __version__,
        "git_commit": git.commit or "unknown (not a git checkout)",
        "git_dirty": git.dirty,
        "git_changes": list(git.changed),
        "code": str(Path(repo).resolve()),
        "python": sys.version.split()[0],
        "python_prefix": sys.prefix,  # the environment the versions below were read in
        "platform": platform.platform(),
        # the machine that wrote the manifest: for a local run the one every job ran on; on a cluster each
        # network's own best.pt names the CPU that trained it (nemg.train)
        "cpu": cpu_info(),
        "packages": {**package_versions(), **dict(versions or {})},
        "created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        # files.tsv paths are relative to the run's working directory; verify finds it from the manifest's place
        "root_from_manifest": os.path.relpath(root, out_dir),
        "n_files": len(rows),
        "total_bytes": sum(r[1] for r in rows),
    }
    paths = {"config": out_dir / CONFIG, "run": out_dir / RUN, "files": out_dir / FILES}
    paths["config"].write_text(yaml.safe_dump(_plain(config), sort_keys=False))
    paths["run"].write_text(yaml.safe_dump(run, sort_keys=False))
    with open(paths["files"], "w") as fh:
        fh.write("\t".join(COLUMNS) + "\n")
        fh.writelines(f"{p}\t{n}\t{h}\n" for p, n, h in rows)
    return paths


def _absolute(path: str | Path) -> Path:
    return Path(os.path.normpath(Path(path).absolute()))


def _plain(obj):
    """Snakemake's config is a dict of dicts but may hold its own mapping/sequence types; YAML wants plain ones."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


@dataclass
class Verification:
    manifest: Path
    root: Path
    n_files: int = 0
    changed: list[tuple[str, str]] = field(default_factory=list)  # (path, what differs)
    missing: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.changed or self.missing)

    def report(self) -> str:
        files = self.manifest / FILES
        if self.ok:
            return f"verify OK: all {self.n_files} files match {files} (paths under {self.root})"
        lines = [f"verify FAILED: {len(self.changed)} changed and {len(self.missing)} missing of {self.n_files} "
                 f"files listed in {files} (paths under {self.root})"]
        lines += [f"  changed  {p}  ({what})" for p, what in self.changed]
        lines += [f"  missing  {p}" for p in self.missing]
        return "\n".join(lines)


def read_files_table(path: str | Path) -> list[tuple[str, int, str]]:
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ManifestError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not lines or tuple(lines[0].split("\t")) != COLUMNS:
        raise ManifestError(f"{path}: not a manifest file table (expected the header {' / '.join(COLUMNS)})")
    rows = []
    for i, line in enumerate(lines[1:], 2):
        parts = line.split("\t")
        if len(parts) != 3 or not parts[1].isdigit() or len(parts[2]) != 64:
            raise ManifestError(f"{path}, line {i}: expected path, size in bytes and a SHA-256, got {line!r}")
        rows.append((parts[0], int(parts[1]), parts[2]))
    return rows


def verify(manifest_dir: str | Path, root: str | Path | None = None) -> Verification:
    """Hash every file of ``manifest_dir``'s files.tsv again; ``root`` (the run's working directory) defaults to
    the one recorded in run.yaml, relative to the manifest's folder."""
    manifest_dir = Path(manifest_dir)
    if not manifest_dir.is_dir():
        raise ManifestError(f"{manifest_dir}: no such manifest folder")
    rows = read_files_table(manifest_dir / FILES)
    if root is None:
        run_file = manifest_dir / RUN
        try:
            run = yaml.safe_load(run_file.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ManifestError(f"{run_file}: cannot be read ({exc}); pass the run's folder with --root") from None
        if "root_from_manifest" not in run:
            raise ManifestError(f"{run_file}: has no root_from_manifest; pass the run's folder with --root")
        root = manifest_dir / run["root_from_manifest"]
    root = _absolute(root)
    result = Verification(manifest_dir, root, n_files=len(rows))
    for rel, size, sha in rows:
        f = root / rel
        if not f.is_file():
            result.missing.append(rel)
            continue
        now_size = f.stat().st_size
        now_sha = sha256_file(f)
        if now_sha != sha:
            size_note = f"size {size} -> {now_size} bytes" if now_size != size else f"same size {size} bytes"
            result.changed.append((rel, f"sha256 {sha[:12]}... -> {now_sha[:12]}..., {size_note}"))
    return result
