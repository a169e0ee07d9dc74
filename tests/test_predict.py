"""The model bundle (snakemake model), nemg predict and nemg export (issue 14).

One small DAG (configs/ci.yaml, one training epoch) builds the bundle and, in the same run, diagnoses three new
patients as an external cohort; their recordings are raw files at 25 kHz (the training cohort is 48 kHz).
`nemg predict` on the same files must give the DAG's own segments, segment probabilities and divide-and-vote.
"""
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from scipy import signal as sps
from scipy.io import wavfile

from nemg.bundle import BundleError, fit_member_stage2, load_bundle
from nemg.cli import main as nemg_main
from nemg.io import load_recording
from nemg.predict import AmplitudeOutOfRange, PredictError, calibration_gain, predict, prepare, read_input, recordings_from_files, score_segments
from nemg.simulate import simulate_cohort
from nemg.labels import PROB_COLS
from nemg.manifest import cpu_info

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
RATE = 25_000  # the new patients' rate: neither the training cohort's 48 kHz nor the model's 10 kHz
CHAIN_GAIN = 0.25  # and another amplifier chain: a quarter of the training cohort's amplitude
pytestmark = pytest.mark.slow


def new_patients(folder: Path) -> tuple[Path, Path]:
    """Three simulated patients (one per class) re-recorded at 25 kHz as NPY and WAV files, ids unlike ci's."""
    sheets = simulate_cohort({"cohort": {"n_subjects": {"normal": 1, "myopathy": 1, "neuropathy": 1},
                                         "muscles_per_subject": [2, 3], "duration_s": [2.5, 3.0]},
                              "artifacts": {"duration_s": [0.2, 0.4]}}, folder / "sim", seed=11)
    subjects = pd.read_csv(sheets["subjects"], sep="\t", dtype=str)
    recs = pd.read_csv(sheets["recordings"], sep="\t", dtype=str)
    rows = []
    for i, r in enumerate(recs.to_dict("records")):
        x = load_recording(folder / "sim" / r["path"], "wfdb").samples
        y = (sps.resample_poly(x.astype(np.float64), 25, 48) * CHAIN_GAIN).astype(np.float32)
        rid = f"new_{r['recording_id']}"
        if i % 2:
            path, fmt = f"{rid}.wav", "wav"
            wavfile.write(folder / path, RATE, y)
        else:
            path, fmt = f"{rid}.npy", "npy"
            np.save(folder / path, y)
        rows.append({"recording_id": rid, "subject_id": f"new_{r['subject_id']}", "muscle": r["muscle"],
                     "side": r["side"], "location": r["location"], "path": path, "format": fmt,
                     "sampling_rate_hz": RATE if fmt == "npy" else ""})
    subjects["subject_id"] = "new_" + subjects["subject_id"]
    subjects[["subject_id", "diagnosis", "sex", "age"]].to_csv(folder / "subjects.tsv", sep="\t", index=False)
    pd.DataFrame(rows).to_csv(folder / "recordings.tsv", sep="\t", index=False)
    return folder / "subjects.tsv", folder / "recordings.tsv"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("model")
    subjects, recordings = new_patients(work / "clinic")
    cfg = work / "fast.yaml"
    cfg.write_text(yaml.safe_dump({
        "folds": {"schemes": ["nested"]},
        "train": {"max_epochs": 1, "progress": False},
        # the QEMG logistic regression only (the bundle's combined arm needs it; the forest is not bundled)
        "baseline": {"models": ["logreg"], "combine": ["logreg"]},
        "evaluate": {"n_bootstrap": 200},
        "external": {"seeds": [0, 1], "val_fraction": 0.34, "amplitude_calibration": ["none", "median_rms"],
                     "cohorts": {"clinic": {"source": "sheets",
                                            "sheets": {"subjects": str(subjects), "recordings": str(recordings)}}}},
    }))
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(work), "--cores", "2", "model",
           "--configfile", str(REPO / "configs" / "ci.yaml"), str(cfg)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=2400, cwd=work)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return {"work": work, "bundle": work / "results" / "model" / "ci", "subjects": subjects,
            "recordings": recordings, "xv": work / "results" / "external" / "ci"}


def dag_consensus(run) -> pd.DataFrame:
    """The DAG's diagnosis of the test cohort: the primary stage 2 per model, averaged over the models."""
    pp = pd.read_csv(run["xv"] / "clinic" / "nemgnet" / "patient_predictions.tsv", sep="\t")
    pp = pp[(pp["method"] == "logreg") & (~pp["with_location"].astype(bool))]
    return pp.groupby("subject_id")[PROB_COLS].mean()


def test_bundle_contents(run):
    b = run["bundle"]
    meta = json.loads((b / "model.json").read_text())
    assert meta["classes"] == ["normal", "myopathy", "neuropathy"]
    assert [m["run_id"] for m in meta["members"]] == ["ext_s0", "ext_s1"]
    assert meta["preprocessing"]["resample"] == {"rate_hz": 10000.0, "method": "polyphase",
                                                 "min_source_rate_hz": 10000.0}
    assert meta["preprocessing"]["segment"]["window_samples"] == 4000 and meta["preprocessing"]["units"] == "uV"
    assert meta["training_cohort"]["patients"] == {"normal": 4, "myopathy": 4, "neuropathy": 4}
    for m in meta["members"]:
        state = torch.load(b / m["weights"], weights_only=True)  # plain tensors, no pickled code
        assert all(isinstance(v, torch.Tensor) for v in state.values())
        assert hashlib.sha256((b / m["weights"]).read_bytes()).hexdigest() == m["sha256"]
        s2 = m["stage2"]
        assert np.asarray(s2["coef"], dtype=float).shape == (3, 3) and len(s2["intercept"]) == 3
    # the members are the external-validation models: the same weights, not a second training
    for m in meta["members"]:
        ck = torch.load(run["xv"] / "models" / m["run_id"] / "best.pt", weights_only=True)
        state = torch.load(b / m["weights"], weights_only=True)
        assert all(torch.equal(ck["state_dict"][k], state[k]) for k in state)


def test_predict_equals_the_dags_divide_and_vote(run, tmp_path):
    bundle = load_bundle(run["bundle"])
    recordings, subjects = read_input([run["recordings"], run["subjects"]])
    segments, index = prepare(bundle, recordings)
    # the same segments as the DAG's own preprocessing of the same files (trim, 25 -> 10 kHz, windows)
    dag_seg = np.load(run["work"] / "results" / "segment" / "clinic_for_ci" / "segments.npy")
    dag_idx = pd.read_csv(run["work"] / "results" / "segment" / "clinic_for_ci" / "segments_index.tsv", sep="\t")
    assert np.array_equal(segments, dag_seg)
    assert list(index["recording_id"]) == list(dag_idx["recording_id"])
    # the same segment probabilities under each member as the DAG's predict_external
    scores = score_segments(bundle, segments, index, num_threads=1)
    for rid in ("ext_s0", "ext_s1"):
        dag = pd.read_csv(run["xv"] / "clinic" / "nemgnet" / f"{rid}_predictions.tsv", sep="\t")
        mine = scores[scores["run_id"] == rid]
        np.testing.assert_allclose(mine[PROB_COLS].to_numpy(), dag[PROB_COLS].to_numpy(), rtol=1e-5, atol=1e-6)

    # the command line on the sheets: the same patient diagnosis as the DAG's divide-and-vote
    out = tmp_path / "sheets"
    assert nemg_main(["predict", str(run["bundle"]), str(run["recordings"]), str(run["subjects"]),
                      "--out", str(out), "--threads", "1"]) == 0
    patients = pd.read_csv(out / "patient_predictions.tsv", sep="\t").set_index("subject_id")
    dag = dag_consensus(run)
    assert sorted(patients.index) == sorted(dag.index) and len(dag) == 3
    np.testing.assert_allclose(patients.loc[dag.index, PROB_COLS].to_numpy(), dag.to_numpy(), rtol=1e-4, atol=1e-5)
    assert (patients.loc[dag.index, "predicted"] == dag.idxmax(axis=1).str[2:]).all()
    assert "diagnosis" in patients.columns  # the subjects sheet's truth, beside the call
    recs = pd.read_csv(out / "recording_predictions.tsv", sep="\t")
    assert len(recs) == len(recordings) and np.allclose(recs[PROB_COLS].sum(axis=1), 1, atol=1e-5)

    # one patient's raw files without any sheet: the same result as that patient in the sheet
    sid = dag.index[0]
    mine = recordings[recordings["subject_id"] == sid]
    files = tmp_path / "files"
    files.mkdir()
    for p in mine["path"]:
        shutil.copy(p, files / Path(p).name)
    out1 = tmp_path / "one"
    assert nemg_main(["predict", str(run["bundle"]), *[str(files / Path(p).name) for p in mine["path"]],
                      "--rate", str(RATE), "--patient", sid, "--out", str(out1), "--threads", "1"]) == 0
    one = pd.read_csv(out1 / "patient_predictions.tsv", sep="\t").set_index("subject_id")
    np.testing.assert_allclose(one.loc[[sid], PROB_COLS].to_numpy(), patients.loc[[sid], PROB_COLS].to_numpy(),
                               atol=1e-6)


def test_the_combined_arm_is_the_dags_and_stands_beside_the_networks_call(run, tmp_path):
    """bundle.combined (config.yaml: on): each member carries its QEMG logistic regression and combined stage 2;
    nemg predict computes the segments' QEMG features itself and gives the DAG's combined_logreg consensus of the
    external test cohort in columns of its own, leaving nEMGNet's call as it was."""
    from nemg.baseline import logreg_probs
    from nemg.features import read_features

    meta = json.loads((run["bundle"] / "model.json").read_text())
    assert meta["combined"]["arm"] == "combined_logreg" and meta["combined"]["rate_hz"] == 10000.0
    names = meta["combined"]["feature_names"]
    feats, dag_names = read_features(run["work"] / "results" / "baseline" / "clinic_for_ci" / "features.npy",
                                     run["work"] / "results" / "baseline" / "clinic_for_ci" / "feature_names.txt")
    assert names == dag_names
    for m in meta["members"]:
        # the member's QEMG model is the DAG's external logistic regression of the same split: the same scores
        dag = pd.read_csv(run["xv"] / "clinic" / "logreg" / "predictions.tsv", sep="\t")
        dag = dag[(dag["run_id"] == m["run_id"]) & (dag["role"] == "test")].sort_values("segment")
        assert len(dag) == len(feats)
        np.testing.assert_allclose(logreg_probs(m["combined"]["qemg"], feats[dag["segment"].to_numpy()]),
                                   dag[PROB_COLS].to_numpy(), rtol=1e-5, atol=1e-6)
    out = tmp_path / "pred"
    assert nemg_main(["predict", str(run["bundle"]), str(run["recordings"]), str(run["subjects"]), "--out", str(out),
                      "--threads", "1"]) == 0
    patients = pd.read_csv(out / "patient_predictions.tsv", sep="\t").set_index("subject_id")
    pp = pd.read_csv(run["xv"] / "clinic" / "combined_logreg" / "patient_predictions.tsv", sep="\t")
    pp = pp[(pp["method"] == "logreg") & (~pp["with_location"].astype(bool))]
    dag = pp.groupby("subject_id")[PROB_COLS].mean()
    assert len(dag) == 3 and pp["run_id"].nunique() == 2
    combined = [f"combined_{c}" for c in PROB_COLS]
    np.testing.assert_allclose(patients.loc[dag.index, combined].to_numpy(), dag.to_numpy(), rtol=1e-4, atol=1e-5)
    assert (patients.loc[dag.index, "combined_predicted"] == dag.idxmax(axis=1).str[2:]).all()
    # beside, never instead: nEMGNet's own columns are still the DAG's nEMGNet consensus
    np.testing.assert_allclose(patients.loc[dag.index, PROB_COLS].to_numpy(), dag_consensus(run).loc[dag.index],
                               rtol=1e-4, atol=1e-5)
    assert "the combined arm `combined_logreg`" in (run["bundle"] / "MODEL_CARD.md").read_text()
    # a model.json whose member lost its combined entry is refused by name
    b = copy_bundle(run, tmp_path)
    meta["members"][0].pop("combined")
    (b / "model.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="lacks the combined arm"):
        load_bundle(b)
    meta = json.loads((run["bundle"] / "model.json").read_text())
    del meta["combined"]["feature_params"]
    (b / "model.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="combined arm's entry lacks feature_params"):
        load_bundle(b)


def test_a_bundle_of_the_cross_validation_networks(run, tmp_path):
    """bundle.members: cv packs the nested CV's networks (no training of their own), each with the stage 2 of its
    own inner-validation patients; nemg predict then votes them as the DAG's divide-and-vote would."""
    from nemg.evaluate import external_patient_predictions, read_predictions
    from nemg.predict import predict_cohort

    work = tmp_path / "work"
    shutil.copytree(run["work"], work, symlinks=True, ignore=shutil.ignore_patterns(".snakemake"))
    # the external ensemble's bundle is rebuilt from the CV's networks, and its weights files do not stay behind
    (work / "results" / "model" / "ci" / "model.json").unlink()
    assert sorted(p.name for p in (work / "results" / "model" / "ci" / "weights").iterdir()) == ["ext_s0.pt", "ext_s1.pt"]
    overlay = work / "cv_members.yaml"
    overlay.write_text(yaml.safe_dump({"bundle": {"members": "cv"}}))
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(work), "--cores", "2", "model", "--configfile",
           str(REPO / "configs" / "ci.yaml"), str(work / "fast.yaml"), str(overlay)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, cwd=work)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "train_fold" not in res.stdout + res.stderr  # the CV's networks are reused, not retrained
    b = work / "results" / "model" / "ci"
    meta = json.loads((b / "model.json").read_text())
    cv_runs = [f"nested_s0_o{o}_i{i}" for o in range(2) for i in range(2)]  # configs/ci.yaml: nested 2 x 2
    assert meta["members_kind"] == "cv" and [m["run_id"] for m in meta["members"]] == cv_runs
    assert sorted(p.name for p in (b / "weights").iterdir()) == [f"{r}.pt" for r in cv_runs]
    train = work / "results" / "train" / "ci"
    for m in meta["members"]:
        ck = torch.load(train / m["run_id"] / "best.pt", weights_only=True)
        state = torch.load(b / m["weights"], weights_only=True)
        assert all(torch.equal(ck["state_dict"][k], state[k]) for k in state)
    # each member's split is its CV run's, its outer test fold included; every patient is in some member's training
    folds = pd.read_csv(work / "results" / "folds" / "ci" / "folds.tsv", sep="\t")
    for rid, split in meta["training_cohort"]["members"].items():
        f = folds[folds["run_id"] == rid]
        assert {role: sum(v.values()) for role, v in split.items()} == f["role"].value_counts().to_dict()
    assert sum(meta["training_cohort"]["patients"].values()) == 12
    card = (b / "MODEL_CARD.md").read_text()
    assert "nested cross-validation's networks (nested_s0_o0_i0" in card
    assert "not this bundle's members: the members are the cross-validation's networks" in card

    # nemg predict: per patient the mean over the four networks of each one's own stage 2, the DAG's vote
    out = tmp_path / "pred"
    assert nemg_main(["predict", str(b), str(run["recordings"]), str(run["subjects"]), "--out", str(out),
                      "--threads", "1"]) == 0
    patients = pd.read_csv(out / "patient_predictions.tsv", sep="\t").set_index("subject_id")
    seg = work / "results" / "segment" / "clinic_for_ci"
    test = pd.concat([predict_cohort(train / r / "best.pt", seg / "segments.npy", seg / "segments_index.tsv",
                                     device="cpu", num_threads=1) for r in cv_runs], ignore_index=True)
    fit = read_predictions([train / r / "predictions.tsv" for r in cv_runs])
    read = lambda p: pd.read_csv(p, sep="\t", dtype={"recording_id": str, "subject_id": str})  # noqa: E731
    cohort = work / "results" / "cohort"
    pp = external_patient_predictions(
        pd.concat([fit[fit["role"] == "val"], test], ignore_index=True), read(cohort / "ci" / "subjects.tsv"),
        read(cohort / "ci" / "recordings.tsv"), read(run["subjects"]), read(run["recordings"]), methods=["logreg"],
        fit_on="val", seed=0, class_weight="balanced", c=10.0)
    expected = pp[~pp["with_location"].astype(bool)].groupby("subject_id")[PROB_COLS].mean()
    assert patients["combined_predicted"].isin(["normal", "myopathy", "neuropathy"]).all()  # each CV member's own
    assert len(expected) == 3 and pp["run_id"].nunique() == 4
    np.testing.assert_allclose(patients.loc[expected.index, PROB_COLS].to_numpy(), expected.to_numpy(),
                               rtol=1e-4, atol=1e-5)


def test_calibrate_is_the_dags_median_rms_calibration(run, tmp_path, capsys, monkeypatch):
    """--calibrate on another amplifier chain's recordings: the DAG's calibrated external cohort (clinic.rms), the
    same factor and the same diagnoses; --gain with that factor the same again; too few patients refused."""
    bundle = load_bundle(run["bundle"])
    dag_gain = pd.read_csv(run["xv"] / "clinic.rms" / "amplitude_gain.tsv", sep="\t").iloc[0]
    ref = bundle.preprocessing["amplitude_reference"]
    assert ref["method"] == "median_rms" and ref["frame_s"] == 0.1
    assert ref["median_frame_rms_uv"] == pytest.approx(dag_gain["train_median_rms_uv"], rel=1e-5)  # the TSV: 6 digits
    recordings, subjects = read_input([run["recordings"], run["subjects"]])
    per_rec, per_pat = predict(bundle, recordings, subjects, num_threads=1, calibrate=True, min_calibration_patients=3)
    cal = per_pat.attrs["calibration"]
    assert cal["gain"] == pytest.approx(dag_gain["gain"], rel=1e-5)
    assert 2 < cal["gain"] < 8  # the recordings are at a quarter of the training cohort's amplitude
    assert cal["n_patients"] == 3 and cal["n_recordings"] == len(recordings)
    # which way the spikes point, as the DAG's amplitude_gain.tsv reports it: both shares and the verdict
    assert ref["polarity"]["negative_share"] == pytest.approx(dag_gain["train_negative_share"], rel=1e-5)
    assert cal["reference_negative_share"] == pytest.approx(dag_gain["train_negative_share"], rel=1e-5)
    assert cal["site_negative_share"] == pytest.approx(dag_gain["test_negative_share"], rel=1e-5)
    assert cal["polarity"] == dag_gain["polarity"] == 1
    # a site whose every recording points the other way from a clear training majority is reported as opposite
    assert ref["polarity"]["polarity"] == -1  # simulated needle potentials: main phase negative
    levels = {r: 10.0 for r in recordings["recording_id"]}
    inverted = calibration_gain(bundle, recordings, levels, min_patients=3,
                                skews={r: 1.5 for r in recordings["recording_id"]})
    assert inverted["polarity"] == -1 and inverted["site_negative_share"] == 0.0
    assert inverted["gain"] == pytest.approx(ref["median_frame_rms_uv"] / 10.0)  # reported, not applied

    def inverted_site(*args, **kwargs):  # the command line's report of such a site (three patients allowed here)
        rec, pat = predict(*args, **{**kwargs, "min_calibration_patients": 3})
        pat.attrs["calibration"].update(polarity=-1, site_negative_share=0.2, reference_negative_share=0.7)
        return rec, pat

    monkeypatch.setattr("nemg.predict.predict", inverted_site)
    assert nemg_main(["predict", str(run["bundle"]), str(run["recordings"]), "--calibrate", "--threads", "1",
                      "--out", str(tmp_path / "inv")]) == 0
    assert "spikes point the other way from the training cohort's (20 % of them skew negative, 70 % of the " \
           "training recordings)" in capsys.readouterr().out
    monkeypatch.undo()
    assert (per_pat["amplitude_gain"] == cal["gain"]).all() and (per_rec["amplitude_gain"] == cal["gain"]).all()
    pp = pd.read_csv(run["xv"] / "clinic.rms" / "nemgnet" / "patient_predictions.tsv", sep="\t")
    dag = pp[(pp["method"] == "logreg") & (~pp["with_location"].astype(bool))].groupby("subject_id")[PROB_COLS].mean()
    mine = per_pat.set_index("subject_id").loc[dag.index, PROB_COLS]
    np.testing.assert_allclose(mine.to_numpy(), dag.to_numpy(), rtol=1e-4, atol=1e-5)
    assert "amplitude_gain" not in predict(bundle, recordings, subjects, num_threads=1)[1].columns
    # the segments the vote rests on (this one-epoch network's stage 2 calls everyone 1/3): the DAG's calibrated
    # scores, and not the uncalibrated ones
    segments, index = prepare(bundle, recordings)
    raw = score_segments(bundle, segments, index, num_threads=1)
    scaled = score_segments(bundle, segments * np.float32(cal["gain"]), index, num_threads=1)
    for rid in ("ext_s0", "ext_s1"):
        dag_seg = pd.read_csv(run["xv"] / "clinic.rms" / "nemgnet" / f"{rid}_predictions.tsv", sep="\t")[PROB_COLS]
        np.testing.assert_allclose(scaled.loc[scaled["run_id"] == rid, PROB_COLS].to_numpy(), dag_seg.to_numpy(),
                                   rtol=1e-5, atol=1e-6)
        # the one-epoch network hardly responds to its input (1e-4 for a 4x gain), but more than this tolerance
        assert not np.allclose(raw.loc[raw["run_id"] == rid, PROB_COLS].to_numpy(), dag_seg.to_numpy(),
                               rtol=1e-5, atol=1e-6)

    # the command line: three patients are too few to calibrate on, and nothing is written
    out = tmp_path / "cal"
    assert nemg_main(["predict", str(run["bundle"]), str(run["recordings"]), "--calibrate", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert str(recordings["path"].iloc[0]) in err and "at least 10 patients" in err and "--gain" in err
    assert not out.exists()
    # ... the factor of a calibration on the site's recordings, given with --gain, diagnoses as calibrated
    assert nemg_main(["predict", str(run["bundle"]), str(run["recordings"]), "--gain", repr(cal["gain"]),
                      "--out", str(out), "--threads", "1"]) == 0
    assert f"amplitudes x {cal['gain']:.6g}" in capsys.readouterr().out
    written = pd.read_csv(out / "patient_predictions.tsv", sep="\t").set_index("subject_id")
    np.testing.assert_allclose(written.loc[dag.index, PROB_COLS].to_numpy(), dag.to_numpy(), rtol=1e-4, atol=1e-5)
    assert written["amplitude_gain"].to_numpy() == pytest.approx(cal["gain"], rel=1e-5)
    for bad in ("0", "-2", "nan", "inf"):
        assert nemg_main(["predict", str(run["bundle"]), str(run["recordings"]), "--gain", bad,
                          "--out", str(tmp_path / "bad")]) == 1
        assert "--gain must be a positive finite number" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: one or the other
        nemg_main(["predict", str(run["bundle"]), str(run["recordings"]), "--gain", "2", "--calibrate"])
    with pytest.raises(PredictError, match="either --calibrate"):
        predict(bundle, recordings, calibrate=True, gain=2.0)

    # a bundle from before the reference existed says so, by file
    old = tmp_path / "old_bundle"
    shutil.copytree(run["bundle"], old)
    meta = json.loads((old / "model.json").read_text())
    del meta["preprocessing"]["amplitude_reference"]
    (old / "model.json").write_text(json.dumps(meta))
    with pytest.raises(PredictError, match=r"model.json: no amplitude reference .*snakemake model"):
        predict(load_bundle(old), recordings, calibrate=True, min_calibration_patients=3)


def test_model_card_numbers_are_the_runs_tables(run):
    card = (run["bundle"] / "MODEL_CARD.md").read_text()
    assert "not a medical device" in card and "SIMULATED" in card
    ref = json.loads((run["bundle"] / "model.json").read_text())["preprocessing"]["amplitude_reference"]
    assert f"median frame RMS ({ref['median_frame_rms_uv']:.4g} uV)" in card  # what --calibrate scales to
    assert f"{100 * ref['polarity']['negative_share']:.0f} % of the training recordings skew negative" in card
    ev = run["work"] / "results" / "evaluate" / "ci"
    t2 = pd.read_csv(ev / "table2.tsv", sep="\t")
    for r in t2.itertuples():
        assert f"| {r.metric} | {r.model_mean_ci_runs} | {r.model_consensus_bootstrap} |" in card
    pc = pd.read_csv(ev / "per_class_correct.tsv", sep="\t")
    for r in pc.itertuples():
        assert re.search(rf"\| {r._1} \| {r.model_mean:.3f} \|", card), r._1
    ext = pd.read_csv(run["xv"] / "external_validation.tsv", sep="\t")
    row = ext[ext["model"] == "nemgnet"].iloc[0]
    assert f"{row['accuracy_consensus']:.3f} ({max(0, row['accuracy_boot_low']):.3f}-" in card
    assert "ci -> clinic" in card
    # configs/ci.yaml pretrains (as config.yaml does): the card and model.json say where the members started
    assert ("fine-tuned from `results/pretrain/ci/best.pt` at learning rate 0.0003, a network the pipeline "
            "trained on simulated") in card
    meta = json.loads((run["bundle"] / "model.json").read_text())
    assert {m["init_from"] for m in meta["members"]} == {"results/pretrain/ci/best.pt"}
    assert {m["lr"] for m in meta["members"]} == {3e-4}  # config.yaml's train.finetune_lr
    assert all(m["trained_on"] == {"device": "cpu", "cpu": cpu_info()["label"]} for m in meta["members"])
    assert meta["pretraining"].startswith("simulated patients only (seed ")


def test_model_card_names_what_the_pretraining_learnt_from():
    from nemg.model_card import _init_line

    pre = [{"init_from": "results/pretrain/mine/best.pt"}]
    assert "trained on the patients of the public data set 'n2001' (the run's" in _init_line(
        pre, "the patients of the public data set 'n2001'")
    assert "trained on simulated patients only" in _init_line(pre)  # bundles from before model.json said
    assert "random initialisation" in _init_line([{"init_from": None}])
    assert "(`train.init_from`)" in _init_line([{"init_from": "/elsewhere/best.pt"}])
    # the rate the members were fine-tuned at (train.finetune_lr), when the bundle records it
    assert "`/elsewhere/best.pt` at learning rate 0.0003 (`train.init_from`)" in _init_line(
        [{"init_from": "/elsewhere/best.pt", "lr": 3e-4}])


def test_model_card_says_when_the_external_figures_are_other_networks():
    """configs/messekher.yaml pretrains on N2001 and tests on it: the bundle's members start from the pretraining,
    the external networks elsewhere, and the card must not pass their figures off as the members'."""
    from nemg.model_card import external_section

    ext = pd.DataFrame([{"train_cohort": "a", "test_cohort": "b", "calibration": "none", "gain": 1.0,
                         "model": "nemgnet", "method": "logreg", "n_models": 3, "n_test_patients": 22,
                         **{f"{m}_{k}": 0.5 for m in ("accuracy", "f1")
                            for k in ("mean", "ci_low", "ci_high", "consensus", "boot_low", "boot_high")},
                         **{f"{k}_{c}": v for c in ("normal", "myopathy", "neuropathy")
                            for k, v in (("recall", 0.5), ("n", 4))}}])
    ours = external_section(ext)
    assert "not this bundle's members'" not in ours
    other = external_section(ext, {"cohorts": ["b"], "start": "random weights"})
    assert other.startswith(ours) and "started from random weights" in other
    assert "The rows of `b` (amplitude-calibrated or not) are not this bundle's members'" in other


def copy_bundle(run, tmp_path) -> Path:
    dst = tmp_path / "bundle"
    shutil.copytree(run["bundle"], dst)
    return dst


def test_altered_missing_or_foreign_bundles_are_refused(run, tmp_path, capsys):
    b = copy_bundle(run, tmp_path)
    w = b / "weights" / "ext_s1.pt"
    w.write_bytes(w.read_bytes()[:-1] + bytes([w.read_bytes()[-1] ^ 1]))
    with pytest.raises(BundleError, match=re.escape(str(w)) + ".*sha256"):
        load_bundle(b)
    out = tmp_path / "out"
    assert nemg_main(["predict", str(b), str(run["recordings"]), "--out", str(out)]) == 1
    assert "ext_s1.pt" in capsys.readouterr().err and not out.exists()
    w.unlink()
    with pytest.raises(BundleError, match="ext_s1.pt.*missing"):
        load_bundle(b)
    b2 = copy_bundle(run, tmp_path / "v")
    meta = json.loads((b2 / "model.json").read_text())
    meta["nemg_version"] = "0.0.1"
    (b2 / "model.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="made by nemg 0.0.1"):
        load_bundle(b2)


def test_a_malformed_model_json_or_weights_file_is_refused_by_name(run, tmp_path):
    def edited(name, edit):
        b = copy_bundle(run, tmp_path / name)
        meta = json.loads((b / "model.json").read_text())
        edit(b, meta)
        (b / "model.json").write_text(json.dumps(meta))
        return b

    b = edited("nosha", lambda b, meta: meta["members"][1].pop("sha256"))
    with pytest.raises(BundleError, match=re.escape(f"{b / 'model.json'}: member 2 lacks sha256")):
        load_bundle(b)
    # JSON allows NaN; the members' mean would drop that member's probabilities without a word
    b = edited("nan", lambda b, meta: meta["members"][0]["stage2"]["coef"][0].__setitem__(0, float("nan")))
    with pytest.raises(BundleError, match=re.escape(f"{b / 'model.json'}: stage 2 of member ext_s0 is not")):
        load_bundle(b)

    # only the weights carry a checksum: model.json must still hold what predict reads, with one window size
    b = edited("noresample", lambda b, meta: meta["preprocessing"].pop("resample"))
    with pytest.raises(BundleError, match=re.escape(f"{b / 'model.json'}: missing preprocessing.resample.rate_hz")):
        load_bundle(b)
    b = edited("window", lambda b, meta: meta["model"].__setitem__("window_samples", 2000))
    with pytest.raises(BundleError, match="windows disagree: the network takes 2000 samples, preprocessing cuts 4000"):
        load_bundle(b)

    def junk_weights(b, meta):  # a replaced file whose sha256 was updated too
        (b / "weights" / "ext_s0.pt").write_bytes(b"junk")
        meta["members"][0]["sha256"] = hashlib.sha256(b"junk").hexdigest()

    b = edited("junk", junk_weights)
    with pytest.raises(BundleError, match=re.escape(f"{b / 'weights' / 'ext_s0.pt'}: not the weights of")):
        load_bundle(b).networks()


@pytest.mark.parametrize("case", ["nan", "short", "low_rate", "unreadable", "overflow"])
def test_bad_input_names_the_file_and_writes_nothing(run, tmp_path, capsys, case):
    rng = np.random.default_rng(0)
    good = tmp_path / "good.npy"
    np.save(good, (rng.standard_normal(RATE * 2) * 50).astype(np.float32))
    bad = tmp_path / "bad.npy"
    x = (rng.standard_normal(RATE * 2) * 50).astype(np.float32)
    if case == "nan":
        x[100] = np.nan
    elif case == "short":
        x = x[:int(0.3 * RATE)]
    elif case == "overflow":  # finite float32 samples whose resampling overshoots float32's limit
        x = np.clip(x.astype(np.float64) * 1e38, -3.4e38, 3.4e38).astype(np.float32)
    np.save(bad, x)
    if case == "low_rate":  # a WAV carries its own rate, so --rate (for the NPY) does not apply to it
        bad = tmp_path / "bad.wav"
        wavfile.write(bad, 4000, x[:8000])
    if case == "unreadable":
        bad.write_bytes(b"not a numpy file")
    want = {"nan": "NaN", "short": "not usable after trimming", "low_rate": "below 10000 Hz",
            "unreadable": "unreadable", "overflow": "overflows float32"}[case]
    out = tmp_path / "out"
    assert nemg_main(["predict", str(run["bundle"]), str(good), str(bad), "--rate", str(RATE),
                      "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and want in err, err
    assert not out.exists()
    with pytest.raises((PredictError, ValueError)):
        prepare(load_bundle(run["bundle"]), read_input([good, bad], sampling_rate_hz=RATE)[0])


def test_skip_unusable_leaves_out_what_the_qc_would_and_lists_it(run, tmp_path, capsys):
    """--skip-unusable: the clinic's patients plus a too-short recording of one of them and a patient whose only
    recording is mostly flat. The others are diagnosed as without those two; the two are listed with their reasons."""
    sheet = pd.read_csv(run["recordings"], sep="\t", dtype=str, keep_default_na=False)
    sheet["path"] = [str(run["recordings"].parent / p) for p in sheet["path"]]
    rng = np.random.default_rng(3)
    short, flat = tmp_path / "short.npy", tmp_path / "flat.npy"
    np.save(short, (rng.standard_normal(int(0.3 * RATE)) * 50).astype(np.float32))
    # flat for most of its length (a disconnected lead): trimming's QC drops it; an all-equal file is refused
    # by the loader, for the DAG and predict alike
    np.save(flat, np.r_[rng.standard_normal(int(0.4 * RATE)) * 50, np.zeros(int(1.6 * RATE))].astype(np.float32))
    first = sheet.iloc[0]
    extra = pd.DataFrame([{**first, "recording_id": "short_one", "path": str(short), "format": "npy",
                           "sampling_rate_hz": str(RATE)},
                          {**first, "recording_id": "flat_one", "subject_id": "ghost", "path": str(flat),
                           "format": "npy", "sampling_rate_hz": str(RATE)}])
    with_bad = tmp_path / "recordings.tsv"
    pd.concat([sheet, extra]).to_csv(with_bad, sep="\t", index=False)

    out = tmp_path / "out"
    assert nemg_main(["predict", str(run["bundle"]), str(with_bad), "--out", str(out)]) == 1
    assert str(short) in capsys.readouterr().err and not out.exists()  # without the switch: stop, write nothing
    assert nemg_main(["predict", str(run["bundle"]), str(with_bad), "--skip-unusable", "--out", str(out),
                      "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert "skipped 2 unusable recording(s)" in printed and "NOT DIAGNOSED, no usable recording: ghost" in printed
    skipped = pd.read_csv(out / "skipped_recordings.tsv", sep="\t").set_index("recording_id")
    assert list(skipped.index) == ["short_one", "flat_one"]
    assert "not usable after trimming" in skipped.loc["short_one", "reason"]
    assert "flat" in skipped.loc["flat_one", "reason"] and skipped.loc["flat_one", "path"] == str(flat)
    patients = pd.read_csv(out / "patient_predictions.tsv", sep="\t").set_index("subject_id")
    assert "ghost" not in patients.index
    assert patients.loc[first["subject_id"], "n_skipped"] == 1 and patients["n_skipped"].sum() == 1
    recs = pd.read_csv(out / "recording_predictions.tsv", sep="\t")
    assert set(recs["recording_id"]) == set(sheet["recording_id"])
    # the diagnoses are those of the sheet without the two recordings
    clean = tmp_path / "clean"
    assert nemg_main(["predict", str(run["bundle"]), str(run["recordings"]), "--out", str(clean),
                      "--threads", "1"]) == 0
    assert not (clean / "skipped_recordings.tsv").exists()
    ref = pd.read_csv(clean / "patient_predictions.tsv", sep="\t").set_index("subject_id")
    np.testing.assert_allclose(patients.loc[ref.index, PROB_COLS].to_numpy(), ref[PROB_COLS].to_numpy(), atol=1e-6)
    # an earlier run's list does not stay beside predictions it does not describe
    assert nemg_main(["predict", str(run["bundle"]), str(run["recordings"]), "--out", str(out),
                      "--threads", "1"]) == 0
    assert not (out / "skipped_recordings.tsv").exists()

    # the calibration is measured on the recordings used
    bundle = load_bundle(run["bundle"])
    recs_bad = read_input([with_bad])[0]
    nets = bundle.networks()
    _, cal_skip = predict(bundle, recs_bad, calibrate=True, skip_unusable=True, min_calibration_patients=1,
                          networks=nets, num_threads=1)
    _, cal_ref = predict(bundle, read_input([run["recordings"]])[0], calibrate=True, min_calibration_patients=1,
                         networks=nets, num_threads=1)
    assert cal_skip.attrs["calibration"]["gain"] == cal_ref.attrs["calibration"]["gain"]
    # a broken file is not "unusable": it still stops the run, and nothing usable at all is an error
    broken = tmp_path / "broken.npy"
    broken.write_bytes(b"not a numpy file")
    with pytest.raises(ValueError, match=re.escape(str(broken))):
        predict(bundle, recs_bad.assign(path=[*recs_bad["path"][:-1], str(broken)]), skip_unusable=True,
                networks=nets)
    with pytest.raises(PredictError, match="none of the 2 recording"):
        predict(bundle, recs_bad.tail(2), skip_unusable=True, networks=nets)


def test_recordings_outside_the_training_amplitudes_are_flagged(run, tmp_path, capsys):
    """Each recording's level (the calibration's measure) beside the training recordings' 1-99 % range. The
    simulated training levels span 50-fold, so the clinic's quarter-amplitude chain is mostly inside it; a
    tenth of that (--gain 0.1) is outside for every recording, and the command says so."""
    ref = json.loads((run["bundle"] / "model.json").read_text())["preprocessing"]["amplitude_reference"]
    low, high = ref["recording_range_uv"]
    assert ref["range_quantiles"] == [0.01, 0.99] and low < ref["median_frame_rms_uv"] < high
    card = " ".join((run["bundle"] / "MODEL_CARD.md").read_text().split())
    assert f"outside the training recordings' {low:.4g}-{high:.4g} uV" in card and "`--strict-amplitude`" in card
    bundle = load_bundle(run["bundle"])
    recs, subjects = read_input([run["recordings"], run["subjects"]])
    nets = bundle.networks()
    per_rec, per_pat = predict(bundle, recs, subjects, networks=nets, num_threads=1)
    check = per_pat.attrs["amplitude_check"]
    # the level is the calibration's measure of the recording: the reference over their median is the DAG's factor
    gain = pd.read_csv(run["xv"] / "clinic.rms" / "amplitude_gain.tsv", sep="\t")["gain"].iloc[0]
    np.testing.assert_allclose(ref["median_frame_rms_uv"] / per_rec["level_uv"].median(), gain, rtol=1e-6)
    assert (per_rec["in_training_range"] == per_rec["level_uv"].between(low, high)).all()
    assert check["n_outside"] == int((~per_rec["in_training_range"]).sum()) and check["range_uv"] == [low, high]
    quiet_rec, quiet = predict(bundle, recs, subjects, networks=nets, num_threads=1, gain=0.1)
    np.testing.assert_allclose(quiet_rec["level_uv"], per_rec["level_uv"] * 0.1)
    assert quiet.attrs["amplitude_check"]["n_outside"] == len(recs) and per_rec["level_uv"].max() * 0.1 < low
    n_rec = recs.groupby("subject_id").size()
    assert (quiet.set_index("subject_id")["n_outside_range"] == n_rec.loc[quiet["subject_id"]].to_numpy()).all()
    assert per_pat["n_outside_range"].sum() == check["n_outside"]
    _, cal = predict(bundle, recs, subjects, networks=nets, num_threads=1, calibrate=True,
                     min_calibration_patients=1)
    assert cal.attrs["amplitude_check"]["n_outside"] == 0

    out = tmp_path / "out"
    assert nemg_main(["predict", str(run["bundle"]), str(run["recordings"]), "--gain", "0.1", "--out", str(out),
                      "--threads", "1"]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert f"WARNING: {len(recs)} of {len(recs)} recording(s) after the gain have a median frame RMS" in printed
    written = pd.read_csv(out / "recording_predictions.tsv", sep="\t")
    assert {"level_uv", "in_training_range"} <= set(written.columns)
    # --strict-amplitude: the same run refused, by the first recording's file, with nothing written; the
    # calibrated run of the same recordings (all inside) passes
    strict_out = tmp_path / "strict"
    assert nemg_main(["predict", str(run["bundle"]), str(run["recordings"]), "--gain", "0.1", "--strict-amplitude",
                      "--out", str(strict_out), "--threads", "1"]) != 0
    err = " ".join(capsys.readouterr().err.split())
    first = recs["path"].iloc[0]
    assert first in err and f"{len(recs)} of {len(recs)} recording(s)" in err and "--strict-amplitude" in err
    assert not strict_out.exists()
    with pytest.raises(AmplitudeOutOfRange, match=re.escape(f"{low:.4g}-{high:.4g} uV")):
        predict(bundle, recs, subjects, networks=nets, num_threads=1, gain=0.1, strict_amplitude=True)
    _, strict_cal = predict(bundle, recs, subjects, networks=nets, num_threads=1, calibrate=True,
                            min_calibration_patients=1, strict_amplitude=True)
    assert strict_cal["n_outside_range"].sum() == 0
    if check["n_outside"]:  # some quarter-amplitude recordings outside the range: refused uncalibrated too
        with pytest.raises(AmplitudeOutOfRange):
            predict(bundle, recs, subjects, networks=nets, num_threads=1, strict_amplitude=True)
    # a bundle from before the range was recorded: levels, but nothing to check against and no warning
    b = copy_bundle(run, tmp_path)
    meta = json.loads((b / "model.json").read_text())
    del meta["preprocessing"]["amplitude_reference"]["recording_range_uv"]
    (b / "model.json").write_text(json.dumps(meta))
    old_rec, old_pat = predict(load_bundle(b), recs, subjects, networks=nets, num_threads=1)
    assert old_pat.attrs["amplitude_check"] == {} and "in_training_range" not in old_rec.columns
    assert "n_outside_range" not in old_pat.columns
    with pytest.raises(AmplitudeOutOfRange, match=re.escape(f"{b / 'model.json'}: the bundle records no training")):
        predict(load_bundle(b), recs, subjects, networks=nets, num_threads=1, strict_amplitude=True)
    meta["preprocessing"]["amplitude_reference"]["recording_range_uv"] = [5.0, "loud"]
    (b / "model.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match=re.escape(f"{b / 'model.json'}: preprocessing.amplitude_reference")):
        load_bundle(b)


def test_the_cli_help_states_the_calibration_minimum(capsys):
    from nemg.predict import MIN_CALIBRATION_PATIENTS

    with pytest.raises(SystemExit):
        nemg_main(["predict", "--help"])
    assert f"at least {MIN_CALIBRATION_PATIENTS} patients" in " ".join(capsys.readouterr().out.split())


def test_nan_probabilities_are_an_error_not_a_quiet_vote(run):
    bundle = load_bundle(run["bundle"])
    nets = bundle.networks()
    with torch.no_grad():
        next(nets["ext_s1"].parameters()).fill_(float("nan"))
    recs, subjects = read_input([run["recordings"], run["subjects"]])
    with pytest.raises(PredictError, match=re.escape(recs["path"].iloc[0]) + ": member ext_s1 gives non-finite"):
        predict(bundle, recs, subjects, num_threads=1, networks=nets)


def test_location_is_required_when_the_model_uses_it(run, tmp_path):
    b = copy_bundle(run, tmp_path)
    meta = json.loads((b / "model.json").read_text())
    meta["stage2"]["with_location"] = True
    (b / "model.json").write_text(json.dumps(meta))
    recs = read_input([run["recordings"]])[0]
    with pytest.raises(PredictError, match="location"):
        prepare(load_bundle(b), recs.assign(location=None))


def test_a_member_with_location_records_where_its_fit_patients_were_recorded():
    rng = np.random.default_rng(0)
    rows, diag, locs = [], {}, {}
    for role, n in (("val", 9), ("test", 3)):
        for i in range(n):
            sid, c = f"{role}{i}", ["normal", "myopathy", "neuropathy"][i % 3]
            diag[sid] = c
            for r in range(2):
                rid = f"{sid}_{r}"
                # every val patient proximal except val0's second muscle; test patients distal
                locs[rid] = "distal" if role == "test" or rid == "val0_1" else "proximal"
                rows.append({"run_id": "m", "segment": len(rows), "recording_id": rid, "subject_id": sid,
                             "role": role, **dict(zip(PROB_COLS, rng.dirichlet(np.ones(3))))})
    preds = pd.DataFrame(rows)
    subjects = pd.DataFrame({"subject_id": list(diag), "diagnosis": list(diag.values())})
    recordings = pd.DataFrame({"recording_id": list(locs), "location": list(locs.values())})
    kw = dict(method="logreg", fit_on="val", seed=0, class_weight="balanced")
    s2 = fit_member_stage2(preds, subjects, recordings, with_location=True, **kw)
    assert s2["fit_locations"] == {"proximal": 9, "distal": 1} and len(s2["features"]) == 6
    assert "fit_locations" not in fit_member_stage2(preds, subjects, recordings, with_location=False, **kw)


def test_a_patient_recorded_only_where_no_stage2_fit_patient_was_is_refused(run, tmp_path):
    """A stage 2 with location fit on proximal recordings only would give a distal-only patient its prior."""
    b = copy_bundle(run, tmp_path)
    meta = json.loads((b / "model.json").read_text())
    meta["stage2"]["with_location"] = True
    for m in meta["members"]:
        m["stage2"]["fit_locations"] = {"proximal": 3, "distal": 0}
    meta["members"][1]["stage2"]["fit_locations"] = {"proximal": 3, "distal": 1}  # one member is enough to refuse
    (b / "model.json").write_text(json.dumps(meta))
    recs, subjects = read_input([run["recordings"], run["subjects"]])
    first = recs["subject_id"].iloc[0]
    recs = recs.assign(location=np.where(recs["subject_id"] == first, "distal", "proximal"))
    with pytest.raises(PredictError, match=re.escape(recs["path"].iloc[0]) + rf": patient '{first}' has only distal "
                       rf"recordings, but this model's stage 2 reads muscle location and member "
                       rf"{meta['members'][0]['run_id']} was fit on no patient with a distal recording \(only "
                       r"proximal\): its call would be its prior"):
        predict(load_bundle(b), recs, subjects, num_threads=1)


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_exported_networks_match_eager(run, tmp_path, fmt):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
        pytest.importorskip("onnxscript")
    from nemg.export import export_bundle, load_exported

    bundle = load_bundle(run["bundle"])
    if fmt == "torchscript":  # the command line once; the library call for ONNX
        assert nemg_main(["export", str(run["bundle"]), "--format", fmt, "--out", str(tmp_path)]) == 0
        written = sorted(tmp_path.glob("*.pt"))
    else:
        written = export_bundle(run["bundle"], fmt, out_dir=tmp_path)
    assert sorted(p.stem for p in written) == ["ext_s0", "ext_s1"]
    segments = np.load(run["work"] / "results" / "segment" / "clinic_for_ci" / "segments.npy")[:37]
    nets = bundle.networks()
    for path in written:
        with torch.no_grad():
            eager = nets[path.stem](torch.from_numpy(segments)).numpy()
        exported = load_exported(path)(segments)
        assert exported.shape == (37, 3)
        np.testing.assert_allclose(exported, eager, rtol=1e-4, atol=1e-4)


def test_signal_files_sharing_a_name_get_distinct_ids_and_one_file_given_twice_is_refused(tmp_path):
    x = (np.random.default_rng(0).standard_normal(RATE) * 50).astype(np.float32)
    files = []
    for folder in ("a", "b", "c"):  # three muscles exported under one name into three folders
        (tmp_path / folder).mkdir()
        np.save(tmp_path / folder / "emg.npy", x)
        files.append(tmp_path / folder / "emg.npy")
    recs = recordings_from_files(files, sampling_rate_hz=RATE)
    assert recs["recording_id"].is_unique and len(recs) == 3
    # counted twice, one recording would weigh double in the patient's vote
    with pytest.raises(PredictError, match=re.escape(f"{tmp_path}/a/../a/emg.npy: the same recording as "
                                                     f"{files[0]}, given twice")):
        recordings_from_files([files[0], tmp_path / "a" / ".." / "a" / "emg.npy"], sampling_rate_hz=RATE)


def test_a_recordings_sheet_without_rows_is_refused_by_name(tmp_path):
    sheet = tmp_path / "recordings.tsv"
    sheet.write_text("recording_id\tsubject_id\tmuscle\tside\tlocation\tpath\tformat\tsampling_rate_hz\n")
    with pytest.raises(PredictError, match=re.escape(f"{sheet}: no recordings")):
        read_input([sheet])


def test_a_failed_write_leaves_no_output_and_no_temporary_file(tmp_path, monkeypatch):
    from nemg.predict import write_predictions

    table = pd.DataFrame({"subject_id": ["p"], "p_normal": [1.0]})
    real = pd.DataFrame.to_csv

    def disk_full_at_the_second_table(self, path, *args, **kwargs):
        if "patient" in str(path):
            raise OSError(28, "No space left on device")
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", disk_full_at_the_second_table)
    with pytest.raises(OSError, match="No space left"):
        write_predictions(tmp_path / "new", table, table)
    assert not (tmp_path / "new").exists()
    (tmp_path / "old").mkdir()  # an earlier run's output stays as it was
    (tmp_path / "old" / "patient_predictions.tsv").write_text("earlier\n")
    with pytest.raises(OSError, match="No space left"):
        write_predictions(tmp_path / "old", table, table)
    assert [p.name for p in (tmp_path / "old").iterdir()] == ["patient_predictions.tsv"]
