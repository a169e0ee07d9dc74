"""Train nEMGNet for one run of the folds table (one outer fold x inner fold x seed).

    train_run(segments_npy, index_tsv, folds_tsv, run_id, out_dir, model_cfg, train_cfg, seed) -> dict

writes under ``out_dir``:
    best.pt          state dict of the best validation-accuracy model + metadata
    last.pt          resumable state (model, optimiser, RNG, counters, early stopping); removed at the end
                     unless ``keep_last``
    curve.tsv        one row per evaluation: update, epoch, train_loss, val_loss, val_acc, elapsed_s
    predictions.tsv  segment-level class probabilities of the run's val and test subjects

The recipe is the paper's: Adam (lr 1e-3), batch 32, up to 100 epochs, cross-entropy with class weights
inversely proportional to the training segments per class, validation accuracy every ``eval_every``
updates, stop after ``patience`` evaluations without improvement, keep the best model. These are the
``train:`` defaults of workflow/schemas/config.schema.yaml, which also documents every other setting.
"""
from __future__ import annotations

import copy
import logging
import math
import os
import sys
import time
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm import tqdm

from nemg.augment import augment_batch, is_active, mixup_batch, resolve_augment
from nemg.config import base_lr, section_defaults
from nemg.data import class_weights, iter_batches, probability_table, read_run, rows_by_role
from nemg.labels import CLASSES
from nemg.manifest import cpu_info
from nemg.model import build_model, resolve_size
from nemg.store import SegmentStore

log = logging.getLogger(__name__)

LR_SCHEDULES = ("constant", "cosine")
SELECT_ON = ("accuracy", "loss")
CURVE_COLUMNS = ["update", "epoch", "train_loss", "val_loss", "val_acc", "elapsed_s"]


def resolve_train_cfg(train_cfg: dict | None) -> dict:
    """``train_cfg`` (a ``train:`` section, possibly partial) on top of the schema's defaults, checked."""
    cfg = section_defaults("train")
    unknown = sorted(set(train_cfg or {}) - set(cfg))
    if unknown:
        raise ValueError(f"train config: unknown key(s) {unknown}; known: {sorted(cfg)}")
    cfg.update(train_cfg or {})
    for key in ("batch_size", "max_epochs", "eval_every", "patience", "checkpoint_every", "train_hop_factor",
                "val_hop_factor"):
        if int(cfg[key]) < 1:
            raise ValueError(f"train config: {key} must be >= 1, got {cfg[key]!r}")
    if cfg["lr_schedule"] not in LR_SCHEDULES:
        raise ValueError(f"train config: lr_schedule must be one of {LR_SCHEDULES}, got {cfg['lr_schedule']!r}")
    if float(cfg["weight_decay"]) < 0 or not 0 <= float(cfg["label_smoothing"]) < 1:
        raise ValueError("train config: weight_decay must be >= 0 and label_smoothing in [0, 1)")
    if cfg["finetune_lr"] is not None and not float(cfg["finetune_lr"]) > 0:
        raise ValueError(f"train config: finetune_lr must be > 0 or null, got {cfg['finetune_lr']!r}")
    if not 0 <= float(cfg["ema_decay"]) < 1:
        raise ValueError(f"train config: ema_decay must be in [0, 1), got {cfg['ema_decay']!r}")
    if int(cfg["bag_size"]) < 1 or int(cfg["batch_size"]) % int(cfg["bag_size"]):
        raise ValueError(f"train config: bag_size must be >= 1 and divide batch_size ({cfg['batch_size']}), "
                         f"got {cfg['bag_size']!r}")
    if cfg["select_on"] not in SELECT_ON:
        raise ValueError(f"train config: select_on must be one of {SELECT_ON}, got {cfg['select_on']!r}")
    if int(cfg["bag_size"]) > 1 and float(cfg["label_smoothing"]) > 0:
        raise ValueError("train config: label_smoothing applies to the per-window loss; it cannot be combined "
                         "with bag_size > 1")
    cfg["augment"] = resolve_augment(cfg["augment"])
    if float(cfg["aux_qemg"]) < 0:
        raise ValueError(f"train config: aux_qemg must be >= 0, got {cfg['aux_qemg']!r}")
    if float(cfg["aux_qemg"]) > 0:
        if not cfg["aux_features"]:
            raise ValueError("train config: aux_qemg > 0 needs aux_features, the QEMG features.npy of the run's "
                             "segment store (results/baseline/<cohort>/features.npy)")
        if cfg["augment"]["mixup"] > 0 or int(cfg["bag_size"]) > 1:
            raise ValueError("train config: aux_qemg regresses each window's own features; it cannot be combined "
                             "with augment.mixup or bag_size > 1")
    if cfg["augment"]["mixup"] > 0 and (int(cfg["bag_size"]) > 1 or float(cfg["label_smoothing"]) > 0):
        raise ValueError("train config: augment.mixup mixes the labels itself; it cannot be combined with "
                         "bag_size > 1 or label_smoothing")
    return cfg


def learning_rate(cfg: dict, update: int, total_updates: int) -> float:
    """The learning rate for optimiser step ``update`` (0-based) of a run planned for ``total_updates``."""
    if cfg["lr_schedule"] == "cosine":
        frac = min(1.0, update / max(1, total_updates))
        return base_lr(cfg) * 0.5 * (1.0 + math.cos(math.pi * frac))
    return base_lr(cfg)


def recording_position(index: pd.DataFrame) -> np.ndarray:
    """Each segment's number within its recording (0, 1, 2, ... by offset): the phase of a coarser hop."""
    order = index.sort_values(["recording_id", "offset_samples"], kind="stable")
    pos = order.groupby("recording_id", sort=False).cumcount()
    return pos.reindex(index.index).to_numpy(np.int64)


class WeightAverage:
    """An exponential moving average of a model's weights and BatchNorm statistics (Polyak averaging).

    With a constant learning rate Adam's weights keep jittering around the minimum they approach, and early
    stopping keeps whichever jitter its best evaluation caught. Averaging takes that jitter out (on Messekher it
    brought two seeds' consensus accuracy 5.7 points apart instead of 8.5, without raising their mean:
    docs/training.md). The average is a copy of the model, always in eval mode, updated after every optimiser
    step with decay min(``decay``, (1 + n) / (10 + n)) at update n, so the first updates are not tied to the
    random initial weights. BN running statistics are averaged like the weights; counters are copied.
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = float(decay)
        self.model = copy.deepcopy(model).eval()
        self.model.requires_grad_(False)
        # state_dict() tensors share storage with the modules: updating them in place updates both models
        pairs = list(zip(self.model.state_dict().values(), model.state_dict().values()))
        self._avg = [a for a, _ in pairs if a.is_floating_point()]
        self._src = [b for a, b in pairs if a.is_floating_point()]
        self._counters = [(a, b) for a, b in pairs if not a.is_floating_point()]

    @torch.no_grad()
    def update(self, n_updates: int) -> None:
        """Fold in the source model's current weights after its ``n_updates``-th optimiser step."""
        decay = min(self.decay, (1 + n_updates) / (10 + n_updates))
        torch._foreach_lerp_(self._avg, self._src, 1.0 - decay)
        for a, b in self._counters:
            a.copy_(b)


def pick_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA where there is a GPU, else the CPU. A name torch does not know, or a CUDA device this machine
    lacks, is a ValueError here rather than a RuntimeError at the first tensor moved there, minutes later."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"unknown device {name!r}: expected cpu, cuda, cuda:N or auto ({exc})") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r}: this machine has no CUDA GPU that torch {torch.__version__} can use "
                             "(use cpu or auto)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    return dev


def trained_on(device: torch.device) -> dict:
    """The hardware a network is trained on, as best.pt records it: the CPU's label (nemg.manifest.cpu_info) and,
    on CUDA, the GPU's name."""
    out = {"device": str(device), "cpu": cpu_info()["label"]}
    if device.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(device)
    return out


def adam_options(device: torch.device) -> dict:
    """Adam's implementation switch: fused on CUDA; on the CPU the multi-tensor step (2.0 against 3.5 ms per
    cpu-preset update, the same weights bit for bit: the same operations per tensor, batched)."""
    return {"fused": True} if device.type == "cuda" else {"foreach": True}


@contextmanager
def runtime(device: torch.device, num_threads: int | None, deterministic: bool):
    """Threads and determinism on CPU, fast kernels on CUDA; global torch settings restored afterwards."""
    prev_threads, prev_det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    if num_threads:
        torch.set_num_threads(int(num_threads))
    # touched only to change it: the first call imports torch._dynamo (seconds), which inference need not pay
    det = prev_det or (device.type == "cpu" and deterministic)
    if det != prev_det:
        torch.use_deterministic_algorithms(det)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # autotune conv algorithms for the fixed input shape
        torch.backends.cuda.matmul.allow_tf32 = True  # float32 leftovers (loss, softmax) on tensor cores
        torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.set_num_threads(prev_threads)
        if det != prev_det:
            torch.use_deterministic_algorithms(prev_det)


@dataclass
class RunState:
    """Everything that changes during training apart from model and optimiser weights."""
    update: int = 0  # optimiser steps taken
    epoch: int = 0  # completed epochs
    batch: int = 0  # batches done in the current epoch
    perm: np.ndarray | None = None  # current epoch's shuffle of the training rows
    best_acc: float = -1.0  # validation accuracy of the kept evaluation
    best_score: float = -math.inf  # the figure the kept evaluation was picked on (accuracy, or minus the loss)
    best_update: int = -1
    bad_evals: int = 0  # evaluations since the best one
    evals_since_ckpt: int = 0
    elapsed_s: float = 0.0
    finished: bool = False
    stop_reason: str = ""
    curve: list = field(default_factory=list)
    best_val_probs: np.ndarray | None = None  # val probabilities of the best model (reused as its predictions)


def bag_loss(logits: torch.Tensor, y: torch.Tensor, bag_size: int, weights: torch.Tensor | None = None):
    """Cross-entropy of each bag's mean class probability, bags being ``bag_size`` consecutive rows.

    The divide-and-vote calls a patient from the mean of its windows' probabilities, so a window with no
    diagnostic potential in it need not carry its patient's class as long as its bag does. Weighted like
    F.cross_entropy: the sum of per-bag losses times their class weights over the sum of those weights.
    """
    n_bags = logits.shape[0] // bag_size
    y_bag = y.view(n_bags, bag_size)
    if not bool((y_bag == y_bag[:, :1]).all()):
        raise ValueError("a training bag mixes classes: bags must hold windows of one recording")
    y_bag = y_bag[:, 0]
    log_p = torch.logsumexp(F.log_softmax(logits.float(), 1).view(n_bags, bag_size, -1), 1) - math.log(bag_size)
    return F.nll_loss(log_p, y_bag, weight=weights)


def qemg_targets(features_npy, n_segments: int, train_rows: np.ndarray) -> torch.Tensor:
    """The auxiliary targets of ``train.aux_qemg``: every segment's QEMG features, log1p-compressed (they are
    amplitudes, rates, frequencies and fractions, all >= 0, and span decades) and standardised with the mean and
    SD of the run's training rows only, so no validation or test window shapes the targets. float32 [N, F]."""
    path = Path(features_npy)
    if not path.is_file():
        raise FileNotFoundError(f"train.aux_features: {path} does not exist (the baseline's features.npy)")
    f = np.load(path, mmap_mode="r")
    if f.ndim != 2 or f.shape[0] != n_segments:
        raise ValueError(f"train.aux_features: {path} has shape {f.shape}; expected one row per segment of the "
                         f"run's store ({n_segments})")
    z = np.log1p(np.clip(np.asarray(f, dtype=np.float64), 0.0, None))
    if not np.isfinite(z).all():
        raise ValueError(f"train.aux_features: {path} holds NaN or infinite values")
    mu, sd = z[train_rows].mean(axis=0), z[train_rows].std(axis=0)
    return torch.from_numpy(((z - mu) / np.where(sd > 1e-9, sd, 1.0)).astype(np.float32))


class AuxHead:
    """A linear read-out of the network's pooled features onto the QEMG targets, trained beside the classifier.

    The pooled features are caught by a forward hook on the head's last pooling layer, so the network itself is
    untouched: best.pt holds the same keys with or without it, and prediction never sees it.
    """

    def __init__(self, model: torch.nn.Module, targets: torch.Tensor, weight: float, device: torch.device):
        self.targets, self.weight = targets, float(weight)
        self.linear = torch.nn.Linear(model.flat_features, targets.shape[1]).to(device)
        self.pooled: torch.Tensor | None = None
        model.head[model._n_pool - 1].register_forward_hook(self._catch)

    def _catch(self, module, inputs, output) -> None:
        self.pooled = output

    def loss(self, rows: np.ndarray) -> torch.Tensor:
        z = self.targets[torch.from_numpy(np.asarray(rows))].to(self.pooled.device)
        return F.mse_loss(self.linear(self.pooled.float()), z)


def autocast(device: torch.device, amp: bool):
    """bf16 autocast on ``device`` (CUDA, or a CPU with ``train.bf16_cpu``), or nothing."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16) if amp else nullcontext()


def use_bf16(cfg: dict, device: torch.device) -> bool:
    """Whether a run trains under bf16 autocast: ``bf16`` on CUDA, ``bf16_cpu`` on a CPU."""
    return bool(cfg["bf16" if device.type == "cuda" else "bf16_cpu"])


def _train_step(model, optimizer, x, y, weights, amp: bool, label_smoothing: float = 0.0,
                bag_size: int = 1, mix: tuple[torch.Tensor, float] | None = None,
                aux: tuple[AuxHead, np.ndarray] | None = None) -> torch.Tensor:
    """One optimiser step; ``mix = (y_other, lam)``: ``x`` is a mixup batch, its loss the lam-weighted pair;
    ``aux = (head, rows)``: add the auxiliary QEMG regression of the batch's store rows (the returned loss is the
    classification loss alone, comparable with runs without it)."""
    optimizer.zero_grad(set_to_none=True)
    with autocast(x.device, amp):
        logits = model(x)
    if bag_size > 1:
        loss = bag_loss(logits, y, bag_size, weights)
    elif mix is not None:
        y_other, lam = mix
        logits = logits.float()
        loss = (lam * F.cross_entropy(logits, y, weight=weights)
                + (1.0 - lam) * F.cross_entropy(logits, y_other, weight=weights))
    else:
        loss = F.cross_entropy(logits.float(), y, weight=weights, label_smoothing=label_smoothing)
    total = loss if aux is None else loss + aux[0].weight * aux[0].loss(aux[1])
    total.backward()
    optimizer.step()
    return loss.detach()


@torch.no_grad()
def predict_logits(model, store: SegmentStore, rows: np.ndarray, batch_size: int, device: torch.device,
                   amp: bool = False) -> torch.Tensor:
    """Float32 logits [len(rows), 3] on the CPU, model in eval mode (BN running statistics)."""
    was_training = model.training
    model.eval()
    out = []
    for x, _ in iter_batches(store, rows, batch_size, device, prefetch=device.type == "cuda"):
        with autocast(x.device, amp):
            out.append(model(x).float().cpu())
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, len(CLASSES))


def load_initial_weights(model: torch.nn.Module, path, window: int) -> None:
    """Copies a best.pt's weights and BN statistics into ``model`` (the run's first weights).

    The optimiser, schedule and random streams still start fresh: only the starting point changes. A checkpoint
    of another network or window length is refused with both sides named, never loaded partly.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"train.init_from: {path} does not exist (a best.pt of a finished run)")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a truncated or foreign file: name it, whatever torch's unpickler says
        raise ValueError(f"train.init_from: {path} is not a readable checkpoint ({exc})") from None
    if not isinstance(ck, dict) or "state_dict" not in ck:
        raise ValueError(f"train.init_from: {path} has no state_dict (expected a best.pt written by nemg.train)")
    if ck.get("window_samples") not in (None, window):
        raise ValueError(f"train.init_from: {path} was trained on {ck['window_samples']}-sample windows, this run's "
                         f"are {window} samples (preprocess.resample.rate_hz x segment.window_s must match)")
    try:
        model.load_state_dict(ck["state_dict"])
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise ValueError(f"train.init_from: {path} holds another network ({ck.get('model_cfg')}) than this run's "
                         f"model config: {' '.join(first[:3])[:400]}") from None
    # pooling strides and the head's pooling change no tensor's shape: compare the layout the checkpoint records
    # (keys it predates default to the paper's layout, as nemg.model.model_from_size rebuilds it)
    theirs = ck.get("model_cfg") or {}
    for key, attr, default in (("deep_stride", "deep_stride", 1), ("stem_pool_stride", "stem_pool_stride", 1),
                               ("head", "head_kind", "flatten")):
        if theirs and str(theirs.get(key, default)) != str(getattr(model, attr, default)):
            raise ValueError(f"train.init_from: {path} was trained with {key} {theirs.get(key, default)}, this "
                             f"run's model config has {key} {getattr(model, attr, default)}")
    log.info("initial weights from %s (run %s, best val_acc %s)", path, ck.get("run_id"), ck.get("best_val_acc"))


def _save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)  # atomic: a kill never leaves a half-written checkpoint


def _snapshot(model) -> dict:
    """A copy of the weights on the model's device (a GPU copies 1.2 GB in ~1 ms, a host copy takes ~0.3 s)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _to_cpu(state: dict | None) -> dict | None:
    return None if state is None else {k: v.to("cpu") for k, v in state.items()}


@dataclass
class RunData:
    """What one run trains and is evaluated on: row numbers of the segment store per role."""
    store: SegmentStore
    rows: dict[str, np.ndarray]  # role -> store rows, every window (the predictions cover these)
    val_rows: np.ndarray  # the validation rows early stopping sees: every val_hop_factor-th window
    train_phase: np.ndarray  # each training row's phase of the coarser training hop
    train_recording: np.ndarray  # each training row's recording (an integer code), for bags of one recording
    weights: torch.Tensor  # class weights, inverse to the training segments per class (CPU)

    @property
    def has_val(self) -> bool:  # repeated k-fold runs have none: no early stopping, keep the last model
        return len(self.rows["val"]) > 0

    @classmethod
    def load(cls, segments_npy, index_tsv, folds_tsv, run_id: str, cfg: dict) -> tuple["RunData", pd.DataFrame]:
        """The run's data and its folds-table rows; batches are gathered from the memmap on the fly."""
        store = SegmentStore.open(segments_npy, index_tsv)
        run = read_run(folds_tsv, run_id)
        rows = rows_by_role(store, run)
        if len(rows["train"]) == 0:
            raise ValueError(f"run {run_id}: no training segments")
        position = recording_position(store.index)
        data = cls(store=store, rows=rows,
                   val_rows=rows["val"][position[rows["val"]] % int(cfg["val_hop_factor"]) == 0],
                   train_phase=position[rows["train"]] % int(cfg["train_hop_factor"]),
                   train_recording=pd.factorize(store.index["recording_id"].to_numpy()[rows["train"]])[0],
                   weights=class_weights(store.y[rows["train"]]))
        return data, run


def run_seed(run: pd.DataFrame, seed: int | None, cfg: dict) -> int:
    """The training seed: ``seed``, else the run's folds seed; plus ``seed_offset``."""
    if seed is None:
        seed = int(run["seed"].iloc[0]) if "seed" in run.columns else 0
    return int(seed) + int(cfg["seed_offset"])


class _Trainer:
    """One run's model, optimiser, random streams and RunState, with one method per step of training.

    ``train_run`` calls them in order: resume, train (which evaluates and checkpoints), write_outputs. Three
    random streams come from the run's seed: torch's global RNG (model init, dropout), the batch order and the
    augmentation draws. Each is saved in last.pt and restored by resume, so a killed and resumed run ends
    bit-identical to an uninterrupted one (CPU, ``deterministic``).
    """

    def __init__(self, data: RunData, run_id: str, seed: int, model_cfg: dict, cfg: dict, device: torch.device,
                 amp: bool, out: Path):
        self.data, self.run_id, self.seed, self.model_cfg, self.cfg = data, run_id, seed, model_cfg, cfg
        self.device, self.amp, self.out, self.last = device, amp, out, out / "last.pt"
        self.batch_size, self.hop_factor = int(cfg["batch_size"]), int(cfg["train_hop_factor"])
        self.bag_size = int(cfg["bag_size"])
        # planned updates per epoch (the trailing partial batch is dropped: BN needs > 1); with a coarser training
        # hop each epoch's count varies by a batch or so with its phase
        self.n_batches = max(1, len(data.rows["train"]) // self.hop_factor // self.batch_size)
        self.total_updates = int(cfg["max_epochs"]) * self.n_batches
        self.augment = cfg["augment"] if is_active(cfg["augment"]) else None

        torch.manual_seed(seed)  # model init: the first draw of the run's seed
        self.model = build_model(model_cfg, n_samples=data.store.window).to(device)
        if cfg["init_from"] and not self.last.exists():  # a resumed run takes its weights from last.pt instead
            load_initial_weights(self.model, cfg["init_from"], data.store.window)
            log.info("fine-tuning at learning rate %g (train.%s)", base_lr(cfg),
                     "finetune_lr" if cfg["finetune_lr"] is not None else "lr")
        # the weights validated, early-stopped on and kept: the raw model's, or their moving average
        self.average = WeightAverage(self.model, cfg["ema_decay"]) if float(cfg["ema_decay"]) > 0 else None
        self.eval_model = self.average.model if self.average else self.model
        # after the average's copy of the network, so that its hook stays on the trained network alone
        self.aux = None
        if float(cfg["aux_qemg"]) > 0:
            self.aux = AuxHead(self.model, qemg_targets(cfg["aux_features"], len(data.store.index),
                                                        data.rows["train"]), cfg["aux_qemg"], device)
        params = list(self.model.parameters()) + (list(self.aux.linear.parameters()) if self.aux else [])
        fused = adam_options(device)
        if float(cfg["weight_decay"]) > 0:
            self.optimizer = torch.optim.AdamW(params, lr=base_lr(cfg), weight_decay=float(cfg["weight_decay"]),
                                               **fused)
        else:
            self.optimizer = torch.optim.Adam(params, lr=base_lr(cfg), **fused)
        self.order = torch.Generator().manual_seed(seed)  # batch order
        self.aug_rng = torch.Generator().manual_seed(seed + 7919)  # augmentation draws, a stream of their own
        self.weights = data.weights.to(device)
        self.st = RunState()
        self.best_state: dict | None = None  # weights of the best evaluation (of the last one without val)
        self.loss_sum, self.loss_n = torch.zeros((), device=device), 0  # training loss since the last evaluation
        self.t_start = time.perf_counter()
        self.bar = None

    # ---- resume: everything a kill loses is restored from the last checkpoint
    def resume(self) -> None:
        if self.last.exists():
            ck = torch.load(self.last, map_location="cpu", weights_only=False)
            self.model.load_state_dict(ck["model"])
            self.optimizer.load_state_dict(ck["optimizer"])
            self.order.set_state(ck["order_rng"])
            if self.average is not None:
                if "average" not in ck:
                    raise ValueError(f"{self.last} was written without train.ema_decay; delete it to start over "
                                     "or resume with ema_decay: 0")
                self.average.model.load_state_dict(ck["average"])
            if self.aux is not None:
                if "aux_head" not in ck:
                    raise ValueError(f"{self.last} was written without train.aux_qemg; delete it to start over "
                                     "or resume with aux_qemg: 0")
                self.aux.linear.load_state_dict(ck["aux_head"])
            if "augment_rng" in ck:
                self.aug_rng.set_state(ck["augment_rng"])
            torch.set_rng_state(ck["torch_rng"])
            self.st, self.best_state = RunState(**ck["state"]), ck["best_model"]
            log.info("resumed from %s at update %d (epoch %d, batch %d)", self.last, self.st.update, self.st.epoch,
                     self.st.batch)
        self.t_start = time.perf_counter() - self.st.elapsed_s  # elapsed_s keeps counting across resumes

    def elapsed(self) -> float:
        return time.perf_counter() - self.t_start

    def checkpoint(self) -> None:
        st = self.st
        st.evals_since_ckpt = 0
        _save({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
               "order_rng": self.order.get_state(), "augment_rng": self.aug_rng.get_state(),
               "torch_rng": torch.get_rng_state(), "state": asdict(st), "best_model": _to_cpu(self.best_state),
               **({"average": self.average.model.state_dict()} if self.average else {}),
               **({"aux_head": self.aux.linear.state_dict()} if self.aux else {})},
              self.last)
        pd.DataFrame(st.curve, columns=CURVE_COLUMNS).to_csv(self.out / "curve.tsv", sep="\t", index=False)

    # ---- one evaluation: validation pass, best-state bookkeeping, curve row, early stopping
    def evaluate(self) -> None:
        st, data, cfg = self.st, self.data, self.cfg
        st.elapsed_s = self.elapsed()
        train_loss = self.loss_sum.item() / self.loss_n
        val_loss = val_acc = float("nan")
        if data.has_val:
            logits = predict_logits(self.eval_model, data.store, data.val_rows, cfg["eval_batch_size"],
                                    self.device, self.amp)
            y_val = torch.from_numpy(data.store.y[data.val_rows])
            val_loss = F.cross_entropy(logits, y_val).item()  # unweighted: the validation set as it is
            val_acc = (logits.argmax(1) == y_val).double().mean().item()
            score = -val_loss if cfg["select_on"] == "loss" else val_acc
            # accuracy compares with best_acc, as before best_score existed (a resumed older last.pt lacks it)
            if score > (st.best_score if cfg["select_on"] == "loss" else st.best_acc):
                st.best_acc, st.best_score, st.best_update, st.bad_evals = val_acc, score, st.update, 0
                self.best_state = _snapshot(self.eval_model)
                if len(data.val_rows) == len(data.rows["val"]):  # every window: reused as the val predictions
                    st.best_val_probs = torch.softmax(logits, 1).numpy()
            else:
                st.bad_evals += 1
        st.curve.append([st.update, st.epoch, train_loss, val_loss, val_acc, round(self.elapsed(), 3)])
        st.evals_since_ckpt += 1
        log.info("update %d epoch %d: train_loss %.4f val_loss %.4f val_acc %.4f (best %.4f @ %d)",
                 st.update, st.epoch, train_loss, val_loss, val_acc, st.best_acc, st.best_update)
        self.bar.set_postfix(loss=f"{train_loss:.3f}", val_acc=f"{val_acc:.3f}", best=f"{st.best_acc:.3f}")
        if st.bad_evals >= cfg["patience"]:
            st.finished, st.stop_reason = True, "early_stopping"

    # ---- the loop: epochs of shuffled batches, an evaluation every `eval_every` updates
    def train(self) -> None:
        cfg, st = self.cfg, self.st
        self.bar = tqdm(total=cfg["max_epochs"] * self.n_batches, initial=st.update, desc=self.run_id, unit="upd",
                        disable=not cfg["progress"], file=sys.stderr,
                        mininterval=1 if sys.stderr.isatty() else 30, dynamic_ncols=True)
        step_model = torch.compile(self.model) if cfg["compile"] else self.model
        self.model.train()
        while not st.finished and st.epoch < cfg["max_epochs"]:
            self._train_epoch(step_model)
        if not st.finished:  # max_epochs reached: evaluate the final weights unless just done
            if self.loss_n:
                self.evaluate()
            st.finished, st.stop_reason = True, st.stop_reason or "max_epochs"
            if not self.data.has_val:
                self.best_state, st.best_update = _snapshot(self.eval_model), st.update
            st.elapsed_s = self.elapsed()
            self.checkpoint()
        self.bar.close()

    def _epoch_order(self) -> np.ndarray:
        """A new epoch's training rows (positions in rows["train"]): one phase of the training hop, shuffled."""
        perm = torch.randperm(len(self.data.rows["train"]), generator=self.order).numpy()
        if self.hop_factor > 1:
            phase = int(torch.randint(self.hop_factor, (1,), generator=self.order))
            subset = perm[self.data.train_phase[perm] == phase]
            # a tiny cohort's phase may hold a single window, which BatchNorm cannot train on
            perm = subset if len(subset) >= 2 else perm
        return self._bags(perm) if self.bag_size > 1 else perm

    def _bags(self, perm: np.ndarray) -> np.ndarray:
        """``perm`` regrouped into bags of ``bag_size`` windows of one recording, the bags in a shuffled order.

        Within a recording the windows keep ``perm``'s random order; a recording's last bag is topped up from its
        first windows (a recording shorter than a bag repeats its windows), so every window is trained on.
        """
        k = self.bag_size
        rec = self.data.train_recording[perm]
        by_recording = np.argsort(rec, kind="stable")
        grouped = perm[by_recording]
        bounds = np.flatnonzero(np.diff(rec[by_recording])) + 1
        bags = []
        for windows in np.split(grouped, bounds):
            n = -(-len(windows) // k) * k
            bags.append(np.resize(windows, n).reshape(-1, k))
        bags = np.concatenate(bags)
        order = torch.randperm(len(bags), generator=self.order).numpy()
        return bags[order].reshape(-1)

    def _train_epoch(self, step_model) -> None:
        """The current epoch's remaining batches (all of them unless resumed mid-epoch), or up to early stopping."""
        cfg, st, bs = self.cfg, self.st, self.batch_size
        if st.perm is None:
            st.perm = self._epoch_order()
        epoch_batches = max(1, len(st.perm) // bs)
        todo = self.data.rows["train"][st.perm[st.batch * bs:epoch_batches * bs]]
        for i, (x, y) in enumerate(iter_batches(self.data.store, todo, bs, self.device,
                                                prefetch=self.device.type == "cuda")):
            for group in self.optimizer.param_groups:
                group["lr"] = learning_rate(cfg, st.update, self.total_updates)
            mix = None
            if self.augment is not None:
                x = augment_batch(x, self.augment, self.aug_rng)
                if self.augment["mixup"] > 0:
                    x, y_other, lam = mixup_batch(x, y, self.augment["mixup"], self.aug_rng)
                    mix = (y_other, lam)
            aux = None if self.aux is None else (self.aux, todo[i * bs:(i + 1) * bs])
            self.loss_sum += _train_step(step_model, self.optimizer, x, y, self.weights, self.amp,
                                         float(cfg["label_smoothing"]), self.bag_size, mix, aux)
            self.loss_n += 1
            st.update, st.batch = st.update + 1, st.batch + 1
            if self.average is not None:
                self.average.update(st.update)
            self.bar.update(1)
            if st.update % cfg["eval_every"] == 0:
                self.evaluate()
                self.loss_sum.zero_()
                self.loss_n = 0
                if st.finished or st.evals_since_ckpt >= cfg["checkpoint_every"]:
                    self.checkpoint()
                if st.finished:
                    return
        st.epoch, st.batch, st.perm = st.epoch + 1, 0, None

    # ---- outputs: the best model -> best.pt, segment-level probabilities of its val and test subjects
    def write_outputs(self) -> dict:
        """Writes best.pt and predictions.tsv, drops last.pt unless ``keep_last``; returns best.pt's metadata."""
        cfg, st, data = self.cfg, self.st, self.data
        self.model.load_state_dict(self.best_state)
        meta = {"run_id": self.run_id, "seed": self.seed, "classes": list(CLASSES),
                "window_samples": data.store.window,
                "model_cfg": {**self.model_cfg, **resolve_size(self.model_cfg)},
                "train_cfg": cfg, "best_update": st.best_update,
                "best_val_acc": st.best_acc if data.has_val else float("nan"),
                "updates": st.update, "epochs": st.epoch, "stop_reason": st.stop_reason,
                "class_weights": data.weights.tolist(),
                # a plain str: torch.__version__ is a TorchVersion object, which weights_only loading refuses
                "torch": str(torch.__version__),
                # where the weights were computed: CPU training is bit-reproducible on one kind of CPU only, so
                # an auditor comparing checkpoints from two machines needs to know whether they should match
                "trained_on": trained_on(self.device)}
        _save({"state_dict": _to_cpu(self.best_state), **meta}, self.out / "best.pt")
        preds = []
        for role in ("train", "val", "test") if cfg["predict_train"] else ("val", "test"):
            r = data.rows[role]
            if role == "val" and st.best_val_probs is not None:
                p = st.best_val_probs  # the best model's evaluation: the same model, data and batches
            else:
                logits = predict_logits(self.model, data.store, r, cfg["eval_batch_size"], self.device, self.amp)
                p = torch.softmax(logits, 1).numpy()
            preds.append(probability_table(data.store.index.iloc[r], self.run_id, role, p))
        pd.concat(preds).to_csv(self.out / "predictions.tsv", sep="\t", index=False, float_format="%.6g")
        if not cfg["keep_last"]:
            self.last.unlink(missing_ok=True)
        return meta


def train_run(segments_npy, index_tsv, folds_tsv, run_id: str, out_dir, model_cfg: dict | None = None,
              train_cfg: dict | None = None, seed: int | None = None) -> dict:
    """Train (or resume) one run and write best.pt, curve.tsv and predictions.tsv under ``out_dir``."""
    cfg = resolve_train_cfg(train_cfg)
    model_cfg = dict(model_cfg or {})
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data, run = RunData.load(segments_npy, index_tsv, folds_tsv, run_id, cfg)
    seed = run_seed(run, seed, cfg)
    device = pick_device(cfg["device"])
    amp = use_bf16(cfg, device)
    cpu = cpu_info() if amp and device.type == "cpu" else None
    if cpu is not None and "amx_bf16" not in cpu["isa"]:
        # measured: without AMX, oneDNN's bf16 kernels run at 0.8 x (AVX512-BF16) down to 0.1 x (AVX2) of float32
        log.warning("train.bf16_cpu is on, but this CPU (%s) has no AMX units: bf16 training will be slower than "
                    "float32 here (docs/training.md, 'bf16 arithmetic on the CPU')", cpu["label"])
    log.info("run %s: %d train / %d val / %d test segments, class weights %s, device %s%s, seed %d",
             run_id, len(data.rows["train"]), len(data.rows["val"]), len(data.rows["test"]),
             [round(w, 3) for w in data.weights.tolist()], device, " (bf16)" if amp else "", seed)

    with runtime(device, cfg["num_threads"], cfg["deterministic"]):
        trainer = _Trainer(data, run_id, seed, model_cfg, cfg, device, amp, out)
        trainer.resume()
        trainer.train()
        meta = trainer.write_outputs()

    st = trainer.st
    log.info("run %s: %s after %d updates (%d epochs), best val_acc %.4f at update %d, %.1f s",
             run_id, st.stop_reason, st.update, st.epoch, meta["best_val_acc"], st.best_update, st.elapsed_s)
    return {**{k: v for k, v in meta.items() if k not in ("train_cfg", "model_cfg")},
            "elapsed_s": st.elapsed_s, "device": str(device),
            "n_segments": {k: int(len(v)) for k, v in data.rows.items()}}
