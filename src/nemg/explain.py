"""What the trained nEMGNets respond to: class-maximising inputs (Fig 3), mispredicted patients (S4 Fig) and
the network's layer-by-layer structure (S1 Fig).

    maximize_class_inputs(models, n_samples, scale=..., ...) -> ActivationResult   (Fig 3)
    signal_summary(result, fs_hz) -> DataFrame                                       (Fig 3 table)
    select_mispredicted(patients, method=...) -> DataFrame                           (S4 Fig)
    example_segments(selected, predictions, index) -> DataFrame                      (S4 Fig)
    layer_table(n_samples, **size) -> DataFrame                                      (S1 Fig)

torch is imported inside the functions that need it, so the selection helpers run in the plotting
environment (envs/plots.yaml has no torch).
"""
from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from nemg.config import section_defaults

from .folds import parse_run_id
from .labels import CLASSES, PROB_COLS

log = logging.getLogger(__name__)

log = logging.getLogger(__name__)

#: The ``explain:`` keys of the activation maximisation (Fig 3); the config schema documents each one and holds
#: its default.
AM_KEYS = ("objective", "steps", "lr", "l2", "tv", "jitter_ms", "blur_ms", "init_std", "clip", "seed")
# what each class's input maximises: its log-probability (log-softmax of the logits) or its raw logit
OBJECTIVES = ("log_softmax", "logit")


def am_settings(am: Mapping | None = None) -> dict:
    """The activation-maximisation settings in ``am`` (part of an ``explain:`` section) with the schema's defaults
    for the keys it leaves out or sets to None; unknown keys are errors."""
    given = {k: v for k, v in (am or {}).items() if v is not None}
    unknown = sorted(set(given) - set(AM_KEYS))
    if unknown:
        raise ValueError(f"activation maximisation: unknown key(s) {unknown}; known: {sorted(AM_KEYS)}")
    return {k: v for k, v in {**section_defaults("explain"), **given}.items() if k in AM_KEYS}


# ================================================================================= models and runs

def select_runs(run_ids: Sequence[str], runs: str | Sequence[str] = "first_outer") -> list[str]:
    """Which runs' checkpoints Fig 3 uses.

    ``first_outer``: the inner runs of the first outer fold of the first seed (a nested scheme's 3 CNNs that
    were trained on the same patients), or the first run of a scheme without inner folds;
    ``first_seed``: every run of the first scheme and seed; ``all``: every run; a list: those run ids.
    """
    run_ids = list(run_ids)
    if not run_ids:
        raise ValueError("no training runs to explain")
    if not isinstance(runs, str):
        unknown = sorted(set(runs) - set(run_ids))
        if unknown:
            raise ValueError(f"explain.runs: unknown run id(s) {unknown}; known: {run_ids}")
        return [r for r in run_ids if r in set(runs)]
    if runs == "all":
        return run_ids
    parsed = {r: parse_run_id(r) for r in run_ids}
    first = parsed[run_ids[0]]
    if runs == "first_seed":
        return [r for r in run_ids if (parsed[r].scheme, parsed[r].seed) == (first.scheme, first.seed)]
    if runs == "first_outer":
        if first.scheme != "nested":
            return run_ids[:1]
        # the inner runs differ only in their validation patients: same scheme, seed and outer fold
        return [r for r in run_ids if parsed[r]._replace(inner=0) == first._replace(inner=0)]
    raise ValueError(f"explain.runs: {runs!r} is not first_outer, first_seed, all or a list of run ids")


def load_model(checkpoint: str | Path, device="cpu"):
    """A trained nEMGNet in eval mode (BatchNorm running statistics) and its checkpoint metadata."""
    import torch

    from nemg.model import model_from_size

    # weights_only: a best.pt holds tensors and plain metadata only, so a file from elsewhere cannot run code
    ck = torch.load(checkpoint, map_location="cpu", weights_only=True)
    # train.py stores the resolved model keys next to the preset
    model = model_from_size(ck["model_cfg"], ck["window_samples"])
    model.load_state_dict(ck["state_dict"])
    model.to(device).eval()
    for p in model.parameters():  # only the input is optimised
        p.requires_grad_(False)
    return model, {k: v for k, v in ck.items() if k != "state_dict"}


def typical_scale(segments: np.ndarray, n: int = 2000) -> float:
    """Median per-segment standard deviation of up to ``n`` evenly spaced segments (µV)."""
    rows = np.unique(np.linspace(0, len(segments) - 1, min(n, len(segments))).astype(int))
    return float(np.median(np.asarray(segments[rows], dtype=np.float64).std(axis=1)))


def class_reference(segments: np.ndarray, index: pd.DataFrame, fs_hz: float, n: int = 500) -> pd.DataFrame:
    """Real segments' median peak-to-peak amplitude and dominant frequency per class (what Fig 3 compares to)."""
    out = []
    for c in CLASSES:
        rows = index.loc[index["diagnosis"] == c, "segment"].to_numpy()
        if len(rows) == 0:
            out.append({"class": c, "real_p2p_uV": np.nan, "real_dominant_hz": np.nan, "real_centroid_hz": np.nan})
            continue
        rows = rows[np.unique(np.linspace(0, len(rows) - 1, min(n, len(rows))).astype(int))]
        x = np.asarray(segments[rows], dtype=np.float64)
        freqs, power = _power_spectrum(x, fs_hz)
        mean_power = power.mean(axis=0)
        out.append({"class": c, "real_p2p_uV": float(np.median(np.ptp(x, axis=1))),
                    "real_dominant_hz": float(freqs[1:][np.argmax(mean_power[1:])]),
                    "real_centroid_hz": float((freqs * mean_power).sum() / mean_power.sum())})
    return pd.DataFrame(out)


# ================================================================================= activation maximisation

@dataclass
class ActivationResult:
    signals: np.ndarray  # float32 [3, n_samples] µV, row c maximises class c
    probs: np.ndarray  # [3 signals, 3 classes] softmax averaged over the models, final signals
    start_probs: np.ndarray  # the same for the noise start
    history: pd.DataFrame  # step, class, logit, p_target (every `log_every` steps)
    config: dict = field(default_factory=dict)


def _gaussian_kernel(sigma: float):
    import torch

    radius = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return (k / k.sum()).view(1, 1, -1)


def _ensemble_logits(models, x):
    import torch

    return torch.stack([m(x) for m in models]).mean(0)


def _ensemble_probs(models, x) -> np.ndarray:
    import torch

    with torch.no_grad():
        return torch.stack([torch.softmax(m(x), 1) for m in models]).mean(0).cpu().double().numpy()


def maximize_class_inputs(models: Sequence, n_samples: int, *, scale: float, fs_hz: float = 10000.0, device="cpu",
                          log_every: int = 10, **am) -> ActivationResult:
    """One input per class that maximises that class's log-probability (or logit), averaged over ``models``.

    The signal is optimised in standardised units ``z`` (x = scale * blur(z), ``scale`` = a typical segment's
    standard deviation in µV) so that the penalties mean the same at any recording scale:

        maximise  mean_models f_c(scale * blur(shift(z)))  -  l2 * mean(z^2)  -  tv * mean|diff z|

    with ``f_c`` the log-softmax of the models' mean logits at class c (``objective: log_softmax``) or the raw
    logit (``objective: logit``, the textbook form). A raw logit can also be raised by what raises every
    class's logit (a ReLU network's logits grow with amplitude), so its optimum may be read as another class
    (docs/evaluation.md, Fig 3). The log-probability asks for what makes the class more likely than the others,
    which is what the figure shows.

    ``shift`` is a random circular shift of up to ``jitter_ms`` drawn anew every step. All three classes are
    optimised together as one batch of 3 (BatchNorm in eval mode keeps them independent). Seeded noise start;
    on the CPU the result is bit-identical for a seed.

    ``am``: the settings of :data:`AM_KEYS` (objective, steps, lr, ...); those
    not given take the ``explain:`` defaults (:func:`am_settings`).
    """
    import torch

    am = am_settings(am)
    steps, lr, l2, tv, clip, seed = am["steps"], am["lr"], am["l2"], am["tv"], am["clip"], am["seed"]
    jitter_ms, blur_ms, init_std = am["jitter_ms"], am["blur_ms"], am["init_std"]
    objective = am["objective"]
    if objective not in OBJECTIVES:
        raise ValueError(f"activation maximisation: objective {objective!r}; known: {list(OBJECTIVES)}")
    models = list(models)
    if not models:
        raise ValueError("activation maximisation needs at least one model")
    device = torch.device(device)
    gen = torch.Generator().manual_seed(int(seed))  # init and shifts, independent of the global RNG
    z0 = torch.randn(len(CLASSES), 1, n_samples, generator=gen) * float(init_std)
    z = z0.clone().to(device).requires_grad_(True)
    opt = torch.optim.Adam([z], lr=float(lr))
    kernel = _gaussian_kernel(blur_ms * 1e-3 * fs_hz).to(device) if blur_ms > 0 else None
    max_shift = int(round(jitter_ms * 1e-3 * fs_hz))
    target = torch.arange(len(CLASSES), device=device)

    def render(zz):
        if kernel is not None:  # circular padding: consistent with the circular jitter
            zz = torch.nn.functional.conv1d(torch.nn.functional.pad(zz, (kernel.shape[-1] // 2,) * 2, mode="circular"),
                                            kernel)
        return zz * float(scale)

    history = []
    for step in range(int(steps) + 1):
        shift = int(torch.randint(-max_shift, max_shift + 1, (1,), generator=gen)) if max_shift else 0
        logits = _ensemble_logits(models, render(torch.roll(z, shift, dims=-1)))
        scores = torch.log_softmax(logits, 1) if objective == "log_softmax" else logits
        picked = scores[target, target]  # class c's objective for signal c
        if step % log_every == 0 or step == steps:
            raw = logits.detach()[target, target]
            p = torch.softmax(logits.detach(), 1)[target, target]
            history += [{"step": step, "class": c, "logit": float(raw[i]), "p_target": float(p[i])}
                        for i, c in enumerate(CLASSES)]
        if step == steps:
            break
        penalty = l2 * z.pow(2).mean((1, 2)) + tv * (z[..., 1:] - z[..., :-1]).abs().mean((1, 2))
        loss = (penalty - picked).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            z.clamp_(-clip, clip)

    with torch.no_grad():
        final = render(z.detach())
        start = render(z0.to(device))
    if z.grad is None or not torch.any(z.grad != 0):
        # e.g. a narrow model whose first ReLU is dead for every input: nothing to visualise
        log.warning("the models' logits do not depend on the input; the optimised signals are only the penalties'")
    cfg = dict(objective=objective, steps=steps, lr=lr, l2=l2, tv=tv, jitter_ms=jitter_ms, blur_ms=blur_ms,
               init_std=init_std, clip=clip, seed=seed, scale_uV=scale, fs_hz=fs_hz, n_models=len(models))
    return ActivationResult(signals=final[:, 0].cpu().numpy().astype(np.float32),
                            probs=_ensemble_probs(models, final), start_probs=_ensemble_probs(models, start),
                            history=pd.DataFrame(history), config=cfg)


def _power_spectrum(x: np.ndarray, fs_hz: float) -> tuple[np.ndarray, np.ndarray]:
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    x = (x - x.mean(axis=-1, keepdims=True)) * np.hanning(x.shape[-1])
    return np.fft.rfftfreq(x.shape[-1], 1 / fs_hz), np.abs(np.fft.rfft(x, axis=-1)) ** 2


def signal_summary(result: ActivationResult, fs_hz: float, reference: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per class: amplitude and frequency content of its optimised input and the models' verdict.

    ``peak_width_ms``: full width at half maximum of |x| around the largest excursion (how long the dominant
    potential lasts). ``reference`` (from :func:`class_reference`) adds the real segments' values.
    """
    freqs, power = _power_spectrum(result.signals, fs_hz)
    rows = []
    for i, c in enumerate(CLASSES):
        x = result.signals[i].astype(np.float64)
        a = np.abs(x - np.median(x))
        peak = int(np.argmax(a))
        above = a >= a[peak] / 2
        lo = peak - np.argmin(above[peak::-1]) if not above[:peak + 1].all() else 0
        hi = peak + np.argmin(above[peak:]) if not above[peak:].all() else len(x)
        row = {"class": c, "p2p_uV": float(np.ptp(x)), "rms_uV": float(x.std()),
               "dominant_hz": float(freqs[1:][np.argmax(power[i, 1:])]),
               "centroid_hz": float((freqs * power[i]).sum() / power[i].sum()),
               "peak_width_ms": float((hi - lo) / fs_hz * 1e3),
               "p_target_start": float(result.start_probs[i, i]), "p_target": float(result.probs[i, i])}
        row.update({f"p_{k}": float(result.probs[i, j]) for j, k in enumerate(CLASSES)})
        rows.append(row)
    out = pd.DataFrame(rows)
    if reference is not None:
        out = out.merge(reference, on="class", how="left")
    return out


def signals_table(result: ActivationResult, fs_hz: float) -> pd.DataFrame:
    """The optimised inputs as columns ``time_ms, normal, myopathy, neuropathy`` (µV)."""
    t = np.arange(result.signals.shape[1]) / fs_hz * 1e3
    return pd.DataFrame({"time_ms": t, **{c: result.signals[i] for i, c in enumerate(CLASSES)}})


def activation_maximization(checkpoints: Sequence[str | Path], segments_npy, index_tsv, out_signals,
                            out_summary, *, fs_hz: float, am: dict | None = None, device: str = "auto",
                            num_threads: int | None = 1) -> pd.DataFrame:
    """Fig 3's numbers: load the runs' ``best.pt``, optimise one input per class against their ensemble,
    write the signals and the summary TSVs; returns the summary."""
    import torch

    from .store import read_segment_store

    cfg = am_settings(am)
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                       ("cpu" if device == "auto" else device))
    prev_threads = torch.get_num_threads()
    if num_threads and dev.type == "cpu":
        torch.set_num_threads(int(num_threads))
    try:
        models, metas = zip(*(load_model(p, dev) for p in checkpoints))
        windows = {int(m["window_samples"]) for m in metas}
        if len(windows) != 1:
            raise ValueError(f"checkpoints disagree on the window: {sorted(windows)} samples")
        segments, index = read_segment_store(segments_npy, index_tsv)
        scale = typical_scale(segments)
        log.info("%d model(s) %s, window %d samples, typical segment std %.1f µV, device %s",
                 len(models), [m["run_id"] for m in metas], windows.copy().pop(), scale, dev)
        result = maximize_class_inputs(models, windows.pop(), scale=scale, fs_hz=fs_hz, device=dev, **cfg)
    finally:
        torch.set_num_threads(prev_threads)
    summary = signal_summary(result, fs_hz, class_reference(segments, index, fs_hz))
    summary.insert(1, "runs", ",".join(m["run_id"] for m in metas))
    for p in (out_signals, out_summary):
        Path(p).parent.mkdir(parents=True, exist_ok=True)
    signals_table(result, fs_hz).to_csv(out_signals, sep="\t", index=False, float_format="%.6g")
    summary.to_csv(out_summary, sep="\t", index=False, float_format="%.6g")
    last = result.history[result.history["step"] == result.history["step"].max()]
    log.info("final target logits %s", dict(zip(last["class"], last["logit"].round(3))))
    log.info("summary\n%s", summary.to_string(index=False))
    return summary


# ================================================================================= mispredicted patients

PATIENT_COLUMNS = ("run_id", "subject_id", "diagnosis", "predicted", *PROB_COLS, "method", "with_location", "fit_on")


def _as_bool(s: pd.Series) -> pd.Series:
    return s.map(lambda v: str(v).strip().lower() in ("true", "1", "yes"))


def select_mispredicted(patients: pd.DataFrame, *, method: str = "logreg", with_location: bool = False,
                        fit_on: str | None = None, n_examples: int = 3) -> pd.DataFrame:
    """The most confidently wrong patients, spread over the true classes.

    Rows of ``patients`` (the evaluation stage's patient_predictions.tsv: one row per run and test patient)
    are kept for ``method`` / ``with_location`` (and ``fit_on``; when None and the table has several, ``val``
    if present, else the first in sorted order). A row is wrong when ``predicted != diagnosis``; its
    confidence is the probability of the predicted class. Each patient counts once (its most confident wrong
    row); patients are then taken round-robin over the true classes (normal, myopathy, neuropathy), most
    confident first, ties broken by subject and run id, until ``n_examples``. Empty when nothing is wrong.
    """
    missing = [c for c in PATIENT_COLUMNS if c not in patients.columns]
    if missing:
        raise ValueError(f"patient predictions: missing column(s) {missing}")
    df = patients.copy()
    df["subject_id"] = df["subject_id"].astype(str)
    keep = (df["method"] == method) & (_as_bool(df["with_location"]) == bool(with_location))
    df = df[keep]
    if method == "logreg" and len(df):
        options = sorted(df["fit_on"].fillna("").astype(str).unique())
        chosen = fit_on if fit_on is not None else ("val" if "val" in options else options[0])
        df = df[df["fit_on"].fillna("").astype(str) == chosen]
    wrong = df[df["predicted"] != df["diagnosis"]].copy()
    cols = list(PATIENT_COLUMNS) + ["confidence", "p_true"]
    if wrong.empty:
        return pd.DataFrame(columns=cols)
    wrong["confidence"] = [row[f"p_{row['predicted']}"] for _, row in wrong.iterrows()]
    wrong["p_true"] = [row[f"p_{row['diagnosis']}"] for _, row in wrong.iterrows()]
    wrong = wrong.sort_values(["confidence", "subject_id", "run_id"], ascending=[False, True, True], kind="stable")
    wrong = wrong.drop_duplicates("subject_id", keep="first")
    queues = {c: wrong[wrong["diagnosis"] == c].to_dict("records") for c in CLASSES}
    picked = []
    while len(picked) < n_examples and any(queues.values()):
        for c in CLASSES:
            if queues[c] and len(picked) < n_examples:
                picked.append(queues[c].pop(0))
    return pd.DataFrame(picked)[cols].reset_index(drop=True)


def example_segments(selected: pd.DataFrame, predictions: pd.DataFrame, index: pd.DataFrame,
                     n_segments: int = 2) -> pd.DataFrame:
    """For each selected patient, the test segments that pushed hardest towards the wrong class.

    Segment probabilities come from the patient's own run (``run_id``) where ``predictions`` has it as a
    test patient, otherwise averaged over every run that tested the patient. Per patient the segments with
    the highest probability of the predicted class are taken, at most one per recording while other
    recordings remain (several muscles show more than one window of the same one).
    """
    cols = ["subject_id", "run_id", "rank", "segment", "recording_id", "muscle", "location", "offset_samples",
            *PROB_COLS]
    if selected.empty:
        return pd.DataFrame(columns=cols)
    preds = predictions[predictions["role"] == "test"].copy()
    preds["subject_id"] = preds["subject_id"].astype(str)
    out = []
    for _, pat in selected.iterrows():
        sid = str(pat["subject_id"])
        own = preds[(preds["subject_id"] == sid) & (preds["run_id"] == pat["run_id"])]
        if own.empty:
            own = preds[preds["subject_id"] == sid].groupby("segment", as_index=False)[PROB_COLS].mean()
            run = "mean of runs"
        else:
            run = pat["run_id"]
        if own.empty:
            log.warning("no test-segment predictions for patient %s", sid)
            continue
        seg = own[["segment", *PROB_COLS]].merge(
            index[["segment", "recording_id", "muscle", "location", "offset_samples"]], on="segment", how="left")
        seg = seg.sort_values([f"p_{pat['predicted']}", "segment"], ascending=[False, True], kind="stable")
        first = seg.drop_duplicates("recording_id")
        chosen = pd.concat([first, seg.drop(first.index)]).head(n_segments)
        for rank, (_, s) in enumerate(chosen.iterrows()):
            out.append({"subject_id": sid, "run_id": run, "rank": rank, **{k: s[k] for k in cols[3:]}})
    return pd.DataFrame(out, columns=cols)


def mispredicted_examples(patients_tsv, prediction_tsvs: Sequence[str | Path], segments_npy, index_tsv, *,
                          method: str = "logreg", with_location: bool = False, fit_on: str | None = None,
                          n_examples: int = 3, n_segments: int = 2):
    """S4 Fig's data: (selected patients, their example segments, segment array [n, window], n patients)."""
    from .store import read_segment_store

    patients = pd.read_csv(patients_tsv, sep="\t", dtype={"subject_id": str, "run_id": str})
    selected = select_mispredicted(patients, method=method, with_location=with_location, fit_on=fit_on,
                                   n_examples=n_examples)
    segments, index = read_segment_store(segments_npy, index_tsv)
    parts = [pd.read_csv(p, sep="\t", dtype={"subject_id": str, "run_id": str, "recording_id": str})
             for p in prediction_tsvs if Path(p).is_file()]
    predictions = pd.concat(parts) if parts else pd.DataFrame(columns=["run_id", "segment", "subject_id", "role",
                                                                       *PROB_COLS])
    examples = example_segments(selected, predictions, index, n_segments=n_segments)
    x = np.asarray(segments[examples["segment"].to_numpy(int)], dtype=np.float32) if len(examples) else \
        np.empty((0, segments.shape[1]), np.float32)
    sub = patients[(patients["method"] == method) & (_as_bool(patients["with_location"]) == bool(with_location))]
    return selected, examples, x, int(sub["subject_id"].nunique())


# ================================================================================= model structure

def layer_table(n_samples: int = 4000, **size) -> pd.DataFrame:
    """nEMGNet's layer groups: output shape (C x L), parameters and forward FLOPs, as in docs/training.md.

    FLOPs count a multiply-add as 2 for convolutions and FC layers (nemg.model.forward_flops); the rows sum
    to its total. Built on the meta device: no memory even at full width. ``size``: NEMGNet's size keywords
    (``resolve_size``'s output, passed whole; none = the paper's network).
    """
    import torch
    from torch import nn

    from nemg.model import NEMGNet, conv_flops, count_parameters, forward_flops

    with torch.device("meta"):
        model = NEMGNet(n_samples=n_samples, **size)

    rows, length, block = [], n_samples, 0
    for layer in model.features:
        flops, length = conv_flops(layer, length)
        conv = next((m for m in layer.modules() if isinstance(m, nn.Conv1d)), None)
        if isinstance(layer[0], nn.Conv1d):  # a reduction block
            block += 1
            stride = f", stride {conv.stride[0]}" if conv.stride[0] > 1 else ""
            pool = next(m for m in layer.modules() if isinstance(m, nn.MaxPool1d))
            if block == 1 and pool.stride > 1:  # the stem's optional decimation (stem_pool_stride)
                stride += f", pool stride {pool.stride}"
            name, kind = f"block {block} (k{conv.kernel_size[0]}{stride})", "reduction block"
        else:
            name, kind = f"residual stage {conv.out_channels}", "residual stage"
        rows.append({"group": name, "kind": kind, "channels": conv.out_channels, "length": length,
                     "output": f"{conv.out_channels} × {length}", "parameters": count_parameters(layer),
                     "flops": flops})
    linears = [m for m in model.head.modules() if isinstance(m, nn.Linear)]
    first, rest = linears[0], linears[1:]
    rows.append({"group": f"FC {first.in_features} → {first.out_features}", "kind": "fully connected",
                 "channels": first.out_features, "length": 1, "output": f"{first.out_features}",
                 "parameters": count_parameters(first), "flops": 2 * first.in_features * first.out_features})
    chain = " → ".join([str(rest[0].in_features)] + [str(m.out_features) for m in rest])
    rows.append({"group": f"FC {chain}", "kind": "fully connected", "channels": rest[-1].out_features, "length": 1,
                 "output": f"{rest[-1].out_features}", "parameters": sum(count_parameters(m) for m in rest),
                 "flops": sum(2 * m.in_features * m.out_features for m in rest)})
    table = pd.DataFrame(rows)
    total_flops = forward_flops(n_samples, **size)
    if int(table["flops"].sum()) != total_flops or int(table["parameters"].sum()) != count_parameters(model):
        raise AssertionError("layer table does not add up to nemg.model's totals")
    table["gflops"] = table["flops"] / 1e9
    table["flop_share"] = table["flops"] / total_flops
    table.insert(0, "width", model.width)
    table.insert(1, "head_width", model.head_width)
    table.insert(2, "n_samples", n_samples)
    return table


def structure_tables(model_cfg: dict | None, n_samples: int) -> pd.DataFrame:
    """Layer tables of the configured model and of the paper's full width, stacked with a ``model`` column."""
    from nemg.model import MODEL_KEYS, preset_name, resolve_size

    cfg = dict(model_cfg or {})
    size = resolve_size(cfg)
    label = preset_name(cfg)
    if any(cfg.get(k) is not None for k in MODEL_KEYS if k != "preset"):
        cap = "" if size["max_channels"] is None else f", at most {size['max_channels']} channels"
        if size["min_channels"] is not None:
            cap += f", at least {size['min_channels']} channels"
        if size["stem_pool_stride"] != 1:
            cap += f", stem pool stride {size['stem_pool_stride']}"
        if size["rms_to_head"]:
            cap += ", log RMS to the head"
        if size["head_dropout"]:
            cap += f", head dropout {size['head_dropout']:g}"
        if size["log_input_uv"] is not None:
            cap += f", log input above {size['log_input_uv']:g} µV"
        label = (f"{label} (width {size['width']:g}, head {size['head_width']:g}, deep stride {size['deep_stride']}, "
                 f"{size['head']}{cap})")
    parts = [layer_table(n_samples, **size).assign(model=f"configured: {label}")]
    if size != resolve_size({"preset": "paper"}):
        parts.append(layer_table(n_samples, **resolve_size({"preset": "paper"})).assign(model="paper"))
    table = pd.concat(parts, ignore_index=True)
    return table[["model"] + [c for c in table.columns if c != "model"]]
