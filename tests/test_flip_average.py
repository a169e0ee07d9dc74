"""benchmarks/flip_average.py: each window scored as recorded and turned over by the run's own network."""
import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from nemg.model import build_model, resolve_size
from nemg.store import SegmentStore

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("flip_average", REPO / "benchmarks" / "flip_average.py")
flip_average = importlib.util.module_from_spec(spec)
spec.loader.exec_module(flip_average)


def test_both_polarities_are_scored_by_the_runs_own_network(tmp_path):
    window, cfg = 256, {"preset": "cpu"}
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((6, window)) * 50 + np.linspace(0, 200, window)).astype(np.float32)  # not symmetric
    np.save(tmp_path / "segments.npy", x)
    pd.DataFrame({"segment": range(6), "recording_id": "r", "subject_id": "s", "diagnosis": "normal",
                  "location": "distal", "muscle": "m", "offset_samples": 0}).to_csv(
        tmp_path / "segments_index.tsv", sep="\t", index=False)
    torch.manual_seed(0)
    net = build_model(cfg, n_samples=window).eval()
    torch.save({"state_dict": net.state_dict(), "model_cfg": {**cfg, **resolve_size(cfg)},
                "train_cfg": {"bf16_cpu": False}}, tmp_path / "best.pt")
    store = SegmentStore.open(tmp_path / "segments.npy", tmp_path / "segments_index.tsv")
    rows = np.array([4, 1, 3])
    p, pf = flip_average.run_probabilities(tmp_path / "best.pt", store, rows, batch=2)
    with torch.no_grad():
        want = torch.softmax(net(torch.from_numpy(x[rows]).unsqueeze(1)), 1).numpy()
        want_f = torch.softmax(net(-torch.from_numpy(x[rows]).unsqueeze(1)), 1).numpy()
    np.testing.assert_allclose(p, want, atol=1e-6)
    np.testing.assert_allclose(pf, want_f, atol=1e-6)
    assert not np.allclose(p, pf)  # the network is not polarity-blind: the two passes differ
