"""The prepared GPU check of nEMGNet (issue 12, item 5): paper-preset throughput and a short real-data training run.

    # 1. on the developer's CPU machine, once: a compact copy of a preprocessed cohort that can travel (< 64 MiB)
    python benchmarks/gpu_check.py prepare --name n2001 --out results/gpu_check_data
    # 2. on the GPU machine, from the repository root (the script puts src/ on PYTHONPATH, caps the wall time)
    bash benchmarks/gpu_check.sh          # = python benchmarks/gpu_check.py run --data results/gpu_check_data
    # the same end to end on a CPU at a tiny size (tests/test_gpu_check.py)
    python benchmarks/gpu_check.py run --data DIR --out DIR --tiny

``run`` measures, inside ``--time-budget`` seconds (default 420, so that the whole command fits 8 minutes):

(a) training throughput on random [B, 1, 4000] batches with the step nemg.train uses (class-weighted
    cross-entropy, Adam, bf16 autocast on CUDA): the paper preset eager at batch 32/64/128 and compiled at 32,
    its inference rate at the evaluation batch, and the ``cpu`` preset on the GPU and on 2 host threads for
    reference. Segments/s, model TFLOP/s (nemg.model.training_flops per segment), the fraction of the GPU's
    dense bf16 peak, step-time median / p90 and torch.cuda.max_memory_allocated, warm-up steps excluded.
(b) nemg.train.train_run of a few runs of the folds table (paper preset, the paper's recipe) on the carried
    cohort, segmented on the device; max_epochs per run is chosen from the measured speed so that the runs
    share what is left of the budget (patience stays the paper's unless --patience says otherwise).

Everything lands in ``--out`` as six files, because the device machine returns at most 8 files:
throughput.tsv, runs.tsv, curves.tsv (every run's curve.tsv, with a run_id column), predictions.tsv (every
run's predictions.tsv), summary.json (environment, settings, data manifest, both tables) and gpu_check.log
(written by gpu_check.sh). Tables are rewritten after every measurement, so a run cut short by the hard
timeout still leaves what it measured.
"""
from __future__ import annotations

import argparse
import gc
import hashlib
import json
import logging
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import types
from pathlib import Path

import numpy as np
import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "src") not in sys.path:  # also runs where nemg is not pip-installed (the device machine)
    sys.path.insert(0, str(REPO / "src"))

try:
    import tqdm  # noqa: F401  (nemg.train's progress bar; the device image has it, a bare python may not)
except ImportError:  # a no-op stand-in: progress bars are off in this check anyway
    class _NoBar:
        def __init__(self, *a, **k): pass
        def update(self, *a): pass
        def set_postfix(self, *a, **k): pass
        def close(self): pass
    sys.modules["tqdm"] = types.SimpleNamespace(tqdm=_NoBar)

from nemg.config import section_defaults  # noqa: E402
from nemg.labels import CLASSES  # noqa: E402
from nemg.model import build_model, count_parameters, forward_flops, resolve_size, training_flops  # noqa: E402
from nemg.segment import samples_of, segment_store  # noqa: E402
from nemg.store import read_signal_store, write_signal_store  # noqa: E402
from nemg.train import CURVE_COLUMNS, _train_step, train_run  # noqa: E402

log = logging.getLogger("gpu_check")

DATA_FORMAT = "nemg-gpu-check-data/1"
INT16_MAX = 32767
# Dense (no sparsity) bf16 tensor-core peak in TFLOP/s from NVIDIA's data sheets, matched against
# torch.cuda.get_device_name in this order (NVL before the plain names: the NVL parts run lower clocks).
# The SXM H100 reports itself as "H100 80GB HBM3". Anything else is NaN rather than a guess.
GPU_BF16_PEAK = (("H200 NVL", 835.0), ("H100 NVL", 835.0), ("H200", 989.4), ("H100 SXM", 989.4),
                 ("H100 80GB HBM3", 989.4), ("H100 PCIe", 756.0))
# The paper's training recipe (configs/paper.yaml), spelt out so that a change of nemg.train's CPU-oriented
# defaults cannot leak into a check of the published network; keys nemg.train no longer knows are dropped.
PAPER_TRAIN = {"lr": 1e-3, "batch_size": 32, "eval_every": 50, "patience": 100, "lr_schedule": "constant",
               "weight_decay": 0.0, "label_smoothing": 0.0, "ema_decay": 0.0, "train_hop_factor": 1,
               "val_hop_factor": 1, "augment": {}, "eval_batch_size": 256}
THROUGHPUT_COLUMNS = ["preset", "device", "mode", "dtype", "compile", "batch_size", "threads", "status", "params",
                      "warmup_steps", "steps", "warmup_s", "seconds", "step_ms_median", "step_ms_p90",
                      "segments_per_s", "gflop_per_segment", "tflops", "peak_tflops", "fraction_of_peak",
                      "max_memory_gib", "final_loss"]
# segments_per_s of a run: updates x batch / train_s, evaluations included (what a user waits for)
RUN_COLUMNS = ["run_id", "status", "preset", "compile", "max_epochs", "patience", "eval_every", "batch_size",
               "n_train", "n_val", "n_test", "updates", "epochs", "stop_reason", "best_val_acc", "best_update",
               "final_val_acc", "test_segment_acc", "test_patient_acc", "train_s", "wall_s", "segments_per_s",
               "planned_s", "max_memory_gib"]


# ------------------------------------------------------------------------------------------------------ prepare

def prepare(signals_dir: Path, folds_tsv: Path, cohort_dir: Path | None, out: Path, max_mib: float) -> dict:
    """Write a compact, carryable copy of a resampled signal store plus its folds and cohort tables.

    int16 with one scale per recording (max |x| / 32767) keeps every recording's full 16-bit range: the
    quantisation step is <= 0.1 µV on N2001 against a noise floor of several µV, while float16's step grows with the
    amplitude. npz-compressed, N2001 shrinks from 75 MB of float32 to ~31 MiB.
    """
    signals, index = read_signal_store(signals_dir / "signals.npy", signals_dir / "signals_index.tsv")
    folds = pd.read_csv(folds_tsv, sep="\t", dtype={"subject_id": str, "run_id": str})
    missing = sorted(set(folds["subject_id"]) - set(index["subject_id"].astype(str)))
    if missing:
        raise SystemExit(f"{folds_tsv}: subjects without signals in {signals_dir}: {missing[:5]}")
    q = np.empty(signals.shape, dtype=np.int16)
    scale = np.ones(len(index), dtype=np.float64)
    max_err = 0.0
    for i, (s, n) in enumerate(zip(index["start"].astype(int), index["n_samples"].astype(int))):
        x = np.asarray(signals[s:s + n], dtype=np.float64)
        peak = float(np.abs(x).max()) if n else 0.0
        scale[i] = peak / INT16_MAX if peak > 0 else 1.0
        q[s:s + n] = np.round(x / scale[i]).astype(np.int16)
        if n:
            max_err = max(max_err, float(np.abs(q[s:s + n] * scale[i] - x).max()))
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "signals.npz", q=q, scale=scale)
    index.to_csv(out / "signals_index.tsv", sep="\t", index=False, float_format="%.10g")
    shutil.copyfile(folds_tsv, out / "folds.tsv")
    cohort_files = []
    for f in sorted(cohort_dir.glob("*.tsv")) if cohort_dir else []:  # provenance only; the check reads none
        shutil.copyfile(f, out / f"cohort_{f.name}")
        cohort_files.append(str(f))
    manifest = {
        "format": DATA_FORMAT, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "git_commit": git_commit(),
        "signals": str(signals_dir), "signals_sha256": sha256(signals_dir / "signals.npy"),
        "folds": str(folds_tsv), "cohort": cohort_files, "n_recordings": int(len(index)),
        "n_subjects": int(index["subject_id"].nunique()), "n_samples": int(signals.shape[0]),
        "fs_hz": sorted(set(index["fs_hz"].astype(float))), "encoding": "int16 x per-recording scale (uV)",
        "max_abs_quantisation_error": max_err,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    mib = sum(f.stat().st_size for f in out.iterdir() if f.is_file()) / 2**20
    manifest["mib"] = round(mib, 2)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    if mib > max_mib:  # the device takes the working tree plus carried paths up to 64 MiB in all
        raise SystemExit(f"{out}: {mib:.1f} MiB > --max-mib {max_mib}; carry fewer recordings")
    print(f"{out}: {manifest['n_recordings']} recordings of {manifest['n_subjects']} subjects, {mib:.1f} MiB "
          f"(max quantisation error {max_err:.3g} µV)")
    return manifest


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def git_commit() -> str | None:
    try:  # the device gets a copy of the working tree, perhaps without .git
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def build_segments(data: Path, work: Path, window_s: float, hop_s: float, tiny_s: float | None) -> dict:
    """Decode the carried signals into a float32 signal store and segment it with nemg.segment (on the device:
    the 290 MB segment array never travels)."""
    index = pd.read_csv(data / "signals_index.tsv", sep="\t", dtype={"recording_id": str, "subject_id": str})
    with np.load(data / "signals.npz") as z:
        q, scale = z["q"], z["scale"]
    arrays = []
    for i, (s, n) in enumerate(zip(index["start"].astype(int), index["n_samples"].astype(int))):
        arrays.append(q[s:s + n].astype(np.float32) * np.float32(scale[i]))
    if tiny_s is not None:  # a few segments per subject: one recording each, its first tiny_s seconds
        keep = np.flatnonzero(~index["subject_id"].duplicated().to_numpy())
        index = index.iloc[keep].reset_index(drop=True)
        arrays = [arrays[i][:int(round(tiny_s * float(fs)))] for i, fs in zip(keep, index["fs_hz"])]
    work.mkdir(parents=True, exist_ok=True)
    write_signal_store(arrays, index.drop(columns=["start", "n_samples", "duration_s"], errors="ignore"),
                       work / "signals.npy", work / "signals_index.tsv")
    seg = segment_store(work / "signals.npy", work / "signals_index.tsv", window_s, hop_s,
                        work / "segments.npy", work / "segments_index.tsv")
    (work / "signals.npy").unlink()  # the segments hold the same samples; keep the scratch space small
    return {"segments_npy": work / "segments.npy", "index_tsv": work / "segments_index.tsv",
            "n_segments": int(len(seg)), "n_recordings": int(len(index))}


# --------------------------------------------------------------------------------------------------- throughput

def gpu_peak(name: str) -> float:
    return next((peak for key, peak in GPU_BF16_PEAK if key in name), float("nan"))


def cleanup() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def timed(step, warmup: int, steps: int, device: torch.device) -> dict:
    """Run ``step(i)`` warmup + steps times; time the last ``steps`` (synchronised wall clock, CUDA events per step).

    The warm-up absorbs cuDNN autotuning, torch.compile and Adam's state allocation, none of which recur.
    """
    cuda = device.type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    t0 = time.perf_counter()
    for i in range(warmup):
        step(i)
    sync()
    warmup_s = time.perf_counter() - t0
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
        events = [torch.cuda.Event(enable_timing=True) for _ in range(steps + 1)]
        events[0].record()
    marks = [time.perf_counter()]
    out = None
    for i in range(steps):
        out = step(warmup + i)
        if cuda:
            events[i + 1].record()
        else:
            marks.append(time.perf_counter())
    sync()
    seconds = time.perf_counter() - marks[0]
    if cuda:
        step_ms = np.array([a.elapsed_time(b) for a, b in zip(events[:-1], events[1:])])
    else:
        step_ms = np.diff(marks) * 1e3
    return {"warmup_s": warmup_s, "seconds": seconds, "step_ms_median": float(np.median(step_ms)),
            "step_ms_p90": float(np.percentile(step_ms, 90)), "out": out,
            "max_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30 if cuda else float("nan")}


def measure(spec: dict, args, device_name: str) -> dict:
    """One throughput row: a fresh model of ``spec['preset']`` trained (or run for inference) on random batches."""
    device = torch.device(spec["device"])
    amp = device.type == "cuda" and not args.no_bf16
    row = {**{c: float("nan") for c in THROUGHPUT_COLUMNS}, **{k: spec[k] for k in
           ("preset", "device", "mode", "compile", "batch_size")}, "dtype": "bf16" if amp else "fp32",
           "threads": spec.get("threads") or torch.get_num_threads(), "status": "ok"}
    prev_threads = torch.get_num_threads()
    try:
        if spec.get("threads"):
            torch.set_num_threads(int(spec["threads"]))
        if spec["compile"]:
            torch.compiler.reset()  # one static graph per row: no recompilation carried over from the last row
        row.update(_measure(spec, args, device, amp))
        peak = gpu_peak(device_name) if device.type == "cuda" and amp else float("nan")
        row.update({"peak_tflops": peak, "fraction_of_peak": row["tflops"] / peak})
    except torch.cuda.OutOfMemoryError:
        row["status"] = "oom"
    except Exception as exc:  # one failing variant (e.g. compile in an odd environment) must not end the check
        traceback.print_exc()
        row["status"] = f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
    finally:
        torch.set_num_threads(prev_threads)
        if spec["compile"]:
            torch.compiler.reset()  # compiled graphs can keep the 1.2 GB model alive into part (b)
        cleanup()  # _measure has returned: its model, optimiser and batches are garbage now
    return row


def _measure(spec: dict, args, device: torch.device, amp: bool) -> dict:
    size = resolve_size({"preset": spec["preset"]})
    torch.manual_seed(0)
    with device:  # initialised where it runs: 290 M parameters take seconds to initialise on the host
        model = build_model({"preset": spec["preset"]}, n_samples=args.window)
    bs = int(spec["batch_size"])
    # a few input sets in turn, so that no cache keeps serving one batch
    xs = [torch.randn(bs, 1, args.window, device=device) * 500 for _ in range(4)]  # µV-scale noise
    ys = [torch.randint(0, 3, (bs,), device=device) for _ in range(4)]
    if spec["mode"] == "train":
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, **({"fused": True} if device.type == "cuda" else {}))
        step_model = torch.compile(model, backend=args.compile_backend) if spec["compile"] else model
        w = torch.ones(3, device=device)

        def step(i):
            return _train_step(step_model, opt, xs[i % 4], ys[i % 4], w, amp)
        flop = training_flops(args.window, **size)
    else:
        model.eval()

        @torch.no_grad()
        def step(i):
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
                return model(xs[i % 4]).float().sum()
        flop = forward_flops(args.window, **size)
    warmup = spec["warmup"] + (2 if spec["compile"] else 0)  # the first compiled calls may recompile
    r = timed(step, warmup, spec["steps"], device)
    sps = spec["steps"] * bs / r["seconds"]
    return {**{k: r[k] for k in ("warmup_s", "seconds", "step_ms_median", "step_ms_p90", "max_memory_gib")},
            "params": count_parameters(model), "warmup_steps": warmup, "steps": spec["steps"],
            "segments_per_s": sps, "gflop_per_segment": flop / 1e9, "tflops": sps * flop / 1e12,
            "final_loss": float(r["out"])}


def throughput_plan(args, device: torch.device) -> list[dict]:
    """The rows of part (a), cheapest first; the compiled rows last (minutes of compile time, skippable)."""
    main, dev = args.preset, str(device)
    on_gpu = device.type == "cuda"
    steps = dict(warmup=args.warmup, steps=args.steps)
    plan = [dict(preset=main, device=dev, mode="train", compile=False, batch_size=b, **steps)
            for b in args.batch_sizes]
    plan.append(dict(preset=main, device=dev, mode="predict", compile=False, batch_size=args.eval_batch_size,
                     **steps))
    if args.ref_preset and args.ref_preset != main:
        plan.append(dict(preset=args.ref_preset, device=dev, mode="train", compile=False, batch_size=args.batch_size,
                         **steps))
    if args.ref_preset and on_gpu:  # the developer's 2-core machine, as far as the host CPU can stand in for it
        plan.append(dict(preset=args.ref_preset, device="cpu", mode="train", compile=False,
                         batch_size=args.batch_size, threads=args.cpu_threads, warmup=min(args.warmup, 2),
                         steps=min(args.steps, 10)))
    if args.compile == "on" or (args.compile == "auto" and on_gpu):
        plan += [dict(preset=main, device=dev, mode="train", compile=True, batch_size=b, **steps)
                 for b in args.compile_batch_sizes]
    return plan


# -------------------------------------------------------------------------------------------------------- runs

def pick_runs(folds: pd.DataFrame, runs: list[str] | None, n_runs: int) -> list[str]:
    """The named runs, or the first inner fold of the first ``n_runs`` outer folds (different test patients)."""
    ids = list(dict.fromkeys(folds["run_id"]))
    if runs:
        unknown = sorted(set(runs) - set(ids))
        if unknown:
            raise SystemExit(f"folds.tsv: unknown run(s) {unknown}")
        return runs
    keys = [c for c in ("seed", "inner", "outer", "repeat") if c in folds.columns]
    order = folds.drop_duplicates("run_id")
    if keys:
        order = order.sort_values(keys, kind="stable")
    return list(order["run_id"])[:n_runs]


def run_sizes(store_index: pd.DataFrame, folds: pd.DataFrame, run_id: str) -> dict:
    role = folds[folds["run_id"] == run_id].set_index("subject_id")["role"]
    counts = store_index["subject_id"].map(role).value_counts()
    return {f"n_{r}": int(counts.get(r, 0)) for r in ("train", "val", "test")}


def heldout_accuracy(pred: pd.DataFrame, store_index: pd.DataFrame) -> tuple[float, float]:
    """Segment accuracy and patient accuracy (argmax of the mean probabilities) on the run's test subjects: a
    quick sanity figure, not the pipeline's divide-and-vote evaluation."""
    classes = list(CLASSES)
    test = pred[pred["role"] == "test"].copy()
    if test.empty:
        return float("nan"), float("nan")
    test["diagnosis"] = store_index.set_index("segment").loc[test["segment"], "diagnosis"].to_numpy()
    p = test[[f"p_{c}" for c in classes]].to_numpy()
    seg_acc = float((np.array(classes)[p.argmax(1)] == test["diagnosis"]).mean())
    per = test.groupby("subject_id")[[f"p_{c}" for c in classes] + ["diagnosis"]].agg(
        {**{f"p_{c}": "mean" for c in classes}, "diagnosis": "first"})
    pat_acc = float((np.array(classes)[per[[f"p_{c}" for c in classes]].to_numpy().argmax(1)]
                     == per["diagnosis"]).mean())
    return seg_acc, pat_acc


class Planner:
    """max_epochs per run from the time left: first from part (a)'s speeds, then from the runs themselves."""

    def __init__(self, train_sps: float, eval_sps: float, overhead_s: float):
        self.train_sps, self.eval_sps, self.overhead_s = train_sps, eval_sps, overhead_s
        self.epoch_s: float | None = None  # measured seconds per epoch (evaluations included) once a run is done

    def estimate(self, n: dict, bs: int, eval_every: int) -> tuple[float, float]:
        batches = max(1, n["n_train"] // bs)
        if self.epoch_s is not None:
            return self.epoch_s, self.overhead_s
        # 15 % for batch gathering, the trailing eval batch and logging, which the random-batch rows leave out
        epoch = 1.15 * (batches * bs / self.train_sps + batches / eval_every * n["n_val"] / self.eval_sps)
        return epoch, self.overhead_s + 1.15 * (n["n_val"] + n["n_test"]) / self.eval_sps

    def learn(self, res: dict, wall_s: float, n: dict, bs: int) -> None:
        epochs_done = res["updates"] / max(1, n["n_train"] // bs)
        if epochs_done > 0:
            self.epoch_s = res["elapsed_s"] / epochs_done
        self.overhead_s = max(0.0, wall_s - res["elapsed_s"])


def run_folds(args, device: torch.device, store: dict, folds_tsv: Path, rows_a: list[dict], deadline: float,
              out: Path, work: Path) -> list[dict]:
    folds = pd.read_csv(folds_tsv, sep="\t", dtype={"subject_id": str, "run_id": str})
    seg_index = pd.read_csv(store["index_tsv"], sep="\t", dtype={"recording_id": str, "subject_id": str})
    run_ids = pick_runs(folds, args.runs, args.n_runs)
    bs, eval_every = args.batch_size, args.eval_every
    train_cfg = {k: v for k, v in PAPER_TRAIN.items() if k in section_defaults("train")}
    train_cfg.update({"device": str(device), "bf16": not args.no_bf16, "compile": args.train_compile,
                      "batch_size": bs, "eval_every": eval_every, "patience": args.patience,
                      "eval_batch_size": args.eval_batch_size, "progress": False, "keep_last": False,
                      # a paper-width last.pt is ~4.6 GB: write it only at the end, not every evaluation
                      "checkpoint_every": 10**9})
    if args.num_threads:
        train_cfg["num_threads"] = args.num_threads

    def speed(mode, compiled, b):
        hit = [r["segments_per_s"] for r in rows_a if r["preset"] == args.preset and r["device"] == str(device)
               and r["mode"] == mode and r["compile"] == compiled and r["batch_size"] == b and r["status"] == "ok"]
        return hit[0] if hit else None

    train_sps = speed("train", args.train_compile, bs) or speed("train", False, bs) or 100.0
    eval_sps = speed("predict", False, args.eval_batch_size) or 2 * train_sps
    params = next((r["params"] for r in rows_a if r["preset"] == args.preset and r["status"] == "ok"), 0)
    # model build and the final last.pt + best.pt writes (~16 bytes and 4 bytes per parameter)
    overhead = 3.0 + params * 20 / 1.0e9
    if args.train_compile:
        overhead += max([r["warmup_s"] for r in rows_a if r["compile"] and r["status"] == "ok"] or [90.0])
    planner = Planner(train_sps, eval_sps, overhead)

    results, curves, preds = [], [], []
    for k, run_id in enumerate(run_ids):
        n = run_sizes(seg_index, folds, run_id)
        row = {**{c: float("nan") for c in RUN_COLUMNS}, "run_id": run_id, "preset": args.preset,
               "compile": args.train_compile, "patience": args.patience, "eval_every": eval_every,
               "batch_size": bs, **n}
        left = deadline - time.perf_counter()
        epoch_s, overhead_s = planner.estimate(n, bs, eval_every)
        share = left / (len(run_ids) - k)  # an early stop leaves its unused share to the runs after it
        max_epochs = int(min(args.max_epochs, max(1, math.floor((share - overhead_s) / epoch_s))))
        row.update({"max_epochs": max_epochs, "planned_s": overhead_s + max_epochs * epoch_s})
        if left < overhead_s + epoch_s:  # not even one epoch fits
            row["status"] = "skipped: time budget"
            results.append(row)
            log.warning("run %s skipped: %.0f s left, one epoch needs ~%.0f s", run_id, left, overhead_s + epoch_s)
            continue
        log.info("run %s: %s train / %s val / %s test segments, max_epochs %d (~%.0f s/epoch, %.0f s left)",
                 run_id, n["n_train"], n["n_val"], n["n_test"], max_epochs, epoch_s, left)
        run_dir = work / "runs" / run_id
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        if args.train_compile:
            torch.compiler.reset()
        t0 = time.perf_counter()
        try:
            res = train_run(store["segments_npy"], store["index_tsv"], folds_tsv, run_id, run_dir,
                            model_cfg={"preset": args.preset}, train_cfg={**train_cfg, "max_epochs": max_epochs})
        except Exception as exc:  # OOM, a failed compile: the other runs and the tables still count
            traceback.print_exc()
            row["status"] = "oom" if isinstance(exc, torch.cuda.OutOfMemoryError) else \
                f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
            results.append(row)
            write_tsv(pd.DataFrame(results, columns=RUN_COLUMNS), out / "runs.tsv")
            shutil.rmtree(run_dir, ignore_errors=True)
            cleanup()
            continue
        wall = time.perf_counter() - t0
        planner.learn(res, wall, n, bs)
        curve = pd.read_csv(run_dir / "curve.tsv", sep="\t")
        pred = pd.read_csv(run_dir / "predictions.tsv", sep="\t", dtype={"subject_id": str, "recording_id": str})
        seg_acc, pat_acc = heldout_accuracy(pred, seg_index)
        row.update({"status": "ok", "updates": res["updates"], "epochs": res["epochs"],
                    "stop_reason": res["stop_reason"], "best_val_acc": res["best_val_acc"],
                    "best_update": res["best_update"],
                    "final_val_acc": float(curve["val_acc"].iloc[-1]) if len(curve) else float("nan"),
                    "test_segment_acc": seg_acc, "test_patient_acc": pat_acc, "train_s": res["elapsed_s"],
                    "wall_s": wall, "segments_per_s": res["updates"] * bs / max(res["elapsed_s"], 1e-9),
                    "max_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30
                    if device.type == "cuda" else float("nan")})
        results.append(row)
        curves.append(curve.assign(run_id=run_id)[["run_id", *CURVE_COLUMNS]])
        preds.append(pred)
        if not args.keep_work:  # best.pt of the paper network is 1.2 GB; the figures are all in the tables
            shutil.rmtree(run_dir, ignore_errors=True)
        write_tsv(pd.DataFrame(results, columns=RUN_COLUMNS), out / "runs.tsv")
        write_tsv(pd.concat(curves), out / "curves.tsv")
        write_tsv(pd.concat(preds), out / "predictions.tsv")
        cleanup()
    write_tsv(pd.DataFrame(results, columns=RUN_COLUMNS), out / "runs.tsv")
    if not curves:  # the files exist with their columns even when every run was skipped
        write_tsv(pd.DataFrame(columns=["run_id", *CURVE_COLUMNS]), out / "curves.tsv")
        write_tsv(pd.DataFrame(columns=["run_id", "segment", "recording_id", "subject_id", "role",
                                        *[f"p_{c}" for c in CLASSES]]), out / "predictions.tsv")
    return results


# --------------------------------------------------------------------------------------------------------- run

def write_tsv(df: pd.DataFrame, path: Path) -> None:
    df.to_csv(path, sep="\t", index=False, float_format="%.6g")


def pick_workdir(need_bytes: int) -> Path:
    """Scratch for the segment store and checkpoints: /dev/shm when it has room (memory-speed writes of the
    multi-GB final checkpoints count against the budget), else the temp dir."""
    shm = Path("/dev/shm")
    base = None
    if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 1.5 * need_bytes:
        base = shm
    return Path(tempfile.mkdtemp(prefix="nemg_gpu_check_", dir=base))


def finite(obj):
    """NaN and inf -> None, so that summary.json is strict JSON (readable beyond Python)."""
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def environment(device: torch.device) -> dict:
    env = {"torch": torch.__version__, "python": platform.python_version(), "host": platform.node(),
           "device": str(device), "cpu_threads": torch.get_num_threads(), "git_commit": git_commit()}
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        env.update({"gpu": name, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
                    "gpu_memory_gib": torch.cuda.get_device_properties(device).total_memory / 2**30,
                    "bf16_dense_peak_tflops": gpu_peak(name)})
    return env


def run(args) -> dict:
    t_begin = time.perf_counter()
    deadline = t_begin + args.time_budget
    out, data = Path(args.out), Path(args.data)
    out.mkdir(parents=True, exist_ok=True)
    for f in ("signals.npz", "signals_index.tsv", "folds.tsv"):
        if not (data / f).is_file():
            raise SystemExit(f"{data / f}: missing; run `python benchmarks/gpu_check.py prepare --out {data}` "
                             "on the machine that has results/resample/<cohort>/ and carry the folder")
    manifest = json.loads((data / "manifest.json").read_text()) if (data / "manifest.json").is_file() else {}
    rates = sorted(set(pd.read_csv(data / "signals_index.tsv", sep="\t")["fs_hz"].astype(float)))
    if len(rates) != 1:
        raise SystemExit(f"{data}/signals_index.tsv: several sampling rates {rates}")
    args.window = samples_of(args.window_s, rates[0], "--window-s")  # the random batches match the real ones
    device = torch.device(args.device if args.device != "auto" else "cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":  # what nemg.train.runtime sets for training, here for part (a) too
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    env = environment(device)
    summary = {"env": env, "args": vars(args), "data": manifest, "phases_s": {}}

    def save_summary(**extra):
        summary.update(extra)
        summary["phases_s"]["total"] = round(time.perf_counter() - t_begin, 2)
        (out / "summary.json").write_text(json.dumps(finite(summary), indent=1, default=str) + "\n")

    log.info("device %s; budget %.0f s; output %s", env.get("gpu", device), args.time_budget, out)

    # ---- (a) throughput
    t0 = time.perf_counter()
    rows = []
    for spec in throughput_plan(args, device):
        left = deadline - time.perf_counter()
        cost = args.compile_guess_s if spec["compile"] else 15.0
        if left < cost + args.min_train_s:  # keep part (b)'s share
            rows.append({**{c: float("nan") for c in THROUGHPUT_COLUMNS}, **{k: spec[k] for k in
                         ("preset", "device", "mode", "compile", "batch_size")}, "status": "skipped: time budget"})
            log.warning("%s %s compile=%s bs %d skipped: %.0f s left", spec["preset"], spec["device"],
                        spec["compile"], spec["batch_size"], left)
            continue
        row = measure(spec, args, env.get("gpu", ""))
        rows.append(row)
        log.info("%s %s %s%s bs %d: %s, %.1f segments/s, %.3g TFLOP/s, %.2f GiB", row["preset"], row["device"],
                 row["mode"], " compiled" if row["compile"] else "", row["batch_size"], row["status"],
                 row["segments_per_s"], row["tflops"], row["max_memory_gib"])
        write_tsv(pd.DataFrame(rows, columns=THROUGHPUT_COLUMNS), out / "throughput.tsv")
    write_tsv(pd.DataFrame(rows, columns=THROUGHPUT_COLUMNS), out / "throughput.tsv")
    summary["phases_s"]["throughput"] = round(time.perf_counter() - t0, 2)
    save_summary(throughput=rows)

    # ---- (b) training runs on the carried cohort
    t0 = time.perf_counter()
    need = 10 * 2**30 if args.preset == "paper" else 2**30
    work = Path(args.work) if args.work else pick_workdir(need)
    try:
        store = build_segments(data, work / "store", args.window_s, args.hop_s, args.tiny_seconds)
        summary["phases_s"]["segment"] = round(time.perf_counter() - t0, 2)
        summary["segments"] = {"n_segments": store["n_segments"], "n_recordings": store["n_recordings"],
                               "workdir": str(work)}
        log.info("%d recordings -> %d segments in %.1f s (%s)", store["n_recordings"], store["n_segments"],
                 time.perf_counter() - t0, work)
        t0 = time.perf_counter()
        runs = run_folds(args, device, store, data / "folds.tsv", rows, deadline - args.reserve_s, out, work)
        summary["phases_s"]["runs"] = round(time.perf_counter() - t0, 2)
    finally:
        if not args.keep_work and not args.work:
            shutil.rmtree(work, ignore_errors=True)
    save_summary(runs=runs)
    print_summary(env, rows, runs, time.perf_counter() - t_begin)
    return summary


def print_summary(env: dict, rows: list[dict], runs: list[dict], total_s: float) -> None:
    pd.set_option("display.width", 200)
    t = pd.DataFrame(rows, columns=THROUGHPUT_COLUMNS)
    t["fraction_of_peak"] = t["fraction_of_peak"] * 100
    print(f"\n== GPU check on {env.get('gpu', env['device'])} (torch {env['torch']}, "
          f"bf16 dense peak {env.get('bf16_dense_peak_tflops', float('nan')):g} TFLOP/s), {total_s:.0f} s")
    print(t[["preset", "device", "mode", "dtype", "compile", "batch_size", "status", "segments_per_s", "tflops",
             "fraction_of_peak", "step_ms_median", "max_memory_gib", "warmup_s"]]
          .rename(columns={"fraction_of_peak": "%peak", "segments_per_s": "seg/s", "step_ms_median": "ms/step",
                           "max_memory_gib": "GiB", "batch_size": "batch"})
          .to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    r = pd.DataFrame(runs, columns=RUN_COLUMNS)
    print(r[["run_id", "status", "max_epochs", "updates", "stop_reason", "best_val_acc", "test_segment_acc",
             "test_patient_acc", "train_s", "wall_s", "segments_per_s", "max_memory_gib"]]
          .to_string(index=False, float_format=lambda v: f"{v:.4g}"))


# -------------------------------------------------------------------------------------------------------- main

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="write the carryable copy of a preprocessed cohort (CPU machine)")
    p.add_argument("--name", default="n2001", help="cohort name: results/{resample,folds,cohort}/<name>/")
    p.add_argument("--signals", default=None, help="signal store folder (default results/resample/<name>)")
    p.add_argument("--folds", default=None, help="folds table (default results/folds/<name>/folds.tsv)")
    p.add_argument("--cohort", default=None, help="cohort tables folder (default results/cohort/<name>)")
    p.add_argument("--out", default="results/gpu_check_data")
    p.add_argument("--max-mib", type=float, default=56.0,
                   help="refuse a larger copy (the device takes 64 MiB with the working tree)")

    r = sub.add_parser("run", help="the check itself (GPU machine; --tiny on a CPU)")
    r.add_argument("--data", default="results/gpu_check_data", help="folder written by `prepare`")
    r.add_argument("--out", default=os.environ.get("OUT") or "results/gpu_check")
    r.add_argument("--tiny", action="store_true", help="tiny model, few steps and segments (CPU test)")
    r.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    r.add_argument("--time-budget", type=float, default=None, help="seconds for (a) + (b) (420; tiny 120)")
    r.add_argument("--preset", default=None, help="model preset measured and trained (paper; tiny: tiny)")
    r.add_argument("--ref-preset", default="cpu", help="reference preset timed beside it ('' = none)")
    r.add_argument("--batch-sizes", type=int, nargs="+", default=None, help="eager training batches (32 64 128)")
    r.add_argument("--compile", choices=("auto", "on", "off"), default="auto", help="compiled rows (auto: CUDA)")
    r.add_argument("--compile-batch-sizes", type=int, nargs="+", default=None,
                   help="compiled training batches (32; tiny 4)")
    r.add_argument("--compile-backend", default="inductor", help="torch.compile backend (eager: a quick CPU test)")
    r.add_argument("--compile-guess-s", type=float, default=None, help="expected compile time, for budgeting (120)")
    r.add_argument("--warmup", type=int, default=None, help="untimed steps per row (5; tiny 1)")
    r.add_argument("--steps", type=int, default=None, help="timed steps per row (30; tiny 2)")
    r.add_argument("--cpu-threads", type=int, default=2, help="host threads of the reference CPU row")
    r.add_argument("--no-bf16", action="store_true", help="float32 on CUDA too")
    r.add_argument("--window-s", type=float, default=0.4)
    r.add_argument("--hop-s", type=float, default=0.1)
    r.add_argument("--tiny-seconds", type=float, default=None, help="keep one recording per subject, cut to this")
    r.add_argument("--runs", nargs="+", default=None, help="run ids of folds.tsv (default: see --n-runs)")
    r.add_argument("--n-runs", type=int, default=None, help="first inner fold of this many outer folds (3)")
    r.add_argument("--batch-size", type=int, default=None, help="training batch (32, the paper's; tiny 8)")
    r.add_argument("--eval-batch-size", type=int, default=None, help="(256; tiny 16)")
    r.add_argument("--eval-every", type=int, default=None, help="updates between evaluations (50; tiny 2)")
    r.add_argument("--patience", type=int, default=100, help="evaluations without improvement (paper: 100)")
    r.add_argument("--max-epochs", type=int, default=None, help="upper bound on the planned epochs (100; tiny 1)")
    r.add_argument("--train-compile", action="store_true", help="torch.compile the training runs too")
    r.add_argument("--num-threads", type=int, default=None, help="torch CPU threads during the runs")
    r.add_argument("--min-train-s", type=float, default=None, help="budget kept for part (b) (150; tiny 0)")
    r.add_argument("--reserve-s", type=float, default=None, help="budget kept for writing the outputs (10)")
    r.add_argument("--work", default=None, help="scratch folder (default: /dev/shm or the temp dir; removed)")
    r.add_argument("--keep-work", action="store_true", help="keep the scratch (segment store, best.pt)")
    args = ap.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        stream=sys.stdout, force=True)
    if args.cmd == "prepare":
        name = args.name
        return prepare(Path(args.signals or f"results/resample/{name}"),
                       Path(args.folds or f"results/folds/{name}/folds.tsv"),
                       Path(args.cohort or f"results/cohort/{name}"), Path(args.out), args.max_mib)
    tiny = args.tiny
    # (tiny, full) defaults; an explicit option wins in both modes
    defaults = {"time_budget": (120.0, 420.0), "preset": ("tiny", "paper"), "batch_sizes": ([4], [32, 64, 128]),
                "compile_batch_sizes": ([4], [32]), "compile_guess_s": (5.0, 120.0), "warmup": (1, 5),
                "steps": (2, 30), "n_runs": (2, 3), "batch_size": (8, 32), "eval_batch_size": (16, 256),
                "eval_every": (2, 50), "max_epochs": (1, 100), "min_train_s": (0.0, 150.0),
                "reserve_s": (2.0, 10.0), "tiny_seconds": (1.2, None)}
    for k, (small, full) in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, small if tiny else full)
    return run(args)


if __name__ == "__main__":
    main()
