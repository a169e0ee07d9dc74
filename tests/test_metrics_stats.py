"""Metrics and statistics against scikit-learn / scipy / statsmodels and hand-worked cases."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from sklearn import metrics as skm

from nemg.labels import CLASSES
from nemg.metrics import (auc_table, bootstrap_ci, classification_metrics, confusion, metric_fn, per_class_metrics,
                          summarize_runs)
from nemg.stats import (compare_categorical, compare_continuous, fleiss_kappa, mcnemar_paired,
                        paired_bootstrap_diff, table1)


def test_hand_worked_confusion_and_macro_metrics():
    y = ["normal"] * 4 + ["myopathy"] * 3 + ["neuropathy"] * 3
    p = ["normal", "normal", "normal", "myopathy", "myopathy", "myopathy", "normal",
         "neuropathy", "neuropathy", "myopathy"]
    cm = confusion(y, p)
    assert cm.tolist() == [[3, 1, 0], [1, 2, 0], [0, 1, 2]]
    pc = per_class_metrics(y, p).set_index("class")
    # normal: tp 3, fp 1, fn 1, tn 5
    assert pc.loc["normal", "precision"] == pytest.approx(3 / 4)
    assert pc.loc["normal", "recall"] == pytest.approx(3 / 4)
    assert pc.loc["normal", "specificity"] == pytest.approx(5 / 6)
    # myopathy: tp 2, fp 2, fn 1, tn 5
    assert pc.loc["myopathy", "specificity"] == pytest.approx(5 / 7)
    m = classification_metrics(y, p)
    assert m["accuracy"] == pytest.approx(0.7)
    assert m["precision"] == pytest.approx(skm.precision_score(y, p, average="macro", labels=list(CLASSES)))
    assert m["recall"] == pytest.approx(skm.recall_score(y, p, average="macro", labels=list(CLASSES)))
    assert m["f1"] == pytest.approx(skm.f1_score(y, p, average="macro", labels=list(CLASSES)))
    assert m["specificity"] == pytest.approx(np.mean([5 / 6, 5 / 7, 7 / 7]))


def test_random_cases_match_sklearn():
    rng = np.random.default_rng(3)
    for _ in range(20):
        y = rng.choice(CLASSES, 30)
        p = rng.choice(CLASSES, 30)
        m = classification_metrics(y, p)
        assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, p))
        for name, fn in (("precision", skm.precision_score), ("recall", skm.recall_score), ("f1", skm.f1_score)):
            assert m[name] == pytest.approx(fn(y, p, average="macro", labels=list(CLASSES), zero_division=0))
        assert (confusion(y, p) == skm.confusion_matrix(y, p, labels=list(CLASSES))).all()


def test_auc_matches_sklearn():
    rng = np.random.default_rng(4)
    y = rng.choice(CLASSES, 60)
    s = rng.dirichlet(np.ones(3), 60)
    t = auc_table(y, s).set_index("class")
    for i, c in enumerate(CLASSES):
        yb = (y == c).astype(int)
        assert t.loc[c, "roc_auc"] == pytest.approx(skm.roc_auc_score(yb, s[:, i]))
        assert t.loc[c, "pr_auc"] == pytest.approx(skm.average_precision_score(yb, s[:, i]))


def test_summarize_runs_t_interval():
    df = pd.DataFrame({"accuracy": [0.8, 0.9, 0.85, 0.75, 0.95]})
    row = summarize_runs(df).iloc[0]
    lo, hi = sps.t.interval(0.95, 4, loc=0.85, scale=sps.sem(df["accuracy"]))
    assert row["mean"] == pytest.approx(0.85) and row["median"] == pytest.approx(0.85)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((lo, hi))


def test_bootstrap_ci_brackets_the_estimate_and_is_seeded():
    y = ["normal"] * 10 + ["myopathy"] * 10 + ["neuropathy"] * 10
    p = y[:20] + ["normal"] * 10
    est, lo, hi = bootstrap_ci(y, p, metric_fn("accuracy"), n_boot=500, seed=1)
    assert est == pytest.approx(2 / 3) and lo < est < hi
    assert bootstrap_ci(y, p, metric_fn("accuracy"), n_boot=500, seed=1) == (est, lo, hi)
    # scipy's percentile bootstrap on the same statistic lands close
    res = sps.bootstrap((np.array(y) == np.array(p),), np.mean, n_resamples=2000, method="percentile",
                        random_state=0)
    assert lo == pytest.approx(res.confidence_interval.low, abs=0.07)


def test_continuous_test_choice():
    rng = np.random.default_rng(0)
    normal_groups = [rng.normal(50, 10, 40), rng.normal(55, 10, 40), rng.normal(60, 10, 40)]
    r = compare_continuous(normal_groups)
    assert r["test"] == "one-way ANOVA"
    assert r["p"] == pytest.approx(sps.f_oneway(*normal_groups).pvalue)
    skewed = [rng.exponential(1, 40), rng.exponential(2, 40), rng.exponential(1, 40)]
    r = compare_continuous(skewed)
    assert r["test"] == "Kruskal-Wallis"
    assert r["p"] == pytest.approx(sps.kruskal(*skewed).pvalue)


def test_table1_matches_scipy():
    rng = np.random.default_rng(1)
    rows = []
    for c, n, pf, age in (("normal", 20, 0.65, 60), ("myopathy", 19, 0.74, 52), ("neuropathy", 19, 0.63, 58)):
        for i in range(n):
            rows.append({"subject_id": f"{c}{i}", "diagnosis": c, "sex": "F" if rng.random() < pf else "M",
                         "age": float(np.clip(rng.normal(age, 17), 18, 90))})
    subj = pd.DataFrame(rows)
    t = table1(subj).set_index("variable")
    ct = pd.crosstab(subj["diagnosis"], subj["sex"])
    chi2 = sps.chi2_contingency(ct.to_numpy(), correction=False)
    assert t.loc["female, n (%)", "p"] == pytest.approx(chi2.pvalue)
    nf = int(((subj.diagnosis == "normal") & (subj.sex == "F")).sum())
    assert t.loc["female, n (%)", "normal"] == f"{nf} ({100 * nf / 20:.1f}%)"
    groups = [subj.loc[subj.diagnosis == c, "age"] for c in CLASSES]
    expected = compare_continuous(groups)
    assert t.loc["age, mean (SD)", "p"] == pytest.approx(expected["p"])
    a = subj.loc[subj.diagnosis == "myopathy", "age"]
    assert t.loc["age, mean (SD)", "myopathy"] == f"{a.mean():.1f} ({a.std(ddof=1):.1f})"


def test_categorical_hand_worked():
    # 2x2 with expected counts all 10: chi2 = 4 * (5^2/10) = 10
    r = compare_categorical(pd.DataFrame([[15, 5], [5, 15]]))
    assert r["statistic"] == pytest.approx(10.0)


def test_mcnemar_hand_worked():
    a = [True] * 10 + [True] * 6 + [False] * 1 + [False] * 3
    b = [True] * 10 + [False] * 6 + [True] * 1 + [False] * 3
    r = mcnemar_paired(a, b)
    assert (r["a_only"], r["b_only"]) == (6, 1)
    # exact: two-sided binomial p for 1 of 7 discordant pairs
    assert r["p"] == pytest.approx(sps.binomtest(1, 7, 0.5).pvalue)


def test_paired_bootstrap_difference():
    a = np.array([1] * 18 + [0] * 2, bool)
    b = np.array([1] * 10 + [0] * 10, bool)
    r = paired_bootstrap_diff(a, b, n_boot=1000, seed=0)
    assert r["diff"] == pytest.approx(0.4) and r["ci_low"] > 0 and r["p"] < 0.05


def test_paired_bootstrap_p_is_floored_at_its_resolution():
    # A right on every patient, B on none: every resampled difference is 1, so no draw falls on B's side
    a, b = np.ones(30, bool), np.zeros(30, bool)
    for n_boot in (99, 2000):
        r = paired_bootstrap_diff(a, b, n_boot=n_boot, seed=0)
        assert r["p"] == pytest.approx(1 / (n_boot + 1)) and r["p"] > 0
    # a difference of zero stays p = 1 (not above it)
    assert paired_bootstrap_diff(a, a, n_boot=200, seed=0)["p"] == 1.0


def test_fleiss_kappa_wikipedia_example():
    # the worked example of Fleiss (1971) as reproduced on Wikipedia uses 5 categories; here a 3-class case
    # checked against statsmodels' own aggregate_raters path
    from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa as fk

    rng = np.random.default_rng(2)
    labels = pd.DataFrame(rng.choice(CLASSES, (15, 6)))
    codes = labels.replace({c: i for i, c in enumerate(CLASSES)}).to_numpy(int)
    table, _ = aggregate_raters(codes, n_cat=3)
    assert fleiss_kappa(labels) == pytest.approx(fk(table))
    perfect = pd.DataFrame([[c] * 6 for c in CLASSES * 3])
    assert fleiss_kappa(perfect) == pytest.approx(1.0)


def test_vectorised_metrics_equal_the_per_sample_ones():
    """metrics_from_confusion over many confusion matrices at once gives exactly classification_metrics' floats,
    including draws where a class is never predicted (precision 0 by convention) or absent."""
    from nemg.metrics import cell_counts, confusion_cells, metrics_from_confusion

    rng = np.random.default_rng(7)
    y = rng.choice(CLASSES, size=(50, 9))
    p = np.where(rng.random((50, 9)) < 0.6, y, rng.choice(CLASSES[:2], size=(50, 9)))  # neuropathy rarely predicted
    cells = np.stack([confusion_cells(a, b) for a, b in zip(y, p)])
    got = metrics_from_confusion(cell_counts(cells))
    for i in range(50):
        want = classification_metrics(y[i], p[i])
        assert (cell_counts(cells[i]) == confusion(y[i], p[i])).all()
        for k in ("accuracy", "precision", "recall", "specificity", "f1"):
            assert got[k][i] == want[k]
    with pytest.raises(ValueError, match="labels outside"):
        confusion_cells(["normal"], ["unknown"])
