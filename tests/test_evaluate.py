"""Evaluation stage: consensus calls, bootstrap, Table 2 / S2 Table and failure analysis on a fabricated run set."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nemg import evaluate as ev
from nemg.labels import CLASSES, METRICS
from nemg.metrics import classification_metrics, summarize_runs


@pytest.fixture(scope="module")
def fabricated():
    """2 outer folds x 2 inner runs of 12 patients; segment scores lean towards the truth."""
    rng = np.random.default_rng(0)
    subjects = pd.DataFrame({"subject_id": [f"P{i:02d}" for i in range(12)],
                             "diagnosis": [CLASSES[i % 3] for i in range(12)]})
    recordings = pd.DataFrame({"recording_id": [f"P{i:02d}_{k}" for i in range(12) for k in range(2)],
                               "subject_id": [f"P{i:02d}" for i in range(12) for _ in range(2)],
                               "location": ["proximal", "distal"] * 12})
    folds, preds, seg = [], [], 0
    for outer in range(2):
        test = subjects["subject_id"][outer::2].tolist()
        rest = [s for s in subjects["subject_id"] if s not in test]
        for inner in range(2):
            run = f"nested_s0_o{outer}_i{inner}"
            val = rest[inner::2]
            for sid in subjects["subject_id"]:
                role = "test" if sid in test else "val" if sid in val else "train"
                folds.append({"scheme": "nested", "seed": 0, "repeat": 0, "outer": outer, "inner": inner,
                              "run_id": run, "subject_id": sid, "role": role})
                if role == "train":
                    continue
                truth = CLASSES.index(subjects.set_index("subject_id").loc[sid, "diagnosis"])
                for rec in (f"{sid}_0", f"{sid}_1"):
                    for _ in range(3):
                        p = rng.dirichlet(np.ones(3))
                        p[truth] += 0.4
                        p /= p.sum()
                        preds.append({"run_id": run, "segment": seg, "recording_id": rec, "subject_id": sid,
                                      "role": role, "p_normal": p[0], "p_myopathy": p[1], "p_neuropathy": p[2]})
                        seg += 1
    return subjects, recordings, pd.DataFrame(folds), pd.DataFrame(preds)


def test_patient_predictions_and_consensus(fabricated):
    subjects, recordings, folds, preds = fabricated
    pp = ev.patient_predictions(preds, subjects, recordings)
    # 4 runs x 2 methods x 2 location variants x 6 test patients
    assert len(pp) == 4 * 2 * 2 * 6
    cons = ev.consensus(pp, ev.replicate_of(folds))
    # every patient exactly once per replicate and variant, from the 2 runs that tested it
    assert cons.groupby(ev.VARIANT)["subject_id"].apply(lambda s: s.is_unique and len(s) == 12).all()
    assert (cons["n_runs"] == 2).all()
    one = pp[(pp.subject_id == "P00") & (pp.method == "argmax") & (~pp.with_location)]
    row = cons[(cons.subject_id == "P00") & (cons.method == "argmax") & (~cons.with_location)].iloc[0]
    assert row["p_normal"] == pytest.approx(one["p_normal"].mean())


def test_bootstrap_point_estimate_and_table2(fabricated):
    subjects, recordings, folds, preds = fabricated
    pp = ev.patient_predictions(preds, subjects, recordings)
    cons = ev.consensus(pp, ev.replicate_of(folds))
    boot = ev.bootstrap_consensus(cons, n_boot=200, seed=1)
    sel = cons[(cons.method == "logreg") & (~cons.with_location)]
    direct = classification_metrics(sel["diagnosis"], sel["predicted"])
    b = boot[(boot.method == "logreg") & (~boot.with_location)].set_index("metric")
    for k in METRICS:
        assert b.loc[k, "estimate"] == pytest.approx(direct[k])
        assert b.loc[k, "boot_low"] <= b.loc[k, "estimate"] + 1e-12 <= b.loc[k, "boot_high"] + 1e-12
    per_run = ev.per_run_metrics(pp)
    physicians = pd.DataFrame({"rater_id": ["R1", "R2", "R3", "mean"], "accuracy": [0.5, 0.6, 0.7, 0.6],
                               "precision": [0.5] * 4, "recall": [0.5] * 4, "specificity": [0.7] * 4, "f1": [0.5] * 4})
    t2 = ev.table2(per_run, boot, "logreg", physicians).set_index("metric")
    runs = per_run[(per_run.method == "logreg") & (~per_run.with_location)]
    s = summarize_runs(runs, ["accuracy"]).iloc[0]
    assert t2.loc["accuracy", "model_mean_ci_runs"] == f"{s['mean']:.3f} ({s['ci_low']:.3f}-{s['ci_high']:.3f})"
    assert t2.loc["accuracy", "physicians_median_raters"] == 0.6  # the "mean" row is not a rater
    s2 = ev.s2_table(per_run, boot, cons)
    assert len(s2) == 4 and s2["location_vs_none_mcnemar_p"].between(0, 1).all()


def test_single_class_fit_set_is_skipped_not_guessed(fabricated, caplog):
    subjects, recordings, folds, preds = fabricated
    p = preds.copy()
    # make the first run's validation patients all myopathic: its logistic regression cannot be fit
    val = p[(p.run_id == "nested_s0_o0_i0") & (p.role == "val")]["subject_id"].unique()
    subj = subjects.copy()
    subj.loc[subj.subject_id.isin(val), "diagnosis"] = "myopathy"
    pp = ev.patient_predictions(p, subj, recordings)
    run0 = pp[pp.run_id == "nested_s0_o0_i0"]
    assert set(run0["method"]) == {"argmax"}
    assert "skipped" in caplog.text


def test_failure_analysis_counts_unanimous_errors():
    pp = pd.DataFrame({"run_id": ["a", "b", "a", "b"], "subject_id": ["X", "X", "Y", "Y"],
                       "diagnosis": ["normal", "normal", "myopathy", "myopathy"],
                       "predicted": ["myopathy", "neuropathy", "myopathy", "normal"],
                       "method": "logreg", "with_location": False})
    diagnosis = pd.Series({"X": "normal", "Y": "myopathy", "Z": "neuropathy"})
    calls = pd.DataFrame({"R1": ["normal", "normal", "myopathy"], "R2": ["myopathy", "normal", "normal"]},
                         index=["X", "Y", "Z"])
    fail = ev.failure_analysis(pp, calls, diagnosis, "logreg")
    assert fail[fail.arm == "model (all runs)"]["subject_id"].tolist() == ["X"]
    assert fail[fail.arm == "physicians (all raters)"]["subject_id"].tolist() == ["Y", "Z"]
    summary = ev.failure_summary(fail, diagnosis, True).set_index("arm")
    assert summary.loc["both", "unanimously_misclassified"] == 0
    assert summary.loc["physicians (all raters)", "neuropathy"] == 1


def test_evaluate_arm_is_per_run_consensus_and_bootstrap(fabricated):
    """The one evaluation every arm gets (nEMGNet, baselines, external): the three tables, as the parts make them."""
    subjects, recordings, folds, preds = fabricated
    pp = ev.patient_predictions(preds, subjects, recordings)
    arm = ev.evaluate_arm(pp, ev.replicate_of(folds), n_boot=30, seed=3)
    assert list(arm) == ["per_run", "consensus", "bootstrap"]
    cons = ev.consensus(pp, ev.replicate_of(folds))
    pd.testing.assert_frame_equal(arm["per_run"], ev.per_run_metrics(pp))
    pd.testing.assert_frame_equal(arm["consensus"], cons)
    pd.testing.assert_frame_equal(arm["bootstrap"], ev.bootstrap_consensus(cons, n_boot=30, seed=3))


def test_evaluate_arm_with_one_replicate_key_pools_every_run(fabricated):
    """External validation: every seed's model tests every patient, and their consensus is one call per patient."""
    subjects, recordings, folds, preds = fabricated
    pp = ev.patient_predictions(preds, subjects, recordings)
    arm = ev.evaluate_arm(pp, "external", n_boot=20)
    cons = arm["consensus"]
    assert set(cons["replicate"]) == {"external"}
    assert cons.groupby(ev.VARIANT)["subject_id"].apply(lambda s: s.is_unique and len(s) == 12).all()
    assert set(arm["bootstrap"]["n_replicates"]) == {1} and set(arm["bootstrap"]["n_patients"]) == {12}
    one_key = pd.Series("external", index=sorted(pp["run_id"].unique()))
    pd.testing.assert_frame_equal(cons, ev.consensus(pp, one_key))


def test_vectorised_bootstrap_draws_the_same_resamples_as_a_per_draw_loop(fabricated):
    """bootstrap_consensus scores all draws at once; every quantile must equal the straightforward loop's (one
    rng.integers call and one classification_metrics per replicate and draw), bit for bit, with two replicates."""
    subjects, recordings, folds, preds = fabricated
    pp = ev.patient_predictions(preds, subjects, recordings)
    cons = ev.consensus(pp, ev.replicate_of(folds))
    second = cons.assign(replicate=cons["replicate"] + "_b")
    flip = second.index[::5]  # another replicate that differs in some calls
    second.loc[flip, "predicted"] = [CLASSES[(CLASSES.index(p) + 1) % 3] for p in second.loc[flip, "predicted"]]
    cons = pd.concat([cons, second], ignore_index=True)
    boot = ev.bootstrap_consensus(cons, n_boot=300, seed=4)
    for (method, loc), g in cons.groupby(["method", "with_location"]):
        reps = {r: gg.set_index("subject_id") for r, gg in g.groupby("replicate")}
        patients = sorted(set.intersection(*(set(v.index) for v in reps.values())))
        rng = np.random.default_rng(4)
        draws = []
        for _ in range(300):
            idx = rng.integers(0, len(patients), len(patients))
            ms = [classification_metrics(v.loc[patients, "diagnosis"].to_numpy()[idx],
                                         v.loc[patients, "predicted"].to_numpy()[idx]) for v in reps.values()]
            draws.append({k: float(np.mean([m[k] for m in ms])) for k in METRICS})
        b = boot[(boot.method == method) & (boot.with_location == loc)].set_index("metric")
        for k in METRICS:
            v = np.array([d[k] for d in draws])
            alpha = (1 - 0.95) / 2  # as the function computes it (not the literal 0.025: one bit apart)
            assert b.loc[k, "boot_low"] == float(np.quantile(v, alpha))
            assert b.loc[k, "boot_high"] == float(np.quantile(v, 1 - alpha))
            assert b.loc[k, "n_replicates"] == 2
