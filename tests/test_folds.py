"""Folds: patient-level, disjoint, stratified, every subject tested once per repeat; leakage is caught."""
import numpy as np
import pandas as pd
import pytest

from nemg.folds import FoldError, LeakageError, check_leakage, make_folds


def cohort(n_normal=20, n_myo=19, n_neuro=19):
    rows = [(f"{c[:3]}{i:02d}", c) for c, n in (("normal", n_normal), ("myopathy", n_myo),
                                                         ("neuropathy", n_neuro)) for i in range(n)]
    return pd.DataFrame(rows, columns=["subject_id", "diagnosis"])


@pytest.fixture(scope="module")
def folds():
    return make_folds(cohort(), seeds=[0, 1, 2], schemes=["nested", "repeated_kfold"], outer=5, inner=3, k=5,
                      repeats=2)


def test_shape_and_ids(folds):
    nested = folds[folds.scheme == "nested"]
    assert nested["run_id"].nunique() == 3 * 15
    assert folds[folds.scheme == "repeated_kfold"]["run_id"].nunique() == 3 * 2 * 5
    assert (folds.groupby("run_id").size() == 58).all()  # every subject has exactly one role per run
    assert "nested_s1_o4_i2" in set(folds.run_id) and "rkfold_s2_r1_o4" in set(folds.run_id)
    assert (folds.loc[folds.scheme == "repeated_kfold", "inner"] == -1).all()


def test_roles_disjoint_and_each_subject_tested_once_per_repeat(folds):
    check_leakage(folds)
    for _, g in folds.groupby(["scheme", "seed", "repeat", "inner"]):
        test = g[g.role == "test"]
        assert test["subject_id"].is_unique and set(test["subject_id"]) == set(g["subject_id"])


def test_stratified(folds):
    for _, g in folds[folds.role == "test"].groupby(["scheme", "seed", "repeat", "inner"]):
        per = g.drop_duplicates(["outer", "subject_id"]).groupby(["outer", "diagnosis"]).size().unstack()
        assert (per.max() - per.min() <= 1).all()  # each class within one subject across test folds
    val = folds[(folds.scheme == "nested") & (folds.role == "val")]
    for _, g in val.groupby(["seed", "outer"]):
        per = g.groupby(["inner", "diagnosis"]).size().unstack()
        assert (per.max() - per.min() <= 1).all()


def test_reproducible_and_seed_dependent():
    a = make_folds(cohort(), seeds=[7], schemes=["nested"])
    b = make_folds(cohort().sample(frac=1, random_state=3), seeds=[7], schemes=["nested"])
    pd.testing.assert_frame_equal(a, b)
    c = make_folds(cohort(), seeds=[8], schemes=["nested"])
    assert not np.array_equal(a["role"].to_numpy(), c["role"].to_numpy())


def test_planted_leak_is_caught(folds):
    leak = folds.copy()
    run = leak[(leak.run_id == "nested_s0_o0_i0") & (leak.role == "test")].iloc[0]
    extra = run.copy()
    extra["role"] = "train"
    leaked = pd.concat([leak, extra.to_frame().T], ignore_index=True)
    with pytest.raises(LeakageError, match=f"run nested_s0_o0_i0: subject {run.subject_id} appears 2 times"):
        check_leakage(leaked)
    swapped = folds.copy()
    i = swapped.index[(swapped.run_id == "rkfold_s0_r0_o1") & (swapped.role == "train")][0]
    swapped.loc[i, "role"] = "test"  # now tested twice in seed 0, repeat 0
    with pytest.raises(LeakageError, match="tested in more than one outer fold"):
        check_leakage(swapped)


def test_too_few_subjects():
    with pytest.raises(FoldError, match="too few"):
        make_folds(cohort(1, 1, 1), seeds=[0], schemes=["nested"], outer=5, inner=3)
