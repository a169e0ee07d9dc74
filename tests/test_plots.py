"""Figures are written as non-trivial PNG and PDF files."""
from __future__ import annotations

import numpy as np
import pandas as pd

from nemg.labels import CLASSES
from nemg.plots import confusion_figure, roc_pr_figure, save


def test_figures_written(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.choice(CLASSES, 40)
    s = rng.dirichlet(np.ones(3), 40)
    raters = pd.DataFrame([{"rater_id": f"R{i}", "class": c, "fpr": rng.random(), "tpr": rng.random(),
                            "precision": rng.random()} for i in range(6) for c in CLASSES])
    save(roc_pr_figure({"model": (y, s), "with location": (y, s[::-1])}, raters=raters, title="test"), [tmp_path / "roc.png", tmp_path / "roc.pdf"])
    p = [CLASSES[i] for i in s.argmax(1)]
    save(confusion_figure({"physicians": (y, p), "model": (y, p)}), [tmp_path / "cm.png"])
    for name in ("roc.png", "roc.pdf", "cm.png"):
        assert (tmp_path / name).stat().st_size > 10_000
