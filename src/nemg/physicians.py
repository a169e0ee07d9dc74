"""The physician arm: a ratings sheet, per-rater metrics, and cases everyone gets wrong.

``ratings.tsv`` has one row per (rater, subject, recording) muscle-level call and one row per (rater,
subject) patient-level call with an empty ``recording_id``; the study compares the patient-level calls with
the model. The same format serves the simulated raters and a real study's sheet.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from .cohort import CohortError, _read_sheet, _validate_rows, _duplicates
from .labels import CLASSES
from .metrics import classification_metrics

log = logging.getLogger(__name__)


def read_ratings(path: str | Path, subjects: pd.DataFrame | None = None, recordings: pd.DataFrame | None = None,
                 *, all_subjects: pd.DataFrame | None = None,
                 all_recordings: pd.DataFrame | None = None) -> pd.DataFrame:
    """Read and validate a ratings sheet; all problems are reported at once with file and row.

    ``subjects`` / ``recordings`` are the cohort's sheets, ``all_subjects`` / ``all_recordings`` the same sheets
    before ``cohort.subjects`` / ``cohort.recordings_where`` filtered them (default: the cohort's own). A row
    whose subject or recording is in neither is an error (a typo or another study's sheet would otherwise
    shrink the physician arm without a word), as is a recording that belongs to another subject; a row whose
    subject or recording the filter left out is dropped.
    """
    path = Path(path)
    problems: list[str] = []
    raw = _read_sheet(path, problems)
    if raw is None:
        raise CohortError(problems)
    df = _validate_rows(raw, path, "ratings", (), problems)
    key = df["rater_id"].astype(str) + "|" + df["subject_id"].astype(str) + "|" + df["recording_id"].fillna("").astype(str)
    _duplicates(df.assign(rating_key=key), "rating_key", path, problems)
    keep = pd.Series(True, index=df.index)
    if subjects is not None:
        everyone = all_subjects if all_subjects is not None else subjects
        known, kept = set(everyone["subject_id"]), set(subjects["subject_id"])
        for i, sid in df["subject_id"].items():
            if sid is not None and sid not in known:
                problems.append(f"{path}, row {i + 2}: unknown subject_id {sid!r}")
            keep[i] = sid in kept
    if recordings is not None:
        every_rec = all_recordings if all_recordings is not None else recordings
        owner = dict(zip(every_rec["recording_id"], every_rec["subject_id"]))
        kept_rec = set(recordings["recording_id"])
        for i, (sid, rid) in enumerate(zip(df["subject_id"], df["recording_id"])):
            if rid is None:
                continue
            i = df.index[i]
            if rid not in owner:
                problems.append(f"{path}, row {i + 2}: unknown recording_id {rid!r}")
            elif sid is not None and owner[rid] != sid:
                problems.append(f"{path}, row {i + 2}: recording {rid!r} belongs to subject {owner[rid]!r}, "
                                f"not {sid!r}")
            keep[i] = keep[i] and rid in kept_rec
    if problems:
        raise CohortError(problems)
    if not keep.all():
        log.info("%s: %d rating row(s) of subjects or recordings filtered out of the cohort left out",
                 path, int((~keep).sum()))
    return df[keep].reset_index(drop=True)


def read_cohort_ratings(path: str | Path, subjects_tsv: str | Path, recordings_tsv: str | Path,
                        all_subjects_tsv: str | Path | None = None,
                        all_recordings_tsv: str | Path | None = None) -> pd.DataFrame:
    """:func:`read_ratings` against a cohort's sheet files (and the unfiltered sheets, when it was filtered)."""
    def sheet(p):
        # strings throughout: ids that look like numbers stay ids
        return None if p is None else pd.read_csv(p, sep="\t", dtype=str, keep_default_na=False)

    return read_ratings(path, sheet(subjects_tsv), sheet(recordings_tsv), all_subjects=sheet(all_subjects_tsv),
                        all_recordings=sheet(all_recordings_tsv))


def patient_calls(ratings: pd.DataFrame) -> pd.DataFrame:
    """Subjects x raters table of patient-level labels."""
    pat = ratings[ratings["recording_id"].isna()]
    return pat.pivot(index="subject_id", columns="rater_id", values="label").sort_index()


def per_rater_metrics(ratings: pd.DataFrame, diagnosis: pd.Series) -> pd.DataFrame:
    """Table-2 metrics of every rater's patient-level calls, plus their mean ("mean rater")."""
    calls = patient_calls(ratings)
    rows = []
    for rater in calls.columns:
        c = calls[rater].dropna()
        m = classification_metrics(diagnosis.loc[c.index].to_numpy(), c.to_numpy())
        rows.append({"rater_id": rater, **m})
    table = pd.DataFrame(rows)
    mean = {"rater_id": "mean", **table.drop(columns=["rater_id"]).mean(numeric_only=True).to_dict()}
    return pd.concat([table, pd.DataFrame([mean])], ignore_index=True)


def rater_operating_points(ratings: pd.DataFrame, diagnosis: pd.Series) -> pd.DataFrame:
    """Each rater's (one-vs-rest) FPR, TPR and precision per class: their points on the ROC and PR planes."""
    calls = patient_calls(ratings)
    rows = []
    for rater in calls.columns:
        c = calls[rater].dropna()
        y = diagnosis.loc[c.index].to_numpy()
        p = c.to_numpy()
        for cls in CLASSES:
            pos, pred = y == cls, p == cls
            tp, fp = np.sum(pos & pred), np.sum(~pos & pred)
            rows.append({"rater_id": rater, "class": cls,
                         "tpr": tp / pos.sum() if pos.sum() else np.nan,
                         "fpr": fp / (~pos).sum() if (~pos).sum() else np.nan,
                         "precision": tp / pred.sum() if pred.sum() else np.nan})
    return pd.DataFrame(rows)


def unanimously_wrong(calls: pd.DataFrame, diagnosis: pd.Series) -> pd.DataFrame:
    """Subjects that every column (rater or model run) misclassified, with their true class and the calls.

    ``calls`` is subjects x (raters or runs) of labels; missing cells (a run that did not test that patient)
    are ignored, but a subject needs at least one call to count.
    """
    rows = []
    for sid, row in calls.iterrows():
        labels = row.dropna()
        truth = diagnosis.loc[sid]
        if len(labels) and (labels != truth).all():
            rows.append({"subject_id": sid, "diagnosis": truth, "n_calls": len(labels),
                         "calls": ", ".join(f"{k}:{v}" for k, v in labels.items())})
    return pd.DataFrame(rows, columns=["subject_id", "diagnosis", "n_calls", "calls"])
