"""The trimming QC figure: one page per cohort to audit every cut at a glance.

Left: a *trim map*, one row per recording (grouped by class), the whole recording in grey, the kept part in
green, automatic cuts in red, manual cuts in blue; excluded recordings are marked with a red cross; where the
cohort is simulated, black ticks show where the artifacts were really planted. Right: cut lengths per edge,
remaining duration per class, a text summary, and the raw waveforms of the recordings with the largest cuts.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .labels import CLASS_INDEX, CLASSES

COLORS = {"kept": "#4daf4a", "auto": "#e41a1c", "manual": "#377eb8", "whole": "#d9d9d9"}


def _examples(qc: pd.DataFrame, n: int) -> pd.DataFrame:
    cut = qc["cut_start_s"].fillna(0) + qc["cut_end_s"].fillna(0)
    return qc.assign(_cut=cut).sort_values("_cut", ascending=False).head(n).query("_cut > 0")


def trim_qc_figure(qc_tsv: str | Path, out_png: str | Path, *, subjects_tsv: str | Path | None = None,
                   recordings_tsv: str | Path | None = None, n_examples: int = 3, title: str = "") -> None:
    """Draw the QC figure for one cohort from its QC table (and, for the examples, its sample sheets)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    qc = pd.read_csv(qc_tsv, sep="\t", dtype={"recording_id": str, "subject_id": str})
    qc = qc.assign(_o=qc["diagnosis"].map(CLASS_INDEX).fillna(9)).sort_values(
        ["_o", "subject_id", "recording_id"], kind="stable").reset_index(drop=True)
    n = len(qc)
    examples = _examples(qc, n_examples) if subjects_tsv and recordings_tsv else qc.iloc[:0]
    map_h = min(max(4.0, 0.045 * n), 40.0)
    fig_h = max(map_h, 3.2 * (3 + len(examples)) * 0.75)
    fig = plt.figure(figsize=(15, fig_h), constrained_layout=True)
    gs = fig.add_gridspec(3 + len(examples), 2, width_ratios=[1.15, 1])
    ax = fig.add_subplot(gs[:, 0])
    y = np.arange(n)
    ax.barh(y, qc["duration_s"], color=COLORS["whole"], height=0.8, lw=0)
    kept = qc["status"] == "kept"
    ax.barh(y[kept], (qc["trim_end_s"] - qc["trim_start_s"])[kept], left=qc["trim_start_s"][kept],
            color=COLORS["kept"], height=0.8, lw=0, label="kept")
    for edge, left, width in (("start", np.zeros(n), qc["cut_start_s"]),
                              ("end", qc["duration_s"] - qc["cut_end_s"], qc["cut_end_s"])):
        src = qc[f"{edge}_source"]
        for kind in ("auto", "manual"):
            m = (src == kind) & (width > 0)
            ax.barh(y[m], width[m], left=left[m], color=COLORS[kind], height=0.8, lw=0,
                    label=f"{kind} cut" if edge == "start" else None)
    ex = ~kept
    if ex.any():
        ax.scatter(np.zeros(ex.sum()) - 0.02 * qc["duration_s"].max(), y[ex], marker="x", color="red", s=25,
                   label="excluded", clip_on=False)
    for col in ("sim_artifact_start_s", "sim_artifact_end_s"):
        if col in qc:
            t = qc[col]  # times from the file's start: end of the start artifact / start of the end artifact
            m = t.notna() & (t > 0) & (t < qc["duration_s"])
            ax.scatter(t[m], y[m], marker="|", color="black", s=30, lw=1,
                       label="planted artifact edge" if col.endswith("start_s") else None)
    # class separators and labels
    for cls, grp in qc.groupby("_o", sort=True):
        lo, hi = grp.index.min(), grp.index.max()
        ax.axhline(hi + 0.5, color="black", lw=0.6)
        ax.text(1.005, (lo + hi) / 2, f"{grp['diagnosis'].iloc[0]}\n({len(grp)})", transform=ax.get_yaxis_transform(),
                va="center", ha="left", fontsize=9)
    if n <= 60:
        ax.set_yticks(y, qc["recording_id"], fontsize=6)
    else:
        ax.set_yticks([])
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xlabel("time in the original recording (s)")
    ax.set_title("trim map: one row per recording")
    ax.legend(loc="lower right", fontsize=8, framealpha=0.9)

    a1 = fig.add_subplot(gs[0, 1])
    bins = np.linspace(0, max(0.1, float(np.nanmax(np.r_[qc["cut_start_s"], qc["cut_end_s"]]))), 30)
    a1.hist([qc["cut_start_s"], qc["cut_end_s"]], bins=bins, label=["start", "end"], color=["#984ea3", "#ff7f00"])
    a1.set_xlabel("seconds cut"); a1.set_ylabel("recordings"); a1.legend(fontsize=8)
    a1.set_title("cut per edge")

    a2 = fig.add_subplot(gs[1, 1])
    classes = [c for c in CLASSES if c in set(qc["diagnosis"])]
    data = [qc.loc[(qc["diagnosis"] == c) & kept, "remaining_s"].to_numpy() for c in classes]
    if any(len(d) for d in data):
        a2.boxplot([d if len(d) else [np.nan] for d in data], tick_labels=classes, showfliers=True)
    a2.set_ylabel("remaining duration (s)"); a2.set_title("kept signal per class")

    a3 = fig.add_subplot(gs[2, 1]); a3.axis("off")
    reasons = pd.concat([qc["auto_start_reason"], qc["auto_end_reason"]]).fillna("")
    reasons = reasons[reasons != ""].value_counts()
    lines = [
        f"{title}" if title else "",
        f"recordings: {n}   kept: {int(kept.sum())}   excluded: {int(ex.sum())}",
        f"total duration {qc['duration_s'].sum():.1f} s, kept {qc['remaining_s'].sum():.1f} s, "
        f"cut {qc['cut_start_s'].sum() + qc['cut_end_s'].sum():.1f} s",
        f"edges cut automatically: {int(((qc['start_source'] == 'auto') & (qc['cut_start_s'] > 0)).sum())} start, "
        f"{int(((qc['end_source'] == 'auto') & (qc['cut_end_s'] > 0)).sum())} end; manual: "
        f"{int((qc['start_source'] == 'manual').sum())} start, {int((qc['end_source'] == 'manual').sum())} end",
        "reasons: " + (", ".join(f"{k} {v}" for k, v in reasons.items()) or "none"),
        f"clipping > 0.1 %: {int((qc['clipped_fraction'] > 1e-3).sum())} recordings "
        f"(max {100 * qc['clipped_fraction'].max():.2f} %)",
    ]
    for _, r in qc[ex].head(8).iterrows():
        lines.append(f"excluded {r['recording_id']}: {r['exclusion_reason']}")
    a3.text(0, 1, "\n".join(l for l in lines if l), va="top", ha="left", fontsize=9, family="monospace",
            wrap=True)

    if len(examples):
        from .cohort import read_cohort

        cohort = read_cohort(subjects_tsv, recordings_tsv, check_files=False)
        for k, (_, r) in enumerate(examples.iterrows()):
            a = fig.add_subplot(gs[3 + k, 1])
            rec = cohort.load(r["recording_id"], min_duration_s=0.0)
            x = rec.samples
            step = max(1, int(rec.fs // 4000))
            t = np.arange(0, x.shape[0], step) / rec.fs
            a.plot(t, x[::step], lw=0.4, color="black")
            if r["cut_start_s"] > 0:
                a.axvspan(0, r["cut_start_s"], color=COLORS[r["start_source"]] if r["start_source"] in COLORS
                          else COLORS["auto"], alpha=0.25)
            if r["cut_end_s"] > 0:
                a.axvspan(r["duration_s"] - r["cut_end_s"], r["duration_s"],
                          color=COLORS[r["end_source"]] if r["end_source"] in COLORS else COLORS["auto"], alpha=0.25)
            why = "/".join(s for s in (r["auto_start_reason"], r["auto_end_reason"]) if isinstance(s, str) and s)
            a.set_title(f"{r['recording_id']} ({r['diagnosis']}): cut {r['cut_start_s']:.2f} s + "
                        f"{r['cut_end_s']:.2f} s [{why or 'manual'}]", fontsize=9)
            a.set_ylabel("µV"); a.set_xlim(0, r["duration_s"])
        a.set_xlabel("time (s)")
    fig.suptitle(f"Artifact trimming QC{': ' + title if title else ''}")
    Path(out_png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
