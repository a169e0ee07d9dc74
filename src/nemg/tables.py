"""Small table builders of the preprocessing stage (cohort subsets, the S1 Table) and the result tables' format
(TSV + HTML, p-values, the external-validation display table).

``s1_table`` reproduces the study's S1 Table (per class: patients, signals, proximal / distal, total duration)
from what actually reaches the model, i.e. the trimmed recordings that yield at least one segment.
"""
from __future__ import annotations

import html
import logging
import math
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

from .vote import CLASSES

log = logging.getLogger(__name__)

#: Row order of the paper's S1 Table.
S1_ORDER = ("myopathy", "neuropathy", "normal")


def subset_sheets(subjects_tsv: str | Path, recordings_tsv: str | Path, keep: Iterable[str] | None,
                  out_subjects: str | Path | None = None, out_recordings: str | Path | None = None,
                  recordings_where: Mapping[str, Iterable] | None = None,
                  ratings_tsv: str | Path | None = None) -> int:
    """Keep only the subjects in ``keep`` (all when empty) in both sheets; written in place by default.

    ``recordings_where`` (column -> allowed values) keeps only matching recordings, e.g.
    ``{"contraction_level": ["low"]}`` to take contraction level out of N2001's class differences; subjects
    left without a recording are dropped and logged. Relative recording paths are rewritten to stay correct when
    the output lies in another folder. Unknown subject ids or columns, and a filter that empties the cohort or a
    whole diagnosis class, are errors naming the sheet. ``ratings_tsv`` (a physician ratings sheet of these
    sheets) loses the rows of the subjects and recordings left out, in place; a row naming an id in neither
    sheet is an error (:func:`nemg.physicians.read_ratings`). Returns the number of subjects kept.
    """
    subjects_tsv, recordings_tsv = Path(subjects_tsv), Path(recordings_tsv)
    out_subjects = Path(out_subjects or subjects_tsv)
    out_recordings = Path(out_recordings or recordings_tsv)
    subj = pd.read_csv(subjects_tsv, sep="\t", dtype=str, keep_default_na=False)
    rec = pd.read_csv(recordings_tsv, sep="\t", dtype=str, keep_default_na=False)
    all_subj, all_rec = subj, rec
    keep = list(keep or [])
    if keep:
        unknown = sorted(set(keep) - set(subj["subject_id"]))
        if unknown:
            raise ValueError(f"{subjects_tsv}: cohort.subjects names unknown subject id(s) {', '.join(unknown)}; "
                             f"known ids: {', '.join(subj['subject_id'][:30])}"
                             f"{' ...' if len(subj) > 30 else ''}")
        subj = subj[subj["subject_id"].isin(keep)]
        rec = rec[rec["subject_id"].isin(keep)]
    if recordings_where:
        subj, rec = _filter_recordings(subj, rec, recordings_where, recordings_tsv)
    if out_recordings.parent.resolve() != recordings_tsv.parent.resolve():
        base = recordings_tsv.parent.resolve()
        rec = rec.assign(path=[p if Path(p).is_absolute() else str((base / p).resolve()) for p in rec["path"]])
    out_subjects.parent.mkdir(parents=True, exist_ok=True)
    out_recordings.parent.mkdir(parents=True, exist_ok=True)
    if ratings_tsv is not None:
        from .physicians import read_ratings

        ratings = read_ratings(ratings_tsv, subj, rec, all_subjects=all_subj, all_recordings=all_rec)
    subj.to_csv(out_subjects, sep="\t", index=False)
    rec.to_csv(out_recordings, sep="\t", index=False)
    if ratings_tsv is not None:
        ratings.to_csv(ratings_tsv, sep="\t", index=False, na_rep="", lineterminator="\n")
    return len(subj)


def _filter_recordings(subj: pd.DataFrame, rec: pd.DataFrame, where: Mapping[str, Iterable],
                       recordings_tsv: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    missing = sorted(set(where) - set(rec.columns))
    if missing:
        raise ValueError(f"{recordings_tsv}: cohort.recordings_where names column(s) {', '.join(missing)} that the "
                         f"recordings sheet lacks; its columns: {', '.join(rec.columns)}")
    mask = pd.Series(True, index=rec.index)
    for col, values in where.items():
        mask &= rec[col].isin([str(v) for v in values])
    kept = rec[mask]
    if kept.empty:
        raise ValueError(f"{recordings_tsv}: no recording matches cohort.recordings_where {dict(where)}")
    lost_classes = sorted(set(subj["diagnosis"]) - set(subj.loc[subj["subject_id"].isin(kept["subject_id"]),
                                                                 "diagnosis"]))
    if lost_classes:
        raise ValueError(f"{recordings_tsv}: cohort.recordings_where {dict(where)} leaves no recording of class(es) "
                         f"{', '.join(lost_classes)}")
    dropped = sorted(set(subj["subject_id"]) - set(kept["subject_id"]))
    if dropped:
        log.warning("%s: %d subject(s) have no recording matching %s and are left out: %s", recordings_tsv,
                    len(dropped), dict(where), ", ".join(dropped))
    log.info("%s: %d of %d recordings match %s", recordings_tsv, len(kept), len(rec), dict(where))
    return subj[subj["subject_id"].isin(kept["subject_id"])], kept


def s1_table(signals_index: str | Path | pd.DataFrame, segments_index: str | Path | pd.DataFrame) -> pd.DataFrame:
    """Per class: patients, signals, proximal, distal, total and mean duration (s), segments; plus a total row.

    ``signals_index`` is the resampled signal store's index (durations after trimming); only recordings with at
    least one segment count, so the table describes exactly the data the model sees.
    """
    sig = signals_index if isinstance(signals_index, pd.DataFrame) else pd.read_csv(
        signals_index, sep="\t", dtype={"recording_id": str, "subject_id": str})
    seg = segments_index if isinstance(segments_index, pd.DataFrame) else pd.read_csv(
        segments_index, sep="\t", dtype={"recording_id": str, "subject_id": str})
    per_rec = seg.groupby("recording_id").size().rename("segments")
    sig = sig.merge(per_rec, left_on="recording_id", right_index=True, how="inner")
    classes = [c for c in S1_ORDER if c in set(sig["diagnosis"])]
    classes += sorted(set(sig["diagnosis"]) - set(classes))
    rows = []
    for cls in classes + ["total"]:
        r = sig if cls == "total" else sig[sig["diagnosis"] == cls]
        prox, dist = int((r["location"] == "proximal").sum()), int((r["location"] == "distal").sum())
        rows.append({
            "class": cls,
            "patients": r["subject_id"].nunique(),
            "signals": len(r),
            "proximal": prox,
            "distal": dist,
            "proximal_distal": f"{prox} / {dist}",
            "total_duration_s": round(float(r["duration_s"].sum()), 1),
            "mean_duration_s": round(float(r["duration_s"].mean()), 2) if len(r) else 0.0,
            "segments": int(r["segments"].sum()),
        })
    return pd.DataFrame(rows)


def write_s1_table(signals_index, segments_index, out_tsv: str | Path) -> pd.DataFrame:
    tab = s1_table(signals_index, segments_index)
    tab.to_csv(out_tsv, sep="\t", index=False)
    return tab


#: Below this a p-value is printed in scientific notation: "0.000" would read as "exactly zero".
SMALL_P = 1e-3

_HTML_STYLE = ("<style>.nemg-table{border-collapse:collapse;font-family:sans-serif;font-size:13px}"
               ".nemg-table td,.nemg-table th{padding:4px 8px;border-bottom:1px solid #ccc;text-align:left}</style>")


def is_p_column(name) -> bool:
    """A column of p-values (``p``, ``mcnemar_p``, ``bootstrap_p``, ...); ``p_<class>`` are probabilities."""
    name = str(name)
    return name in ("p", "p_value", "pvalue") or name.endswith("_p")


def format_p(value) -> str:
    """A p-value for a table: 3 decimals, or scientific notation below 0.001 ("3.2e-06"); "" when missing."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "" if value is None else str(value)
    if math.isnan(v):
        return ""
    return f"{v:.1e}" if v < SMALL_P else f"{v:.3f}"


def html_table(df: pd.DataFrame, title: str = "") -> str:
    """One table as an HTML fragment: floats to 3 decimals, p-value columns through :func:`format_p`, the title
    and every cell HTML-escaped."""
    formatters = {c: format_p for c in df.columns if is_p_column(c)}
    body = df.to_html(index=False, float_format=lambda v: f"{v:.3f}", formatters=formatters or None, na_rep="",
                      border=0, classes="nemg-table")
    head = f"<h3>{html.escape(str(title))}</h3>" if title else ""
    return head + body


def html_page(fragments: Iterable[str], note: str = "") -> str:
    """A standalone page of table fragments (:func:`html_table`) with an optional, HTML-escaped note below."""
    foot = f"<p style='font-family:sans-serif;font-size:12px'>{html.escape(str(note))}</p>" if note else ""
    return (f"<html><head><meta charset='utf-8'>{_HTML_STYLE}</head><body>{''.join(fragments)}{foot}"
            f"</body></html>")


def write_table(df: pd.DataFrame, tsv: str | Path, html: str | Path | None = None, title: str = "",
                note: str = "") -> None:
    """A result table as TSV (for analysis) and, optionally, rendered HTML (for the Snakemake report)."""
    Path(tsv).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(tsv, sep="\t", index=False, float_format="%.6g")
    if html is not None:
        Path(html).write_text(html_page([html_table(df, title)], note))


def external_display_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The external-validation table with estimate (95 % CI) strings, for the HTML page and the README."""
    def f(r, k, a, b):  # a t-interval over 2-3 models can leave [0, 1]; a proportion cannot
        return f"{r[k]:.3f} ({max(0.0, r[a]):.3f}-{min(1.0, r[b]):.3f})"

    rows = []
    for _, r in summary.iterrows():
        cal = "none" if r.get("calibration", "none") == "none" else f"{r['calibration']} (x{r['gain']:.3g})"
        rows.append({"training -> test": f"{r['train_cohort']} -> {r['test_cohort']}", "amplitude calibration": cal,
                     "model": r["model"],
                     "models": r["n_models"], "test patients": r["n_test_patients"],
                     "accuracy, mean over models (95 % CI)": f(r, "accuracy_mean", "accuracy_ci_low", "accuracy_ci_high"),
                     "accuracy, consensus (bootstrap 95 % CI)": f(r, "accuracy_consensus", "accuracy_boot_low",
                                                                 "accuracy_boot_high"),
                     "macro F1, consensus (bootstrap 95 % CI)": f(r, "f1_consensus", "f1_boot_low", "f1_boot_high"),
                     **{f"recall {c}": f"{r[f'recall_{c}']:.2f} (n={r[f'n_{c}']})" for c in CLASSES}})
    return pd.DataFrame(rows)
