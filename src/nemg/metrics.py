"""Classification metrics as the study reports them.

Precision, recall (sensitivity), specificity and F1 are computed one-vs-rest per class and then
macro-averaged; ROC and precision-recall curves are per class, one-vs-rest. Summaries across runs give mean,
median and a 95 % CI; the patient-level bootstrap resamples patients, the unit the study diagnoses.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .labels import CLASSES, METRICS


def confusion(y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str] = CLASSES) -> np.ndarray:
    """Counts with true classes as rows and predicted classes as columns, in ``classes`` order."""
    idx = {c: i for i, c in enumerate(classes)}
    unknown = (set(y_true) | set(y_pred)) - set(idx)
    if unknown:
        raise ValueError(f"labels outside {list(classes)}: {sorted(unknown)}")
    cm = np.zeros((len(classes), len(classes)), dtype=int)
    for t, p in zip(y_true, y_pred, strict=True):
        cm[idx[t], idx[p]] += 1
    return cm


def _safe_div(a: float, b: float) -> float:
    # a class never predicted has undefined precision; scoring it 0 (as scikit-learn's zero_division=0) keeps
    # the macro average comparable across runs instead of silently averaging over fewer classes
    return float(a / b) if b else 0.0


def per_class_metrics(y_true, y_pred, classes: Sequence[str] = CLASSES) -> pd.DataFrame:
    """One-vs-rest precision, recall, specificity, F1 and support per class."""
    cm = confusion(y_true, y_pred, classes)
    total = cm.sum()
    rows = []
    for i, c in enumerate(classes):
        tp = cm[i, i]
        fn = cm[i].sum() - tp
        fp = cm[:, i].sum() - tp
        tn = total - tp - fn - fp
        precision = _safe_div(tp, tp + fp)
        recall = _safe_div(tp, tp + fn)
        rows.append({
            "class": c,
            "precision": precision,
            "recall": recall,
            "specificity": _safe_div(tn, tn + fp),
            "f1": _safe_div(2 * precision * recall, precision + recall),
            "support": int(cm[i].sum()),
        })
    return pd.DataFrame(rows)


def classification_metrics(y_true, y_pred, classes: Sequence[str] = CLASSES) -> dict[str, float]:
    """Accuracy plus macro-averaged one-vs-rest precision, recall, specificity and F1 (the study's Table 2)."""
    pcm = per_class_metrics(y_true, y_pred, classes)
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    out = {"accuracy": float(np.mean(y_true == y_pred)), "n": int(len(y_true))}
    for m in METRICS[1:]:  # every metric but accuracy is a macro average over the classes
        out[m] = float(pcm[m].mean())
    for _, row in pcm.iterrows():
        out[f"recall_{row['class']}"] = row["recall"]
    return out


def roc_curve_ovr(y_true, scores: np.ndarray, positive: int, classes: Sequence[str] = CLASSES):
    """ROC of one class against the rest: (fpr, tpr, auc)."""
    from sklearn.metrics import auc, roc_curve

    y = (np.asarray(y_true) == classes[positive]).astype(int)
    fpr, tpr, _ = roc_curve(y, scores[:, positive])
    return fpr, tpr, float(auc(fpr, tpr))


def pr_curve_ovr(y_true, scores: np.ndarray, positive: int, classes: Sequence[str] = CLASSES):
    """Precision-recall of one class against the rest: (recall, precision, average precision)."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    y = (np.asarray(y_true) == classes[positive]).astype(int)
    precision, recall, _ = precision_recall_curve(y, scores[:, positive])
    return recall, precision, float(average_precision_score(y, scores[:, positive]))


def auc_table(y_true, scores: np.ndarray, classes: Sequence[str] = CLASSES) -> pd.DataFrame:
    """Per-class ROC AUC and PR AUC (average precision); NaN for a class absent from ``y_true``."""
    rows = []
    present = set(y_true)
    for i, c in enumerate(classes):
        if c not in present or len(present) < 2:
            rows.append({"class": c, "roc_auc": np.nan, "pr_auc": np.nan})
            continue
        rows.append({"class": c, "roc_auc": roc_curve_ovr(y_true, scores, i, classes)[2],
                     "pr_auc": pr_curve_ovr(y_true, scores, i, classes)[2]})
    return pd.DataFrame(rows)


def summarize_runs(per_run: pd.DataFrame, metrics: Sequence[str] | None = None, level: float = 0.95) -> pd.DataFrame:
    """Mean, SD, median and a t-based CI of the mean of each metric across runs (the study's summary)."""
    metrics = list(metrics or [c for c in per_run.columns if per_run[c].dtype.kind == "f"])
    rows = []
    for m in metrics:
        v = per_run[m].dropna().to_numpy(float)
        n = len(v)
        mean = float(v.mean()) if n else np.nan
        sd = float(v.std(ddof=1)) if n > 1 else np.nan
        half = float(stats.t.ppf(0.5 + level / 2, n - 1) * sd / np.sqrt(n)) if n > 1 else np.nan
        rows.append({"metric": m, "n_runs": n, "mean": mean, "sd": sd, "median": float(np.median(v)) if n else np.nan,
                     "ci_low": mean - half, "ci_high": mean + half})
    return pd.DataFrame(rows)


def bootstrap_ci(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    statistic: Callable[[np.ndarray, np.ndarray], float],
    *,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """Point estimate and percentile bootstrap CI, resampling patients (rows) with replacement."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    rng = np.random.default_rng(seed)
    n = len(y_true)
    boots = np.empty(n_boot)
    for b in range(n_boot):
        idx = rng.integers(0, n, n)
        boots[b] = statistic(y_true[idx], y_pred[idx])
    alpha = (1 - level) / 2
    return float(statistic(y_true, y_pred)), float(np.quantile(boots, alpha)), float(np.quantile(boots, 1 - alpha))


def metric_fn(name: str) -> Callable[[np.ndarray, np.ndarray], float]:
    """A metric of :func:`classification_metrics` as a function of (y_true, y_pred), for the bootstrap."""
    return lambda t, p: classification_metrics(t, p)[name]
