"""MODEL_CARD.md of a model bundle, generated from the run's own outputs (never hand-written).

Its numbers are copied from the run's tables: Table 2 (``results/evaluate/<cohort>/table2.tsv``) and the
per-class correct ratios (``per_class_correct.tsv``) of the cross-validation, and the external-validation table
(``results/external/<cohort>/external_validation.tsv``) when the config has test cohorts.
"""
from __future__ import annotations

from typing import Mapping

import pandas as pd

from .config import section_defaults
from .labels import CLASSES
from .tables import external_display_table

SOURCES = {
    "simulated": "SIMULATED patients (nemg.simulate, docs/simulator.md), not real recordings: the metrics below "
                 "say how well the pipeline recovers the simulator's disease model, nothing about real patients",
    "public": "a public needle-EMG data set",
    "sheets": "the user's own sample sheets",
}


def md_table(df: pd.DataFrame) -> str:
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines)


def cv_section(table2: pd.DataFrame | None, per_class: pd.DataFrame | None, method: str,
               members: str = "external") -> str:
    """``members``: model.json's ``members_kind``; with ``cv`` the figures are the bundle's own networks'."""
    if table2 is None:
        return ("This run had no cross-validation (`external.only: true`): the procedure's accuracy on this cohort "
                "was not estimated. Do not use this bundle without an evaluation of your own.")
    own = ("the bundle's members are these networks, so each figure is theirs on patients they never trained on."
           if members == "cv" else
           "the bundle's own ensemble, trained on every patient, has no held-out estimate of its own.")
    t = table2[["metric", "model_mean_ci_runs", "model_consensus_bootstrap"]].rename(columns={
        "model_mean_ci_runs": "mean over runs (95 % CI)",
        "model_consensus_bootstrap": "consensus calls (patient bootstrap 95 % CI)"})
    pc = per_class[["class", "model_mean", "model_sd"]].assign(
        recall=lambda d: [f"{m:.3f}" for m in d["model_mean"]],
        sd=lambda d: ["" if pd.isna(s) else f"{s:.3f}" for s in d["model_sd"]])[["class", "recall", "sd"]]
    pc.columns = ["class", "recall of the consensus calls (mean over replicates)", "SD over replicates"]
    return (f"Patient-level nested cross-validation of the same training recipe on this cohort (stage 2: "
            f"{method}, without muscle location; Table 2 of the run, `table2.tsv`). It estimates what the "
            f"*procedure* does on unseen patients of this cohort; {own}\n\n{md_table(t)}\n\n"
            f"Per-class recall (`per_class_correct.tsv`):\n\n{md_table(pc)}")


def external_section(external: pd.DataFrame | None, other_start: Mapping | None = None,
                     members: str = "external") -> str:
    """``other_start``: model.json's ``external_networks_start``, {"cohorts": [...], "start": "..."}, when the test
    cohorts named there were scored by networks that started elsewhere than this bundle's members."""
    if external is None:
        return "No external validation was configured (`external.cohorts` is empty)."
    text = ("Trained on every patient of this cohort, tested on every patient of another cohort preprocessed with "
            "this bundle's settings (`external_validation.tsv`, docs/external.md):\n\n"
            + md_table(external_display_table(external)))
    if members == "cv":
        return text + ("\n\nThese rows are the external-validation networks' (one per `external.seeds` seed, "
                       "trained on every patient of this cohort), not this bundle's members: the members are the "
                       "cross-validation's networks (`bundle.members: cv`), which scored no other cohort.")
    if other_start:
        names = ", ".join(f"`{c}`" for c in other_start["cohorts"])
        text += (f"\n\nThe rows of {names} (amplitude-calibrated or not) are not this bundle's members': "
                 "the run's pretraining saw those patients, so they were scored by networks trained on the same "
                 f"patients, split and seeds but started from {other_start['start']}. The members started from the "
                 "pretraining, as the cross-validation's networks did, and scored any other test cohort above.")
    return text


def _members_line(kind: str, members) -> str:
    ids = ", ".join(m["run_id"] for m in members)
    if kind == "cv":
        return (f"the nested cross-validation's networks ({ids}; `bundle.members: cv`), each trained on its "
                "fold's training patients, early-stopped and with a stage 2 fit on its inner-validation patients, "
                "and tested on its outer fold: every patient was in some members' training")
    return f"one per seed ({ids})"


def _data_line(kind: str) -> str:
    if kind == "cv":
        return ("Every patient of the cohort, split by the nested cross-validation: each member trained on its "
                "fold's training patients, held out its inner-validation patients for early stopping and the "
                "stage-2 fit, and its outer fold for testing.")
    return ("Every patient of the cohort; each member holds out a stratified fraction of the\npatients for early "
            "stopping and the stage-2 fit.")


def _init_line(members, pretraining: str | None = None) -> str:
    """Where the members' training started (model.json of older bundles does not say); ``pretraining``: what the
    pipeline's pretraining network was trained on (model.json's ``pretraining``; older bundles: simulated)."""
    starts = sorted({str(m.get("init_from")) for m in members if m.get("init_from")})
    if not starts:
        return "Each member was trained from a random initialisation."
    rates = sorted({float(m["lr"]) for m in members if m.get("lr") is not None})
    rate = f" at learning rate {', '.join(f'{r:g}' for r in rates)}" if rates else ""  # older bundles: unsaid
    if all("results/pretrain/" in s for s in starts):
        return (f"Each member was fine-tuned from `{'`, `'.join(starts)}`{rate}, a network the pipeline trained "
                f"on {pretraining or 'simulated patients only'} (the run's `pretrain:` section).")
    return (f"Each member was fine-tuned from `{'`, `'.join(starts)}`{rate} (`train.init_from`): what that "
            "network was trained on is part of this model's training data.")


def _reference(meta: Mapping) -> str:
    ref = meta["preprocessing"].get("amplitude_reference")
    if not ref:
        return ""
    text = f" ({ref['median_frame_rms_uv']:.4g} uV)"
    if "recording_range_uv" in ref:
        (low, high), (q0, q1) = ref["recording_range_uv"], ref["range_quantiles"]
        text += (f"; `nemg predict` flags every recording whose level lies outside the training recordings' "
                 f"{low:.4g}-{high:.4g} uV (their percentiles {100 * q0:g}-{100 * q1:g}), and with "
                 f"`--strict-amplitude` refuses to diagnose it")
    if ref.get("polarity"):
        text += (f"; {100 * ref['polarity']['negative_share']:.0f} % of the training recordings skew negative "
                 f"(which way their spikes point: `--calibrate` reports a site's share beside it)")
    return text


def _combined_line(meta: Mapping) -> str:
    comb = meta.get("combined")
    if not comb:
        return ""
    return (f"\n- Beside it, never instead of it: the combined arm `{comb['arm']}` (`nemg predict`'s `combined_*` "
            f"columns): per member a QEMG logistic regression on {len(comb['feature_names'])} features of the same "
            "windows, fit on the member's training patients, and a stage 2 on both models' patient scores, fit on "
            "the same patients as the network's; the members' mean, as above. Its figures are the `combined_logreg` "
            "rows of the run's tables.")


def render_card(meta: Mapping, *, source: str, table2: pd.DataFrame | None, per_class: pd.DataFrame | None,
                external: pd.DataFrame | None) -> str:
    """The card's Markdown. ``meta``: model.json's content; ``source``: the cohort's ``cohort.source``."""
    from .predict import MIN_CALIBRATION_PATIENTS

    tc, pre, st2 = meta["training_cohort"], meta["preprocessing"], meta["stage2"]
    members = meta["members"]
    counts = pd.DataFrame({"": ["patients", "recordings", "segments"],
                           **{c: [tc["patients"][c], tc["recordings"][c], tc["segments"][c]] for c in CLASSES}})
    # older bundles: the external ensemble, whose members have no test patients
    kind = meta.get("members_kind", "external")
    split = pd.DataFrame([{"member": rid, **{f"{role} {c}": v[role][c] for role in v for c in CLASSES}}
                          for rid, v in tc["members"].items()])
    cfg = meta["model"]["config"]
    # nemg.model.preset_name would import torch into a Markdown renderer
    preset = cfg.get("preset") or section_defaults("model")["preset"]
    tr, rs, sg = pre["trim"], pre["resample"], pre["segment"]
    return f"""# Model card: nEMGNet ensemble trained on `{tc['name']}`

Generated by `snakemake model` from the run's own outputs (nemg {meta['nemg_version']}, commit
`{meta['git_commit']}`). Do not edit: rebuild the bundle instead.

## Intended use

Research only: reproducing and extending the study (Yoo et al. 2023 / Cho et al. 2026), and scoring
recordings of research cohorts with exactly the preprocessing the model was trained with (`nemg predict`).
**It is not a medical device**, has no regulatory clearance and must not be used to diagnose, treat or triage
patients. Its output is a class probability for normal / myopathy / neuropathy per patient, learned from
{tc['name']}; it knows no other disease, no mixed or borderline case, and no "cannot tell" answer.

## Model

- Ensemble of {len(members)} nEMGNets (1-D CNN; `{preset}` preset: width {cfg['width']},
  head {cfg.get('head', 'flatten')}), {_members_line(kind, members)}; weights in
  `weights/` (plain state dicts, sha256 in `model.json`). {_init_line(members, meta.get("pretraining"))}
- Divide-and-vote: segment probabilities averaged per recording, recordings per patient; stage 2
  `{st2['method']}` {'with' if st2['with_location'] else 'without'} muscle location, fit per member on its
  `{st2['fit_on']}` patients (class weight: {st2['class_weight'] or 'none'}); {st2['combine']}.{_combined_line(meta)}
- Preprocessing: recordings read as {pre['units']}; edge-artifact trimming (automatic: {tr['auto']},
  envelope factor {tr['envelope_factor']}, baseline factor {tr['baseline_factor']}, minimum kept
  {tr['min_duration_s']} s); resampled to {rs['rate_hz']:g} Hz ({rs['method']}); windows of {sg['window_s']} s
  every {sg['hop_s']} s. Recordings sampled below {rs['min_source_rate_hz']:g} Hz are refused (the model never
  saw signals band-limited that low).

## Training data

{SOURCES.get(source, source)}. {_data_line(kind)}

{md_table(counts)}

Split per member (patients):

{md_table(split)}

## Cross-validation

{cv_section(table2, per_class, st2['method'], kind)}

## External validation

{external_section(external, meta.get("external_networks_start"), kind)}

## Known confounders and limitations

- **Amplitude scale.** Absolute amplitude is the main diagnostic cue, and data sets differ several-fold in it
  (amplifier chain, gain, contraction protocol; N2001 vs Messekher: median segment RMS 23-71 uV against
  241-565 uV). A model does not transfer between sites as recorded (docs/external.md); recordings must be in
  true microvolts, with the units stated in the sheet. For another amplifier chain, `nemg predict
  --calibrate` on at least {MIN_CALIBRATION_PATIENTS} of the site's patients scales them to this cohort's
  median frame RMS{_reference(meta)} (docs/predict.md).
- **Site.** Cross-validation shares the hospital, needle, amplifier, filters, examiner and referral pattern
  between training and test patients; it overstates what the model does at a new site.
- **Protocol.** Contraction level, muscles and the proximal/distal mix of the training cohort shape what the
  model learned (in N2001 only the controls include moderate contraction); recordings of other muscles or
  protocols are outside its training data.
- **Class mix.** Stage 2 learned the class proportions of its fit patients; a population with another mix
  (e.g. mostly normal) shifts the calibration of the probabilities.
- **Small cohorts.** With few patients per class the confidence intervals above are wide; a single patient's
  probability is not a calibrated risk.
- **Simulated training data** (if the source above says so): nothing here holds for real patients.
"""


def write_card(path, meta: Mapping, *, source: str, table2_tsv=None, per_class_tsv=None, external_tsv=None) -> str:
    """Render the card from the run's table files (None: that part was not run) and write it atomically."""
    from .fileio import write_atomic

    read = lambda p: None if p is None else pd.read_csv(p, sep="\t")  # noqa: E731
    text = render_card(meta, source=source, table2=read(table2_tsv), per_class=read(per_class_tsv),
                       external=read(external_tsv))
    write_atomic(path, text)
    return text


__all__ = ["cv_section", "external_section", "md_table", "render_card", "write_card"]
