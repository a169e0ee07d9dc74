"""nemg.review_plots: the numbers behind the review figures (hand-made examples) and the figures themselves."""
import numpy as np
import pandas as pd
import pytest

from nemg.plots import save
from nemg.review_plots import (brier_score, calibration_tables, class_brier_scores, curve_panel, curve_summary,
                               expected_calibration_error, external_confusion_figure, kept_checkpoint,
                               majority_calls, patient_view_figure, patient_view_table, primary_variant,
                               recording_segments,
                               recording_timeline_figure, reliability_bins, training_curves_figure)


# ------------------------------------------------------------------------------------------------ calibration
def test_brier_score_by_hand():
    y = ["normal", "myopathy"]
    p = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]])
    # patient 1 perfect (0); patient 2: (0.5 - 0)^2 + (0.5 - 1)^2 + 0 = 0.5
    assert brier_score(y, p) == pytest.approx(0.25)
    per = class_brier_scores(y, p)
    assert per == pytest.approx({"normal": 0.125, "myopathy": 0.125, "neuropathy": 0.0})
    assert sum(per.values()) == pytest.approx(brier_score(y, p))
    # a constant 1/3 scores 2/3 whatever the truth; a confidently wrong call scores 2
    assert brier_score(["neuropathy"] * 4, np.full((4, 3), 1 / 3)) == pytest.approx(2 / 3)
    assert brier_score(["normal"], np.array([[0.0, 0.0, 1.0]])) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="unknown class label"):
        brier_score(["healthy"], np.array([[1.0, 0.0, 0.0]]))


def _probs(p_normal):
    p_normal = np.asarray(p_normal, float)
    return np.column_stack([p_normal, (1 - p_normal) / 2, (1 - p_normal) / 2])


def test_reliability_bins_by_hand():
    y = ["myopathy", "myopathy", "normal", "neuropathy", "normal", "normal"]
    p = _probs([0.1, 0.15, 0.5, 0.55, 0.95, 1.0])
    bins = reliability_bins(y, p, 0, n_bins=5)
    assert list(bins["n"]) == [2, 0, 2, 0, 2]
    assert bins.loc[0, "mean_predicted"] == pytest.approx(0.125) and bins.loc[0, "observed"] == 0.0
    assert bins.loc[2, "mean_predicted"] == pytest.approx(0.525) and bins.loc[2, "observed"] == 0.5
    assert bins.loc[4, "mean_predicted"] == pytest.approx(0.975) and bins.loc[4, "observed"] == 1.0  # 1.0 included
    assert bins.loc[1, ["mean_predicted", "observed"]].isna().all()
    assert list(bins["lower"]) == pytest.approx([0, 0.2, 0.4, 0.6, 0.8])
    # gaps 0.125, 0.025, 0.025, two patients each
    assert expected_calibration_error(bins) == pytest.approx((2 * 0.125 + 2 * 0.025 + 2 * 0.025) / 6)
    # a probability on a bin edge belongs to the upper bin, even where p * n_bins rounds below it in floats
    edge = reliability_bins(["normal"] * 3, _probs([0.6, 0.2, 0.4]), 0, n_bins=5)
    assert list(edge["n"]) == [0, 1, 1, 1, 0]
    third = reliability_bins(["normal"], _probs([0.33]), 0, n_bins=3)  # 0.33 * 3 = 0.99: bin 0
    assert list(third["n"]) == [1, 0, 0]


def test_calibration_tables_flags_under_and_over_confidence():
    y = ["normal", "myopathy", "neuropathy"] * 4
    truth = np.eye(3)[[0, 1, 2] * 4]
    shy = 0.5 * truth + 0.5 / 3            # always right, at most 0.67 sure: under-confident
    bold = np.roll(truth, 1, axis=1) * 0.9 + 0.1 / 3  # always wrong at 0.93: over-confident
    bins, summary = calibration_tables({"shy": (y, shy), "bold": (y, bold)}, n_bins=5)
    s = summary.set_index("model")
    assert s.loc["shy", "accuracy"] == 1.0 and s.loc["shy", "mean_confidence"] == pytest.approx(2 / 3)
    assert s.loc["bold", "accuracy"] == 0.0 and s.loc["bold", "mean_confidence"] == pytest.approx(0.9 + 0.1 / 3)
    assert s.loc["shy", "brier"] == pytest.approx(brier_score(y, shy))
    assert s.loc["shy", "brier"] < s.loc["bold", "brier"]
    assert set(bins["model"]) == {"shy", "bold"} and len(bins) == 2 * 3 * 5
    assert bins.groupby(["model", "class"])["n"].sum().eq(12).all()  # every patient in one bin per class


# --------------------------------------------------------------------------------------------- training curves
def test_kept_checkpoint_is_the_first_best_validation_accuracy():
    curve = pd.DataFrame({"update": [25, 50, 75, 100], "train_loss": [1.0, 0.9, 0.8, 0.7],
                          "val_acc": [0.5, 0.7, 0.6, 0.7]})
    k = kept_checkpoint(curve)
    assert (k["kept_update"], k["kept_val_acc"], k["last_update"], k["has_val"]) == (50, 0.7, 100, True)
    no_val = curve.assign(val_acc=np.nan)
    k = kept_checkpoint(no_val)
    assert (k["kept_update"], k["has_val"]) == (100, False)  # no validation: final weights
    with pytest.raises(ValueError, match="missing column"):
        kept_checkpoint(curve.drop(columns="val_acc"))


def test_curve_panels_group_runs_by_outer_fold():
    assert curve_panel("nested_s0_o3_i1") == ("nested, seed 0, outer fold 3", "inner 1")
    assert curve_panel("rkfold_s2_r1_o0") == ("k-fold, seed 2, repeat 1, fold 0", "no validation")
    c = pd.DataFrame({"update": [10, 20], "train_loss": [1.0, 0.5], "val_acc": [0.4, 0.6]})
    s = curve_summary({"nested_s0_o0_i0": c, "nested_s0_o0_i1": c, "nested_s0_o1_i0": c})
    assert s.groupby("panel").size().to_dict() == {"nested, seed 0, outer fold 0": 2, "nested, seed 0, outer fold 1": 1}


# ------------------------------------------------------------------------------------------- per-patient view
def test_primary_variant_reads_location_as_bool_or_text():
    cons = pd.DataFrame({"method": ["logreg", "logreg", "argmax", "logreg"],
                         "with_location": [False, True, False, "False"], "subject_id": ["a", "a", "a", "b"]})
    assert list(primary_variant(cons, "logreg")["subject_id"]) == ["a", "b"]
    with pytest.raises(ValueError, match="x.tsv: no consensus rows for stage-2 method 'rf'"):
        primary_variant(cons, "rf", "x.tsv")


def test_majority_calls_with_ties():
    calls = pd.DataFrame({"r1": ["normal", "myopathy", "normal"], "r2": ["normal", "neuropathy", None],
                          "r3": ["myopathy", None, None]}, index=["A", "B", "C"])
    m = majority_calls(calls).set_index("subject_id")
    assert m.loc["A", "physician_call"] == "normal" and (m.loc["A", "n_agree"], m.loc["A", "n_raters"]) == (2, 3)
    assert m.loc["B", "physician_call"] == "tie"
    assert m.loc["C", "physician_call"] == "normal" and m.loc["C", "n_raters"] == 1


def _consensus():
    rows = [  # two replicates; patient P3 is a myopathy called normal in both
        ("r0", "P1", "normal", 0.6, 0.3, 0.1), ("r1", "P1", "normal", 0.8, 0.1, 0.1),
        ("r0", "P2", "neuropathy", 0.1, 0.1, 0.8), ("r1", "P2", "neuropathy", 0.2, 0.2, 0.6),
        ("r0", "P3", "myopathy", 0.5, 0.4, 0.1), ("r1", "P3", "myopathy", 0.6, 0.3, 0.1),
        ("r0", "P4", "normal", 0.5, 0.4, 0.1), ("r1", "P4", "normal", 0.5, 0.4, 0.1),
    ]
    return pd.DataFrame(rows, columns=["replicate", "subject_id", "diagnosis", "p_normal", "p_myopathy",
                                       "p_neuropathy"])


def test_patient_view_table_orders_by_class_then_confidence():
    majority = pd.DataFrame({"subject_id": ["P1", "P3", "P4"], "physician_call": ["normal", "neuropathy", "tie"],
                             "n_agree": [3, 2, 1], "n_raters": [3, 3, 2]})
    t = patient_view_table(_consensus(), majority)
    assert list(t["subject_id"]) == ["P1", "P4", "P3", "P2"]  # normal (0.7, 0.5), myopathy, neuropathy
    assert t.set_index("subject_id").loc["P1", "p_normal"] == pytest.approx(0.7)  # mean of replicates
    assert list(t["wrong"]) == [False, False, True, False]
    assert list(t["physician_wrong"]) == [False, False, True, False]  # P4 tied, P2 has no ratings: not wrong
    assert set(t["n_replicates"]) == {2}
    with pytest.raises(ValueError, match="more than one row"):
        patient_view_table(pd.concat([_consensus(), _consensus()]))


# ----------------------------------------------------------------------------------------- recording timeline
def _segment_predictions():
    index = pd.DataFrame({"segment": [0, 1, 2, 3], "recording_id": ["R1", "R1", "R1", "R2"],
                          "offset_samples": [2000, 0, 1000, 0]})
    preds = pd.DataFrame({
        "run_id": ["a", "a", "a", "b", "b", "b", "a"], "role": ["test"] * 6 + ["val"],
        "segment": [0, 1, 2, 0, 1, 2, 3], "recording_id": ["R1"] * 6 + ["R2"],
        "p_normal": [0.2, 0.4, 0.6, 0.4, 0.6, 0.8, 0.3], "p_myopathy": [0.5, 0.3, 0.2, 0.3, 0.2, 0.1, 0.3],
        "p_neuropathy": [0.3, 0.3, 0.2, 0.3, 0.2, 0.1, 0.4]})
    return preds, index


def test_recording_segments_in_time_order_from_the_patients_run():
    preds, index = _segment_predictions()
    own = recording_segments(preds, index, "R1", "a")
    assert list(own["offset_samples"]) == [0, 1000, 2000] and list(own["p_normal"]) == [0.4, 0.6, 0.2]
    mean = recording_segments(preds, index, "R1", None)  # every run that tested it, averaged
    assert list(mean["p_normal"]) == pytest.approx([0.5, 0.7, 0.3])
    assert list(recording_segments(preds, index, "R1", "zzz")["p_normal"]) == pytest.approx([0.5, 0.7, 0.3])
    with pytest.raises(ValueError, match="R2: no test-segment predictions"):
        recording_segments(preds, index, "R2", "a")  # only a validation prediction


# ------------------------------------------------------------------------------------------------- the figures
def test_review_figures_render(tmp_path):
    rng = np.random.default_rng(0)
    curve = pd.DataFrame({"update": [25, 50, 75], "train_loss": [1.0, 0.8, 0.7], "val_acc": [0.5, 0.6, 0.55]})
    fig = training_curves_figure({"nested_s0_o0_i0": curve, "nested_s0_o0_i1": curve, "nested_s0_o1_i0": curve,
                                  "rkfold_s0_r0_o0": curve.assign(val_acc=np.nan)})
    titles = [a.get_title() for a in fig.axes if a.get_title()]
    assert titles == ["nested, seed 0, outer fold 0", "nested, seed 0, outer fold 1", "k-fold, seed 0, repeat 0, fold 0"]
    assert len(fig.axes[0].get_legend().get_texts()) == 2  # outer fold 0: both inner runs
    assert any("no validation" in t.get_text() for ax in fig.axes for t in ax.texts)
    save(fig, [tmp_path / "curves.png"])

    y = list(rng.choice(["normal", "myopathy", "neuropathy"], 30))
    p = rng.dirichlet([1, 1, 1], 30)
    bins, summary = calibration_tables({"nEMGNet": (y, p), "QEMG": (y, p[::-1])})
    from nemg.review_plots import calibration_figure
    save(calibration_figure(bins, summary), [tmp_path / "calibration.png"])

    t = patient_view_table(_consensus(), pd.DataFrame({"subject_id": ["P1", "P2"], "physician_call": ["tie", "normal"],
                                                       "n_agree": [1, 2], "n_raters": [2, 3]}))
    save(patient_view_figure(t), [tmp_path / "patients.png"])

    save(external_confusion_figure({("B", "nemgnet"): (y, y[::-1]), ("B", "rf"): (y, y)}), [tmp_path / "ext.png"])

    preds, index = _segment_predictions()
    item = {"signal": rng.normal(size=6000), "segments": recording_segments(preds, index, "R1", "a"),
            "subject_id": "P3", "diagnosis": "myopathy", "predicted": "normal", "confidence": 0.55,
            "recording_id": "R1", "muscle": "deltoid", "location": "proximal", "run_id": "a"}
    save(recording_timeline_figure([item], fs_hz=1000.0, window=4000), [tmp_path / "timeline.png"])
    for name in ("curves", "calibration", "patients", "ext", "timeline"):
        assert (tmp_path / f"{name}.png").stat().st_size > 20_000, name
    # nothing to draw is said on the page, not left blank
    for fig in (recording_timeline_figure([], 1000.0, 4000), external_confusion_figure({}),
                training_curves_figure({})):
        assert any(t.get_text().startswith("No ") for ax in fig.axes for t in ax.texts)


# ------------------------------------------------------------------------------------ report landing page values
def test_report_context_config_order_and_class_counts(tmp_path):
    from nemg.report_context import class_counts, config_label, report_context

    repo = tmp_path / "repo"
    (repo / "configs").mkdir(parents=True)
    # Snakemake lists the workflow's own config.yaml after the --configfile files; it applies first
    label = config_label([repo / "configs" / "ci.yaml", tmp_path / "extra.yaml", repo / "config.yaml"], repo)
    assert label == f"config.yaml + configs/ci.yaml + {tmp_path / 'extra.yaml'}"
    sheet = tmp_path / "subjects.tsv"
    assert class_counts(sheet) == ""  # not made yet: the page leaves the counts out
    pd.DataFrame({"subject_id": ["a", "b", "c", "d"],
                  "diagnosis": ["neuropathy", "normal", "neuropathy", "myopathy"]}).to_csv(sheet, sep="\t", index=False)
    assert class_counts(sheet) == "1 normal, 1 myopathy, 2 neuropathy"
    ctx = report_context(repo, configfiles=[repo / "config.yaml"], subjects=sheet, n_runs=15, baselines=["logreg"],
                         external_tests=[], physicians="", snakemake_version="9.0")
    assert (ctx["n_subjects"], ctx["n_runs"], ctx["commit"], ctx["configfiles"]) == (4, 15, "unknown", "config.yaml")
