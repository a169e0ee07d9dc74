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
    return cell_counts(confusion_cells(y_true, y_pred, classes), len(classes))


def confusion_cells(y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str] = CLASSES) -> np.ndarray:
    """Each sample's confusion-matrix cell as one integer, ``true * K + predicted`` (see :func:`cell_counts`)."""
    idx = {c: i for i, c in enumerate(classes)}
    unknown = (set(y_true) | set(y_pred)) - set(idx)
    if unknown:
        raise ValueError(f"labels outside {list(classes)}: {sorted(unknown)}")
    return np.array([idx[t] * len(classes) + idx[p] for t, p in zip(y_true, y_pred, strict=True)], dtype=np.int64)


def cell_counts(cells: np.ndarray, n_classes: int = len(CLASSES)) -> np.ndarray:
    """Confusion matrices ``[..., K, K]`` from cell codes ``[..., n]`` (:func:`confusion_cells`)."""
    cells = np.asarray(cells)
    k2 = n_classes * n_classes
    lead = cells.shape[:-1]
    offsets = np.arange(int(np.prod(lead, dtype=int))).reshape(lead + (1,)) * k2
    counts = np.bincount((cells + offsets).ravel(), minlength=int(np.prod(lead, dtype=int)) * k2)
    return counts.reshape(lead + (n_classes, n_classes))


def _div0(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # a class never predicted has undefined precision; scoring it 0 (as scikit-learn's zero_division=0) keeps
    # the macro average comparable across runs instead of silently averaging over fewer classes
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    out = np.zeros(np.broadcast(a, b).shape)
    np.divide(a, b, out=out, where=b != 0)
    return out


def ovr_from_confusion(cm: np.ndarray) -> dict[str, np.ndarray]:
    """One-vs-rest precision, recall, specificity and F1 per class of confusion matrices ``[..., K, K]``.

    The one home of the formulas: :func:`per_class_metrics` uses it for one matrix, the patient bootstrap for
    thousands at once (``[n_boot, K, K]``); each entry is the same float either way.
    """
    cm = np.asarray(cm)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    support = cm.sum(axis=-1)
    predicted = cm.sum(axis=-2)
    total = cm.sum(axis=(-2, -1))[..., None]
    fn, fp = support - tp, predicted - tp
    tn = total - tp - fn - fp
    precision, recall = _div0(tp, tp + fp), _div0(tp, tp + fn)
    return {"precision": precision, "recall": recall, "specificity": _div0(tn, tn + fp),
            "f1": _div0(2 * precision * recall, precision + recall), "support": support}


def per_class_metrics(y_true, y_pred, classes: Sequence[str] = CLASSES) -> pd.DataFrame:
    """One-vs-rest precision, recall, specificity, F1 and support per class."""
    m = ovr_from_confusion(confusion(y_true, y_pred, classes))
    return pd.DataFrame({"class": list(classes), **{k: m[k] for k in ("precision", "recall", "specificity", "f1")},
                         "support": m["support"].astype(int)})


def metrics_from_confusion(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy and the macro-averaged METRICS of confusion matrices ``[..., K, K]`` (vectorised
    :func:`classification_metrics`: the same numbers, one per matrix)."""
    cm = np.asarray(cm)
    n = cm.sum(axis=(-2, -1))
    out = {"accuracy": _div0(np.trace(cm, axis1=-2, axis2=-1), n)}
    ovr = ovr_from_confusion(cm)
    for m in METRICS[1:]:
        out[m] = ovr[m].mean(axis=-1)
    return out


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
