"""A throw-away single-node SLURM cluster on localhost, for tests/test_cluster.py.

Everything lives in one temporary directory: the munge key and socket, slurm.conf, the controller's state, the
node's spool, pid files and logs. The daemons run in the foreground as children of the test process (their pids
are known, so stop() ends exactly them). Clients find the cluster through SLURM_CONF (see `env`), which
Snakemake's jobs inherit (sbatch --export=ALL), so srun inside a job talks to the same cluster.

Sized for containers: no cgroups (proctrack/linuxproc, task/none, jobacct_gather/none), no accounting database
(accounting_storage/none; finished jobs are written to a jobcomp/filetxt file and stay visible to squeue for
MinJobAge), no GPU gres. The node advertises at least MIN_CPUS CPUs and MIN_MEMORY_MB of memory
(SlurmdParameters=config_overrides) so every rule's threads and mem_mb fit on a small CI machine; memory is
not a consumable (CR_Core), so nothing is enforced.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PACKAGES = ["slurm-wlm", "munge"]  # Debian 12: slurmctld, slurmd, slurm-client (22.05) and munge
CLIENTS = ["sbatch", "srun", "squeue", "scontrol", "scancel", "sinfo", "sacct"]
BINARIES = ["slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "srun", "sinfo", "munged"]
MIN_CPUS = 8
MIN_MEMORY_MB = 16000
PARTITION = "nemgtest"


class ClusterError(RuntimeError):
    """The cluster could not be installed or started (an environment problem, not a workflow failure)."""


def _run(cmd, timeout, env=None):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def _tail(text, n=15):
    return "\n".join(str(text).strip().splitlines()[-n:])


def missing_binaries():
    return [b for b in BINARIES if shutil.which(b) is None and not Path("/usr/sbin", b).exists()]


def install_packages(timeout_update=120, timeout_install=300, attempts=2):
    """apt-get install slurm-wlm and munge (no recommends) unless their programs are already there."""
    if not missing_binaries():
        return "already installed"
    if os.geteuid() != 0:
        raise ClusterError(f"not root: cannot apt-get install {' '.join(PACKAGES)}")
    if shutil.which("apt-get") is None:
        raise ClusterError("no apt-get on this machine (the test installs Debian's slurm-wlm and munge)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    last = ""
    for _ in range(attempts):
        try:
            upd = _run(["apt-get", "update", "-q"], timeout_update, env)
            inst = _run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES], timeout_install, env)
        except subprocess.TimeoutExpired as exc:
            last = f"timed out after {exc.timeout} s: {' '.join(exc.cmd)}"
            continue
        if inst.returncode == 0 and not missing_binaries():
            return "installed"
        last = _tail(upd.stdout + upd.stderr, 5) + "\n" + _tail(inst.stdout + inst.stderr)
    raise ClusterError(f"apt-get install {' '.join(PACKAGES)} failed:\n{last}")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _memory_mb():
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


class LocalSlurm:
    def __init__(self):
        # Not under pytest's tmp_path: munged wants every directory above its socket searchable by all (0755),
        # pytest's base temp is 0700.
        self.root = Path(tempfile.mkdtemp(prefix="nemg-slurm-"))
        self.root.chmod(0o755)
        self.conf = self.root / "slurm.conf"
        self.log = self.root / "log"
        self.jobcomp = self.log / "jobcomp.txt"
        self.munge_socket = self.root / "munge" / "munge.socket"
        self.cpus = max(os.cpu_count() or 1, MIN_CPUS)
        self.memory_mb = max(_memory_mb() - 512, MIN_MEMORY_MB)
        self.host = socket.gethostname().split(".")[0]
        self._procs: dict[str, subprocess.Popen] = {}
        # Clients find this cluster through SLURM_CONF; but inside a job the slurm-jobstep executor drops every
        # SLURM_* variable before its `srun` (on a real cluster slurm.conf is at the default path), so the
        # clients are also wrapped in bin/ (first on PATH, which jobs inherit) with SLURM_CONF set.
        self.bin = self.root / "bin"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf),
                    "PATH": os.pathsep.join([str(self.bin), os.environ.get("PATH", "")])}
        for var in list(self.env):  # a test run inside a SLURM job must not leak the outer job's settings
            if var.startswith(("SLURM_", "SBATCH_", "SRUN_", "SQUEUE_")) and var != "SLURM_CONF":
                del self.env[var]

    # ---- configuration -----------------------------------------------------------------------------------
    def write_config(self):
        for sub in ("munge", "state", "spool", "log", "bin"):
            (self.root / sub).mkdir(mode=0o755, exist_ok=True)
        for client in CLIENTS:
            real = shutil.which(client)
            if real:
                wrapper = self.bin / client
                wrapper.write_text(f'#!/bin/sh\nSLURM_CONF="{self.conf}" exec "{real}" "$@"\n')
                wrapper.chmod(0o755)
        key = self.root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        r = self.root
        self.conf.write_text(f"""# generated by tests/slurm/local_cluster.py
ClusterName=nemgtest
SlurmctldHost={self.host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge_socket}
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldLogFile={self.log}/slurmctld.log
SlurmdLogFile={self.log}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={self.jobcomp}
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
MinJobAge=3600
MaxArraySize=1001
SlurmdParameters=config_overrides
NodeName={self.host} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb} State=UNKNOWN
PartitionName={PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP
""")

    # ---- daemons -----------------------------------------------------------------------------------------
    def _start(self, name, cmd):
        out = open(self.log / f"{name}.out", "w")
        self._procs[name] = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             env=self.env, start_new_session=True)
        out.close()

    def _wait(self, what, ok, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, p in self._procs.items():
                if p.poll() is not None:
                    raise ClusterError(f"{name} exited with {p.returncode} while waiting for {what}:\n"
                                       + self.logs_tail())
            if ok():
                return
            time.sleep(0.5)
        raise ClusterError(f"timed out after {timeout} s waiting for {what}:\n" + self.logs_tail())

    def _sinfo_state(self):
        try:
            res = _run(["sinfo", "-h", "-o", "%t"], 10, self.env)
        except subprocess.TimeoutExpired:
            return ""
        return res.stdout.strip() if res.returncode == 0 else ""

    def start(self, timeout=90):
        self.write_config()
        m = self.root / "munge"
        self._start("munged", ["munged", "--foreground", f"--key-file={m / 'munge.key'}",
                               f"--socket={self.munge_socket}", f"--pid-file={m / 'munged.pid'}",
                               f"--log-file={m / 'munged.log'}", f"--seed-file={m / 'munged.seed'}"])
        self._wait("munged's socket", self.munge_socket.exists, 30)
        self._start("slurmctld", ["slurmctld", "-D", "-i", "-f", str(self.conf)])
        self._start("slurmd", ["slurmd", "-D", "-f", str(self.conf)])
        self._wait("the node to come up idle", lambda: self._sinfo_state() in ("idle", "mix", "alloc"), timeout)

    def stop(self, timeout=30):
        """Cancel every job, then end the daemons this object started (TERM, then KILL), remove the directory."""
        if self._procs.get("slurmctld") and self._procs["slurmctld"].poll() is None:
            try:
                _run(["scancel", "--full", "--user", "root"], 15, self.env)
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    q = _run(["squeue", "-h", "-t", "PD,R,CG,S,CF"], 10, self.env)
                    if q.returncode != 0 or not q.stdout.strip():
                        break
                    time.sleep(1)
            except (subprocess.TimeoutExpired, OSError):
                pass
        for name in ("slurmd", "slurmctld", "munged"):
            p = self._procs.get(name)
            if p is None or p.poll() is not None:
                continue
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)

    # ---- inspection --------------------------------------------------------------------------------------
    def logs_tail(self, n=15):
        parts = []
        for f in [self.log / "slurmctld.log", self.log / "slurmd.log", self.root / "munge" / "munged.log",
                  *sorted(self.log.glob("*.out"))]:
            if f.is_file():
                parts.append(f"--- {f.name}\n{_tail(f.read_text(errors='replace'), n)}")
        return "\n".join(parts)

    def completed_jobs(self):
        """The jobcomp/filetxt records: one dict per finished job (array tasks each have their own)."""
        if not self.jobcomp.is_file():
            return []
        jobs = []
        for line in self.jobcomp.read_text().splitlines():
            rec = dict(f.split("=", 1) for f in line.split() if "=" in f)
            if rec:
                jobs.append(rec)
        return jobs
