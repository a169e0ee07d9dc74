"""Statistics of the study: Table 1 tests, paired model-vs-physician comparisons, inter-rater agreement."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .labels import CLASSES


def compare_continuous(groups: Sequence[np.ndarray], alpha: float = 0.05) -> dict:
    """Shapiro-Wilk in every group decides the test: one-way ANOVA when all look normal, else Kruskal-Wallis.

    Shapiro-Wilk needs >= 3 values per group; a smaller group counts as "not shown normal", which sends the
    comparison to the rank test (the conservative choice for tiny groups).
    """
    groups = [np.asarray(g, float)[~np.isnan(np.asarray(g, float))] for g in groups]
    groups = [g for g in groups if len(g)]
    if len(groups) < 2:
        return {"test": "none (fewer than two groups with data)", "statistic": np.nan, "p": np.nan,
                "shapiro_p_min": np.nan}
    shapiro = [stats.shapiro(g).pvalue if len(g) >= 3 and np.ptp(g) > 0 else 0.0 for g in groups]
    if min(shapiro) > alpha:
        res = stats.f_oneway(*groups)
        name = "one-way ANOVA"
    else:
        res = stats.kruskal(*groups)
        name = "Kruskal-Wallis"
    return {"test": name, "statistic": float(res.statistic), "p": float(res.pvalue), "shapiro_p_min": float(min(shapiro))}


def compare_categorical(table: pd.DataFrame) -> dict:
    """Pearson chi-squared test of independence on a contingency table (no continuity correction)."""
    obs = table.to_numpy()
    obs = obs[obs.sum(axis=1) > 0][:, obs.sum(axis=0) > 0]
    if obs.shape[0] < 2 or obs.shape[1] < 2:
        return {"test": "none (a single category)", "statistic": np.nan, "p": np.nan}
    chi2, p, dof, _ = stats.chi2_contingency(obs, correction=False)
    return {"test": "Pearson chi-squared", "statistic": float(chi2), "p": float(p), "dof": int(dof)}


def table1(subjects: pd.DataFrame, classes: Sequence[str] = CLASSES) -> pd.DataFrame:
    """Demographics per class (n (%) for sex, mean (SD) for age) with the test and p-value per variable."""
    classes = [c for c in classes if c in set(subjects["diagnosis"])]
    by = {c: subjects[subjects["diagnosis"] == c] for c in classes}
    rows = [{"variable": "subjects, n", **{c: str(len(by[c])) for c in classes}, "test": "", "p": np.nan}]
    sex = subjects["sex"].where(subjects["sex"].notna(), None)
    if sex.notna().any():
        ct = pd.crosstab(subjects["diagnosis"], subjects["sex"]).reindex(index=classes, fill_value=0)
        res = compare_categorical(ct)
        for level in ("F", "M"):
            if level not in ct.columns:
                continue
            cells = {}
            for c in classes:
                known = by[c]["sex"].notna().sum()
                k = int((by[c]["sex"] == level).sum())
                cells[c] = f"{k} ({100 * k / known:.1f}%)" if known else "n/a"
            label = {"F": "female, n (%)", "M": "male, n (%)"}[level]
            rows.append({"variable": label, **cells, "test": res["test"] if level == "F" else "",
                         "p": res["p"] if level == "F" else np.nan})
    age = pd.to_numeric(subjects["age"], errors="coerce")
    if age.notna().any():
        res = compare_continuous([age[subjects["diagnosis"] == c].to_numpy() for c in classes])
        cells = {}
        for c in classes:
            a = age[subjects["diagnosis"] == c].dropna()
            cells[c] = f"{a.mean():.1f} ({a.std(ddof=1):.1f})" if len(a) > 1 else (f"{a.mean():.1f}" if len(a) else "n/a")
        rows.append({"variable": "age, mean (SD)", **cells, "test": res["test"], "p": res["p"]})
    return pd.DataFrame(rows)


def mcnemar_paired(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> dict:
    """McNemar's test on the same patients: does A get different patients right than B?

    Exact binomial version when there are fewer than 25 discordant pairs (the usual rule), chi-squared otherwise.
    """
    from statsmodels.stats.contingency_tables import mcnemar

    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    if a.shape != b.shape:
        raise ValueError(f"paired test needs the same patients: {a.shape} vs {b.shape}")
    table = np.array([[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]])
    discordant = table[0, 1] + table[1, 0]
    exact = discordant < 25
    res = mcnemar(table, exact=exact, correction=not exact)
    return {"test": "McNemar exact" if exact else "McNemar chi-squared", "a_only": int(table[0, 1]),
            "b_only": int(table[1, 0]), "statistic": float(res.statistic), "p": float(res.pvalue)}


def paired_bootstrap_diff(correct_a, correct_b, *, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> dict:
    """Accuracy difference A - B with a percentile CI from resampling patients (pairs kept together).

    The two-sided p-value is floored at 1 / (n_boot + 1): when every draw falls on one side of zero the bootstrap
    only shows that p is below its resolution, not that it is 0.
    """
    a, b = np.asarray(correct_a, float), np.asarray(correct_b, float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), (n_boot, len(a)))
    diffs = a[idx].mean(axis=1) - b[idx].mean(axis=1)
    alpha = (1 - level) / 2
    # two-sided p: how often the resampled difference falls on the other side of zero
    p = float(min(1.0, max(2 * min(np.mean(diffs <= 0), np.mean(diffs >= 0)), 1.0 / (n_boot + 1))))
    return {"diff": float(a.mean() - b.mean()), "ci_low": float(np.quantile(diffs, alpha)),
            "ci_high": float(np.quantile(diffs, 1 - alpha)), "p": p}


def fleiss_kappa(labels: pd.DataFrame, classes: Sequence[str] = CLASSES) -> float:
    """Fleiss' kappa for a subjects x raters table of labels (every rater rates every subject)."""
    from statsmodels.stats.inter_rater import fleiss_kappa as _fk

    if labels.isna().any().any():
        raise ValueError("Fleiss' kappa needs every rater to rate every subject; the ratings table has gaps")
    counts = np.stack([(labels == c).sum(axis=1).to_numpy() for c in classes], axis=1)
    return float(_fk(counts, method="fleiss"))
