"""Training throughput of nEMGNet on random data: segments/s, achieved TFLOP/s, fraction of the device's peak.

    python benchmarks/throughput.py                               # full width, auto device, 20 steps
    python benchmarks/throughput.py --device cpu --preset cpu --steps 30 --threads 1
    python benchmarks/throughput.py --device cuda --compile       # GPU: bf16 autocast, fused Adam

It runs the same step as nemg.train (class-weighted cross-entropy, Adam, bf16 autocast on CUDA) on one
random batch kept on the device, so the figure is the model's speed, not the data pipeline's. FLOPs are
counted from the layer shapes (nemg.model.training_flops: 3 x the forward's multiply-adds x 2; the paper
network is 30.3 GFLOP per segment forward). Peak: dense bf16 tensor-core peak for known GPUs, a nominal
float32 FMA peak for CPUs (cores x clock x SIMD lanes x 2 FMA units x 2); --peak-tflops overrides it.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time

import torch

from nemg.model import NEMGNet, count_parameters, forward_flops, resolve_size, training_flops
from nemg.train import _train_step, adam_options, pick_device, use_bf16

# Dense (no sparsity) bf16 tensor-core peak, TFLOP/s, from the vendors' data sheets.
GPU_BF16_PEAK = {
    "H200": 989.4,
    "H100 SXM": 989.4, "H100 80GB HBM3": 989.4, "H100 NVL": 835.0, "H100 PCIe": 756.0, "H100": 756.0,
    "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10": 125.0,
}


def gpu_peak(name: str) -> float | None:
    for key, peak in GPU_BF16_PEAK.items():  # the first, most specific match
        if key in name:
            return peak
    return None


def cpu_peak(threads: int) -> tuple[float | None, str]:
    """Nominal float32 peak of ``threads`` cores: clock x FMA lanes x 2 FMA pipes x 2 FLOP.

    Lanes: 16 with full-width AVX-512 (Intel, AMD Zen 5), 8 with AVX2 or AMD Zen 3/4 (family 25), whose
    AVX-512 runs on 256-bit pipes. A vCPU may be an SMT sibling, so this is an upper bound.
    """
    try:
        info = open("/proc/cpuinfo").read()
    except OSError:
        return None, platform.processor()
    field = {}
    for ln in info.splitlines():
        key, _, val = ln.partition(":")
        field.setdefault(key.strip(), val.strip())
    amd_zen34 = field.get("vendor_id") == "AuthenticAMD" and field.get("cpu family") == "25"
    lanes = 16 if " avx512f" in info and not amd_zen34 else 8 if " avx2" in info else 4
    model = field.get("model name", "cpu")
    if "cpu MHz" not in field:
        return None, model
    mhz = float(field["cpu MHz"])
    desc = (f"{model} (family {field.get('cpu family')} model {field.get('model')}, {lanes} fp32 FMA lanes, "
            f"{mhz:.0f} MHz)")
    return threads * mhz * 1e6 * lanes * 2 * 2 / 1e12, desc


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    ap.add_argument("--preset", default="paper", help="paper | small | cpu (size presets of nemg.model)")
    ap.add_argument("--width", type=float, default=None, help="channel multiplier (overrides the preset)")
    ap.add_argument("--head-width", type=float, default=None, help="FC hidden-size multiplier (overrides preset)")
    ap.add_argument("--steps", type=int, default=20, help="timed training steps")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first (cudnn autotune, compile)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--window", type=int, default=4000, help="samples per segment")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--no-bf16", action="store_true", help="float32 on CUDA too")
    ap.add_argument("--bf16-cpu", action="store_true", help="bf16 autocast on the CPU too (train.bf16_cpu)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model")
    ap.add_argument("--peak-tflops", type=float, default=None, help="the device's peak, if not in the table")
    ap.add_argument("--json", action="store_true", help="print the result as one JSON line as well")
    args = ap.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    size = resolve_size({"preset": args.preset, "width": args.width, "head_width": args.head_width})
    amp = use_bf16({"bf16": not args.no_bf16, "bf16_cpu": args.bf16_cpu}, device)
    if device.type == "cuda":  # the same switches as nemg.train.runtime
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True

    torch.manual_seed(0)
    model = NEMGNet(n_samples=args.window, **size).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, **adam_options(device))  # nemg.train's optimiser
    step_model = torch.compile(model) if args.compile else model
    x = torch.randn(args.batch_size, 1, args.window, device=device) * 500  # µV-scale noise
    y = torch.randint(0, 3, (args.batch_size,), device=device)
    w = torch.ones(3, device=device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(args.warmup):
        _train_step(step_model, opt, x, y, w, amp)
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        loss = _train_step(step_model, opt, x, y, w, amp)
    sync()
    dt = time.perf_counter() - t0

    seg_s = args.steps * args.batch_size / dt
    flop_seg = training_flops(args.window, **size)
    tflops = seg_s * flop_seg / 1e12
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        peak, peak_kind = args.peak_tflops or gpu_peak(name), "dense bf16" if amp else "dense bf16 (run was fp32/tf32)"
        mem = torch.cuda.max_memory_allocated(device) / 2**30
    else:
        threads = torch.get_num_threads()
        peak, name = cpu_peak(threads)
        peak, peak_kind = args.peak_tflops or peak, f"nominal fp32, {threads} thread(s)"
        mem = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB, whole process
    res = {
        "device": name, "width": size["width"], "head_width": size["head_width"],
        "params": count_parameters(model), "batch_size": args.batch_size, "steps": args.steps,
        "bf16": amp, "compile": args.compile, "seconds": round(dt, 3), "segments_per_s": round(seg_s, 2),
        "gflop_per_segment_fwd": round(forward_flops(args.window, **size) / 1e9, 4),
        "tflops": round(tflops, 4), "peak_tflops": peak, "peak_kind": peak_kind,
        "fraction_of_peak": round(tflops / peak, 4) if peak else None, "peak_memory_gib": round(mem, 2),
        "final_loss": round(float(loss), 4), "torch": torch.__version__,
        "threads": torch.get_num_threads(), "host": platform.node() or os.uname().nodename,
    }
    frac = f"{100 * tflops / peak:.1f} % of {peak:.3g} TFLOP/s ({peak_kind})" if peak else "peak unknown"
    print(f"{name}: width {size['width']:g}/{size['head_width']:g}, batch {args.batch_size}, {args.steps} steps"
          f"{', bf16' if amp else ''}{', compiled' if args.compile else ''}: {seg_s:.1f} segments/s, "
          f"{tflops:.4g} TFLOP/s = {frac}; peak memory {mem:.2f} GiB")
    if args.json:
        print(json.dumps(res))
    return res


if __name__ == "__main__":
    main()
