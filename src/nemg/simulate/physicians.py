"""Simulated physicians: six raters who label each muscle recording, then each patient. SIMULATED, not real.

Error model (documented with measured confusion matrices in docs/simulator.md). Each rater has a skill
k in [0, 1]; every probability below moves linearly from its value at k = 0 to its value at k = 1.

Muscle level, from what the recording shows (an unaffected muscle of a patient looks normal):
- abnormal muscle of class c at severity s: the rater sees the abnormality with probability
  ``detect_c(k) * (mild + (1 - mild) * s)``; having seen it, names the right class with probability
  ``type_correct_c(k)``, otherwise the other disease; not seeing it, calls it normal.
  Neuropathy (large, long, unstable MUAPs, reduced recruitment) is easier to see than myopathy.
- normal-looking muscle: a false-positive abnormal call with probability ``false_positive(k)``, more often
  neuropathy (healthy elderly muscles look mildly neurogenic).
Patient level, from the rater's own muscle calls only (no clinical information, as in the study): abnormal
when at least a share ``patient_abnormal_share(k)`` of the muscles (and at least one) was called abnormal, with
the more frequent abnormal class (ties broken at random); otherwise normal. Because one abnormal-looking
muscle is enough to call a patient abnormal, raters are best on neuropathy and worst on normal subjects, the
pattern of the study's physician arm.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def _lerp(pair, k: float) -> float:
    return float(pair[0] + (pair[1] - pair[0]) * k)


def muscle_label(apparent: str, severity: float, skill: float, r: dict, rng: np.random.Generator) -> str:
    if apparent == "normal":
        if rng.random() < _lerp(r["false_positive"], skill):
            return "neuropathy" if rng.random() < r["false_positive_neuropathy_share"] else "myopathy"
        return "normal"
    mild = r["mild_detect_factor"]
    p_detect = _lerp(r[f"detect_{apparent}"], skill) * (mild + (1 - mild) * min(max(severity, 0.0), 1.0))
    if rng.random() >= p_detect:
        return "normal"
    if rng.random() < _lerp(r["type_correct"][apparent], skill):
        return apparent
    return "myopathy" if apparent == "neuropathy" else "neuropathy"


def patient_label(muscle_labels: list[str], skill: float, r: dict, rng: np.random.Generator) -> str:
    n = len(muscle_labels)
    n_myo = sum(lab == "myopathy" for lab in muscle_labels)
    n_neu = sum(lab == "neuropathy" for lab in muscle_labels)
    if n == 0 or n_myo + n_neu == 0 or (n_myo + n_neu) / n < _lerp(r["patient_abnormal_share"], skill):
        return "normal"
    if n_myo == n_neu:
        return "myopathy" if rng.random() < 0.5 else "neuropathy"
    return "myopathy" if n_myo > n_neu else "neuropathy"


def simulate_ratings(subjects: pd.DataFrame, recordings: pd.DataFrame, p: dict, seed: int) -> pd.DataFrame:
    """One row per (rater, recording) and one per (rater, subject) with an empty recording_id.

    ``recordings`` needs ``subject_id``, ``recording_id``, ``affected`` and ``severity``; ``subjects`` needs
    ``subject_id`` and ``diagnosis``. Each rater draws from its own generator, so adding a rater does not
    change the others' labels.
    """
    r = p["raters"]
    if len(r["ids"]) != len(r["skill"]):
        raise ValueError(f"raters.ids ({len(r['ids'])}) and raters.skill ({len(r['skill'])}) differ in length")
    diag = dict(zip(subjects["subject_id"], subjects["diagnosis"]))
    rows = []
    for i, (rater, skill) in enumerate(zip(r["ids"], r["skill"])):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(3, i)))
        for sid in subjects["subject_id"]:
            recs = recordings[recordings["subject_id"] == sid]
            labels = []
            for rec in recs.itertuples(index=False):
                apparent = diag[sid] if bool(rec.affected) else "normal"
                lab = muscle_label(apparent, float(rec.severity), float(skill), r, rng)
                labels.append(lab)
                rows.append((rater, sid, rec.recording_id, lab))
            rows.append((rater, sid, None, patient_label(labels, float(skill), r, rng)))
    out = pd.DataFrame(rows, columns=["rater_id", "subject_id", "recording_id", "label"])
    out["simulated"] = True
    return out
