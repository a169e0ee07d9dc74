"""Publication figures (PNG and PDF) for the study's Fig 1-2 and S2-S3 Figs.

Matplotlib runs headless (Agg); every function takes plain arrays/DataFrames and writes the files it is given.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from .labels import CLASSES  # noqa: E402
from .metrics import confusion, pr_curve_ovr, roc_curve_ovr  # noqa: E402

sns.set_theme(context="paper", style="ticks", font_scale=1.1)
PALETTE = dict(zip(CLASSES, sns.color_palette("colorblind", 3)))


def save(fig, paths: Sequence[str | Path]) -> None:
    for p in paths:
        Path(p).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(p, dpi=200, bbox_inches="tight")
    plt.close(fig)


def roc_pr_figure(curves: dict[str, tuple[Sequence[str], np.ndarray]], *, raters: pd.DataFrame | None = None,
                  title: str = ""):
    """Per-class ROC (top) and PR (bottom) curves, one line per entry of ``curves`` (label -> (y_true,
    scores in CLASSES order)); each rater a cross, the raters' mean a dot.

    ``raters``: output of :func:`nemg.physicians.rater_operating_points` (or None when the cohort has no ratings).
    """
    fig, axes = plt.subplots(2, 3, figsize=(12, 8))
    styles = ["-", "--", ":", "-."]
    for i, c in enumerate(CLASSES):
        ax_roc, ax_pr = axes[0, i], axes[1, i]
        for k, (label, (y_true, scores)) in enumerate(curves.items()):
            if c not in set(y_true) or len(set(y_true)) < 2:
                continue
            fpr, tpr, roc_auc = roc_curve_ovr(y_true, scores, i)
            rec, prec, ap = pr_curve_ovr(y_true, scores, i)
            ls = styles[k % len(styles)]
            ax_roc.plot(fpr, tpr, color=PALETTE[c], ls=ls, lw=2, label=f"{label} (AUC {roc_auc:.3f})")
            ax_pr.plot(rec, prec, color=PALETTE[c], ls=ls, lw=2, label=f"{label} (AP {ap:.3f})")
        ax_roc.plot([0, 1], [0, 1], ls=":", color="grey", lw=1)
        if raters is not None and not raters.empty:
            r = raters[(raters["class"] == c) & (raters["rater_id"] != "mean")]
            ax_roc.scatter(r["fpr"], r["tpr"], marker="x", color="k", label="physicians")
            ax_roc.scatter(r["fpr"].mean(), r["tpr"].mean(), marker="o", color="k", label="physicians' mean")
            ax_pr.scatter(r["tpr"], r["precision"], marker="x", color="k", label="physicians")
            ax_pr.scatter(r["tpr"].mean(), r["precision"].mean(), marker="o", color="k", label="physicians' mean")
        ax_roc.set(title=f"{c}: ROC", xlabel="1 - specificity", ylabel="sensitivity", xlim=(0, 1), ylim=(0, 1.02))
        ax_pr.set(title=f"{c}: precision-recall", xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
        ax_roc.legend(loc="lower right", fontsize=7)
        ax_pr.legend(loc="lower left", fontsize=7)
    if title:
        fig.suptitle(title)
    sns.despine(fig)
    fig.tight_layout()
    return fig


def confusion_figure(panels: dict[str, tuple[Sequence[str], Sequence[str]]], *, normalize: bool = True):
    """Side-by-side confusion matrices, e.g. {"physicians": (y, p), "model": (y, p)}; rows = true class."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), squeeze=False)
    for ax, (name, (y, p)) in zip(axes[0], panels.items()):
        cm = confusion(y, p).astype(float)
        shown = cm / cm.sum(axis=1, keepdims=True).clip(min=1) if normalize else cm
        annot = np.array([[f"{shown[i, j]:.2f}\n({int(cm[i, j])})" for j in range(3)] for i in range(3)])
        sns.heatmap(shown, annot=annot, fmt="", cmap="Blues", vmin=0, vmax=1 if normalize else None, cbar=False,
                    xticklabels=CLASSES, yticklabels=CLASSES, ax=ax, square=True)
        ax.set(title=name, xlabel="predicted", ylabel="true")
    fig.tight_layout()
    return fig
