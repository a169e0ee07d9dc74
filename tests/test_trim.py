"""Artifact trimming: planted edge artifacts are removed, clean recordings are left alone."""
import numpy as np
import pytest

from nemg.trim import TrimParams, decide_trim, detect_edge_artifacts, trim_recording

FS = 10_000.0


def synthetic_emg(duration_s: float, seed: int, *, sparse: bool = False) -> np.ndarray:
    """Motor-unit-like trains of biphasic potentials plus noise and a slow drift (µV)."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * FS)
    x = rng.normal(0, 8, n)
    t = np.arange(int(0.008 * FS)) / FS
    shape = np.sin(2 * np.pi * t / t[-1]) * np.hanning(t.size)
    n_units = 2 if sparse else 12
    for _ in range(n_units):
        amp = rng.uniform(800, 3000) if sparse else rng.uniform(100, 600)
        rate = rng.uniform(8, 14)
        times = np.cumsum(rng.normal(1 / rate, 0.15 / rate, int(duration_s * rate * 1.5)))
        for ts in times[(times > 0) & (times < duration_s - 0.01)]:
            i = int(ts * FS)
            x[i:i + shape.size] += amp * shape
    x += 60 * np.sin(2 * np.pi * 0.4 * np.arange(n) / FS + rng.uniform(0, 6))  # slow drift, not an artifact
    return x


def plant(x: np.ndarray, start_s: float, end_s: float, seed: int) -> np.ndarray:
    """Needle-movement artifacts at both edges, scaled to the recording's RMS: decaying baseline steps of
    10-30 x RMS and broadband activity of 8 x RMS (real ones are 10-100 x the interference pattern)."""
    rng = np.random.default_rng(seed)
    rms = float(np.sqrt(np.mean((x - x.mean()) ** 2)))
    x = x.copy()
    for lo, hi in ((0, int(start_s * FS)), (x.size - int(end_s * FS), x.size)):
        for t0 in rng.integers(lo, hi - 10, 6):
            dt = np.arange(hi - t0) / FS
            x[t0:hi] += rng.choice([-1, 1]) * rng.uniform(10, 30) * rms * np.exp(-dt / 0.08)
        x[lo:hi] += rng.normal(0, 8 * rms, hi - lo)
    return x


@pytest.mark.parametrize("seed", range(6))
def test_planted_edge_artifacts_are_removed(seed):
    art_start, art_end = 0.3 + 0.1 * seed, 0.7 - 0.08 * seed
    clean = synthetic_emg(4.0, seed, sparse=seed % 2 == 1)
    x = plant(clean, art_start, art_end, seed)
    found = detect_edge_artifacts(x, FS, TrimParams())
    duration = x.size / FS
    assert found.start_reason and found.end_reason
    assert art_start <= found.start_s <= art_start + 0.25
    assert duration - art_end - 0.25 <= found.end_s <= duration - art_end


@pytest.mark.parametrize("seed", range(8))
def test_clean_recordings_are_left_alone(seed):
    x = synthetic_emg(4.0, 100 + seed, sparse=seed % 2 == 1)
    found = detect_edge_artifacts(x, FS, TrimParams())
    assert (found.start_s, found.end_s) == (0.0, x.size / FS)
    assert found.start_reason == found.end_reason == ""


def test_manual_trims_override_each_edge():
    x = plant(synthetic_emg(3.0, 1), 0.5, 0.5, 1)
    kept, qc = trim_recording(x, FS, TrimParams(), manual_start_s=0.8)
    assert qc["start_source"] == "manual" and qc["trim_start_s"] == 0.8
    assert qc["end_source"] == "auto" and qc["trim_end_s"] <= 2.5
    assert kept.size == pytest.approx((qc["trim_end_s"] - 0.8) * FS, abs=1)
    kept, qc = trim_recording(x, FS, TrimParams(auto=False), manual_end_s=2.0)
    assert (qc["trim_start_s"], qc["trim_end_s"], qc["start_source"]) == (0.0, 2.0, "none")


def test_manual_trim_outside_recording_is_a_clear_error():
    with pytest.raises(ValueError, match="rec7.*trim_end_s = 9 s lies outside"):
        decide_trim(3.0, None, None, 9.0, where="rec7")


def test_too_short_after_trimming_is_reported_not_dropped():
    x = plant(synthetic_emg(2.0, 3), 0.5, 0.5, 3)
    kept, qc = trim_recording(x, FS, TrimParams(min_duration_s=1.5))
    assert qc["status"] == "excluded" and "too short after trimming" in qc["exclusion_reason"]
    assert kept.size == 0 and qc["remaining_s"] == 0.0


def test_dead_recording_is_excluded_as_flat():
    x = np.zeros(int(3 * FS))
    x[:500] = np.random.default_rng(0).normal(0, 50, 500)
    kept, qc = trim_recording(x, FS, TrimParams())
    assert qc["status"] == "excluded" and "flat" in qc["exclusion_reason"]


def test_clipping_fraction_is_reported():
    x = synthetic_emg(2.0, 5)
    x[1000:1100] = x.max()
    _, qc = trim_recording(x, FS, TrimParams(auto=False))
    assert qc["clipped_fraction"] == pytest.approx(100 / x.size, rel=0.05)
