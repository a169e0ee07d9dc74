"""Figures a reviewer asks for next (issue 15): training curves, calibration, every patient's probabilities,
external confusion matrices and one recording's segment timeline.

Each figure has a computation part (plain functions on arrays / DataFrames, unit-tested) and a drawing part
(returns a matplotlib figure; :func:`nemg.plots.save` writes it). Nothing here knows about Snakemake.

Patient probabilities are the evaluation stage's consensus probabilities (``patient_consensus.tsv``: per
replicate of the protocol, the mean over the runs that tested the patient, after the stage-2 classifier).
"""
from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from .folds import parse_run_id  # noqa: E402
from .labels import CLASS_INDEX, CLASSES, PROB_COLS  # noqa: E402
from .metrics import confusion  # noqa: E402
from .plots import PALETTE  # noqa: E402  (also sets the seaborn theme of every study figure)

MODEL_NAMES = {"nemgnet": "nEMGNet", "logreg": "QEMG + logistic regression", "rf": "QEMG + random forest"}


def model_name(key: str) -> str:
    return MODEL_NAMES.get(key, key)


def primary_variant(consensus: pd.DataFrame, method: str, source: str = "consensus") -> pd.DataFrame:
    """The rows of one stage-2 method without muscle location (the study's primary variant) of a
    ``patient_consensus.tsv``; ``with_location`` may have been read as bool or as text."""
    with_loc = consensus["with_location"].map(lambda v: str(v).strip().lower() in ("true", "1", "yes"))
    sel = consensus[(consensus["method"] == method) & ~with_loc]
    if sel.empty:
        raise ValueError(f"{source}: no consensus rows for stage-2 method {method!r} without location")
    return sel


def read_primary_variant(path: str, method: str) -> pd.DataFrame:
    """:func:`primary_variant` of a ``patient_consensus.tsv`` file (errors name the file)."""
    return primary_variant(pd.read_csv(path, sep="\t", dtype={"subject_id": str}), method, str(path))


def _finish(fig, handles, ncol: int, title: str | None, bottom: float):
    """Legend under the panels, the title, despined axes and a layout that leaves the legend its strip."""
    fig.legend(handles=handles, loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    sns.despine(fig)
    fig.tight_layout(rect=(0, bottom, 1, 1))
    return fig


def _note_page(title: str, detail: str = ""):
    """A figure that says why there is nothing to draw (an empty figure would look like a bug)."""
    fig, ax = plt.subplots(figsize=(8, 2.6))
    ax.axis("off")
    ax.text(0.5, 0.62, title, ha="center", va="center", fontsize=14, weight="bold")
    if detail:
        ax.text(0.5, 0.3, "\n".join(textwrap.wrap(detail, 90)), ha="center", va="center", fontsize=9, color="0.3")
    return fig


# ====================================================================================== training curves

def curve_panel(run_id: str) -> tuple[str, str]:
    """(panel title, line label) of a run: one panel per outer (test) fold, one line per inner fold.

    A repeated k-fold run has no inner fold, so it is alone in its panel; any other run (external validation's,
    or an id nemg.folds.run_id did not make) gets a panel of its own named by its id.
    """
    try:
        r = parse_run_id(run_id)
    except ValueError:
        return run_id, run_id
    if r.scheme == "nested":
        return f"nested, seed {r.seed}, outer fold {r.outer}", f"inner {r.inner}"
    if r.scheme == "repeated_kfold":
        return f"k-fold, seed {r.seed}, repeat {r.repeat}, fold {r.outer}", "no validation"
    return run_id, run_id


def kept_checkpoint(curve: pd.DataFrame) -> dict:
    """Where the model that nemg.train kept (best.pt) comes from, read back from its curve.tsv.

    nemg.train keeps the FIRST evaluation with the highest validation accuracy (a later tie does not replace
    it) and stops after ``patience`` evaluations without a better one; a run without validation patients keeps
    its final weights.
    """
    need = {"update", "train_loss", "val_acc"}
    if not need <= set(curve.columns):
        raise ValueError(f"training curve: missing column(s) {sorted(need - set(curve.columns))}")
    if curve.empty:
        raise ValueError("training curve: no evaluations")
    last = int(curve["update"].iloc[-1])
    acc = pd.to_numeric(curve["val_acc"], errors="coerce")
    if acc.isna().all():
        return {"kept_update": last, "kept_val_acc": float("nan"), "last_update": last, "has_val": False,
                "n_evaluations": len(curve)}
    i = int(np.nanargmax(acc.to_numpy()))  # the first maximum, as train.py's strict ">" keeps
    return {"kept_update": int(curve["update"].iloc[i]), "kept_val_acc": float(acc.iloc[i]), "last_update": last,
            "has_val": True, "n_evaluations": len(curve)}


def curve_summary(curves: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per run: its panel, the kept checkpoint, where training ended, the last training loss."""
    rows = []
    for run_id, c in curves.items():
        panel, line = curve_panel(run_id)
        rows.append({"run_id": run_id, "panel": panel, "line": line, **kept_checkpoint(c),
                     "final_train_loss": float(c["train_loss"].iloc[-1])})
    return pd.DataFrame(rows)


def training_curves_figure(curves: Mapping[str, pd.DataFrame], *, title: str = "", max_cols: int = 5):
    """Per outer fold: training loss (top) and validation accuracy (bottom) per update of each of its runs;
    a star and a dotted line mark the kept checkpoint (best validation accuracy), a cross where training ended.
    """
    if not curves:
        return _note_page("No training curves", "this run trained no cross-validation models")
    summary = curve_summary(curves).set_index("run_id")
    panels = list(dict.fromkeys(summary["panel"]))
    n_cols = min(max_cols, len(panels))
    n_rows = -(-len(panels) // n_cols)
    fig, axes = plt.subplots(2 * n_rows, n_cols, figsize=(3.4 * n_cols, 4.6 * n_rows), squeeze=False,
                             sharex="col")
    colors = sns.color_palette("dark", 8)
    for k, panel in enumerate(panels):
        ax_loss, ax_acc = axes[2 * (k // n_cols), k % n_cols], axes[2 * (k // n_cols) + 1, k % n_cols]
        runs = summary.index[summary["panel"] == panel]
        for j, run_id in enumerate(sorted(runs)):
            c, s, color = curves[run_id], summary.loc[run_id], colors[j % len(colors)]
            # markers: a tiny cohort's run may have a single evaluation, which a bare line would not show
            ax_loss.plot(c["update"], c["train_loss"], color=color, lw=1.2, marker="o", ms=2.5, label=s["line"])
            ax_loss.axvline(s["kept_update"], color=color, ls=":", lw=1)
            ax_acc.axvline(s["kept_update"], color=color, ls=":", lw=1)
            if s["has_val"]:
                ax_acc.plot(c["update"], c["val_acc"], color=color, lw=1.2, marker="o", ms=2.5)
                ax_acc.plot([s["kept_update"]], [s["kept_val_acc"]], marker="*", ms=11, color=color, mec="k",
                            mew=0.5, ls="none")
                if s["last_update"] != s["kept_update"]:
                    ax_acc.plot([s["last_update"]], [c["val_acc"].iloc[-1]], marker="x", ms=6, color=color,
                                ls="none")
            else:
                ax_acc.text(0.5, 0.5, "no validation patients:\nfinal weights kept", transform=ax_acc.transAxes,
                            ha="center", va="center", fontsize=8, color="0.4")
        ax_loss.set_title(panel, fontsize=9)
        ax_loss.legend(fontsize=7, loc="upper right")
        ax_acc.set_ylim(0, 1)
        ax_acc.set_xlabel("update")
        if k % n_cols == 0:
            ax_loss.set_ylabel("training loss")
            ax_acc.set_ylabel("validation accuracy\n(segments)")
    for k in range(len(panels), n_rows * n_cols):
        axes[2 * (k // n_cols), k % n_cols].axis("off")
        axes[2 * (k // n_cols) + 1, k % n_cols].axis("off")
    handles = [Line2D([], [], marker="*", ms=11, color="0.3", mec="k", ls="none", label="kept checkpoint (best.pt)"),
               Line2D([], [], marker="x", color="0.3", ls="none", label="last evaluation (training stopped)")]
    return _finish(fig, handles, 2, title, 0.04)


# ========================================================================================== calibration

def one_hot(y_true: Sequence[str], classes: Sequence[str] = CLASSES) -> np.ndarray:
    y = np.asarray(y_true, dtype=object)
    unknown = sorted(set(y) - set(classes))
    if unknown:
        raise ValueError(f"unknown class label(s) {unknown}; expected {list(classes)}")
    return (y[:, None] == np.asarray(classes, dtype=object)[None, :]).astype(float)


def brier_score(y_true: Sequence[str], probs: np.ndarray) -> float:
    """Multi-class Brier score: mean over patients of sum over classes of (p - 1[class is true])^2.

    0 is perfect, 2 the worst; a constant 1/3 for every class scores 2/3 whatever the truth.
    """
    p = np.asarray(probs, dtype=float)
    return float(np.mean(np.sum((p - one_hot(y_true)) ** 2, axis=1)))


def class_brier_scores(y_true: Sequence[str], probs: np.ndarray) -> dict[str, float]:
    """One-vs-rest Brier score per class (mean (p_c - 1[class c])^2); they sum to the multi-class score."""
    sq = (np.asarray(probs, dtype=float) - one_hot(y_true)) ** 2
    return {c: float(sq[:, i].mean()) for i, c in enumerate(CLASSES)}


def reliability_bins(y_true: Sequence[str], probs: np.ndarray, class_index: int, n_bins: int = 5) -> pd.DataFrame:
    """One-vs-rest reliability of one class: equal-width bins of its predicted probability.

    Bin b holds probabilities in [b/n, (b+1)/n) (the last bin also holds 1.0). Per bin: the number of patients,
    their mean predicted probability and the fraction that truly has the class (NaN for an empty bin).
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    p = np.asarray(probs, dtype=float)[:, class_index]
    hit = one_hot(y_true)[:, class_index]
    b = np.clip(np.floor(p * n_bins + 1e-9).astype(int), 0, n_bins - 1)  # 1e-9: 0.6 * 5 is 2.9999999999999996
    rows = []
    for k in range(n_bins):
        m = b == k
        rows.append({"class": CLASSES[class_index], "bin": k, "lower": k / n_bins, "upper": (k + 1) / n_bins,
                     "n": int(m.sum()), "mean_predicted": float(p[m].mean()) if m.any() else float("nan"),
                     "observed": float(hit[m].mean()) if m.any() else float("nan")})
    return pd.DataFrame(rows)


def expected_calibration_error(bins: pd.DataFrame) -> float:
    """Patient-weighted mean |observed - mean predicted| over the non-empty bins of one reliability table."""
    b = bins[bins["n"] > 0]
    return float((b["n"] * (b["observed"] - b["mean_predicted"]).abs()).sum() / b["n"].sum())


def calibration_tables(models: Mapping[str, tuple[Sequence[str], np.ndarray]], n_bins: int = 5
                       ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(reliability bins, summary) of every model: label -> (true classes, probabilities in CLASSES order).

    The summary has the Brier score (multi-class and per class), the expected calibration error per class and
    averaged, accuracy of the argmax call and mean confidence (the called class's probability): a confidence
    above the accuracy is over-confidence, below it under-confidence.
    """
    bins, rows = [], []
    for name, (y, p) in models.items():
        p = np.asarray(p, dtype=float)
        if len(y) == 0:
            raise ValueError(f"calibration of {name}: no patients")
        tables = [reliability_bins(y, p, i, n_bins).assign(model=name) for i in range(len(CLASSES))]
        bins += tables
        ece = {c: expected_calibration_error(t) for c, t in zip(CLASSES, tables)}
        calls = np.asarray(CLASSES, dtype=object)[p.argmax(axis=1)]
        rows.append({"model": name, "n": len(y), "brier": brier_score(y, p),
                     **{f"brier_{c}": v for c, v in class_brier_scores(y, p).items()},
                     "ece_mean": float(np.mean(list(ece.values()))), **{f"ece_{c}": v for c, v in ece.items()},
                     "accuracy": float(np.mean(calls == np.asarray(y, dtype=object))),
                     "mean_confidence": float(p.max(axis=1).mean())})
    bins_df = pd.concat(bins, ignore_index=True)
    return bins_df[["model"] + [c for c in bins_df.columns if c != "model"]], pd.DataFrame(rows)


def calibration_figure(bins: pd.DataFrame, summary: pd.DataFrame, *, title: str = ""):
    """Reliability diagrams: one row per model, one column per class (one-vs-rest); each point a bin at
    (mean predicted, observed fraction) labelled with its number of patients, grey bars the same counts."""
    models = list(summary["model"])
    fig, axes = plt.subplots(len(models), len(CLASSES), figsize=(3.6 * len(CLASSES), 3.4 * len(models)),
                             squeeze=False)
    for r, name in enumerate(models):
        s = summary.set_index("model").loc[name]
        for i, c in enumerate(CLASSES):
            ax = axes[r, i]
            b = bins[(bins["model"] == name) & (bins["class"] == c)]
            counts = ax.twinx()
            counts.bar((b["lower"] + b["upper"]) / 2, b["n"], width=(b["upper"] - b["lower"]) * 0.9, color="0.85",
                       zorder=0)
            counts.set_ylim(0, max(1, b["n"].max()) * 3)  # the bars stay in the lower third, under the curve
            counts.set_yticks([])
            counts.grid(False)
            ax.set_zorder(counts.get_zorder() + 1)
            ax.patch.set_visible(False)
            ax.plot([0, 1], [0, 1], ls=":", color="grey", lw=1)
            full = b[b["n"] > 0]
            ax.plot(full["mean_predicted"], full["observed"], marker="o", color=PALETTE[c], lw=1.5)
            for _, row in full.iterrows():
                ax.annotate(f"{int(row['n'])}", (row["mean_predicted"], row["observed"]), textcoords="offset points",
                            xytext=(4, 4), fontsize=7)
            ax.set(xlim=(0, 1), ylim=(-0.03, 1.03))
            ax.set_title(f"{c}: Brier {s[f'brier_{c}']:.3f}, ECE {s[f'ece_{c}']:.3f}", fontsize=9)
            if r == len(models) - 1:
                ax.set_xlabel(f"predicted p({c})")
            if i == 0:
                ax.set_ylabel(f"{name}\nn = {int(s['n'])}, Brier {s['brier']:.3f}\nconfidence {s['mean_confidence']:.2f}"
                              f" / accuracy {s['accuracy']:.2f}\n\nobserved fraction", fontsize=8.5)
    if title:
        fig.suptitle(title, fontsize=10)
    sns.despine(fig, right=False)
    fig.tight_layout()
    return fig


# ================================================================================== per-patient view

def majority_calls(calls: pd.DataFrame) -> pd.DataFrame:
    """Per subject (rows of a subjects x raters table of labels): the physicians' majority call.

    ``physician_call`` is the most frequent label, or ``tie`` when two labels share the top count; ``n_agree``
    raters gave it, of ``n_raters`` who called the patient.
    """
    rows = []
    for sid, row in calls.iterrows():
        labels = row.dropna()
        if labels.empty:
            continue
        counts = labels.value_counts()
        top = counts[counts == counts.iloc[0]]
        rows.append({"subject_id": str(sid), "physician_call": top.index[0] if len(top) == 1 else "tie",
                     "n_agree": int(counts.iloc[0]), "n_raters": int(len(labels))})
    return pd.DataFrame(rows, columns=["subject_id", "physician_call", "n_agree", "n_raters"])


def patient_view_table(consensus: pd.DataFrame, majority: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per patient: consensus probabilities averaged over replicates, the call, whether it is wrong,
    and the physicians' majority call; ordered by true class (CLASSES order) then by the true class's
    probability, highest first (the hardest patients of a class at its right end).

    ``consensus`` holds one stage-2 variant (one method, with or without location), any number of replicates.
    """
    if consensus.empty:
        raise ValueError("per-patient view: no consensus predictions")
    if consensus.duplicated(["replicate", "subject_id"]).any():
        raise ValueError("per-patient view: more than one row per (replicate, patient); select one stage-2 variant")
    g = consensus.assign(subject_id=consensus["subject_id"].astype(str)).groupby(["subject_id", "diagnosis"])
    t = g[PROB_COLS].mean().join(g.size().rename("n_replicates")).reset_index()
    t["predicted"] = np.asarray(CLASSES, dtype=object)[t[PROB_COLS].to_numpy().argmax(axis=1)]
    t["wrong"] = t["predicted"] != t["diagnosis"]
    t["p_true"] = [r[f"p_{r['diagnosis']}"] for _, r in t.iterrows()]
    if majority is not None:
        t = t.merge(majority, on="subject_id", how="left")
        # a tie is no majority call: shown as such, not counted as wrong
        t["physician_wrong"] = t["physician_call"].notna() & (t["physician_call"] != "tie") \
            & (t["physician_call"] != t["diagnosis"])
    t = t.assign(_c=t["diagnosis"].map(CLASS_INDEX)).sort_values(["_c", "p_true", "subject_id"],
                                                            ascending=[True, False, True], kind="stable")
    return t.drop(columns="_c").reset_index(drop=True)


def patient_view_figure(table: pd.DataFrame, *, title: str = ""):
    """Stacked bars of each patient's three class probabilities (x: patients in table order), then strips for
    the true class, nEMGNet's call (red cross: wrong) and the physicians' majority call when present."""
    n = len(table)
    has_phys = "physician_call" in table.columns
    strips = ["true class", "nEMGNet call"] + (["physicians' majority"] if has_phys else [])
    fig = plt.figure(figsize=(max(8.0, 2.0 + (0.16 if n <= 80 else 0.1) * n), 5.2 + 0.3 * len(strips)))
    gs = fig.add_gridspec(2, 1, height_ratios=[4, 0.45 * len(strips)], hspace=0.05)
    ax, strip = fig.add_subplot(gs[0]), fig.add_subplot(gs[1])
    x = np.arange(n)
    bottom = np.zeros(n)
    for c in CLASSES:
        v = table[f"p_{c}"].to_numpy(float)
        ax.bar(x, v, bottom=bottom, width=0.85, color=PALETTE[c], label=f"p({c})", lw=0)
        bottom += v
    wrong = table["wrong"].to_numpy(bool)
    ax.plot(x[wrong], np.full(wrong.sum(), 1.04), marker="x", color="red", ls="none", ms=7, mew=2,
            label="nEMGNet misdiagnosis", clip_on=False)
    for k in range(1, len(CLASSES)):  # class boundaries along the sorted patients
        edge = np.searchsorted(table["diagnosis"].map(CLASS_INDEX).to_numpy(), k)
        if 0 < edge < n:
            ax.axvline(edge - 0.5, color="k", lw=1.2)
            strip.axvline(edge - 0.5, color="k", lw=1.2)
    ax.set(xlim=(-0.6, n - 0.4), ylim=(0, 1.08), ylabel="patient-level probability")
    ax.set_xticks([])
    extra = []
    if has_phys:
        extra = [Line2D([], [], marker="x", color="k", ls="none", ms=5, mew=1.4, label="physicians' majority wrong")]
        if (table["physician_call"] == "tie").any():
            extra.append(Patch(color="0.6", label="physicians tied"))
    handles, _ = ax.get_legend_handles_labels()
    ax.legend(handles=handles + extra, loc="lower right", bbox_to_anchor=(1, 1.03), ncol=6 if n > 40 else 3,
              fontsize=8, frameon=False)
    colors = {**PALETTE, "tie": "0.6"}
    rows = [table["diagnosis"], table["predicted"]] + ([table["physician_call"]] if has_phys else [])
    for r, labels in enumerate(rows):
        for i, lab in enumerate(labels):
            if isinstance(lab, str):
                strip.add_patch(plt.Rectangle((i - 0.45, r - 0.4), 0.9, 0.8, color=colors.get(lab, "0.6")))
        if r == 1:
            strip.plot(x[wrong], np.full(wrong.sum(), r), marker="x", color="red", ls="none", ms=6, mew=1.8)
        if r == 2:
            pw = table["physician_wrong"].to_numpy(bool)
            strip.plot(x[pw], np.full(pw.sum(), r), marker="x", color="k", ls="none", ms=5, mew=1.4)
    strip.set(xlim=(-0.6, n - 0.4), ylim=(len(rows) - 0.5, -0.5))
    strip.set_yticks(range(len(rows)), strips, fontsize=8)
    fs = 6 if n <= 80 else 4
    strip.set_xticks(x, table["subject_id"], rotation=90, fontsize=fs)
    strip.tick_params(length=0)
    for side in ("top", "right", "left", "bottom"):
        strip.spines[side].set_visible(False)
    if title:
        fig.suptitle(title, fontsize=10)
    sns.despine(ax=ax)
    return fig


# ================================================================================ external validation

def external_confusion_figure(panels: Mapping[tuple[str, str], tuple[Sequence[str], Sequence[str]]], *,
                              title: str = ""):
    """Confusion matrices of external validation: one row per test cohort, one column per model; each cell the
    row-normalised fraction and the count (rows: true class)."""
    if not panels:
        return _note_page("No external validation", "external.cohorts is empty in this run's config")
    tests = list(dict.fromkeys(t for t, _ in panels))
    models = list(dict.fromkeys(m for _, m in panels))
    fig, axes = plt.subplots(len(tests), len(models), figsize=(3.9 * len(models), 3.7 * len(tests)), squeeze=False)
    for r, test in enumerate(tests):
        for k, model in enumerate(models):
            ax = axes[r, k]
            if (test, model) not in panels:
                ax.axis("off")
                continue
            y, p = panels[(test, model)]
            cm = confusion(y, p).astype(float)
            shown = cm / cm.sum(axis=1, keepdims=True).clip(min=1)
            annot = np.array([[f"{shown[i, j]:.2f}\n({int(cm[i, j])})" for j in range(3)] for i in range(3)])
            sns.heatmap(shown, annot=annot, fmt="", cmap="Blues", vmin=0, vmax=1, cbar=False, xticklabels=CLASSES,
                        yticklabels=CLASSES, ax=ax, square=True, annot_kws={"fontsize": 8})
            acc = float(np.trace(cm) / cm.sum()) if cm.sum() else float("nan")
            ax.set_title(f"{model_name(model)}\naccuracy {acc:.2f} (n = {int(cm.sum())})", fontsize=9)
            ax.set_xlabel("predicted" if r == len(tests) - 1 else "")
            ax.set_ylabel(f"test: {test}\ntrue" if k == 0 else "")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


# =================================================================================== recording timeline

def recording_segments(predictions: pd.DataFrame, index: pd.DataFrame, recording_id: str,
                       run_id: str | None = None) -> pd.DataFrame:
    """Test-segment probabilities of one recording in time order: ``offset_samples`` and ``p_<class>``.

    ``run_id``: the run whose test patient it was (S4 Fig's run); None, or a run that did not test it, averages
    every run that tested the recording (as S4 Fig does).
    """
    test = predictions[(predictions["role"] == "test") & (predictions["recording_id"].astype(str) == recording_id)]
    own = test[test["run_id"] == run_id] if run_id is not None else test.iloc[0:0]
    use = own if len(own) else test
    if use.empty:
        raise ValueError(f"recording {recording_id}: no test-segment predictions")
    seg = use.groupby("segment", as_index=False)[PROB_COLS].mean()
    seg = seg.merge(index[["segment", "offset_samples"]], on="segment", how="left")
    if seg["offset_samples"].isna().any():
        raise ValueError(f"recording {recording_id}: segment(s) missing from the segment index")
    return seg.sort_values("offset_samples").reset_index(drop=True)


def recording_timeline_figure(items: Sequence[dict], fs_hz: float, window: int, *, title: str = ""):
    """Per item (one mispredicted patient): its recording's signal (top) and every test segment's class
    probabilities over time (bottom; each value at its window's centre, the recording's mean dashed: what
    divide-and-vote averages). Behind the signal, the hop-long stretch around each window's centre is tinted
    with that segment's most probable class (stronger = more confident); a dashed box marks the window that
    favoured the called class most (S4 Fig's segment).

    An item: ``signal`` (1-D array), ``segments`` (:func:`recording_segments`), ``subject_id``, ``diagnosis``,
    ``predicted``, ``confidence``, ``recording_id``, ``muscle``, ``location``, ``run_id``.
    """
    if not items:
        return _note_page("No mispredicted patients", "S4 Fig selected none, so there is no recording to show")
    fig, axes = plt.subplots(2 * len(items), 1, figsize=(12, 4.2 * len(items) + 0.4), squeeze=False,
                             gridspec_kw={"height_ratios": [1.3, 1] * len(items)})
    win_s = window / fs_hz
    for r, it in enumerate(items):
        ax_sig, ax_p = axes[2 * r, 0], axes[2 * r + 1, 0]
        sig = np.asarray(it["signal"], dtype=float)
        t = np.arange(len(sig)) / fs_hz
        seg = it["segments"]
        start = seg["offset_samples"].to_numpy(float) / fs_hz
        centre = start + win_s / 2
        steps = np.diff(start)
        hop = steps[steps > 0].min() if (steps > 0).any() else win_s
        probs = seg[PROB_COLS].to_numpy(float)
        for c0, k, conf in zip(centre, probs.argmax(axis=1), probs.max(axis=1)):
            # a top probability of 1/3 is no preference: untinted there, strongest at certainty
            ax_sig.axvspan(c0 - hop / 2, c0 + hop / 2, color=PALETTE[CLASSES[k]], lw=0,
                           alpha=0.05 + 0.45 * (conf - 1 / 3) / (2 / 3))
        pred = f"p_{it['predicted']}"
        top = int(seg[pred].to_numpy().argmax())
        lo, hi = (float(sig.min()), float(sig.max())) if len(sig) else (0.0, 1.0)
        ax_sig.add_patch(plt.Rectangle((start[top], lo), win_s, hi - lo, fill=False, ls="--", lw=1.2, ec="k"))
        ax_sig.plot(t, sig, color="0.15", lw=0.4)
        ax_sig.set_xlim(0, t[-1] if len(t) else 1)
        ax_sig.set_ylabel("µV")
        ax_sig.set_title(f"{it['subject_id']}: true {it['diagnosis']} → called {it['predicted']} "
                         f"(p {it['confidence']:.2f});  recording {it['recording_id']} ({it['muscle']}, "
                         f"{it['location']}), {len(seg)} test segments of run {it['run_id']}", fontsize=9)
        for c in CLASSES:
            v = seg[f"p_{c}"].to_numpy()
            ax_p.plot(centre, v, color=PALETTE[c], lw=1.8 if f"p_{c}" == pred else 1.0, marker="o", ms=2.5,
                      label=f"p({c})")
            ax_p.axhline(v.mean(), color=PALETTE[c], ls="--", lw=0.8)
        ax_p.set(xlim=ax_sig.get_xlim(), ylim=(0, 1), ylabel="segment p")
        ax_p.set_xlabel(f"time in the recording (s); each point a {win_s:g} s segment at its centre")
        ax_p.legend(fontsize=7, ncol=3, loc="lower right", bbox_to_anchor=(1, 0.98), frameon=False)
    handles = [Patch(color=PALETTE[c], alpha=0.45, label=f"segment favours {c}") for c in CLASSES]
    handles.append(Patch(fill=False, ls="--", ec="k", label="window favouring the call most (S4 Fig)"))
    return _finish(fig, handles, 4, title, 0.025)
