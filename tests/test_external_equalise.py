"""benchmarks/external_equalise.py: the spectral equaliser undoes a cohort-wide filter and gain, leaves hum alone."""
import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.signal import butter, sosfilt, welch

from nemg.store import write_signal_store

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("external_equalise", REPO / "benchmarks" / "external_equalise.py")
eq = importlib.util.module_from_spec(spec)
spec.loader.exec_module(eq)
FS = 10_000.0


def _store(tmp_path, name, signals):
    idx = pd.DataFrame({"recording_id": [f"{name}{i}" for i in range(len(signals))], "subject_id": "s",
                        "diagnosis": "normal", "location": "proximal", "muscle": "m", "fs_hz": FS})
    write_signal_store([s.astype(np.float32) for s in signals], idx, tmp_path / f"{name}.npy", tmp_path / f"{name}.tsv")
    return tmp_path / f"{name}.npy", tmp_path / f"{name}.tsv"


def _db(x, f0, f1):
    f, p = welch(x, fs=FS, nperseg=1024)
    return 10 * np.log10(p[(f >= f0) & (f <= f1)].mean())


@pytest.fixture
def cohorts(tmp_path):
    rng = np.random.default_rng(0)
    t = np.arange(int(5 * FS)) / FS
    # the reference site: white noise with a 50 Hz line; the other: 10x quieter through a first-order 500 Hz
    # low-pass (about -16 dB at 3 kHz: within what the equaliser restores)
    ref = [100 * rng.standard_normal(t.size) + 60 * np.sin(2 * np.pi * 50 * t) for _ in range(4)]
    sos = butter(1, 500, fs=FS, output="sos")
    other = [10 * sosfilt(sos, rng.standard_normal(t.size)) for _ in range(4)]
    return _store(tmp_path, "ref", ref), _store(tmp_path, "other", other), tmp_path


def test_equalised_cohort_matches_the_reference_spectrum_without_adding_hum(cohorts):
    ref, other, tmp = cohorts
    f, a = eq.median_log_spectrum(*ref)
    _, b = eq.median_log_spectrum(*other)
    amp = eq.equaliser(f, a, b)
    taps = eq.fir_from_response(f, amp, FS)
    assert len(taps) % 2 == 1 and np.allclose(taps, taps[::-1])  # symmetric: zero phase when centred
    idx = eq.equalise_store(*other, taps, tmp / "eq.npy", tmp / "eq.tsv")
    assert list(idx["n_samples"]) == [int(5 * FS)] * 4  # same lengths, same recordings
    y = np.load(tmp / "eq.npy")[: int(5 * FS)].astype(np.float64)
    r = np.load(ref[0])[: int(5 * FS)].astype(np.float64)
    x = np.load(other[0])[: int(5 * FS)].astype(np.float64)
    # before: 20 dB quieter in band, 30+ dB above the cut-off; after: within 2 dB across 100 Hz - 3 kHz
    assert _db(r, 100, 400) - _db(x, 100, 400) > 15
    assert _db(r, 1500, 3000) - _db(x, 1500, 3000) > 30
    for lo, hi in ((100, 400), (600, 1000), (1500, 3000)):
        assert abs(_db(y, lo, hi) - _db(r, lo, hi)) < 2.0, (lo, hi)
    # the reference's 50 Hz line is not copied into the equalised cohort
    assert _db(y, 48, 52) - _db(y, 70, 110) < 3.0
    assert _db(r, 48, 52) - _db(r, 70, 110) > 6.0


def test_equaliser_is_flat_outside_the_trusted_band():
    f = np.linspace(0, 5000, 513)
    train = np.where(f < 1000, 0.0, -2.0) + np.where(f > 4500, -10.0, 0.0)
    amp = eq.equaliser(f, train, np.zeros_like(f))
    assert np.allclose(amp[f >= eq.FLAT_ABOVE_HZ], amp[np.searchsorted(f, eq.FLAT_ABOVE_HZ) - 1])
    assert np.allclose(amp[f < eq.FLAT_BELOW_HZ], amp[np.searchsorted(f, eq.FLAT_BELOW_HZ)])
    assert amp[f < 900].mean() == pytest.approx(1.0, abs=1e-9)


def test_shape_correction_is_bounded_but_the_level_is_not():
    f = np.linspace(0, 5000, 513)
    # the test cohort 30 dB quieter everywhere and 110 dB quieter above 3 kHz (a steep filter)
    test = np.log(10.0) * np.where(f > 3000, -11.0, -3.0)
    amp_db = 20 * np.log10(eq.equaliser(f, np.zeros_like(f), test))
    assert amp_db[(f > 100) & (f < 1500)].mean() == pytest.approx(30.0, abs=0.5)
    assert amp_db[(f > 3200) & (f < 3900)].max() == pytest.approx(30.0 + eq.MAX_SHAPE_DB, abs=0.5)


def test_no_spectrum_from_recordings_shorter_than_one_welch_segment(tmp_path):
    short = _store(tmp_path, "short", [np.ones(100), np.ones(200)])
    with pytest.raises(ValueError, match="short.npy"):
        eq.median_log_spectrum(*short)


def test_class_spectra_sees_a_low_pass_as_a_lower_centroid_and_steeper_roll_off(cohorts):
    ref, other, _ = cohorts
    white, low = eq.class_spectra(*ref).loc["normal"], eq.class_spectra(*other).loc["normal"]
    assert low["centroid_hz"] < white["centroid_hz"] / 2
    assert low["db_2khz"] < white["db_2khz"] - 10


def test_calibration_plan_checks_the_dag_then_adds_each_fixed_gain_once():
    assert eq.calibration_plan([]) == [("median_rms", None), ("spectrum", None)]
    assert eq.calibration_plan([3, 0.5, 3.0], spectrum=False) == [("median_rms", None), ("gain_3", 3.0),
                                                                  ("gain_0.5", 0.5)]
    assert eq.calibration_plan([-8.4], spectrum=False)[1] == ("gain_-8.4", -8.4)  # polarity inverted too
    for bad in (0.0, float("inf"), float("nan")):
        with pytest.raises(SystemExit, match="non-zero"):
            eq.calibration_plan([bad])
