"""Realism check: MUAP measurement on known shapes, detection on a tiny simulated cohort, the baseline runs."""
from __future__ import annotations

import numpy as np
import pandas as pd

from nemg import realism
from nemg.labels import CLASSES
from nemg.simulate import simulate_cohort

FS = 48000.0


def test_measure_muap_on_a_triphasic_shape():
    t = np.arange(int(0.03 * FS)) / FS
    peak = int(0.012 * FS)
    tc = t - peak / FS
    # Gaussian second derivative: three phases, ~ +-1 ms core
    w = -1000 * (1 - (tc / 4e-4) ** 2) * np.exp(-0.5 * (tc / 4e-4) ** 2)
    m = realism.measure_muap(w, FS, peak, realism.DetectionSettings())
    assert m["phases"] == 3
    assert 1000 < m["amplitude_uv"] < 1500
    assert 1.0 < m["duration_ms"] < 5.0


def test_detection_finds_units_of_a_regular_spike_train():
    rng = np.random.default_rng(0)
    n = int(2 * FS)
    x = rng.normal(0, 5, n)
    tc = (np.arange(int(0.006 * FS)) - int(0.003 * FS)) / FS
    w = -800 * (1 - (tc / 3e-4) ** 2) * np.exp(-0.5 * (tc / 3e-4) ** 2)
    for s in np.arange(0.05, 1.9, 0.1):  # 10 Hz
        i = int(s * FS)
        x[i: i + w.size] += w
    units, n_spikes = realism.detect_muaps(x, FS)
    assert len(units) == 1 and n_spikes >= 18
    assert abs(units["firing_rate_hz"].iloc[0] - 10) < 1


def test_realism_pipeline_on_a_tiny_cohort(tmp_path):
    paths = simulate_cohort({"cohort": {"n_subjects": {"normal": 3, "myopathy": 3, "neuropathy": 3},
                                        "muscles_per_subject": [2, 2], "duration_s": [1.0, 1.0]},
                             "artifacts": {"duration_s": [0.3, 0.4]}}, tmp_path, seed=3)
    muaps, feats = realism.analyse_cohort(paths["subjects"], paths["recordings"])
    assert len(feats) == 18 and len(muaps) > 0
    table = realism.class_table(muaps, feats)
    assert list(table.columns[:3]) == list(CLASSES)
    base = realism.feature_baseline(feats, n_repeats=1, n_splits=3)
    assert 0 <= base["per_recording"] <= 1 and base["n_patients"] == 9
    conf = realism.rater_confusion(paths["subjects"], paths["ratings"])
    assert conf.to_numpy().sum() == 6 * 9
    assert isinstance(conf, pd.DataFrame)
