"""External validation: the split and cohort config entries (nemg.external), scoring another cohort
(nemg.predict.predict_cohort, nemg.baseline.baseline_external_predictions), the vote and its evaluation
(nemg.evaluate), the display table (nemg.tables)."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from nemg.config import ConfigError, load_config
from nemg.baseline import baseline_external_predictions
from nemg.evaluate import evaluate_arm, external_patient_predictions, external_summary_row
from nemg.external import (SCHEME, check_disjoint, cohort_key, describe_cohort, external_cohorts, external_split,
                           pretraining_cohort, same_patients)
from nemg.folds import FoldError
from nemg.labels import CLASSES
from nemg.predict import predict_cohort
from nemg.tables import external_display_table
from nemg.train import train_run

REPO = Path(__file__).resolve().parents[1]

WINDOW = 400
SHAPES = {"normal": (4, 100.0), "myopathy": (1, 60.0), "neuropathy": (12, 300.0)}


def subjects(n_per_class, prefix=""):
    return pd.DataFrame([(f"{prefix}{c[:3]}{i}", c) for c in CLASSES for i in range(n_per_class)],
                        columns=["subject_id", "diagnosis"])


def write_store(d, subj, rng, n_seg=8):
    """Class c = spikes of width 1, 4 or 12 samples and amplitude 60-300 µV plus noise; one recording per subject."""
    x, index = [], []
    for sid, cls in zip(subj["subject_id"], subj["diagnosis"]):
        width, amp = SHAPES[cls]
        kernel = np.hanning(width + 2)[1:-1] if width > 1 else np.ones(1)
        for j in range(n_seg):
            spikes = np.zeros(WINDOW)
            spikes[rng.choice(WINDOW, 8, replace=False)] = rng.choice([-1, 1], 8) * amp
            x.append(np.convolve(spikes, kernel, mode="same") + rng.normal(0, 10, WINDOW))
            index.append((len(index), f"{sid}_r", sid, cls, "proximal", "biceps", j * 100))
    d.mkdir(parents=True, exist_ok=True)
    np.save(d / "segments.npy", np.asarray(x, dtype=np.float32))
    idx = pd.DataFrame(index, columns=["segment", "recording_id", "subject_id", "diagnosis", "location", "muscle",
                                       "offset_samples"])
    idx.to_csv(d / "segments_index.tsv", sep="\t", index=False)
    recordings = idx.drop_duplicates("recording_id")[["recording_id", "subject_id", "location"]]
    return idx, recordings


@pytest.fixture(scope="module")
def cohorts(tmp_path_factory):
    d = tmp_path_factory.mktemp("external")
    rng = np.random.default_rng(0)
    a, b = subjects(5, "A"), subjects(2, "B")
    a_idx, a_rec = write_store(d / "a", a, rng)
    b_idx, b_rec = write_store(d / "b", b, rng)
    split = external_split(a, [0], 0.2)
    split.to_csv(d / "split.tsv", sep="\t", index=False)
    torch.set_num_threads(1)
    run_dir = d / "models" / "ext_s0"
    train_run(d / "a" / "segments.npy", d / "a" / "segments_index.tsv", d / "split.tsv", "ext_s0", run_dir,
              model_cfg={"preset": "small"}, train_cfg={"batch_size": 8, "max_epochs": 6, "eval_every": 4,
                                                      "num_threads": 1, "progress": False})
    return {"dir": d, "a": a, "b": b, "a_idx": a_idx, "b_idx": b_idx, "a_rec": a_rec, "b_rec": b_rec,
            "split": split, "best": run_dir / "best.pt", "val_predictions": run_dir / "predictions.tsv"}


# ------------------------------------------------------------------------------------------------------ split
def test_split_is_stratified_complete_and_seeded():
    subj = subjects(10)
    split = external_split(subj, [0, 1], 0.2)
    assert set(split["role"]) == {"train", "val"} and set(split["scheme"]) == {"external"}
    for rid, g in split.groupby("run_id"):
        assert sorted(g["subject_id"]) == sorted(subj["subject_id"])  # every patient, once
        val = g[g["role"] == "val"]
        assert val["diagnosis"].value_counts().to_dict() == {c: 2 for c in CLASSES}  # a fifth of each class
    a, b = (split[split.run_id == r].set_index("subject_id")["role"] for r in ("ext_s0", "ext_s1"))
    assert not a.equals(b)  # seeds draw different validation patients
    again = external_split(subj.sample(frac=1, random_state=3), [0, 1], 0.2)
    pd.testing.assert_frame_equal(split, again)  # input order does not matter


def test_split_errors():
    with pytest.raises(FoldError, match="val_fraction"):
        external_split(subjects(5), [0], 1.0)
    with pytest.raises(FoldError, match="too few"):
        external_split(subjects(1).iloc[:2], [0], 0.2)
    lonely = pd.concat([subjects(5).query("diagnosis != 'myopathy'"),
                        pd.DataFrame({"subject_id": ["m0"], "diagnosis": ["myopathy"]})])
    with pytest.raises(FoldError, match="no training patients of class"):
        external_split(lonely, [0], 0.2)  # the only myopathy patient lands in validation


def test_shared_subject_ids_are_refused():
    with pytest.raises(ValueError, match=r"1 subject id\(s\) appear in both cohorts \(x1\)"):
        check_disjoint(pd.DataFrame({"subject_id": ["x1", "x2"]}), pd.DataFrame({"subject_id": ["x1", "y"]}),
                       "a", "b")


# -------------------------------------------------------------------------------------------- configuration
def test_external_cohort_entries_from_files_and_inline(tmp_path):
    cfg = load_config(REPO / "config.yaml", REPO / "configs" / "n2001.yaml")
    base = yaml.safe_load((REPO / "config.yaml").read_text())["cohort"]
    cfg["external"] = {"cohorts": {"mess": "configs/messekher.yaml",
                                   "mine": {"source": "sheets", "sheets": {"subjects": "s.tsv",
                                                                          "recordings": "r.tsv"}}}}
    out = external_cohorts(cfg, REPO, base_cohort=base)
    assert out["mess"]["name"] == "mess" and out["mess"]["public"]["dataset"] == "messekher2023"
    assert out["mess"]["subjects"] == []  # config.yaml's default filled in, as --configfile would
    assert out["mine"]["source"] == "sheets" and out["mine"]["sheets"]["subjects"] == "s.tsv"
    assert cohort_key("mess", "n2001") == "mess_for_n2001"


def test_bad_external_entries_are_each_named(tmp_path):
    cfg = load_config(REPO / "config.yaml", REPO / "configs" / "n2001.yaml")
    cfg["external"] = {"cohorts": {"n2001": "configs/messekher.yaml", "gone": "configs/nope.yaml",
                                   "typo": {"source": "public", "pubic": {}}, "num": 3}}
    with pytest.raises(ConfigError) as err:
        external_cohorts(cfg, REPO)
    msg = str(err.value)
    assert "external.cohorts.n2001: is this run's own cohort" in msg
    assert "external.cohorts.gone: config file not found" in msg and "nope.yaml" in msg
    assert "external.cohorts.typo" in msg and "'pubic'" in msg
    assert "external.cohorts.num: expected a config file path or a cohort section" in msg


def test_pretraining_cohort_from_a_file_or_inline_and_never_the_runs_own_patients(tmp_path):
    cfg = load_config(REPO / "config.yaml", REPO / "configs" / "messekher.yaml")
    base = yaml.safe_load((REPO / "config.yaml").read_text())["cohort"]
    cfg["pretrain"] = {**cfg["pretrain"], "enabled": True, "cohort": "configs/n2001.yaml"}
    pre = pretraining_cohort(cfg, REPO, "pretrain_for_messekher2023", base_cohort=base)
    assert pre["name"] == "pretrain_for_messekher2023" and pre["public"]["dataset"] == "n2001"
    assert same_patients(pre, external_cohorts(cfg, REPO, base_cohort=base)["n2001"], REPO) == (
        "both read the public data set 'n2001'")  # configs/messekher.yaml also tests on N2001
    assert describe_cohort(pre) == "the public data set 'n2001'"
    assert describe_cohort({**pre, "subjects": ["a", "b"]}) == "the public data set 'n2001' (2 selected)"
    # another subset of the run's own data set is refused too: the two may share patients
    cfg["pretrain"]["cohort"] = {"source": "public", "public": {"dataset": "messekher2023"},
                                 "subjects": ["healthy_01"]}
    with pytest.raises(ConfigError, match="pretrain.cohort: holds this run's own patients .both read the public "
                                          "data set 'messekher2023'"):
        pretraining_cohort(cfg, REPO, "p", base_cohort=base)
    own = {"source": "sheets", "sheets": {"subjects": str(tmp_path / "s.tsv"), "recordings": "r.tsv"}}
    cfg["cohort"] = {**cfg["cohort"], **own}
    cfg["pretrain"]["cohort"] = dict(own)
    with pytest.raises(ConfigError, match="both read the subjects sheet"):
        pretraining_cohort(cfg, REPO, "p", base_cohort=base)
    for bad, msg in (("configs/nope.yaml", "pretrain.cohort: config file not found"),
                     ({"source": "public", "pubic": {}}, "pretrain.cohort: .*'pubic'")):
        cfg["pretrain"]["cohort"] = bad
        with pytest.raises(ConfigError, match=msg):
            pretraining_cohort(cfg, REPO, "p", base_cohort=base)


# ------------------------------------------------------------------------------------------------ the model
def test_predict_cohort_scores_every_test_segment(cohorts):
    d = cohorts["dir"]
    pred = predict_cohort(cohorts["best"], d / "b" / "segments.npy", d / "b" / "segments_index.tsv", device="cpu",
                          num_threads=1)
    assert len(pred) == len(cohorts["b_idx"]) and set(pred["role"]) == {"test"}
    assert set(pred["run_id"]) == {"ext_s0"}
    probs = pred[[f"p_{c}" for c in CLASSES]].to_numpy()
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)
    again = predict_cohort(cohorts["best"], d / "b" / "segments.npy", d / "b" / "segments_index.tsv",
                           device="cpu", num_threads=1)
    pd.testing.assert_frame_equal(pred, again)  # CPU inference is deterministic


def test_window_mismatch_names_the_file(cohorts, tmp_path):
    np.save(tmp_path / "segments.npy", np.zeros((len(cohorts["b_idx"]), 200), np.float32))
    cohorts["b_idx"].to_csv(tmp_path / "segments_index.tsv", sep="\t", index=False)
    with pytest.raises(ValueError, match=r"segments\.npy: segments of 200 samples, but .*best\.pt was trained on 400"):
        predict_cohort(cohorts["best"], tmp_path / "segments.npy", tmp_path / "segments_index.tsv", device="cpu")


def test_vote_fits_stage2_on_training_cohort_and_scores_only_the_test_cohort(cohorts):
    d = cohorts["dir"]
    val = pd.read_csv(cohorts["val_predictions"], sep="\t", dtype={"subject_id": str, "recording_id": str})
    assert set(val["role"]) == {"val"}  # no test role inside the training cohort
    test = predict_cohort(cohorts["best"], d / "b" / "segments.npy", d / "b" / "segments_index.tsv", device="cpu")
    pp = external_patient_predictions(pd.concat([val, test]), cohorts["a"], cohorts["a_rec"], cohorts["b"],
                                      cohorts["b_rec"], methods=["logreg", "argmax"], fit_on="val", seed=0)
    assert set(pp["subject_id"]) == set(cohorts["b"]["subject_id"])
    assert len(pp) == 6 * 2 * 2  # patients x methods x with/without location
    res = evaluate_arm(pp, SCHEME, n_boot=50)
    row = external_summary_row("a", "b", "nemgnet", res, "logreg")
    assert row["n_test_patients"] == 6 and row["n_models"] == 1 and 0 <= row["accuracy_consensus"] <= 1
    assert {f"recall_{c}" for c in CLASSES} <= set(row)
    shown = external_display_table(pd.DataFrame([row]))
    assert shown.loc[0, "training -> test"] == "a -> b"
    # the same patients in both cohorts are refused
    with pytest.raises(ValueError, match="appear in both cohorts"):
        external_patient_predictions(pd.concat([val, test]), cohorts["a"], cohorts["a_rec"], cohorts["a"],
                                     cohorts["a_rec"], methods=["argmax"], fit_on="val")


# --------------------------------------------------------------------------------------------- the baseline
def test_baseline_transfers_a_separable_feature(cohorts):
    a_idx, b_idx = cohorts["a_idx"], cohorts["b_idx"]
    rng = np.random.default_rng(1)
    level = {"normal": 1.0, "myopathy": 5.0, "neuropathy": 25.0}

    def feats(idx):  # one feature that separates the classes in both cohorts, one of noise
        return np.column_stack([idx["diagnosis"].map(level) * rng.uniform(0.8, 1.2, len(idx)),
                                rng.uniform(1, 2, len(idx))])

    pred = baseline_external_predictions(feats(a_idx), a_idx, feats(b_idx), b_idx, cohorts["split"], "logreg")
    assert set(pred["role"]) == {"val", "test"}
    test = pred[pred["role"] == "test"]
    assert set(test["subject_id"]) == set(cohorts["b"]["subject_id"]) and len(test) == len(b_idx)
    called = np.array(CLASSES)[test[[f"p_{c}" for c in CLASSES]].to_numpy().argmax(1)]
    truth = test["subject_id"].map(cohorts["b"].set_index("subject_id")["diagnosis"]).to_numpy()
    assert (called == truth).mean() > 0.95
    with pytest.raises(ValueError, match="test cohort: 3 feature rows"):
        baseline_external_predictions(feats(a_idx), a_idx, np.ones((3, 2)), b_idx, cohorts["split"], "logreg")


def test_combined_external_arm_reads_the_extra_models_scores(cohorts):
    """A combined arm's stage 2, fit on training-cohort patients, sees the extra QEMG model's patient scores
    too: an informative extra source rescues a noise main source on the test cohort."""
    a_idx, b_idx = cohorts["a_idx"], cohorts["b_idx"]
    rng = np.random.default_rng(2)
    level = {"normal": 1.0, "myopathy": 5.0, "neuropathy": 25.0}

    def feats(idx):
        return np.column_stack([idx["diagnosis"].map(level) * rng.uniform(0.8, 1.2, len(idx)),
                                rng.uniform(1, 2, len(idx))])

    qemg = baseline_external_predictions(feats(a_idx), a_idx, feats(b_idx), b_idx, cohorts["split"], "logreg")
    noise = qemg.copy()
    noise[[f"p_{c}" for c in CLASSES]] = rng.dirichlet(np.ones(3), len(noise))
    args = (cohorts["a"], cohorts["a_rec"], cohorts["b"], cohorts["b_rec"])
    kw = dict(methods=["logreg"], fit_on="val", seed=0, c=10.0)
    alone = external_patient_predictions(noise, *args, **kw)
    combined = external_patient_predictions(noise, *args, extra={"logreg": qemg}, **kw)
    assert set(combined["subject_id"]) == set(cohorts["b"]["subject_id"])

    def accuracy(pp):
        pp = pp[~pp["with_location"].astype(bool)]
        return (pp["predicted"] == pp["diagnosis"]).mean()

    assert accuracy(combined) > 0.9 and accuracy(combined) > accuracy(alone)
    with pytest.raises(ValueError, match="no predictions from"):  # the extra model must score the same runs
        external_patient_predictions(noise, *args, extra={"logreg": qemg.assign(run_id="ext_s9")}, **kw)


# ------------------------------------------------------------------------------------- amplitude calibration
def signal_store(d, amplitudes, fs=10_000.0, seconds=1.0, offset=0.0, drift=50.0, seed=0):
    """One recording per amplitude: Gaussian noise of that RMS plus a DC offset and a slow drift."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(fs * seconds)) / fs
    return write_recordings(d, [(rng.normal(0, a, len(t)) + offset + drift * t).astype(np.float32)
                                for a in amplitudes], fs)


def write_recordings(d, arrays, fs):
    """A resampled signal store of one recording (and patient) per array."""
    from nemg.store import write_signal_store

    idx = pd.DataFrame({"recording_id": [f"r{i}" for i in range(len(arrays))],
                        "subject_id": [f"s{i}" for i in range(len(arrays))], "diagnosis": "normal",
                        "location": "proximal", "muscle": "biceps", "fs_hz": fs})
    d.mkdir(parents=True, exist_ok=True)
    write_signal_store(arrays, idx, d / "signals.npy", d / "signals_index.tsv")
    return d / "signals.npy", d / "signals_index.tsv"


def test_median_frame_rms_ignores_offset_drift_and_an_odd_recording(tmp_path):
    from nemg.external import median_frame_rms

    store = signal_store(tmp_path / "a", [40, 50, 60, 5000], offset=300.0)
    assert median_frame_rms(*store) == pytest.approx(55, rel=0.03)  # median of 40, 50, 60, 5000 recordings


def test_amplitude_gain_and_calibrated_segments(tmp_path):
    from nemg.external import amplitude_gain
    from nemg.segment import segment_store

    train = signal_store(tmp_path / "train", [40, 50, 60])
    test = signal_store(tmp_path / "test", [400, 500, 600], seed=1)
    g = amplitude_gain(*train, *test)
    assert list(g.columns) == ["calibration", "train_median_rms_uv", "test_median_rms_uv", "gain", "train_range_low_uv",
                               "train_range_high_uv", "test_outside_range_recorded", "test_outside_range_calibrated",
                               "train_negative_share", "test_negative_share", "polarity"]
    assert g["gain"].iloc[0] == pytest.approx(0.1, rel=0.03)
    # ten times louder than every training recording; brought to the training cohort's median, the middle one is in
    assert g["train_range_low_uv"].iloc[0] == pytest.approx(40, rel=0.05)
    assert g["train_range_high_uv"].iloc[0] == pytest.approx(60, rel=0.05)
    assert g["test_outside_range_recorded"].iloc[0] == 1.0 and g["test_outside_range_calibrated"].iloc[0] <= 2 / 3
    plain = segment_store(*test, 0.4, 0.1, tmp_path / "p.npy", tmp_path / "p.tsv")
    segment_store(*test, 0.4, 0.1, tmp_path / "c.npy", tmp_path / "c.tsv", gain=float(g["gain"].iloc[0]))
    np.testing.assert_allclose(np.load(tmp_path / "c.npy"), np.load(tmp_path / "p.npy") * g["gain"].iloc[0],
                               rtol=1e-5)
    assert len(plain) == 3 * 7
    segment_store(*test, 0.4, 0.1, tmp_path / "n.npy", tmp_path / "n.tsv", gain=-2.0)  # polarity inverted too
    np.testing.assert_allclose(np.load(tmp_path / "n.npy"), np.load(tmp_path / "p.npy") * -2.0, rtol=1e-6)
    with pytest.raises(ValueError, match="gain must be a finite non-zero number"):
        segment_store(*test, 0.4, 0.1, tmp_path / "x.npy", tmp_path / "x.tsv", gain=0.0)
    silent = signal_store(tmp_path / "silent", [0, 0], offset=7.0, drift=0.0)  # a flat line
    with pytest.raises(ValueError, match="non-zero amplitude"):
        amplitude_gain(*train, *silent)


def spike_store(d, signs, fs=10_000.0, seconds=2.0, rms=50.0, seed=0):
    """One recording per sign: motor-unit-like spikes (main phase of that sign, 10 Hz) on Gaussian noise, with a
    DC offset and a drift that must not matter."""
    rng = np.random.default_rng(seed)
    n = int(fs * seconds)
    t = np.arange(n) / fs
    arrays = []
    for sign in signs:
        x = rng.normal(0, 0.3 * rms, n)
        for start in rng.integers(0, n - 40, int(10 * seconds)):
            x[start:start + 40] += sign * 8 * rms * np.hanning(40) - sign * 2 * rms * np.hanning(40)[::-1] ** 4
        arrays.append((x + 200.0 + 30 * t).astype(np.float32))
    return write_recordings(d, arrays, fs)


def test_recording_skewness_reads_which_way_the_spikes_point():
    from nemg.external import recording_skewness

    rng = np.random.default_rng(0)
    x = rng.normal(0, 10, 20_000)
    x[::500] -= 200  # negative spikes, 20 per second
    drift = 1000 + np.linspace(0, 300, len(x))  # offset and drift, removed frame by frame
    neg = recording_skewness(x + drift, 10_000.0)
    assert neg < -2
    assert recording_skewness(-(x + drift), 10_000.0) == pytest.approx(-neg, rel=1e-9)
    assert abs(recording_skewness(rng.normal(0, 10, 20_000), 10_000.0)) < 0.1  # symmetric noise
    assert recording_skewness(x[:999], 10_000.0) is None  # shorter than a 0.1 s frame
    assert recording_skewness(np.full(5000, 7.0), 10_000.0) is None  # flat


def test_cohort_polarity_is_the_clear_majority_and_flips_only_clear_opposites():
    from nemg.external import POLARITY_MARGIN, cohort_polarity, polarity_factor

    assert POLARITY_MARGIN == 0.1
    assert cohort_polarity([-1.0, -0.5, -2.0, 0.3]) == {"negative_share": 0.75, "polarity": -1, "n_recordings": 4}
    assert cohort_polarity([1.0, 0.5, -2.0, None]) == {"negative_share": pytest.approx(1 / 3), "polarity": 1,
                                                       "n_recordings": 3}
    assert cohort_polarity([1.0, -1.0, 2.0, -0.1])["polarity"] == 0  # half negative: unclear
    assert cohort_polarity([-1.0, -1.0, -1.0, 1.0, 1.0])["polarity"] == -1  # 60 %: clear
    assert cohort_polarity([1.0, -1.0, 2.0, -0.1, 0.2])["polarity"] == 1  # 40 %: clear
    empty = cohort_polarity([None])
    assert empty["polarity"] == 0 and empty["n_recordings"] == 0 and np.isnan(empty["negative_share"])
    assert polarity_factor(-1, 1) == polarity_factor(1, -1) == -1
    assert polarity_factor(-1, -1) == polarity_factor(1, 1) == polarity_factor(-1, 0) == polarity_factor(0, 1) == 1


def test_median_rms_polarity_inverts_a_cohort_recorded_the_other_way_up(tmp_path):
    from nemg.external import amplitude_gain
    from nemg.segment import segment_store

    train = spike_store(tmp_path / "train", [-1, -1, -1, 1], rms=50.0)
    inverted = spike_store(tmp_path / "inverted", [1, 1, -1, 1, 1], rms=500.0, seed=1)
    same = spike_store(tmp_path / "same", [-1, -1, 1, -1], rms=500.0, seed=2)
    rms = amplitude_gain(*train, *inverted)
    pol = amplitude_gain(*train, *inverted, calibration="median_rms_polarity")
    assert rms["gain"].iloc[0] == pytest.approx(0.1, rel=0.1)
    assert pol["gain"].iloc[0] == pytest.approx(-rms["gain"].iloc[0])
    for g in (rms, pol):  # both report the polarities; only median_rms_polarity acts on them
        assert g[["train_negative_share", "test_negative_share", "polarity"]].iloc[0].tolist() == [0.75, 0.2, -1]
    assert pol["test_outside_range_calibrated"].iloc[0] == rms["test_outside_range_calibrated"].iloc[0]
    kept = amplitude_gain(*train, *same, calibration="median_rms_polarity")
    assert kept["polarity"].iloc[0] == 1 and kept["gain"].iloc[0] > 0
    # the calibrated segments of the inverted cohort point the training cohort's way
    segment_store(*inverted, 0.4, 0.1, tmp_path / "c.npy", tmp_path / "c.tsv", gain=float(pol["gain"].iloc[0]))
    from scipy.stats import skew
    assert np.median(skew(np.load(tmp_path / "c.npy"), axis=1)) < 0
    with pytest.raises(ValueError, match="unknown calibration"):
        amplitude_gain(*train, *same, calibration="zscore")


def test_external_test_ids():
    from nemg.external import external_test_ids

    assert external_test_ids(["m", "n"], ["none", "median_rms"]) == {
        "m": ("m", "none"), "m.rms": ("m", "median_rms"), "n": ("n", "none"), "n.rms": ("n", "median_rms")}
    assert external_test_ids(["m"], ["median_rms_polarity"]) == {"m.rmsp": ("m", "median_rms_polarity")}
    with pytest.raises(ValueError, match="unknown external.amplitude_calibration 'zscore'"):
        external_test_ids(["m"], ["zscore"])


def test_dag_time_part_imports_no_torch():
    """nemg.external plans the DAG (rule files, torch-free conda envs); the evaluation and table modules the
    torch-free external rules call must not pull torch in either."""
    import subprocess
    import sys

    code = ("import sys, nemg.external, nemg.evaluate, nemg.baseline, nemg.tables; "
            "print(sorted(m for m in ('torch', 'nemg.train', 'nemg.data') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "[]"
