"""benchmarks/gpu_check.{py,sh} end to end on a CPU at a tiny size, so the prepared GPU command is known to run
before a GPU is at hand: prepare on a synthetic signal store, then the shell entry point with --tiny."""
import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nemg.labels import CLASSES
from nemg.store import write_signal_store
from nemg.train import CURVE_COLUMNS

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("gpu_check", REPO / "benchmarks" / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_check)

OUT_FILES = ("throughput.tsv", "runs.tsv", "curves.tsv", "predictions.tsv", "summary.json", "gpu_check.log")


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """9 subjects (3 per class), one 1 s recording each at 10 kHz; two nested runs with rotated roles."""
    d = tmp_path_factory.mktemp("cohort")
    rng = np.random.default_rng(0)
    arrays, index, folds = [], [], []
    for ci, cls in enumerate(CLASSES):
        for k in range(3):
            sid = f"S{ci}{k}"
            arrays.append(rng.normal(0, 30 * (ci + 1), 10_000).astype(np.float32))  # class = amplitude
            index.append({"recording_id": f"{sid}BB01", "subject_id": sid, "diagnosis": cls, "location": "proximal",
                          "muscle": "biceps", "fs_hz": 10_000.0})
            for outer in (0, 1):
                role = ("train", "val", "test")[(k + outer) % 3]
                folds.append(("nested", 0, 0, outer, 0, f"nested_s0_o{outer}_i0", sid, cls, role))
    (d / "resample").mkdir()
    write_signal_store(arrays, pd.DataFrame(index), d / "resample" / "signals.npy",
                       d / "resample" / "signals_index.tsv")
    pd.DataFrame(folds, columns=["scheme", "seed", "repeat", "outer", "inner", "run_id", "subject_id", "diagnosis",
                                 "role"]).to_csv(d / "folds.tsv", sep="\t", index=False)
    (d / "cohort").mkdir()
    pd.DataFrame(index)[["subject_id", "diagnosis"]].to_csv(d / "cohort" / "subjects.tsv", sep="\t", index=False)
    return d, arrays


def test_prepare_and_tiny_check_end_to_end(cohort, tmp_path):
    src, arrays = cohort
    data = tmp_path / "data"
    manifest = gpu_check.main(["prepare", "--signals", str(src / "resample"), "--folds", str(src / "folds.tsv"),
                               "--cohort", str(src / "cohort"), "--out", str(data)])
    assert {p.name for p in data.iterdir()} == {"signals.npz", "signals_index.tsv", "folds.tsv", "manifest.json",
                                                 "cohort_subjects.tsv"}
    assert manifest["n_recordings"] == 9 and manifest["mib"] < 1
    with np.load(data / "signals.npz") as z:  # int16 x scale gives the signal back within half a step
        assert z["q"].dtype == np.int16
        decoded = z["q"][:10_000] * z["scale"][0]
        assert np.abs(decoded - arrays[0]).max() <= z["scale"][0] / 2 + 1e-6

    out = tmp_path / "out"
    # one torch thread: on a shared 2-core machine OpenMP threads spin against other jobs (10x slower steps)
    env = {**os.environ, "OUT": str(out), "PYTHON": sys.executable, "GPU_CHECK_DATA": str(data),
           "OMP_NUM_THREADS": "1"}
    # 0.1 s windows make the tiny model 4x cheaper; the eager backend runs the compiled path without a C++ build
    res = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--tiny", "--device", "cpu",
                          "--window-s", "0.1", "--compile", "on", "--compile-backend", "eager"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "== GPU check on cpu" in res.stdout
    for f in OUT_FILES:
        assert (out / f).is_file(), f

    tp = pd.read_csv(out / "throughput.tsv", sep="\t")
    assert list(tp.columns) == gpu_check.THROUGHPUT_COLUMNS
    assert (tp["status"] == "ok").all(), tp[["preset", "mode", "compile", "status"]]
    assert set(zip(tp["preset"], tp["mode"], tp["compile"])) >= {("tiny", "train", False), ("tiny", "predict", False),
                                                                  ("tiny", "train", True), ("cpu", "train", False)}
    for col in ("segments_per_s", "tflops", "gflop_per_segment", "seconds", "step_ms_median", "step_ms_p90",
                "warmup_s", "final_loss"):
        assert np.isfinite(tp[col]).all() and (tp[col] >= 0).all(), col
    assert (tp["segments_per_s"] > 0).all()
    # no GPU: no bf16 peak, so the fraction is NaN rather than a made-up number
    assert tp["peak_tflops"].isna().all() and tp["fraction_of_peak"].isna().all()

    runs = pd.read_csv(out / "runs.tsv", sep="\t")
    assert list(runs.columns) == gpu_check.RUN_COLUMNS
    assert list(runs["run_id"]) == ["nested_s0_o0_i0", "nested_s0_o1_i0"] and (runs["status"] == "ok").all()
    for col in ("best_val_acc", "final_val_acc", "test_segment_acc", "test_patient_acc"):
        assert runs[col].between(0, 1).all(), col
    for col in ("updates", "train_s", "wall_s", "segments_per_s", "planned_s"):
        assert np.isfinite(runs[col]).all() and (runs[col] > 0).all(), col
    assert (runs["n_train"] == 30).all() and (runs["n_val"] == 30).all() and (runs["max_epochs"] == 1).all()

    curves = pd.read_csv(out / "curves.tsv", sep="\t")
    assert list(curves.columns) == ["run_id", *CURVE_COLUMNS]
    assert set(curves["run_id"]) == set(runs["run_id"])
    assert curves["val_acc"].between(0, 1).all() and np.isfinite(curves["train_loss"]).all()
    assert curves.groupby("run_id")["update"].max().tolist() == runs.set_index("run_id")["updates"].tolist()

    pred = pd.read_csv(out / "predictions.tsv", sep="\t")
    assert set(pred["role"]) == {"val", "test"} and set(pred["run_id"]) == set(runs["run_id"])
    assert np.allclose(pred[[f"p_{c}" for c in CLASSES]].sum(axis=1), 1, atol=1e-4)

    summary = json.loads((out / "summary.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert summary["env"]["device"] == "cpu" and summary["data"]["n_recordings"] == 9
    assert len(summary["throughput"]) == len(tp) and len(summary["runs"]) == 2
    assert summary["segments"]["n_segments"] == 9 * 10  # 1 s recordings, 0.1 s windows, 0.1 s hop
    assert math.isfinite(summary["phases_s"]["total"])
    assert "gpu_check INFO" in (out / "gpu_check.log").read_text()


def test_peak_table_names_only_known_parts():
    assert gpu_check.gpu_peak("NVIDIA H200") == pytest.approx(989.4)
    assert gpu_check.gpu_peak("NVIDIA H100 80GB HBM3") == pytest.approx(989.4)  # how an SXM H100 reports itself
    assert gpu_check.gpu_peak("NVIDIA H100 PCIe") == pytest.approx(756.0)
    assert gpu_check.gpu_peak("NVIDIA H100 NVL") == pytest.approx(835.0)
    assert math.isnan(gpu_check.gpu_peak("NVIDIA A100-SXM4-80GB"))  # unknown: NaN, not a guess


def test_default_runs_are_different_outer_folds():
    folds = pd.DataFrame({"scheme": "nested", "seed": 0, "repeat": 0,
                          "outer": [o for o in range(3) for _ in range(3)], "inner": [0, 1, 2] * 3})
    folds["run_id"] = [f"nested_s0_o{o}_i{i}" for o, i in zip(folds["outer"], folds["inner"])]
    assert gpu_check.pick_runs(folds, None, 2) == ["nested_s0_o0_i0", "nested_s0_o1_i0"]
    assert gpu_check.pick_runs(folds, ["nested_s0_o2_i1"], 2) == ["nested_s0_o2_i1"]
