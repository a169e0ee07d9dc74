"""Model-centred publication figures: Fig 3 (class-maximising inputs), S4 Fig (mispredicted patients' signals)
and S1 Fig (nEMGNet's structure). Headless (Agg); inputs are the TSVs of :mod:`nemg.explain`, no torch.
"""
from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

from .labels import CLASSES, PROB_COLS  # noqa: E402

sns.set_theme(context="paper", style="ticks", font_scale=1.1)
PALETTE = dict(zip(CLASSES, sns.color_palette("colorblind", 3)))  # same colours as nemg.plots
KIND_COLOURS = {"reduction block": "#9ecae1", "residual stage": "#a1d99b", "fully connected": "#fdd0a2"}


def save(fig, paths: Sequence[str | Path]) -> None:
    for p in paths:
        Path(p).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(p, dpi=200, bbox_inches="tight")
    plt.close(fig)


# ======================================================================================== Fig 3

def fig3_activation_maximization(signals: pd.DataFrame, summary: pd.DataFrame, *, zoom_ms: float = 20.0,
                                 title: str = ""):
    """One row per class: the whole optimised window (left) and ``zoom_ms`` around its largest excursion
    (right), on a shared µV axis so amplitudes compare across classes."""
    t = signals["time_ms"].to_numpy()
    lim = 1.05 * max(float(np.abs(signals[c]).max()) for c in CLASSES) or 1.0
    fig, axes = plt.subplots(len(CLASSES), 2, figsize=(11, 7.2), sharey=True,
                             gridspec_kw={"width_ratios": [3, 1]}, squeeze=False)
    for i, c in enumerate(CLASSES):
        x = signals[c].to_numpy()
        s = summary.set_index("class").loc[c]
        ax, zx = axes[i]
        ax.plot(t, x, color=PALETTE[c], lw=0.7)
        ax.set(ylim=(-lim, lim), xlim=(t[0], t[-1]), ylabel=f"{c}\namplitude (µV)")
        ax.text(0.005, 0.97, f"p({c}) {s['p_target_start']:.2f} → {s['p_target']:.2f}   "
                f"peak-to-peak {s['p2p_uV']:.0f} µV   dominant {s['dominant_hz']:.0f} Hz",
                transform=ax.transAxes, va="top", fontsize=8.5,
                bbox=dict(boxstyle="round,pad=0.25", fc="white", ec="none", alpha=0.8))
        peak = int(np.argmax(np.abs(x - np.median(x))))
        half = zoom_ms / 2
        sel = (t >= t[peak] - half) & (t <= t[peak] + half)
        zx.plot(t[sel] - t[peak], x[sel], color=PALETTE[c], lw=1.2)
        zx.axvline(0, color="grey", lw=0.5, ls=":")
        zx.set(xlim=(-half, half))
        if i == 0:
            ax.set_title("optimised input (whole window)")
            zx.set_title(f"largest potential (±{half:g} ms)")
    axes[-1, 0].set_xlabel("time (ms)")
    axes[-1, 1].set_xlabel("time from peak (ms)")
    if title:
        fig.suptitle(title)
    sns.despine(fig)
    fig.tight_layout()
    return fig


# ======================================================================================== S4 Fig

def _prob_text(row) -> str:
    return "  ".join(f"{c[:4]} {row[p]:.2f}" for c, p in zip(CLASSES, PROB_COLS))


def s4_fig_mispredicted(selected: pd.DataFrame, examples: pd.DataFrame, x: np.ndarray, fs_hz: float, *,
                        n_patients: int | None = None, description: str = ""):
    """One row per mispredicted patient, one column per example segment; an explanatory page when none."""
    if selected.empty or examples.empty:
        fig, ax = plt.subplots(figsize=(8, 2.6))
        ax.axis("off")
        msg = "No mispredicted patients"
        if n_patients is not None:
            msg += f" among {n_patients} evaluated"
        ax.text(0.5, 0.6, msg, ha="center", va="center", fontsize=15, weight="bold")
        if description:
            ax.text(0.5, 0.3, "\n".join(textwrap.wrap(description, 90)), ha="center", va="center", fontsize=9,
                    color="0.3")
        return fig
    n_cols = int(examples.groupby("subject_id").size().max())
    fig, axes = plt.subplots(len(selected), n_cols, figsize=(5.2 * n_cols, 2.5 * len(selected) + 0.6),
                             squeeze=False, sharex=True)
    t = np.arange(x.shape[1]) / fs_hz * 1e3
    for r, (_, pat) in enumerate(selected.iterrows()):
        ex = examples[examples["subject_id"] == str(pat["subject_id"])].reset_index()
        for k in range(n_cols):
            ax = axes[r, k]
            if k >= len(ex):
                ax.axis("off")
                continue
            seg = ex.loc[k]
            ax.plot(t, x[int(seg["index"])], color=PALETTE[pat["diagnosis"]], lw=0.6)
            ax.set_title(f"{seg['muscle']} ({seg['location']}), segment {int(seg['segment'])}", fontsize=9)
            ax.text(0.01, 0.97, "segment p: " + _prob_text(seg), transform=ax.transAxes, va="top", fontsize=8,
                    bbox=dict(boxstyle="round,pad=0.2", fc="white", ec="none", alpha=0.8))
            if k == 0:
                ax.set_ylabel(f"{pat['subject_id']}\ntrue {pat['diagnosis']}\n→ {pat['predicted']} "
                              f"({pat['confidence']:.2f})\nµV", fontsize=9)
            if r == len(selected) - 1:
                ax.set_xlabel("time (ms)")
    head = "Mispredicted patients: true class → predicted (patient-level probability); segments that favoured " \
           "the predicted class most"
    fig.suptitle(head + (f"\n{description}" if description else ""), fontsize=10)
    sns.despine(fig)
    fig.tight_layout()
    return fig


# ======================================================================================== S1 Fig

def _si(v: float) -> str:
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if v >= factor:
            return f"{v / factor:.3g} {prefix}"
    return f"{v:.3g} "


def s1_fig_model_structure(table: pd.DataFrame):
    """nEMGNet's layer groups as a block diagram (output C × L per model) beside per-group parameters and
    forward FLOPs (log scale), for every model in ``table`` (``structure_tables``: configured and paper)."""
    models = list(dict.fromkeys(table["model"]))
    per = {m: table[table["model"] == m].reset_index(drop=True) for m in models}
    n = len(per[models[0]])
    fig = plt.figure(figsize=(14, 0.42 * n + 2.2))
    gs = fig.add_gridspec(1, 3, width_ratios=[1.5, 1, 1], wspace=0.08)
    diag = fig.add_subplot(gs[0])
    ax_p = fig.add_subplot(gs[1])
    ax_f = fig.add_subplot(gs[2], sharey=ax_p)
    # block diagram: top = input, flowing down like the paper's figure
    diag.set(xlim=(0, 1), ylim=(n - 0.5, -1.3))  # the same rows as the bar panels
    diag.axis("off")
    first = per[models[0]]
    diag.text(0.5, -0.9, f"input 1 × {int(first.loc[0, 'n_samples'])}", ha="center", va="center", fontsize=9)
    for i in range(n):
        kind = first.loc[i, "kind"]
        diag.add_patch(FancyBboxPatch((0.02, i - 0.38), 0.96, 0.76, boxstyle="round,pad=0.01,rounding_size=0.08",
                                      fc=KIND_COLOURS.get(kind, "0.9"), ec="0.4", lw=0.6))
        name = per[models[-1]].loc[i, "group"]
        shapes = " | ".join(per[m].loc[i, "output"] for m in models)
        diag.text(0.05, i, name, va="center", fontsize=8.5)
        diag.text(0.95, i, shapes, va="center", ha="right", fontsize=8.5, family="monospace")
        diag.annotate("", xy=(0.5, i - 0.38), xytext=(0.5, i - 0.62),
                      arrowprops=dict(arrowstyle="-|>", color="0.4", lw=0.6))
    diag.set_title("layer group — output C × L: " + " | ".join(models), fontsize=9)
    y = np.arange(n)
    h = 0.8 / len(models)
    colours = sns.color_palette("deep", len(models))
    for j, m in enumerate(models):
        t = per[m]
        off = (j - (len(models) - 1) / 2) * h
        ax_p.barh(y + off, t["parameters"].clip(lower=1), height=h, color=colours[j],
                  label=f"{m}: {t['parameters'].sum() / 1e6:.2f} M")
        ax_f.barh(y + off, t["flops"].clip(lower=1), height=h, color=colours[j],
                  label=f"{m}: {_si(t['flops'].sum())}FLOP")
    for ax, name in ((ax_p, "parameters"), (ax_f, "forward FLOP per segment")):
        ax.set_xscale("log")
        ax.set(ylim=(n - 0.5, -1.3), xlabel=name)
        ax.legend(loc="upper right", fontsize=8, frameon=False)
        ax.grid(axis="x", which="major", lw=0.4, alpha=0.6)
    ax_p.set_yticks(y, [""] * n)  # the block diagram on the left names the rows
    plt.setp(ax_f.get_yticklabels(), visible=False)
    # the largest cost per model, so the 1024-channel stage's share reads off the figure
    for j, m in enumerate(models):
        t = per[m]
        k = int(t["flops"].idxmax())
        ax_f.text(t.loc[k, "flops"], k + (j - (len(models) - 1) / 2) * h, f" {t.loc[k, 'flop_share']:.0%}",
                  va="center", fontsize=7.5)
    sns.despine(fig, left=True)
    fig.suptitle("nEMGNet: 7 reduction blocks (Conv–BN–ReLU–MaxPool), 5 residual stages of 2 units, "
                 "FC head (LeakyReLU)", fontsize=10)
    return fig
