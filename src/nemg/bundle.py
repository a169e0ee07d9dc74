"""A trained model bundle: everything needed to diagnose a new patient exactly as the pipeline would.

    results/model/<cohort>/
        model.json      classes, preprocessing, network config, stage 2 (coefficients as JSON numbers),
                        training cohort summary, nemg version, git commit, sha256 of every weights file
        weights/<run>.pt  one nEMGNet state dict per ensemble member (``torch.load(..., weights_only=True)``)
        MODEL_CARD.md   intended use, training data, the run's own cross-validation and external metrics

The members are the external-validation models (nemg.external: one per ``external.seeds`` seed, trained on
every patient with a stratified fraction held out for early stopping and the stage-2 fit); each member's
stage 2 is fit by :func:`nemg.vote.fit_run_stage2` on its validation patients, the same function the DAG's
divide-and-vote uses, so a bundle's diagnosis of a patient equals the DAG's for the same segments.
Nothing in a bundle is pickled: loading it cannot run code.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from . import __version__
from .config import base_lr
from .external import CALIBRATION_FRAME_S as FRAME_S
from .external import cohort_polarity, level_range
from .fileio import sha256_file, write_atomic
from .labels import CLASSES, PROB_COLS
from .vote import (combined_features, feature_columns, fit_locations, fit_run_stage2, stage2_from_dict,
                   stage2_to_dict)

BUNDLE_FORMAT = 1
MODEL_JSON = "model.json"
MODEL_CARD = "MODEL_CARD.md"
WEIGHTS_DIR = "weights"
#: every recording is converted to this by nemg.io.load_recording; the network was trained on it
UNITS = "uV"
#: how the members' patient probabilities become one diagnosis: the consensus of nemg.evaluate.consensus
COMBINE = "mean of the members' stage-2 class probabilities, then the most probable class"


class BundleError(ValueError):
    """A model bundle that cannot be used (missing, altered, or made by another nemg version)."""


# ------------------------------------------------------------------------------------------------------ build
def _counts(series: pd.Series) -> dict[str, int]:
    return {c: int((series == c).sum()) for c in CLASSES}


def cohort_summary(name: str, split: pd.DataFrame, segments_index: pd.DataFrame) -> dict:
    """Patients, recordings and segments per class the ensemble learned from, and each member's split."""
    seg = segments_index
    recs = seg.drop_duplicates("recording_id")
    members = {}
    for rid, g in split.groupby("run_id", sort=True):
        # cross-validation members (bundle.members: cv) also have the outer fold they were tested on
        roles = ("train", "val", "test") if (g["role"] == "test").any() else ("train", "val")
        members[rid] = {role: _counts(g.loc[g["role"] == role, "diagnosis"]) for role in roles}
    patients = split.drop_duplicates("subject_id")
    return {"name": name, "patients": _counts(patients["diagnosis"]), "recordings": _counts(recs["diagnosis"]),
            "segments": _counts(seg["diagnosis"]), "members": members}


def fit_member_stage2(predictions: pd.DataFrame, subjects: pd.DataFrame, recordings: pd.DataFrame, *,
                      method: str, fit_on: str, with_location: bool, seed: int,
                      class_weight: str | None, c: float = 1.0,
                      extra: Mapping[str, pd.DataFrame] | None = None) -> dict | None:
    """One member's stage 2 as JSON (None for the argmax method, which has nothing to fit); ``extra``: another
    model's segment scores of the same patients, seen beside the network's (the combined arm)."""
    if method == "argmax":
        return None
    run_id = str(predictions["run_id"].iloc[0])
    feats = combined_features(predictions, dict(extra) if extra else None,
                              recordings.set_index("recording_id")["location"], with_location)
    model = fit_run_stage2(feats, subjects.set_index("subject_id")["diagnosis"], fit_on=fit_on, seed=seed,
                           class_weight=class_weight, c=c, run_id=run_id)
    out = {**stage2_to_dict(model), "features": feature_columns(feats)}
    if with_location:  # nemg predict refuses a patient recorded only where no fit patient was
        out["fit_locations"] = fit_locations(predictions, recordings.set_index("recording_id")["location"], fit_on)
    return out


#: the combined arm a bundle can carry: nEMGNet's and the QEMG logistic regression's patient scores in one stage 2
COMBINED_ARM = "combined_logreg"


def fit_member_combined(features: np.ndarray, segments_index: pd.DataFrame, member_split: pd.DataFrame,
                        predictions: pd.DataFrame, subjects: pd.DataFrame, recordings: pd.DataFrame, *,
                        classifier_params: Mapping | None, stage2: Mapping) -> dict:
    """A member's combined arm as JSON, as the DAG's ``combined_logreg`` vote fits it for the same split: the QEMG
    logistic regression of its training patients' segments, and a stage 2 on the network's and that model's
    patient scores of its stage-2 fit patients."""
    from .baseline import fit_run_logreg, logreg_probs, logreg_to_dict, segment_roles

    run_id = str(member_split["run_id"].iloc[0])
    qemg = logreg_to_dict(fit_run_logreg(features, segments_index, member_split, params=classifier_params))
    rows = (segment_roles(segments_index, member_split) == stage2["fit_on"]).to_numpy()
    scores = segments_index.loc[rows, ["segment", "recording_id", "subject_id"]].assign(run_id=run_id,
                                                                                        role=stage2["fit_on"])
    scores[PROB_COLS] = logreg_probs(qemg, features[rows])
    # only the fit patients have QEMG scores here (a CV member's own test patients have nothing to fit)
    fit = predictions[predictions["role"] == stage2["fit_on"]]
    s2 = fit_member_stage2(fit, subjects, recordings, method="logreg", fit_on=stage2["fit_on"],
                           with_location=bool(stage2["with_location"]), seed=int(stage2["seed"]),
                           class_weight=stage2["class_weight"], c=float(stage2["c"]), extra={"logreg": scores})
    return {"qemg": qemg, "stage2": s2}


def build_bundle(out_dir: str | Path, *, checkpoints: Mapping[str, str | Path],
                 predictions: Mapping[str, str | Path], split_tsv: str | Path, subjects_tsv: str | Path,
                 recordings_tsv: str | Path, segments_index_tsv: str | Path, signals_index_tsv: str | Path,
                 preprocess: Mapping, stage2: Mapping, eval_batch_size: int, cohort_name: str,
                 git_commit: str, config_files: Sequence[str] = (), pretraining: str | None = None,
                 external_start: Mapping | None = None, amplitude_reference_uv: float | None = None,
                 amplitude_levels_uv: Sequence[float | None] | None = None, members_kind: str = "external",
                 combined: Mapping | None = None, amplitude_skewness: Sequence[float | None] | None = None) -> dict:
    """Write weights/ and model.json under ``out_dir``; returns model.json's content.

    ``checkpoints`` / ``predictions``: run id -> the member's best.pt / predictions.tsv (nemg.train.train_run).
    ``stage2``: method, fit_on, with_location, seed, class_weight, c (the ``evaluate:`` and ``bundle:`` settings).
    ``signals_index_tsv``: the resampled signal store's index (its ``source_fs_hz`` bounds usable input rates).
    ``pretraining``: what the pipeline's pretraining network (results/pretrain/) was trained on, when the run has
    one: the model card names it. ``external_start``: {"cohorts": [...], "start": "..."} when the run's
    pretraining saw those external test cohorts' patients, so that they were scored by networks that started
    elsewhere (the card says so beside their figures); None when every test cohort was scored by these members.
    ``amplitude_reference_uv``: the training cohort's median frame RMS (nemg.external.median_frame_rms of its
    resampled signals), against which ``nemg predict --calibrate`` scales another site's recordings.
    ``amplitude_levels_uv``: every training recording's level (nemg.external.signal_store_levels); their
    ``nemg.external.LEVEL_QUANTILES`` are the range ``nemg predict`` checks new recordings against.
    ``amplitude_skewness``: every training recording's skewness (nemg.external.signal_store_levels_and_skewness):
    the cohort's polarity (nemg.external.cohort_polarity), which ``nemg predict --calibrate`` compares a site's with.
    ``members_kind``: ``external`` (the external-validation ensemble; ``split_tsv`` its split.tsv) or ``cv`` (the
    nested cross-validation's networks; ``split_tsv`` the folds table, of which only the members' runs count).
    ``combined``: also the combined arm (:data:`COMBINED_ARM`, reported beside the network's call): {"features":
    the cohort's QEMG features .npy (rows = ``segments_index_tsv``), "names": its feature_names.txt,
    "feature_params": baseline.features, "classifier_params": the baseline section}; None: the network alone.
    """
    import torch

    from .segment import samples_of
    from .trim import TrimParams

    out = Path(out_dir)
    (out / WEIGHTS_DIR).mkdir(parents=True, exist_ok=True)
    ids = {"recording_id": str, "subject_id": str, "run_id": str}
    read = lambda p: pd.read_csv(p, sep="\t", dtype=ids)  # noqa: E731
    subjects, recordings, split = read(subjects_tsv), read(recordings_tsv), read(split_tsv)
    if members_kind not in ("external", "cv"):
        raise BundleError(f"members_kind must be external or cv, got {members_kind!r}")
    split = split[split["run_id"].isin(list(checkpoints))]
    absent = sorted(set(checkpoints) - set(split["run_id"]))
    if absent:
        raise BundleError(f"{split_tsv}: no split for member(s) {absent}")
    seg_index, sig_index = read(segments_index_tsv), read(signals_index_tsv)
    if sorted(checkpoints) != sorted(predictions):
        raise BundleError(f"members with weights {sorted(checkpoints)} differ from those with predictions "
                          f"{sorted(predictions)}")
    rate = float(preprocess["resample"]["rate_hz"])
    window_s, hop_s = float(preprocess["segment"]["window_s"]), float(preprocess["segment"]["hop_s"])
    window = samples_of(window_s, rate, "preprocess.segment.window_s")
    if combined is not None:
        from .features import read_features

        if stage2["method"] != "logreg":
            raise BundleError(f"the combined arm needs the logreg stage 2, not {stage2['method']!r}")
        qemg_x, qemg_names = read_features(combined["features"], combined["names"])
        if len(qemg_x) != len(seg_index):
            raise BundleError(f"{combined['features']}: {len(qemg_x)} feature rows for {len(seg_index)} segments in "
                              f"{segments_index_tsv}")
    members, model_cfg = [], None
    for run_id in sorted(checkpoints):
        ck = torch.load(checkpoints[run_id], map_location="cpu", weights_only=True)
        if int(ck["window_samples"]) != window:
            raise BundleError(f"{checkpoints[run_id]}: trained on {ck['window_samples']} samples, but the "
                              f"preprocessing gives windows of {window}")
        if model_cfg is not None and ck["model_cfg"] != model_cfg:
            raise BundleError(f"{checkpoints[run_id]}: another network config than the other members")
        model_cfg = ck["model_cfg"]
        weights = out / WEIGHTS_DIR / f"{run_id}.pt"
        tmp = weights.with_name(weights.name + ".tmp")
        torch.save({k: v.contiguous() for k, v in ck["state_dict"].items()}, tmp)
        os.replace(tmp, weights)
        preds = read(predictions[run_id])
        train_cfg = ck.get("train_cfg") or {}
        members.append({
            "run_id": run_id, "seed": int(ck["seed"]), "weights": f"{WEIGHTS_DIR}/{weights.name}",
            "sha256": sha256_file(weights), "best_val_acc": float(ck["best_val_acc"]),
            # where its training started: a pretrained network's best.pt (pretrain / train.init_from) or None
            "init_from": train_cfg.get("init_from"),
            # the rate it learnt at (train.finetune_lr from a pretrained start; None for a checkpoint without one)
            "lr": base_lr(train_cfg) if train_cfg.get("lr") is not None else None,
            # the hardware that computed its weights (None for a checkpoint from before nemg recorded it)
            "trained_on": ck.get("trained_on"),
            "stage2": fit_member_stage2(preds, subjects, recordings, method=stage2["method"],
                                        fit_on=stage2["fit_on"], with_location=bool(stage2["with_location"]),
                                        seed=int(stage2["seed"]), class_weight=stage2["class_weight"],
                                        c=float(stage2["c"])),
        })
        if combined is not None:
            members[-1]["combined"] = fit_member_combined(
                qemg_x, seg_index, split[split["run_id"] == run_id], preds, subjects, recordings,
                classifier_params=combined["classifier_params"], stage2=stage2)
    trim = asdict(TrimParams.from_config(preprocess["trim"]))
    meta = {
        "format": BUNDLE_FORMAT,
        "nemg_version": __version__,
        "git_commit": git_commit,
        "torch": str(torch.__version__),
        "config_files": list(config_files),
        "classes": list(CLASSES),
        "preprocessing": {
            "loader": "nemg.io.load_recording (every format to float32 microvolts)",
            "units": UNITS,
            "trim": trim,
            "resample": {"rate_hz": rate, "method": str(preprocess["resample"]["method"]),
                         # content above half of the slowest training recording's rate was never seen
                         "min_source_rate_hz": float(min(sig_index["source_fs_hz"].astype(float).min(), rate))},
            "segment": {"window_s": window_s, "hop_s": hop_s, "window_samples": window,
                        "hop_samples": samples_of(hop_s, rate, "preprocess.segment.hop_s")},
            # the external validation's median-RMS calibration (docs/external.md), for recordings of another
            # amplifier chain: their median frame RMS is scaled to this one
            "amplitude_reference": None if amplitude_reference_uv is None else {
                "method": "median_rms", "median_frame_rms_uv": float(amplitude_reference_uv), "frame_s": FRAME_S,
                **level_range(amplitude_levels_uv),
                **({} if amplitude_skewness is None else {"polarity": cohort_polarity(amplitude_skewness)})},
        },
        "model": {"architecture": "nEMGNet (nemg.model.NEMGNet)", "config": model_cfg, "window_samples": window,
                  "eval_batch_size": int(eval_batch_size)},
        "stage2": {"method": stage2["method"], "with_location": bool(stage2["with_location"]),
                   "fit_on": stage2["fit_on"], "class_weight": stage2["class_weight"], "c": float(stage2["c"]),
                   "seed": int(stage2["seed"]),
                   "combine": COMBINE},
        "members": members,
        "members_kind": members_kind,
        # the combined arm: each member's "combined" entry holds its QEMG model and stage 2; predict scores the
        # same segments' features (nemg.features.segment_features with these settings) beside the network
        "combined": None if combined is None else {
            "arm": COMBINED_ARM, "qemg_model": "logreg", "feature_names": qemg_names,
            "feature_params": dict(combined["feature_params"]), "rate_hz": rate},
        "training_cohort": cohort_summary(cohort_name, split, seg_index),
        "pretraining": pretraining,
        "external_networks_start": None if external_start is None else dict(external_start),
    }
    # the folder holds exactly its members: weights of an earlier bundle with other members (bundle.members
    # switched between external and cv) would otherwise sit beside them, unverified by any checksum
    for stale in (out / WEIGHTS_DIR).glob("*.pt"):
        if stale.stem not in checkpoints:
            stale.unlink()
    write_atomic(out / MODEL_JSON, json.dumps(meta, indent=2) + "\n")
    return meta


# ------------------------------------------------------------------------------------------------------- load
@dataclass
class Bundle:
    path: Path
    meta: dict

    @property
    def preprocessing(self) -> dict:
        return self.meta["preprocessing"]

    @property
    def with_location(self) -> bool:
        return bool(self.meta["stage2"]["with_location"])

    def networks(self, device: str = "cpu") -> dict[str, Any]:
        """run id -> nEMGNet in eval mode with the member's weights."""
        import torch

        from .model import model_from_size

        cfg, nets = self.meta["model"]["config"], {}
        for m in self.meta["members"]:
            net = model_from_size(cfg, self.meta["model"]["window_samples"])
            w = self.path / m["weights"]
            try:
                net.load_state_dict(torch.load(w, map_location="cpu", weights_only=True))
            except Exception as exc:  # torch raises many types for a file that is no state dict of this network
                raise BundleError(f"{w}: not the weights of this bundle's network ({type(exc).__name__}: "
                                  f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc
            nets[m["run_id"]] = net.to(device).eval()
        return nets

    @property
    def combined(self) -> dict | None:
        """The combined arm's settings (None: the bundle has the network's call only)."""
        return self.meta.get("combined")

    def combined_models(self) -> dict[str, Any]:
        """run id -> the member's combined-arm stage 2 (the bundle must have a combined arm)."""
        return {m["run_id"]: stage2_from_dict(m["combined"]["stage2"]) for m in self.meta["members"]}

    def stage2_models(self) -> dict[str, Any]:
        """run id -> the member's fitted logistic regression (None for argmax)."""
        return {m["run_id"]: None if m["stage2"] is None else stage2_from_dict(m["stage2"])
                for m in self.meta["members"]}


MEMBER_KEYS = ("run_id", "weights", "sha256", "stage2")


def _check_member(mj: Path, i: int, m: Any, combined: bool = False) -> None:
    """One entry of model.json's members: its keys, and a stage 2 of finite numbers (JSON allows NaN, and the
    members' mean would skip a NaN member's probabilities without a word)."""
    missing = [k for k in MEMBER_KEYS if k not in m] if isinstance(m, dict) else list(MEMBER_KEYS)
    if missing:
        raise BundleError(f"{mj}: member {i + 1} lacks {', '.join(missing)}")
    s2 = m["stage2"]
    if s2 is not None and not _finite(s2, ("coef", "intercept")):
        raise BundleError(f"{mj}: stage 2 of member {m['run_id']} is not coefficients and intercepts of finite "
                          f"numbers")
    if combined:
        c = m.get("combined") if isinstance(m.get("combined"), dict) else {}
        if not (_finite(c.get("qemg"), ("mean", "scale", "coef", "intercept"))
                and _finite(c.get("stage2"), ("coef", "intercept"))):
            raise BundleError(f"{mj}: member {m['run_id']} lacks the combined arm's QEMG model and stage 2 as finite "
                              f"numbers, which model.json's `combined` entry says every member has")


def _finite(d: Any, keys: Sequence[str]) -> bool:
    try:
        return all(np.isfinite(np.asarray(d[k], dtype=float)).all() for k in keys)
    except (KeyError, TypeError, ValueError):
        return False


# the entries of model.json that preprocessing, the networks and the vote read (beyond the top-level keys)
REQUIRED_PATHS = ("preprocessing.trim", "preprocessing.resample.rate_hz", "preprocessing.resample.method",
                  "preprocessing.resample.min_source_rate_hz", "preprocessing.segment.window_s",
                  "preprocessing.segment.window_samples", "preprocessing.segment.hop_samples", "model.config",
                  "model.window_samples", "model.eval_batch_size", "stage2.method", "stage2.with_location")


def _check_structure(mj: Path, meta: dict) -> None:
    """model.json has what predict reads, and the network's window is the preprocessing's: only the weights carry
    a checksum, so a hand-edited model.json would otherwise fail with a KeyError or cut windows the network was
    not trained on."""
    missing = []
    for dotted in REQUIRED_PATHS:
        node = meta
        for key in dotted.split("."):
            node = node.get(key) if isinstance(node, dict) else None
        if node is None:
            missing.append(dotted)
    if missing:
        raise BundleError(f"{mj}: missing {', '.join(missing)}")
    pre = meta["preprocessing"]
    try:
        window = int(pre["segment"]["window_samples"])
        expected = round(float(pre["resample"]["rate_hz"]) * float(pre["segment"]["window_s"]))
        net_window = int(meta["model"]["window_samples"])
    except (TypeError, ValueError) as exc:
        raise BundleError(f"{mj}: preprocessing or model sizes are not numbers ({exc})") from None
    if not window == expected == net_window:
        raise BundleError(f"{mj}: windows disagree: the network takes {net_window} samples, preprocessing cuts "
                          f"{window} ({pre['segment']['window_s']} s at {pre['resample']['rate_hz']} Hz is {expected})")
    comb = meta.get("combined")
    if comb is not None:
        absent = [k for k in ("arm", "feature_names", "feature_params", "rate_hz")
                  if not isinstance(comb, dict) or k not in comb]
        if absent:
            raise BundleError(f"{mj}: the combined arm's entry lacks {', '.join(absent)}")
    rng = (pre.get("amplitude_reference") or {}).get("recording_range_uv")
    if rng is not None:
        try:
            low, high = (float(v) for v in rng)
        except (TypeError, ValueError):
            low = high = float("nan")
        if not (0 <= low <= high < float("inf")):
            raise BundleError(f"{mj}: preprocessing.amplitude_reference.recording_range_uv must be two levels "
                              f"0 <= low <= high in uV, got {rng!r}")


def load_bundle(model_dir: str | Path, *, check_version: bool = True) -> Bundle:
    """Open a bundle, refusing one made by another nemg version or with a missing or altered weights file."""
    path = Path(model_dir)
    mj = path / MODEL_JSON
    if not mj.is_file():
        raise BundleError(f"{mj}: not found; MODEL_DIR must be a folder written by `snakemake model` "
                          f"(results/model/<cohort>/)")
    try:
        meta = json.loads(mj.read_text())
    except json.JSONDecodeError as exc:
        raise BundleError(f"{mj}: not valid JSON ({exc})") from None
    missing = sorted({"format", "nemg_version", "classes", "preprocessing", "model", "stage2", "members"} - set(meta))
    if missing:
        raise BundleError(f"{mj}: missing key(s) {', '.join(missing)}")
    if meta["format"] != BUNDLE_FORMAT:
        raise BundleError(f"{mj}: bundle format {meta['format']}, this nemg reads format {BUNDLE_FORMAT}")
    if check_version and meta["nemg_version"] != __version__:
        raise BundleError(f"{mj}: made by nemg {meta['nemg_version']}, this is nemg {__version__}; its "
                          f"preprocessing and network code may differ: rebuild the bundle with this version "
                          f"(`snakemake model`) or install nemg {meta['nemg_version']}")
    if list(meta["classes"]) != list(CLASSES):
        raise BundleError(f"{mj}: classes {meta['classes']}, this nemg knows {list(CLASSES)}")
    _check_structure(mj, meta)
    if not isinstance(meta["members"], list) or not meta["members"]:
        raise BundleError(f"{mj}: no ensemble members")
    for i, m in enumerate(meta["members"]):
        _check_member(mj, i, m, combined=meta.get("combined") is not None)
        w = path / m["weights"]
        if not w.is_file():
            raise BundleError(f"{w}: weights file of member {m['run_id']} is missing")
        if sha256_file(w) != m["sha256"]:
            raise BundleError(f"{w}: sha256 differs from the one in {mj}; the weights file was altered or "
                              f"replaced")
    return Bundle(path, meta)


__all__ = ["BUNDLE_FORMAT", "Bundle", "BundleError", "MODEL_CARD", "MODEL_JSON", "build_bundle", "cohort_summary",
           "load_bundle"]
