"""Fig 3 (activation maximisation), S4 Fig (mispredicted patients) and S1 Fig (model structure) on a toy cohort."""
import numpy as np
import pandas as pd
import pytest
import torch

from nemg.explain import (activation_maximization, example_segments, layer_table, load_model,
                          maximize_class_inputs, mispredicted_examples, select_mispredicted, select_runs,
                          signal_summary, structure_tables)
from nemg.labels import CLASSES
from nemg.model import PRESETS, count_parameters, forward_flops
from nemg.model_figures import (fig3_activation_maximization, s1_fig_model_structure, s4_fig_mispredicted,
                                save)
from nemg.train import train_run

WINDOW, FS = 400, 10000.0


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """3 subjects per class, 10 segments each: class c = spikes of width 1, 4 or 12 samples and amplitude
    100, 60 or 300 µV plus noise. One nested run (1 train, 1 val, 1 test subject per class), trained briefly."""
    d = tmp_path_factory.mktemp("explain")
    rng = np.random.default_rng(0)
    shapes = {"normal": (4, 100.0), "myopathy": (1, 60.0), "neuropathy": (12, 300.0)}
    x, index, folds = [], [], []
    for cls in CLASSES:
        width, amp = shapes[cls]
        kernel = np.hanning(width + 2)[1:-1] if width > 1 else np.ones(1)
        for k, role in enumerate(("train", "val", "test")):
            sid = f"{cls[:3]}{k}"
            for j in range(10):
                spikes = np.zeros(WINDOW)
                spikes[rng.choice(WINDOW, 8, replace=False)] = rng.choice([-1, 1], 8) * amp
                x.append(np.convolve(spikes, kernel, mode="same") + rng.normal(0, 10, WINDOW))
                rec = f"{sid}_{'biceps' if j < 5 else 'tibialis'}"
                index.append((len(index), rec, sid, cls, "proximal" if j < 5 else "distal",
                              "biceps" if j < 5 else "tibialis", j * 1000))
            folds.append(("nested", 0, 0, 0, 0, "nested_s0_o0_i0", sid, cls, role))
    np.save(d / "segments.npy", np.asarray(x, dtype=np.float32))
    pd.DataFrame(index, columns=["segment", "recording_id", "subject_id", "diagnosis", "location", "muscle",
                                 "offset_samples"]).to_csv(d / "segments_index.tsv", sep="\t", index=False)
    pd.DataFrame(folds, columns=["scheme", "seed", "repeat", "outer", "inner", "run_id", "subject_id", "diagnosis",
                                 "role"]).to_csv(d / "folds.tsv", sep="\t", index=False)
    torch.set_num_threads(1)
    run_dir = d / "train" / "nested_s0_o0_i0"
    train_run(d / "segments.npy", d / "segments_index.tsv", d / "folds.tsv", "nested_s0_o0_i0", run_dir,
              model_cfg={"preset": "small"}, train_cfg={"batch_size": 8, "max_epochs": 10, "eval_every": 3,
                                                      "num_threads": 1, "progress": False})
    return {"dir": d, "segments": d / "segments.npy", "index": d / "segments_index.tsv",
            "best": run_dir / "best.pt", "predictions": run_dir / "predictions.tsv"}


def big_files(*paths):
    return all(p.is_file() and p.stat().st_size > 10_000 for p in paths)


# ------------------------------------------------------------------------------------------------ Fig 3

FAST_AM = dict(steps=40, lr=0.2, l2=0.001, tv=0.01, jitter_ms=2.0, blur_ms=0.2, init_std=1.0, clip=20.0)


class KnownLogits(torch.nn.Module):
    """Weights fixed in the test, so the test holds on any CPU (a toy model trained here ended with different
    weights on another machine, and its myopathy probability fell instead of rising).

    With u = mean(x) / 100 µV and v = mean(x * 2 cos(2 pi n / N)) / 100 µV: logit_normal = u,
    logit_myopathy = v, logit_neuropathy = -(u + v). Raising a class's logit moves the input along its own
    template, which lowers or leaves alone the others, so every target's probability must rise, by a wide margin.
    """

    def __init__(self, n: int):
        super().__init__()
        t = torch.arange(n, dtype=torch.float32)
        self.register_buffer("templates", torch.stack([torch.ones(n), 2 * torch.cos(2 * torch.pi * t / n)]) / (n * 100.0))

    def forward(self, x):
        f = x[:, 0] @ self.templates.T
        return torch.cat([f, -f.sum(1, keepdim=True)], 1)


def test_activation_maximisation_raises_each_target_and_is_seeded(toy):
    torch.set_num_threads(1)
    model, meta = load_model(toy["best"])
    assert meta["window_samples"] == WINDOW and not any(p.requires_grad for p in model.parameters())
    known = KnownLogits(WINDOW).eval()
    a = maximize_class_inputs([known], WINDOW, scale=100.0, fs_hz=FS, seed=3, **FAST_AM)
    assert a.signals.shape == (3, WINDOW) and a.signals.dtype == np.float32
    # start: noise of std 100 µV, every class near 1/3; 40 Adam steps of 0.2 take each target above 0.9
    assert (np.abs(np.diag(a.start_probs) - 1 / 3) < 0.1).all() and (np.diag(a.probs) > 0.9).all(), \
        (a.start_probs, a.probs)
    assert np.allclose(a.probs.sum(1), 1)
    x = a.signals.astype(np.float64)
    assert x[0].mean() > 100 and x[2].mean() < -100  # normal: raised DC; neuropathy: lowered DC ...
    cos = np.cos(2 * np.pi * np.arange(WINDOW) / WINDOW)
    assert (x[1] - x[1].mean()) @ cos / WINDOW > 100  # ... myopathy: the cosine template
    b = maximize_class_inputs([known], WINDOW, scale=100.0, fs_hz=FS, seed=3, **FAST_AM)
    c = maximize_class_inputs([known], WINDOW, scale=100.0, fs_hz=FS, seed=4, **FAST_AM)
    assert np.array_equal(a.signals, b.signals)  # same seed: bit-identical on the CPU
    assert not np.array_equal(a.signals, c.signals)
    # the trained checkpoint goes through the same code (its numbers depend on the machine's kernels)
    trained = maximize_class_inputs([model], WINDOW, scale=100.0, fs_hz=FS, seed=3, **FAST_AM)
    assert np.isfinite(trained.signals).all() and np.allclose(trained.probs.sum(1), 1)
    summary = signal_summary(a, FS)
    assert list(summary["class"]) == list(CLASSES)
    assert np.allclose(summary["p2p_uV"], np.ptp(a.signals, axis=1), rtol=1e-5)
    assert ((summary["dominant_hz"] > 0) & (summary["dominant_hz"] <= FS / 2)).all()


class SharedGain(KnownLogits):
    """Raising normal's logit (u) raises myopathy's twice as fast: logits u, 2u + v, -(u + v). Normal is the
    most likely class only where -2u < v < -u, which its raw logit does not ask for."""

    def forward(self, x):
        u, v = (x[:, 0] @ self.templates.T).split(1, dim=1)
        return torch.cat([u, 2 * u + v, -(u + v)], 1)


def test_activation_maximisation_objective():
    torch.set_num_threads(1)
    model = SharedGain(WINDOW).eval()
    raw = maximize_class_inputs([model], WINDOW, scale=100.0, fs_hz=FS, seed=3, objective="logit", **FAST_AM)
    soft = maximize_class_inputs([model], WINDOW, scale=100.0, fs_hz=FS, seed=3, objective="log_softmax", **FAST_AM)
    # the raw logit's "normal" input is read as myopathy, less normal than the noise it started from ...
    assert raw.probs[0].argmax() == 1 and raw.probs[0, 0] < raw.start_probs[0, 0], raw.probs
    # ... the log-probability's is normal, and every class's input is its own class
    assert (soft.probs.argmax(1) == [0, 1, 2]).all() and soft.probs[0, 0] > 0.6, soft.probs
    assert soft.config["objective"] == "log_softmax" and raw.config["objective"] == "logit"
    with pytest.raises(ValueError, match="objective 'softmax'"):
        maximize_class_inputs([model], WINDOW, scale=100.0, fs_hz=FS, objective="softmax", **FAST_AM)


def test_select_runs():
    ids = [f"nested_s{s}_o{o}_i{i}" for s in (0, 1) for o in range(2) for i in range(3)] + ["rkfold_s0_r0_o0"]
    assert select_runs(ids, "first_outer") == ["nested_s0_o0_i0", "nested_s0_o0_i1", "nested_s0_o0_i2"]
    assert select_runs(ids, "first_seed") == ids[:6]
    assert select_runs(ids, "all") == ids
    assert select_runs(ids, ["nested_s1_o1_i2", "nested_s0_o0_i0"]) == ["nested_s0_o0_i0", "nested_s1_o1_i2"]
    assert select_runs(["rkfold_s0_r0_o0", "rkfold_s0_r0_o1"], "first_outer") == ["rkfold_s0_r0_o0"]
    with pytest.raises(ValueError, match="unknown run id"):
        select_runs(ids, ["nested_s9_o0_i0"])


def test_fig3_files(toy, tmp_path):
    summary = activation_maximization([toy["best"]], toy["segments"], toy["index"], tmp_path / "sig.tsv",
                                      tmp_path / "sum.tsv", fs_hz=FS, am={**FAST_AM, "steps": 20}, device="cpu")
    assert {"real_p2p_uV", "p_target", "runs"} <= set(summary.columns)
    # the toy's neuropathy spikes are 5x the myopathy ones: the reference columns must see it
    ref = summary.set_index("class")["real_p2p_uV"]
    assert ref["neuropathy"] > 3 * ref["myopathy"]
    signals = pd.read_csv(tmp_path / "sig.tsv", sep="\t")
    assert list(signals.columns) == ["time_ms", *CLASSES] and len(signals) == WINDOW
    fig = fig3_activation_maximization(signals, pd.read_csv(tmp_path / "sum.tsv", sep="\t"), title="toy")
    save(fig, [tmp_path / "fig3.png", tmp_path / "fig3.pdf"])
    assert big_files(tmp_path / "fig3.png", tmp_path / "fig3.pdf")


# ------------------------------------------------------------------------------------------------ S4 Fig

def patients_table():
    """Two runs x 4 patients; wrong: M1 in run a (p 0.7) and run b (0.9), N1 in run a (0.6), Z1 only argmax."""
    rows = []

    def add(run, sid, dx, pred, p, method="logreg", loc=False):
        probs = dict(zip(CLASSES, [(1 - p) / 2] * 3))
        probs[pred] = p
        rows.append({"run_id": run, "subject_id": sid, "diagnosis": dx, "predicted": pred,
                     **{f"p_{c}": v for c, v in probs.items()}, "method": method, "with_location": loc,
                     "fit_on": "val" if method == "logreg" else ""})

    for run in ("a", "b"):
        add(run, "M1", "myopathy", "normal", 0.7 if run == "a" else 0.9)
        add(run, "N1", "neuropathy", "myopathy" if run == "a" else "neuropathy", 0.6)
        add(run, "O1", "normal", "normal", 0.8)
        add(run, "M2", "myopathy", "myopathy", 0.5)
        add(run, "Z1", "normal", "myopathy", 0.99, method="argmax")  # other method: never picked for logreg
        add(run, "L1", "normal", "neuropathy", 0.95, loc=True)  # with location: not picked without
    return pd.DataFrame(rows)


def test_select_mispredicted_picks_most_confident_per_class():
    sel = select_mispredicted(patients_table(), method="logreg", with_location=False, n_examples=3)
    assert list(sel["subject_id"]) == ["M1", "N1"]  # round-robin normal, myopathy, neuropathy; no normal wrong
    assert sel.loc[0, "run_id"] == "b" and sel.loc[0, "confidence"] == pytest.approx(0.9)  # most confident row
    assert list(select_mispredicted(patients_table(), method="logreg", n_examples=1)["subject_id"]) == ["M1"]
    assert list(select_mispredicted(patients_table(), method="argmax")["subject_id"]) == ["Z1"]
    assert list(select_mispredicted(patients_table(), method="logreg", with_location=True)["subject_id"]) == ["L1"]
    with_str_flags = patients_table().assign(with_location=lambda d: d["with_location"].map(str))
    assert list(select_mispredicted(with_str_flags, method="logreg")["subject_id"]) == ["M1", "N1"]


def test_select_mispredicted_handles_none_wrong():
    right = patients_table()
    right["predicted"] = right["diagnosis"]
    sel = select_mispredicted(right, method="logreg")
    assert sel.empty and "confidence" in sel.columns
    assert example_segments(sel, pd.DataFrame(), pd.DataFrame()).empty


def toy_patients(toy, wrong: bool) -> pd.DataFrame:
    """Patient rows for the toy run's test subjects: every one predicted as the next class when ``wrong``."""
    rows = []
    for i, cls in enumerate(CLASSES):
        pred = CLASSES[(i + 1) % 3] if wrong else cls
        p = {f"p_{c}": 0.8 if c == pred else 0.1 for c in CLASSES}
        for method, loc in (("logreg", False), ("logreg", True), ("argmax", False)):
            rows.append({"run_id": "nested_s0_o0_i0", "subject_id": f"{cls[:3]}2", "diagnosis": cls,
                         "predicted": pred, **p, "method": method, "with_location": loc,
                         "fit_on": "val" if method == "logreg" else ""})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("wrong", [True, False], ids=["mispredicted", "none_wrong"])
def test_s4_fig_files(toy, tmp_path, wrong):
    tsv = tmp_path / "patient_predictions.tsv"
    toy_patients(toy, wrong).to_csv(tsv, sep="\t", index=False)
    sel, ex, x, n = mispredicted_examples(tsv, [toy["predictions"], tmp_path / "missing.tsv"], toy["segments"],
                                          toy["index"], method="logreg", n_examples=3, n_segments=2)
    assert n == 3
    if wrong:
        assert sorted(sel["subject_id"]) == ["myo2", "neu2", "nor2"]
        assert len(ex) == 6 and x.shape == (6, WINDOW)
        # one segment per recording first (biceps, tibialis), each the most 'predicted-class' of its recording
        assert (ex.groupby("subject_id")["recording_id"].nunique() == 2).all()
        preds = pd.read_csv(toy["predictions"], sep="\t")
        p = preds.set_index("segment")
        for _, e in ex.iterrows():
            pred = sel.set_index("subject_id").loc[e["subject_id"], "predicted"]
            rec = p[(p["recording_id"] == e["recording_id"]) & (p["role"] == "test")]
            assert e[f"p_{pred}"] == pytest.approx(rec[f"p_{pred}"].max())
    else:
        assert sel.empty and ex.empty and x.shape == (0, WINDOW)
    fig = s4_fig_mispredicted(sel, ex, x, FS, n_patients=n, description="stage 2: logreg")
    save(fig, [tmp_path / "s4.png", tmp_path / "s4.pdf"])
    assert (tmp_path / "s4.png").stat().st_size > 10_000 and (tmp_path / "s4.pdf").is_file()
    if wrong:
        assert big_files(tmp_path / "s4.png", tmp_path / "s4.pdf")


# ------------------------------------------------------------------------------------------------ S1 Fig

def test_layer_table_adds_up_to_the_model():
    paper = layer_table(4000, **PRESETS["paper"])
    assert paper["parameters"].sum() == 289_775_619
    assert paper["flops"].sum() == forward_flops(4000)
    last = paper[paper["group"] == "residual stage 1024"].iloc[0]
    assert last["output"] == "1024 × 495" and last["flop_share"] == pytest.approx(0.684, abs=1e-3)
    assert paper.iloc[-2]["group"] == "FC 506880 → 512"
    tiny = layer_table(WINDOW, **PRESETS["cpu"])
    assert tiny["length"].iloc[0] == WINDOW // 2 - 1
    both = structure_tables({"preset": "cpu"}, 4000)
    assert list(dict.fromkeys(both["model"])) == ["configured: cpu", "paper"]
    assert len(structure_tables({"preset": "paper"}, 4000)["model"].unique()) == 1
    floored = structure_tables({"preset": "cpu", "min_channels": 16}, 4000)
    mine = floored[floored["model"].str.startswith("configured")]
    assert "at least 16 channels" in mine["model"].iloc[0]
    assert mine["channels"].iloc[0] == 16
    assert mine["flops"].sum() > both[both["model"] == "configured: cpu"]["flops"].sum()
    halved = structure_tables({"preset": "cpu", "stem_pool_stride": 2}, 4000)
    mine = halved[halved["model"].str.startswith("configured")]
    assert "stem pool stride 2" in mine["model"].iloc[0]
    assert mine["group"].iloc[0] == "block 1 (k11, stride 2, pool stride 2)"
    assert list(mine["length"].iloc[:3]) == [1000, 499, 249]
    levelled = structure_tables({"preset": "cpu", "rms_to_head": True}, 4000)
    mine = levelled[levelled["model"].str.startswith("configured")]
    assert "log RMS to the head" in mine["model"].iloc[0]
    assert mine["group"].iloc[-2].startswith("FC 129 → ")


def test_s1_fig_files(tmp_path):
    table = structure_tables({"preset": "cpu"}, 4000)
    table.to_csv(tmp_path / "s1.tsv", sep="\t", index=False)
    fig = s1_fig_model_structure(pd.read_csv(tmp_path / "s1.tsv", sep="\t"))
    save(fig, [tmp_path / "s1.png", tmp_path / "s1.pdf"])
    assert big_files(tmp_path / "s1.png", tmp_path / "s1.pdf")
    from nemg.model import NEMGNet
    with torch.device("meta"):
        assert table[table["model"] == "paper"]["parameters"].sum() == count_parameters(NEMGNet())
