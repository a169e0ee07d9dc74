"""How fast a model bundle diagnoses a new patient on one CPU core, and the exported networks' throughput.

    python benchmarks/predict_speed.py results/model/simulated                  # print the table
    python benchmarks/predict_speed.py results/model/simulated --write-docs     # ... and put it in docs/predict.md

The patient: 10 simulated recordings of 5 s at 48 kHz (WFDB, nemg.simulate), read from disk. Timed, per
patient: loading the files, trimming, resampling to the model's rate, segmentation, every ensemble member and
the stage-2 vote (nemg.predict.predict with the networks already built), median of --repeats runs after one
warm-up; and once, cold: opening the bundle (sha256 of every weights file), building the networks, then the
same diagnosis. Throughput: segments/s of one member, eager PyTorch against its TorchScript and ONNX Runtime
exports, on the same batch of real segments. Everything runs on one core (affinity and every thread pool).
"""
from __future__ import annotations

import os

# one core for every library's thread pool, set before numpy / torch / onnxruntime start theirs
for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from nemg.bundle import load_bundle  # noqa: E402
from nemg.predict import predict, prepare, qemg_scores, read_input  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "predict.md"
BEGIN, END = "<!-- predict-speed:begin -->", "<!-- predict-speed:end -->"


def patient_files(folder: Path, n: int = 10, duration_s: float = 5.0) -> Path:
    """One simulated patient with ``n`` recordings of ``duration_s`` at 48 kHz; returns its recordings.tsv."""
    from nemg.simulate import simulate_cohort

    sheets = simulate_cohort({"cohort": {"n_subjects": {"normal": 0, "myopathy": 0, "neuropathy": 1},
                                         "muscles_per_subject": [n, n], "duration_s": [duration_s, duration_s]}},
                             folder, seed=0)
    return sheets["recordings"]


def timed(fn, repeats: int) -> tuple[float, float]:
    """Median wall time and median CPU time of this process (the latter barely moves when other jobs share
    the machine's cores, the former does)."""
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


def throughput(fn, x: np.ndarray, seconds: float = 3.0) -> float:
    fn(x)  # warm-up (first-call allocation, graph optimisation)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn(x)
        n += len(x)
    return n / (time.perf_counter() - t0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model_dir", nargs="?", default=str(REPO / "results" / "model" / "simulated"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=256, help="segments per batch for the throughput rows")
    ap.add_argument("--write-docs", action="store_true", help=f"replace the table in {DOC.relative_to(REPO)}")
    args = ap.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)

    if not (Path(args.model_dir) / "model.json").is_file():
        print(f"{args.model_dir}: no model bundle; build one with `snakemake --cores all model`", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        recordings_tsv = patient_files(Path(tmp) / "patient")
        recordings = read_input([recordings_tsv])[0]

        t = time.perf_counter()
        bundle = load_bundle(args.model_dir)
        nets = bundle.networks()
        predict(bundle, recordings, num_threads=1, networks=nets)
        cold = time.perf_counter() - t
        # the default config's bundle has one member (external.seeds: [0]); each further seed adds one network
        warm = {k: timed(lambda: predict(bundle, recordings, num_threads=1, networks=dict(list(nets.items())[:k])),
                         args.repeats) for k in range(1, len(nets) + 1)}
        segments, index = prepare(bundle, recordings)
        pre = timed(lambda: prepare(bundle, recordings), args.repeats)
        # the combined arm (bundle.combined): the windows' QEMG features and each member's logistic regression
        qemg = timed(lambda: qemg_scores(bundle, segments, index), args.repeats) if bundle.combined else None
        # the command as a user runs it: a new process (inherits the one-core affinity and thread settings)
        import subprocess

        cmd = [sys.executable, "-m", "nemg.cli", "predict", args.model_dir, str(recordings_tsv), "--threads", "1",
               "--out", str(Path(tmp) / "out")]
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        fresh = time.perf_counter() - t

        from nemg.export import export_bundle, load_exported

        x = np.ascontiguousarray(np.resize(segments, (args.batch, segments.shape[1])))
        member = next(iter(nets))
        net = nets[member]

        def eager(batch):
            with torch.no_grad():
                return net(torch.from_numpy(batch)).numpy()

        rates = {"eager PyTorch": throughput(eager, x)}
        for fmt, label in (("torchscript", "TorchScript"), ("onnx", "ONNX Runtime")):
            try:
                path = [p for p in export_bundle(args.model_dir, fmt, out_dir=Path(tmp) / fmt) if p.stem == member][0]
            except ImportError as exc:
                print(f"{label}: skipped ({exc})", file=sys.stderr)
                continue
            rates[label] = throughput(load_exported(path), x)

    n_members, n_seg = len(nets), len(segments)
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    lines = [
        f"Measured by `python benchmarks/predict_speed.py` on one core of an {cpu}, torch {torch.__version__}; "
        f"bundle `{Path(args.model_dir).name}`: {n_members} member(s), "
        f"`{bundle.meta['model']['config'].get('preset')}` "
        f"preset; load average during the run {os.getloadavg()[0]:.1f} (other jobs on the machine inflate wall "
        f"times, less so CPU times).",
        "",
        "| what | wall time / throughput | CPU time |",
        "|---|---|---|",
    ]
    arm = " + the combined arm" if bundle.combined else ""
    for k, (w, c) in warm.items():
        lines.append(f"| one patient, 10 recordings x 5 s at 48 kHz from WFDB files ({n_seg} segments): load + trim + "
                     f"resample + segment + {k} network{'s' if k > 1 else ''} + stage 2{arm} | **{w:.2f} s** | "
                     f"{c:.2f} s |")
    lines += [f"| ... of which load + trim + resample + segment | {pre[0]:.2f} s | {pre[1]:.2f} s |"]
    if qemg is not None:
        lines += [f"| ... of which the combined arm's QEMG features and logistic regressions ({n_members}) | "
                  f"{qemg[0]:.2f} s | {qemg[1]:.2f} s |"]
    lines += [f"| first patient after start-up ({n_members} networks), including opening the bundle (sha256) and "
              f"building the networks | {cold:.2f} s | |",
              f"| `nemg predict` of that patient as a new process ({n_members} networks): library imports, bundle, "
              f"diagnosis, output files | {fresh:.2f} s | |"]
    for label, r in rates.items():
        lines.append(f"| one network, {label}, batches of {args.batch} | {r:,.0f} segments/s | |")
    table = "\n".join(lines)
    print(table)
    if args.write_docs:
        text = DOC.read_text()
        new = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: f"{BEGIN}\n{table}\n{END}", text,
                     flags=re.S)
        if new == text and BEGIN not in text:
            print(f"{DOC}: no {BEGIN} marker", file=sys.stderr)
            return 1
        DOC.write_text(new)
        print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
