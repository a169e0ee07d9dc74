"""Divide-and-vote: averaging, the 1/3 imputation, and a stage-2 fit that never sees a test patient."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nemg.evaluate import patient_predictions
from nemg.vote import (combined_features, fit_locations, patient_features, patient_locations, signal_scores,
                       uninformed_patients, vote_run)


def _pred(rows):
    return pd.DataFrame(rows, columns=["run_id", "segment", "recording_id", "subject_id", "role",
                                       "p_normal", "p_myopathy", "p_neuropathy"])


def test_averaging_and_imputation():
    pred = _pred([
        ("r", 0, "a1", "A", "test", 0.8, 0.1, 0.1),
        ("r", 1, "a1", "A", "test", 0.6, 0.3, 0.1),   # signal a1 mean: 0.7 0.2 0.1
        ("r", 2, "a2", "A", "test", 0.1, 0.1, 0.8),   # signal a2 (distal)
        ("r", 3, "b1", "B", "test", 0.2, 0.7, 0.1),   # B has only a proximal signal
    ])
    sig = signal_scores(pred)
    assert sig.set_index("recording_id").loc["a1", "p_normal"] == pytest.approx(0.7)
    f3 = patient_features(sig).set_index("subject_id")
    # the patient mean is over signals, not segments: (0.7 + 0.1) / 2
    assert f3.loc["A", "f_normal"] == pytest.approx(0.4)
    loc = pd.Series({"a1": "proximal", "a2": "distal", "b1": "proximal"})
    f6 = patient_features(sig, loc, with_location=True).set_index("subject_id")
    assert f6.loc["A", "f_proximal_normal"] == pytest.approx(0.7)
    assert f6.loc["A", "f_distal_neuropathy"] == pytest.approx(0.8)
    for c in ("normal", "myopathy", "neuropathy"):
        assert f6.loc["B", f"f_distal_{c}"] == pytest.approx(1 / 3)


def _run(seed=0):
    rng = np.random.default_rng(seed)
    rows, diag = [], {}
    classes = ["normal", "myopathy", "neuropathy"]
    seg = 0
    for role, n in (("val", 12), ("test", 9)):
        for i in range(n):
            sid = f"{role}{i}"
            c = classes[i % 3]
            diag[sid] = c
            for r in range(2):
                p = rng.dirichlet(np.ones(3)) * 0.5
                p[classes.index(c)] += 0.5
                rows.append(("run", seg, f"{sid}_{r}", sid, role, *p))
                seg += 1
    return _pred(rows), pd.Series(diag)


@pytest.mark.parametrize("method", ["logreg", "argmax"])
def test_vote_run_predicts_test_patients_only(method):
    pred, diag = _run()
    out = vote_run(pred, diag, method=method)
    assert set(out["subject_id"]) == {f"test{i}" for i in range(9)}
    assert np.allclose(out[["p_normal", "p_myopathy", "p_neuropathy"]].sum(axis=1), 1)
    assert (out["predicted"] == out["diagnosis"]).mean() > 0.6


def test_stage2_never_sees_a_test_patient(monkeypatch):
    import nemg.vote as vote

    pred, diag = _run()
    seen = {}
    real_fit = vote.fit_stage2

    def spy(X, y, seed=0, class_weight=None, c=1.0):
        seen["n"] = len(X)
        return real_fit(X, y, seed, class_weight, c)

    monkeypatch.setattr(vote, "fit_stage2", spy)
    vote_run(pred, diag)
    assert seen["n"] == 12  # the 12 validation patients, none of the 9 test patients
    leaky = pred.copy()
    leaky.loc[leaky["subject_id"] == "test0", "role"] = "val"
    leaky = pd.concat([leaky, pred[pred["subject_id"] == "test0"]])
    with pytest.raises(AssertionError, match="stage-2 fit set contains test patients"):
        vote_run(leaky, diag)


def test_fit_on_train_needs_train_predictions():
    pred, diag = _run()
    with pytest.raises(ValueError, match="no 'train' predictions"):
        vote_run(pred, diag, fit_on="train")


def test_balanced_stage2_calls_a_rare_class():
    """Messekher-like skew: 2 normal vs 20 patients in the fit set, normal scores only mildly distinct. The
    unweighted logistic regression calls (almost) nobody normal; the balanced one recovers the normal patients."""
    rng = np.random.default_rng(3)
    classes = ["normal", "myopathy", "neuropathy"]
    rows, diag, seg = [], {}, 0
    plan = {"val": {"normal": 2, "myopathy": 10, "neuropathy": 10}, "test": {"normal": 6, "myopathy": 6, "neuropathy": 6}}
    for role, counts in plan.items():
        for c, n in counts.items():
            for i in range(n):
                sid = f"{role}_{c}{i}"
                diag[sid] = c
                p = rng.dirichlet(np.ones(3) * 4) * 0.8
                p[classes.index(c)] += 0.2
                rows.append(("run", seg, f"{sid}_r", sid, role, *p))
                seg += 1
    pred, diag = _pred(rows), pd.Series(diag)

    def normal_recall(class_weight):
        out = vote_run(pred, diag, class_weight=class_weight).set_index("subject_id")
        normal = out[out["diagnosis"] == "normal"]
        return (normal["predicted"] == "normal").mean()

    assert normal_recall(None) <= 1 / 6
    assert normal_recall("balanced") >= 0.5


def _noise_like(pred, seed):
    """The same segments with uninformative scores: a source that knows nothing."""
    rng = np.random.default_rng(seed)
    out = pred.copy()
    out[["p_normal", "p_myopathy", "p_neuropathy"]] = rng.dirichlet(np.ones(3), size=len(pred))
    return out


def test_combined_stage2_uses_the_informative_source():
    """The combined arm (issue 12, item 4): one stage 2 sees both sources' patient scores, so it calls the
    patients right when only the extra source carries the class, and the main source alone cannot."""
    informative, diag = _run(seed=1)
    noise = _noise_like(informative, seed=2)
    alone = vote_run(noise, diag)
    combined = vote_run(noise, diag, extra={"qemg": informative})
    assert (combined["predicted"] == combined["diagnosis"]).mean() >= 0.8
    assert (alone["predicted"] == alone["diagnosis"]).mean() < (combined["predicted"] == combined["diagnosis"]).mean()
    feats = combined_features(noise, {"qemg": informative})
    assert {"f_normal", "f_qemg_normal", "f_qemg_neuropathy"} <= set(feats.columns)
    # argmax of a combined arm averages the sources' class scores
    both = vote_run(informative, diag, method="argmax", extra={"same": informative})
    assert np.allclose(both[["p_normal", "p_myopathy", "p_neuropathy"]],
                       vote_run(informative, diag, method="argmax")[["p_normal", "p_myopathy", "p_neuropathy"]])


def test_combined_sources_must_score_the_same_patients():
    pred, diag = _run()
    partial = pred[pred["subject_id"] != "test0"]
    with pytest.raises(ValueError, match="scored by only one of the combined sources"):
        vote_run(pred, diag, extra={"qemg": partial})
    other_run = pred.assign(run_id="another")
    with pytest.raises(ValueError, match="no predictions from \\['qemg'\\]"):
        patient_predictions(pred, pd.DataFrame({"subject_id": diag.index, "diagnosis": diag.values}),
                            pd.DataFrame({"recording_id": pred["recording_id"].unique(), "location": "proximal"}),
                            extra={"qemg": other_run})


@pytest.mark.parametrize("classes", [("normal", "myopathy", "neuropathy"), ("normal", "neuropathy")])
def test_stage2_survives_json_exactly(classes):
    """A bundle's stage 2 (JSON numbers, no pickle) gives the very probabilities of the fitted model, also when
    its fit set held only two classes (sklearn then keeps one coefficient row)."""
    import json

    from nemg.vote import (fit_run_stage2, proba_in_class_order, stage2_from_dict, stage2_probs,
                           stage2_to_dict)

    pred, diag = _run(3)
    keep = set(diag[diag.isin(classes)].index)
    pred = pred[pred["subject_id"].isin(keep)]
    feats = patient_features(signal_scores(pred))
    model = fit_run_stage2(feats, diag, fit_on="val", seed=0)
    back = stage2_from_dict(json.loads(json.dumps(stage2_to_dict(model))))
    test = feats[feats["role"] == "test"]
    X = test[[c for c in feats.columns if c.startswith("f_")]].to_numpy(float)
    assert np.array_equal(stage2_probs(test, "logreg", back), proba_in_class_order(model, X))
    with pytest.raises(ValueError, match="do not fit"):
        stage2_from_dict({**stage2_to_dict(model), "intercept": [0.0] * 5})


def test_stage2_c_sets_the_penalty_and_a_weak_one_is_more_decisive():
    """evaluate.stage2_c reaches the logistic regression: on a handful of fit patients a strong penalty (C = 1, the
    released code's) keeps every call near the class priors, a weaker one follows the features."""
    pred, diag = _run(seed=4)
    val = pred["role"] == "val"
    small = pred[~val | pred["subject_id"].isin([f"val{i}" for i in range(6)])]  # 6 fit patients, 2 per class
    strong = vote_run(small, diag, c=1.0)
    weak = vote_run(small, diag, c=100.0)
    probs = ["p_normal", "p_myopathy", "p_neuropathy"]
    assert weak[probs].max(axis=1).mean() > strong[probs].max(axis=1).mean() + 0.1
    assert (weak["predicted"] == weak["diagnosis"]).mean() >= (strong["predicted"] == strong["diagnosis"]).mean()


def test_a_location_the_stage2_was_never_fit_on_is_named(caplog):
    """Validation patients all recorded proximally: the distal block of the 6-d features is a constant 1/3 in the
    fit, so a test patient recorded only distally gets the stage 2's prior. The vote says so in its log."""
    pred, diag = _run()
    # test0 and test1: every recording distal; test2: one of each; everyone else (all val patients) proximal
    loc = pd.Series({r: ("distal" if r.startswith(("test0_", "test1_")) or r == "test2_1" else "proximal")
                     for r in pred["recording_id"].unique()})
    assert fit_locations(pred, loc, "val") == {"proximal": 12, "distal": 0}
    where = patient_locations(pred, loc, "test")
    assert where["test0"] == {"distal"} and where["test2"] == {"proximal", "distal"}
    assert uninformed_patients(where, fit_locations(pred, loc, "val")) == {"test0": ["distal"], "test1": ["distal"]}
    assert uninformed_patients(where, {"proximal": 12, "distal": 1}) == {}
    with caplog.at_level("WARNING", logger="nemg.vote"):
        out = vote_run(pred, diag, loc, with_location=True)
    assert "run run: stage 2 with location was fit on no val patient recorded at distal" in caplog.text
    assert "patient(s) test0, test1 its prior" in caplog.text
    # the calls are still made (the with-location variant is one of the run's tables), and without location, or
    # with a fit set that has both locations, nothing is said
    assert len(out) == 9
    caplog.clear()
    with caplog.at_level("WARNING", logger="nemg.vote"):
        vote_run(pred, diag, loc, with_location=False)
        vote_run(pred, diag, loc.where(~loc.index.str.startswith("val0_"), "distal"), with_location=True)
    assert caplog.text == ""
