"""Running the DAG on a cluster: the conda environment of every rule, the SLURM profile's GPU requests, and a live
run through a single-node SLURM cluster on localhost that must give the same results as a local run.

The live test installs Debian's slurm-wlm and munge (apt-get, needs root) and starts munged, slurmctld and slurmd
in a temporary directory (tests/slurm/local_cluster.py). It runs in CI (CI=true); elsewhere only with
NEMG_SLURM_TEST=1 (NEMG_SLURM_TEST=require: an install or start-up problem fails instead of skipping).
"""
import importlib.util
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
SLURM_PROFILE = REPO / "profiles" / "slurm"
RULE_FILES = sorted((REPO / "workflow" / "rules").glob("*.smk")) + [REPO / "Snakefile"]
ENV_GROUPS = {"preprocess.yaml", "train.yaml", "plots.yaml"}  # data/preprocess, torch training, stats + plots
# torch jobs wanting a GPU
GPU_RULES = {"train_fold", "fig3_optimize_inputs", "train_external", "train_external_pretrained", "pretrain",
             "pretrain_simulated", "predict_external"}


def snakemake(workdir, *args, timeout=600, env=None):
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(workdir), *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=workdir, env=env)


# ---- conda: every rule's environment file exists and is a pinned environment ----------------------------------

_RULE = re.compile(r"^(\s*)(?:local)?rule\s+(\w+)\s*:", re.M)
_DIRECTIVE = re.compile(r"^\s+(\w+):")


def rule_blocks(path):
    """(rule name, its text) for every rule of a .smk file, whatever `if` branch it sits in."""
    text = path.read_text()
    starts = list(_RULE.finditer(text))
    for m, nxt in zip(starts, starts[1:] + [None]):
        body = text[m.end(): nxt.start() if nxt else len(text)]
        # the block ends at the first non-blank line indented no deeper than the `rule` keyword
        indent = len(m.group(1))
        lines = []
        for line in body.splitlines()[1:]:
            if line.strip() and len(line) - len(line.lstrip()) <= indent:
                break
            lines.append(line)
        yield m.group(2), "\n".join(lines)


def conda_directive(block):
    m = re.search(r"^\s+conda:\s*\n\s+[\"'](.+?)[\"']", block, re.M) or re.search(
        r"^\s+conda:\s*[\"'](.+?)[\"']", block, re.M)
    return m.group(1) if m else None


def test_every_rule_with_a_job_has_a_conda_env_that_resolves_and_parses():
    """A broken `conda:` path passes `snakemake -n` and `--lint`; --sdm conda then fails on the cluster."""
    seen, checked = set(), {}
    for smk in RULE_FILES:
        for name, block in rule_blocks(smk):
            seen.add(name)
            runs = re.search(r"^\s+(script|shell|run|notebook|wrapper):", block, re.M)
            env = conda_directive(block)
            if not runs:
                assert env is None, f"{smk.name}: rule {name} has no job but a conda env"
                continue
            assert env, f"{smk.relative_to(REPO)}: rule {name} has no conda: directive"
            path = (smk.parent / env).resolve()  # Snakemake resolves conda: relative to the rule file
            assert path.is_file(), f"{smk.relative_to(REPO)}: rule {name}: conda env {env} -> {path} does not exist"
            assert path.parent == REPO / "envs", f"rule {name}: {env} is not in envs/"
            checked.setdefault(path, []).append(name)
    assert {"train_fold", "simulate_cohort", "evaluate"} <= seen, "rule parser found too few rules"
    assert {p.name for p in checked} <= ENV_GROUPS, checked.keys()
    for path, rules in checked.items():
        env = yaml.safe_load(path.read_text())
        assert isinstance(env, dict) and env.get("channels") and env.get("dependencies"), path
        for dep in env["dependencies"]:
            assert isinstance(dep, str) and re.fullmatch(r"[\w.-]+(\[[^\]]+\])?=[\w.*-]+", dep), (
                f"{path.name}: dependency {dep!r} is not pinned (name=version); used by {rules}")


def test_conda_envs_pin_the_versions_of_pyproject():
    """The conda environments and the pip install resolve to the same versions of the shared packages."""
    pyproject = (REPO / "pyproject.toml").read_text()
    pins = {m.group(1).lower(): m.group(2) for m in re.finditer(r'"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^"]+)"',
                                                               pyproject)}
    pins["pytorch"] = pins["torch"]
    pins["matplotlib-base"] = pins["matplotlib"]
    for path in sorted((REPO / "envs").glob("*.yaml")):
        for dep in yaml.safe_load(path.read_text())["dependencies"]:
            name, version = dep.split("=", 1)
            if name.lower() in pins:
                assert version == pins[name.lower()], f"{path.name}: {dep} but pyproject.toml pins {pins[name.lower()]}"
    train = yaml.safe_load((REPO / "envs" / "train.yaml").read_text())["dependencies"]
    assert any(d.startswith(("pytorch-gpu=", "pytorch-cuda=", "cuda-version=")) for d in train), (
        "envs/train.yaml must pin the CUDA build of torch")


# ---- the SLURM profile ------------------------------------------------------------------------------------------

def job_resources(dry_run_stdout):
    """{rule: [resources line, ...]} from a dry run's job listing."""
    out, rule = {}, None
    for line in dry_run_stdout.splitlines():
        m = re.match(r"(?:local)?rule (\w+):", line.strip())
        if m:
            rule = m.group(1)
        elif line.strip().startswith("resources:") and rule:
            out.setdefault(rule, []).append(line.strip())
    return out


@pytest.mark.parametrize("how, cfg", [("--profile", "ci"), ("--workflow-profile", "ci"),
                                      ("--workflow-profile", "n2001"), ("--workflow-profile", "messekher")])
def test_slurm_profile_dry_run_requests_gpus_for_the_training_jobs_only(how, cfg, tmp_path):
    # messekher with the model bundle: every kind of training job (the two pretraining stages, the external
    # networks from either start) is in its plan
    targets = ["all", "model"] if cfg == "messekher" else []
    res = snakemake(tmp_path, how, SLURM_PROFILE, "-n", *targets, "--configfile", REPO / "configs" / f"{cfg}.yaml")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    jobs = job_resources(res.stdout)
    if cfg == "ci":
        assert len(jobs.get("train_fold", [])) == 6  # nested 2 x 2 + repeated 2-fold
    elif cfg == "n2001":  # n2001 also validates on Messekher: 3 seeds trained on all of N2001, scoring 2 test variants
        assert len(jobs.get("train_external", [])) == 3 and len(jobs.get("predict_external", [])) == 6
    else:
        assert {"pretrain", "pretrain_simulated", "train_external", "train_external_pretrained"} <= set(jobs), jobs
    for rule, lines in jobs.items():
        for line in lines:
            gpu = re.search(r"\bgpu=(\d+)", line)
            if rule in GPU_RULES:
                assert gpu and gpu.group(1) == "1", (rule, line)
                assert "mem_mb=" in line and "runtime=" in line
            else:
                assert not gpu or gpu.group(1) == "0", (rule, line)


def test_slurm_workflow_profile_replaces_the_workstation_gpu_cap():
    """`--workflow-profile profiles/slurm` does not load profiles/default (whose gpu: 1 would serialise the folds);
    `--profile profiles/slurm` alone does, which is why docs/cluster.md gives the former."""
    code = ("import sys; from snakemake.cli import parse_args; "
            "_, a = parse_args(sys.argv[1:]); print(a.executor, a.resources.get('gpu').value, a.config, a.jobs)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAKEMAKE")}
    res = subprocess.run([sys.executable, "-c", code, "-s", str(REPO / "Snakefile"), "--workflow-profile",
                          str(SLURM_PROFILE), "-n"], capture_output=True, text=True, cwd=REPO, timeout=120, env=env)
    assert res.returncode == 0, res.stderr
    # no --config either: the plugin (2.8.0) does not escape the quotes of `--config "k={...}"` in the command
    # of an array job, so sbatch rejects the train_fold array ("Script arguments not permitted with --wrap")
    assert res.stdout.split() == ["slurm", "None", "None", "100"], res.stdout


# ---- a live single-node SLURM cluster --------------------------------------------------------------------------

def _load_cluster_module():
    spec = importlib.util.spec_from_file_location("nemg_local_cluster", REPO / "tests" / "slurm" / "local_cluster.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _live_mode():
    """'run', 'require' or a skip reason."""
    opt = os.environ.get("NEMG_SLURM_TEST", "").strip().lower()
    in_ci = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
    if opt in ("0", "false", "no"):
        return "NEMG_SLURM_TEST=0"
    if not (in_ci or opt in ("1", "true", "yes", "require")):
        return ("live SLURM test runs in CI (CI=true) or with NEMG_SLURM_TEST=1; it apt-get installs slurm-wlm "
                "and munge (root) and starts a throw-away cluster on localhost")
    if not sys.platform.startswith("linux"):
        return f"live SLURM test needs Linux, not {sys.platform}"
    if os.geteuid() != 0:
        return "live SLURM test needs root (it installs packages and runs slurmctld/slurmd as root)"
    return "require" if opt == "require" else "run"


TIMINGS = {}


@pytest.fixture(scope="module")
def slurm_cluster():
    mode = _live_mode()
    if mode not in ("run", "require"):
        pytest.skip(mode)
    lc = _load_cluster_module()
    t0 = time.monotonic()
    try:
        TIMINGS["apt"] = (lc.install_packages(), round(time.monotonic() - t0, 1))
    except Exception as exc:  # ClusterError, or anything else from apt: an environment problem
        if mode == "require":
            pytest.fail(str(exc))
        pytest.skip(f"live SLURM test: {exc}")
    cluster = lc.LocalSlurm()
    t1 = time.monotonic()
    try:
        cluster.start()
    except Exception as exc:  # whatever went wrong, end what was started
        cluster.stop()
        msg = f"live SLURM test: the local cluster did not start: {exc}"
        if mode == "require":
            pytest.fail(msg)
        pytest.skip(msg)
    TIMINGS["cluster start"] = round(time.monotonic() - t1, 1)
    try:
        yield cluster
    finally:
        t2 = time.monotonic()
        cluster.stop()
        TIMINGS["cluster stop"] = round(time.monotonic() - t2, 1)
        print(f"\nlive SLURM test timings (s): {TIMINGS}")


def make_test_profile(cluster, path):
    """profiles/slurm with its site settings pointed at the test cluster: the same executor, array and resource
    settings (the node advertises enough memory for the GPU jobs' mem_mb), CPU training and no gpu requests (no
    GPU here), squeue for status (no accounting database), SLURM logs kept for the checks."""
    prof = yaml.safe_load((SLURM_PROFILE / "config.yaml").read_text())
    # CPU training (tests/slurm/tiny.yaml): the rules' 1 thread per training job, as in the local run
    prof["set-threads"] = {r: v for r, v in (prof.get("set-threads") or {}).items() if r not in GPU_RULES}
    if not prof["set-threads"]:
        del prof["set-threads"]
    for rule, res in prof.get("set-resources", {}).items():
        for key in ("gpu", "gpu_model", "slurm_partition", "slurm_account", "qos"):
            res.pop(key, None)
    prof["set-resources"] = {r: v for r, v in prof.get("set-resources", {}).items() if v}
    if not prof["set-resources"]:
        del prof["set-resources"]
    prof["default-resources"] = {**prof.get("default-resources", {}), "slurm_partition": "nemgtest"}
    prof.update({
        "jobs": 20, "latency-wait": 5, "retries": 0,
        "slurm-no-account": True,
        "slurm-status-command": "squeue",
        "slurm-init-seconds-before-status-checks": 2,
        "slurm-keep-successful-logs": True,
    })
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.yaml").write_text(yaml.safe_dump(prof, sort_keys=False))
    return path


def job_logs_tail(workdir, n=20, files=4):
    """The ends of the newest SLURM job logs (.snakemake/slurm_logs/rule_*/<wildcards>/<jobid>.log)."""
    logs = sorted((workdir / ".snakemake" / "slurm_logs").rglob("*.log"), key=lambda p: p.stat().st_mtime)
    return "\n".join(f"--- {p.relative_to(workdir)}\n" + "\n".join(p.read_text(errors="replace").splitlines()[-n:])
                     for p in logs[-files:])


# columns that hold wall-clock measurements (curve.tsv elapsed_s, baseline fit_times.tsv seconds): they may differ
WALL_CLOCK = re.compile(r"^(elapsed(_s)?|seconds|wall(_s)?|runtime(_s)?|fit_seconds|time_s)$")


def same_table(a, b):
    if a.read_bytes() == b.read_bytes():
        return True
    x, y = (pd.read_csv(p, sep="\t") for p in (a, b))
    clock = [c for c in x.columns if WALL_CLOCK.match(str(c))]
    return bool(clock) and x.drop(columns=clock).equals(y.drop(columns=clock, errors="ignore"))


def compare_results(local, remote):
    """Every table and array under results/ equal between two runs (wall-clock columns aside)."""
    # results/manifest holds the SHA-256 of files with wall-clock columns (curve.tsv), so it differs by design
    files = sorted(p.relative_to(local) for p in (local / "results").rglob("*")
                   if p.suffix in (".tsv", ".npy") and "manifest" not in p.relative_to(local).parts[:2])
    assert len(files) > 20, files
    missing = [f for f in files if not (remote / f).is_file()]
    assert not missing, f"missing in the SLURM run: {missing}"
    differ = []
    for f in files:
        a, b = local / f, remote / f
        if f.suffix == ".npy":
            same = a.read_bytes() == b.read_bytes() or np.array_equal(np.load(a), np.load(b), equal_nan=True)
        else:
            same = same_table(a, b)
        if not same:
            differ.append(str(f))
    assert not differ, f"SLURM run differs from the local run in {differ}"
    return files


@pytest.mark.slow
def test_whole_dag_through_slurm_equals_a_local_run(slurm_cluster, tmp_path):
    cluster = slurm_cluster
    cfg = ["--configfile", REPO / "configs" / "ci.yaml", REPO / "tests" / "slurm" / "tiny.yaml"]
    local, remote = tmp_path / "local", tmp_path / "slurm"
    local.mkdir()
    remote.mkdir()

    # The local run, alongside the SLURM run (which mostly waits for status polls). It gets as many cores as
    # the test node has CPUs, so every job runs with the same number of threads in both.
    t = time.monotonic()
    local_cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(local), "--cores", str(cluster.cpus),
                 *map(str, cfg)]
    local_log = open(tmp_path / "local.log", "w+")
    local_run = subprocess.Popen(local_cmd, cwd=local, stdout=local_log, stderr=subprocess.STDOUT, text=True)
    try:
        profile = make_test_profile(cluster, tmp_path / "profile")
        try:
            res = snakemake(remote, "--workflow-profile", profile, *cfg, timeout=1200, env=cluster.env)
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"SLURM run timed out after {exc.timeout} s\n{cluster.logs_tail()}")
        TIMINGS["slurm run"] = round(time.monotonic() - t, 1)
        try:
            local_run.wait(timeout=max(60, 900 - (time.monotonic() - t)))
        except subprocess.TimeoutExpired:
            pytest.fail("local run timed out")
        TIMINGS["local run (concurrent)"] = round(time.monotonic() - t, 1)
    finally:
        if local_run.poll() is None:
            local_run.kill()
            local_run.wait(30)
        local_log.seek(0)
        local_out = local_log.read()
        local_log.close()
    assert local_run.returncode == 0, local_out[-4000:]
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:] + "\n" + job_logs_tail(remote) + "\n" + cluster.logs_tail()

    # the jobs really went through sbatch: SLURM's job-completion records, one per job, all of this run
    ids = re.findall(r"SLURM run ID: (\S+)", out)
    assert len(ids) == 1, out[-2000:]
    records = [r for r in cluster.completed_jobs() if r.get("Name") == ids[0]]
    ran = {p.name.removeprefix("rule_") for p in (remote / ".snakemake" / "slurm_logs").glob("rule_*")}
    n_jobs = len(list((local / "logs").rglob("*.log")))  # one log per job of the local run
    assert ran >= {"simulate_cohort", "segment", "train_fold", "evaluate", "fig3_optimize_inputs"}, ran
    # the localrules (sub-second jobs) run beside Snakemake instead of through sbatch; all other jobs have a record
    local_jobs = [r for r in re.findall(r"^localrule (\w+):", out, re.M) if r != "all"]
    assert local_jobs and "train_fold" not in local_jobs, local_jobs
    assert len(records) == n_jobs - len(local_jobs), (len(records), n_jobs, local_jobs, records[-3:])
    assert all(r.get("JobState") == "COMPLETED" for r in records), records
    assert "Submitted array job" in out  # the 4 fold jobs went in as one array
    assert "--gpus" not in out  # CPU training here: no job asked for a GPU

    files = compare_results(local, remote)
    TIMINGS["compared files"] = len(files)
    TIMINGS["slurm jobs"] = len(records)
