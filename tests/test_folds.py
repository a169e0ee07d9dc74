"""Folds: patient-level, disjoint, stratified, every subject tested once per repeat; leakage is caught."""
import re

import numpy as np
import pandas as pd
import pytest

from nemg.external import external_split
from nemg.folds import (EXTERNAL_SCHEME, FoldError, LeakageError, RunId, check_leakage, external_run_id, make_folds,
                        parse_run_id, replicate_id, run_id, run_id_regex)


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


def test_more_outer_folds_than_patients_in_a_class_is_an_error():
    # 3 myopathy patients cannot fill 5 test folds: two would have no myopathy patient
    with pytest.raises(FoldError, match=r"class 'myopathy' has 3 patients but folds\.nested\.outer is 5: 2 test "
                                        r"folds would have no myopathy patient; set folds\.nested\.outer to at most 3"):
        make_folds(cohort(20, 3, 19), seeds=[0], schemes=["nested"], outer=5, inner=3)
    with pytest.raises(FoldError, match=r"class 'neuropathy' has 1 patient but folds\.repeated_kfold\.k is 2"):
        make_folds(cohort(4, 4, 1), seeds=[0], schemes=["repeated_kfold"], k=2)
    # every class at least as large as the folds is fine
    folds = make_folds(cohort(5, 5, 5), seeds=[0], schemes=["nested", "repeated_kfold"], outer=5, inner=3, k=5)
    test = folds[folds.role == "test"].drop_duplicates(["scheme", "outer", "subject_id"])
    assert (test.groupby(["scheme", "outer"])["diagnosis"].nunique() == 3).all()


def test_more_inner_folds_than_patients_left_in_a_class_is_an_error():
    # 2 per class with outer 2: one patient of each class is left for 2 validation folds
    with pytest.raises(FoldError, match=r"class 'myopathy' has 2 patients: with folds\.nested\.outer = 2 as few as "
                                        r"1 are left for the inner split, but folds\.nested\.inner is 2"):
        make_folds(cohort(4, 2, 4), seeds=[0], schemes=["nested"], outer=2, inner=2)


def test_ci_sized_cohort_keeps_every_class_in_every_fold():
    """configs/ci.yaml: 4 patients per class, nested 2 x 2 and repeated 2-fold."""
    folds = make_folds(cohort(4, 4, 4), seeds=[0], schemes=["nested", "repeated_kfold"], outer=2, inner=2, k=2)
    check_leakage(folds)
    for role in ("test", "val"):
        per_run = folds[folds.role == role].groupby("run_id")["diagnosis"].nunique()
        assert (per_run == 3).all(), role


def test_class_size_check_is_exact(monkeypatch):
    """The check refuses exactly the settings whose folds would miss a class (neither too strict nor too lax)."""
    import nemg.folds as nf

    def classless_folds(df):
        folds = nf.make_folds(df, seeds=[0, 1], schemes=["nested"], outer=outer, inner=inner)
        return any((folds[folds.role == role].groupby("run_id")["diagnosis"].nunique() < 3).any()
                   for role in ("test", "val"))

    for n in range(2, 8):
        for outer in (2, 3, 4):
            for inner in (2, 3):
                df = cohort(8, n, 8)
                try:
                    nf.make_folds(df, seeds=[0], schemes=["nested"], outer=outer, inner=inner)
                    refused = False
                except FoldError as exc:
                    assert "class 'myopathy'" in str(exc)
                    refused = True
                with monkeypatch.context() as m:
                    m.setattr(nf, "_check_class_sizes", lambda *a, **k: None)
                    assert classless_folds(df) == refused, (n, outer, inner)


# ------------------------------------------------------------------------------------------------ run ids
def test_run_ids_round_trip_for_every_scheme(folds):
    """Each run id parses back to the coordinates of its folds-table rows and formats back to itself."""
    ext = external_split(cohort(), seeds=[0, 3, 11], val_fraction=0.2)
    for table in (folds, ext):
        runs = table.drop_duplicates("run_id")
        for row in runs.itertuples():
            parsed = parse_run_id(row.run_id)
            assert parsed == RunId(row.scheme, row.seed, row.repeat, row.outer, row.inner)
            assert run_id(*parsed) == row.run_id
    assert set(folds["scheme"]) | set(ext["scheme"]) == {"nested", "repeated_kfold", EXTERNAL_SCHEME}
    assert external_run_id(3) == "ext_s3" and parse_run_id("ext_s3") == RunId(EXTERNAL_SCHEME, 3, 0, 0, 0)
    assert run_id(*parse_run_id("nested_s10_o4_i12")) == "nested_s10_o4_i12"


@pytest.mark.parametrize("bad", ["", "nested", "nested_s0_o1", "nested_s0_o1_i2_x", "nested_s01_o0_i0", "rkfold_s0_o0",
                                 "rkfold_s0_r0_o0_i0", "ext_s", "ext_s-1", "ext_s0_o0", "Nested_s0_o0_i0",
                                 "nested_s0_o0_i0 ", "external_s0"])
def test_bad_run_id_names_itself(bad):
    with pytest.raises(ValueError, match=re.escape(f"{bad!r} is not a run id")):
        parse_run_id(bad)
    assert not re.fullmatch(run_id_regex(), bad)


def test_run_id_refuses_coordinates_no_id_can_hold():
    with pytest.raises(ValueError, match="nested runs have {'repeat': 0}; got {'repeat': 1}"):
        run_id("nested", 0, 1, 0, 0)  # the id has no repeat field: repeat 1 would be silently lost
    with pytest.raises(ValueError, match="unknown fold scheme 'kfold'"):
        run_id("kfold", 0, 0, 0, -1)
    with pytest.raises(ValueError, match="must be >= 0"):
        run_id("repeated_kfold", -1, 0, 0, -1)


def test_run_id_regex_matches_exactly_the_ids_of_its_schemes(folds):
    rx = run_id_regex("nested", "repeated_kfold")
    assert re.compile(rx).groups == 0  # Snakemake wraps a constraint in its own named group
    assert all(re.fullmatch(rx, r) for r in folds["run_id"].unique())
    assert not re.fullmatch(rx, "ext_s0")
    assert re.fullmatch(run_id_regex(EXTERNAL_SCHEME), "ext_s0")
    assert not re.fullmatch(run_id_regex(EXTERNAL_SCHEME), "nested_s0_o0_i0")


def test_replicate_ids_key_runs_of_one_seed_and_repeat(folds):
    from nemg.evaluate import replicate_of

    rep = replicate_of(folds)
    assert rep["nested_s1_o4_i2"] == replicate_id("nested", 1, 0) == "nested_s1_r0"
    assert rep["rkfold_s2_r1_o3"] == "repeated_kfold_s2_r1"
    assert rep.nunique() == 3 + 3 * 2
