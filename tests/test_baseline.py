"""The classical baseline (nemg.baseline): per-run fits on the folds table, predictions in the training
stage's format, and the side-by-side comparison with nEMGNet."""
import numpy as np
import pandas as pd
import pytest

from nemg import baseline as bl
from nemg import evaluate as ev
from nemg.features import extract_features, feature_names
from nemg.folds import check_leakage, make_folds
from nemg.labels import CLASSES, METRICS


def toy_cohort(n_per_class=4, recs=2, segs=6, n_feat=5, sep=3.0, seed=0):
    """A fabricated segment index + features whose class means differ by ``sep`` SDs, and nested folds."""
    rng = np.random.default_rng(seed)
    rows, feats, subjects, recordings = [], [], [], []
    for c, cls in enumerate(CLASSES):
        for s in range(n_per_class):
            sid = f"{cls[:3]}{s}"
            subjects.append({"subject_id": sid, "diagnosis": cls})
            for r in range(recs):
                rid = f"{sid}_m{r}"
                loc = ("proximal", "distal")[r % 2]
                recordings.append({"recording_id": rid, "subject_id": sid, "location": loc})
                for k in range(segs):
                    rows.append({"segment": len(rows), "recording_id": rid, "subject_id": sid, "diagnosis": cls,
                                 "location": loc, "muscle": "m", "offset_samples": 1000 * k})
                    mu = np.zeros(n_feat)
                    mu[c] = sep
                    feats.append(np.abs(rng.normal(mu, 1.0)) * 10)  # non-negative, like rates and amplitudes
    index = pd.DataFrame(rows)
    folds = make_folds(pd.DataFrame(subjects), seeds=[0], schemes=["nested"], outer=3, inner=2)
    check_leakage(folds)
    return np.array(feats), index, folds, pd.DataFrame(subjects), pd.DataFrame(recordings)


@pytest.mark.parametrize("model", bl.MODELS)
def test_predictions_format_roles_and_determinism(model):
    x, index, folds, *_ = toy_cohort()
    pred, timing = bl.baseline_predictions(x, index, folds, model, params={"rf_trees": 30})
    assert list(pred.columns) == bl.PREDICTION_COLUMNS
    assert set(pred["role"]) == {"val", "test"}
    assert sorted(pred["run_id"].unique()) == sorted(folds["run_id"].unique()) == sorted(timing["run_id"])
    np.testing.assert_allclose(pred[["p_normal", "p_myopathy", "p_neuropathy"]].sum(axis=1), 1.0, atol=1e-9)
    for run_id, g in pred.groupby("run_id"):
        roles = folds[folds.run_id == run_id].set_index("subject_id")["role"]
        # only the run's val / test patients, every one of their segments, with the run's role
        assert (g["subject_id"].map(roles) == g["role"]).all()
        expected = index[index["subject_id"].map(roles).isin(["val", "test"])]
        assert sorted(g["segment"]) == sorted(expected["segment"])
    again, _ = bl.baseline_predictions(x, index, folds, model, params={"rf_trees": 30})
    pd.testing.assert_frame_equal(pred, again)
    # baseline.threads only changes the speed: config.yaml's 1 thread gives the scores 2 threads gave
    two, _ = bl.baseline_predictions(x, index, folds, model, params={"rf_trees": 30}, n_jobs=2)
    pd.testing.assert_frame_equal(pred, two)


def test_logreg_fits_in_float64_whatever_the_feature_stores_dtype():
    # the stores are float32; a float32 fit stops at a thread-dependent point (external logreg scores differed
    # by 0.05 between 1 and 2 threads), so the CV and external paths must both fit the same float64 problem
    x, index, folds, *_ = toy_cohort()
    p32, _ = bl.baseline_predictions(x.astype(np.float32).astype(np.float64), index, folds, "logreg")
    f32, _ = bl.baseline_predictions(x.astype(np.float32), index, folds, "logreg")
    pd.testing.assert_frame_equal(f32, p32, check_exact=True)
    run = folds[folds["run_id"] == folds["run_id"].iloc[0]]
    split = run[run["role"] != "test"].assign(scheme="external")  # training cohort: the run's train + val patients
    own = index["subject_id"].isin(split["subject_id"]).to_numpy()
    x32 = x.astype(np.float32)
    ext = bl.baseline_external_predictions(x32[own], index[own], x32[~own], index[~own], split, "logreg")
    ext64 = bl.baseline_external_predictions(x32[own].astype(np.float64), index[own],
                                             x32[~own].astype(np.float64), index[~own], split, "logreg")
    pd.testing.assert_frame_equal(ext, ext64, check_exact=True)


@pytest.mark.parametrize("model", bl.MODELS)
def test_learns_a_separable_toy_problem_and_votes(model):
    x, index, folds, subjects, recordings = toy_cohort(sep=4.0)
    pred, _ = bl.baseline_predictions(x, index, folds, model, params={"rf_trees": 30})
    truth = pred["segment"].map(index.set_index("segment")["diagnosis"])
    called = np.array(CLASSES)[pred[["p_normal", "p_myopathy", "p_neuropathy"]].to_numpy().argmax(axis=1)]
    assert (called == truth.to_numpy()).mean() > 0.95
    # the unchanged divide-and-vote takes the baseline's predictions as it takes nEMGNet's
    pp = ev.patient_predictions(pred, subjects, recordings)
    per_run = ev.per_run_metrics(pp)
    assert per_run.loc[per_run.method == "argmax", "accuracy"].min() == 1.0
    assert set(pp["subject_id"]) == set(subjects["subject_id"])


def test_training_patients_are_scored_only_on_request_and_never_leak():
    x, index, folds, *_ = toy_cohort()
    run = folds[folds.run_id == folds.run_id.iloc[0]]
    pred = bl.run_predictions(x, index, run, "logreg", predict_train=True)
    assert set(pred["role"]) == {"train", "val", "test"}
    # a features row that changes for the test patients only does not change the fit (test never enters it)
    test_rows = index["subject_id"].isin(run.loc[run.role == "test", "subject_id"]).to_numpy()
    x2 = x.copy()
    x2[test_rows] = 0.0
    a = bl.run_predictions(x, index, run, "rf", params={"rf_trees": 20})
    b = bl.run_predictions(x2, index, run, "rf", params={"rf_trees": 20})
    keep = a["role"] == "val"
    pd.testing.assert_frame_equal(a[keep], b[keep])
    with pytest.raises(ValueError, match="unknown baseline model"):
        bl.make_classifier("svm", 0)


def test_end_to_end_from_a_segment_store(tmp_path):
    rng = np.random.default_rng(0)
    _, index, folds, *_ = toy_cohort(n_per_class=3, recs=1, segs=4)
    amp = index["diagnosis"].map({"normal": 100.0, "myopathy": 40.0, "neuropathy": 400.0}).to_numpy()
    segs = (rng.normal(0, 1, (len(index), 4000)) * amp[:, None]).astype(np.float32)
    np.save(tmp_path / "segments.npy", segs)
    index.to_csv(tmp_path / "segments_index.tsv", sep="\t", index=False)
    folds.to_csv(tmp_path / "folds.tsv", sep="\t", index=False)
    extract_features(tmp_path / "segments.npy", tmp_path / "features.npy", tmp_path / "names.txt")
    pred = bl.write_baseline_predictions(tmp_path / "features.npy", tmp_path / "names.txt",
                                         tmp_path / "segments_index.tsv", tmp_path / "folds.tsv", "logreg",
                                         tmp_path / "logreg" / "predictions.tsv", out_timing=tmp_path / "t.tsv")
    back = ev.read_predictions([tmp_path / "logreg" / "predictions.tsv"])
    assert list(back.columns) == bl.PREDICTION_COLUMNS and len(back) == len(pred)
    assert len(feature_names()) == np.load(tmp_path / "features.npy").shape[1]


def test_comparison_table_and_paired_tests():
    x, index, folds, subjects, recordings = toy_cohort(sep=1.0, n_per_class=5)
    arms, cons = {}, {}
    rep = ev.replicate_of(folds)
    for model in bl.MODELS:
        pred, _ = bl.baseline_predictions(x, index, folds, model, params={"rf_trees": 20})
        pp = ev.patient_predictions(pred, subjects, recordings)
        cons[model] = ev.consensus(pp, rep)
        arms[model] = (ev.per_run_metrics(pp), ev.bootstrap_consensus(cons[model], n_boot=50))
    table = bl.model_comparison(arms, "logreg")
    assert list(table["metric"]) == list(METRICS)
    assert {"logreg_mean_ci_runs", "rf_consensus_bootstrap"} <= set(table.columns)
    tests = bl.paired_model_tests(cons, "logreg", "logreg", n_boot=50)
    assert len(tests) == 1 and tests.loc[0, "n_patients"] == 15
    assert 0 <= tests.loc[0, "mcnemar_p"] <= 1
    # against itself: no discordant pair, p = 1
    same = bl.paired_model_tests({"a": cons["rf"], "b": cons["rf"]}, "a", "logreg", n_boot=50)
    assert same.loc[0, "mcnemar_p"] == 1.0 and same.loc[0, "difference"] == 0
    pc = bl.per_class_recall(cons, "logreg")
    assert list(pc["arm"]) == list(bl.MODELS)


def test_single_class_training_set_predicts_that_class():
    import numpy as np
    import pandas as pd

    from nemg.baseline import run_predictions

    index = pd.DataFrame({"segment": range(6), "recording_id": ["a", "a", "b", "b", "c", "c"],
                          "subject_id": ["A", "A", "B", "B", "C", "C"],
                          "diagnosis": ["neuropathy", "neuropathy", "neuropathy", "neuropathy", "normal", "normal"]})
    run = pd.DataFrame({"run_id": "r", "seed": 0, "subject_id": ["A", "B", "C"], "role": ["train", "val", "test"]})
    out = run_predictions(np.random.default_rng(0).normal(size=(6, 4)), index, run, "logreg")
    assert set(out["role"]) == {"val", "test"}
    assert (out["p_neuropathy"] == 1.0).all() and (out["p_normal"] == 0.0).all()


def test_a_bundled_logreg_scores_as_the_fitted_one():
    """The model bundle's combined arm keeps the QEMG logistic regression as JSON numbers: applied with numpy it
    gives the probabilities run_predictions wrote for the same run, and a wrong feature count is refused."""
    x, index, folds, *_ = toy_cohort()
    run = folds[folds["run_id"] == folds["run_id"].iloc[0]]
    clf = bl.fit_run_logreg(x, index, run)
    d = bl.logreg_to_dict(clf)
    assert len(d["mean"]) == len(d["scale"]) == x.shape[1] and np.asarray(d["coef"]).shape == (3, x.shape[1])
    written = bl.run_predictions(x, index, run, "logreg")
    scored = index["segment"].isin(written["segment"]).to_numpy()
    np.testing.assert_allclose(bl.logreg_probs(d, x[scored]), written[list(ev.PROB_COLS)].to_numpy(), rtol=1e-10,
                               atol=1e-12)
    with pytest.raises(ValueError, match="cannot score features of shape"):
        bl.logreg_probs(d, x[:, :-1])
    one_class = run.assign(role=np.where(run["subject_id"].str.startswith("nor"), "train", "val"))
    with pytest.raises(ValueError, match="needs every class"):
        bl.fit_run_logreg(x, index, one_class)
