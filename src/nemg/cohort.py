"""A cohort = two tab-separated sample sheets, ``subjects.tsv`` and ``recordings.tsv``.

Validation collects *every* problem (schema violations, duplicate ids, unknown subjects, missing files,
subjects without recordings, inconsistent trims ...) and raises them together, each line naming the file and
the row, so a user fixes a sheet in one pass instead of one error per run.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from .io import (FORMATS, SELF_DESCRIBING_RATE, load_recording, missing_file, probe_duration, signal_file,
                 wfdb_header_path)
from .labels import CLASSES, LOCATIONS
from .recording import DEFAULT_MIN_DURATION_S, Recording, RecordingError
from .schemas import load_schema

SUBJECT_NUMERIC = ("age",)
RECORDING_NUMERIC = ("sampling_rate_hz", "trim_start_s", "trim_end_s")


class CohortError(ValueError):
    """One or more problems in a cohort's sample sheets; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        n = len(self.problems)
        super().__init__(f"{n} problem{'s' if n != 1 else ''} in the cohort sample sheets:\n  - "
                         + "\n  - ".join(self.problems))


@dataclass
class Cohort:
    """Validated sample sheets. ``recordings.path`` is absolute; the sheet's own value is in ``path_in_sheet``."""

    subjects: pd.DataFrame
    recordings: pd.DataFrame
    subjects_tsv: Path
    recordings_tsv: Path
    warnings: list[str] = field(default_factory=list)

    def recording_row(self, recording_id: str) -> pd.Series:
        rows = self.recordings[self.recordings["recording_id"] == recording_id]
        if rows.empty:
            raise KeyError(f"{self.recordings_tsv}: no recording {recording_id!r}")
        return rows.iloc[0]

    def load(self, recording_id: str, **kwargs) -> Recording:
        """Load one recording with the sheet's format, rate, units and channel."""
        return load_row(self.recording_row(recording_id), **kwargs)

    def with_diagnosis(self) -> pd.DataFrame:
        """Recordings joined with their subject's diagnosis, sex and age."""
        cols = ["subject_id", "diagnosis"] + [c for c in ("sex", "age") if c in self.subjects]
        return self.recordings.merge(self.subjects[cols], on="subject_id", how="left")


def load_row(row: Mapping[str, Any], **kwargs) -> Recording:
    """Load the recording of one ``recordings.tsv`` row (its path, format, rate, units and channel).

    The one reading path shared by the trim stage and ``nemg cohort check``, so the check reports exactly what
    the workflow would fail on. ``kwargs`` go to :func:`nemg.io.load_recording` (e.g. ``min_duration_s``).
    """
    return load_recording(
        row["path"],
        row["format"],
        sampling_rate_hz=_opt(row.get("sampling_rate_hz")),
        units=_opt(row.get("units")),
        channel=_opt(row.get("channel")),
        **kwargs,
    )


def _opt(v):
    if v is None:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, str) and v == "":
        return None
    return v


def _read_sheet(path: Path, problems: list[str]) -> pd.DataFrame | None:
    if not path.is_file():
        problems.append(f"{path}: sample sheet not found")
        return None
    try:
        df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, na_filter=False)
    except pd.errors.EmptyDataError:
        problems.append(f"{path}: the sheet is empty (no header row); expected a tab-separated table with a "
                        f"header line")
        return None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        problems.append(f"{path}: not a readable tab-separated sheet ({exc})")
        return None
    df.columns = [c.strip() for c in df.columns]
    return df.apply(lambda col: col.str.strip())


def _validate_rows(df: pd.DataFrame, path: Path, schema_name: str, numeric: tuple[str, ...],
                   problems: list[str]) -> pd.DataFrame:
    """Type-convert and schema-check every row; returns the typed frame (invalid cells become None)."""
    import jsonschema

    schema = load_schema(schema_name)
    missing = [c for c in schema.get("required", []) if c not in df.columns]
    if missing:
        problems.append(f"{path}: missing column(s) {', '.join(missing)} (columns found: {', '.join(df.columns)})")
        for c in missing:
            df[c] = ""
    # an optional column under a near-miss name is dropped silently otherwise (e.g. 'unit' holding mV read as
    # the default µV, 1000x too small): a column that is close to a known one, which is absent, is an error
    known = list(schema.get("properties", {}))
    for col in df.columns:
        if col in known:
            continue
        close = [k for k in difflib.get_close_matches(col, known, n=1, cutoff=0.75) if k not in df.columns]
        if close:
            problems.append(f"{path}: unknown column {col!r} (did you mean {close[0]!r}?)")
    validator = jsonschema.Draft202012Validator(schema)
    # object columns holding None for empty cells: pandas' own string dtype would turn None into NaN and
    # refuse floats, and the schema check needs real None / float values
    typed = pd.DataFrame(
        {c: pd.Series([None if v == "" else v for v in df[c]], index=df.index, dtype=object) for c in df.columns}
    )
    for col in numeric:
        if col not in typed:
            continue
        values = []
        for i, v in typed[col].items():
            try:
                values.append(None if v is None else float(v))
            except ValueError:
                problems.append(f"{path}, row {i + 2}: column {col}: {v!r} is not a number")
                values.append(None)
        typed[col] = pd.Series(values, index=typed.index, dtype=object)
    props = schema.get("properties", {})
    # to_dict keeps None (iterrows would turn it into NaN, which the schema rejects as "not a string")
    for i, row in zip(typed.index, typed.to_dict("records")):
        record = {k: row[k] for k in props if k in row}
        for err in sorted(validator.iter_errors(record), key=lambda e: list(e.path)):
            col = err.path[0] if err.path else ""
            value = record.get(col) if col else None
            if err.validator == "enum":
                allowed = ", ".join("empty" if a is None else str(a) for a in err.validator_value)
                msg = f"{value!r} is not allowed (expected {allowed})"
            else:
                msg = err.message
            problems.append(f"{path}, row {i + 2}: column {col}: {msg}")
    return typed


def _duplicates(df: pd.DataFrame, col: str, path: Path, problems: list[str]) -> None:
    dup = df[col][df[col].duplicated(keep=False) & df[col].notna()]
    for value, rows in dup.groupby(dup).groups.items():
        lines = ", ".join(str(r + 2) for r in rows)
        problems.append(f"{path}: duplicate {col} {value!r} in rows {lines}")


def _check_file(row: pd.Series, path_col: str) -> str | None:
    p = Path(row[path_col])
    if row.get("format") == "wfdb":
        p = wfdb_header_path(p)
    return None if p.is_file() else f"{missing_file(p)}: {p}"


def _check_recordings(recordings: pd.DataFrame, recordings_tsv: Path, problems: list[str], *,
                      known_subjects: set | None, check_files: bool, subjects_name: str = "") -> pd.DataFrame:
    """Row checks of a typed recordings sheet; resolves ``path`` against the sheet's folder (in place)."""
    _duplicates(recordings, "recording_id", recordings_tsv, problems)
    for i, row in zip(recordings.index, recordings.to_dict("records")):
        where = f"{recordings_tsv}, row {i + 2}"
        sid = row["subject_id"]
        if known_subjects is not None and sid is not None and sid not in known_subjects:
            problems.append(f"{where}: unknown subject_id {sid!r} (not in {subjects_name})")
        fmt = row.get("format")
        if fmt in FORMATS and fmt not in SELF_DESCRIBING_RATE and _opt(row.get("sampling_rate_hz")) is None:
            # npz may carry its own rate; the loader checks that case when it opens the file
            if fmt != "npz":
                problems.append(f"{where}: sampling_rate_hz is required for format {fmt}")
        t0, t1 = _opt(row.get("trim_start_s")), _opt(row.get("trim_end_s"))
        if t0 is not None and t1 is not None and t1 <= t0:
            problems.append(f"{where}: trim_end_s ({t1:g}) must be greater than trim_start_s ({t0:g})")
    base = recordings_tsv.parent
    recordings["path_in_sheet"] = recordings["path"]
    recordings["path"] = [None if p is None else str((base / p).resolve()) if not Path(p).is_absolute() else p
                          for p in recordings["path"]]
    if check_files:
        for i, row in recordings.iterrows():
            if row["path"] is None:
                continue
            msg = _check_file(row, "path")
            if msg:
                problems.append(f"{recordings_tsv}, row {i + 2}: recording {row['recording_id']!r}: {msg}")
    _same_signal(recordings, recordings_tsv, problems)
    return recordings


def _same_signal(recordings: pd.DataFrame, recordings_tsv: Path, problems: list[str]) -> None:
    """Two rows reading one signal (the same file, and channel for multi-channel files): under two patients a test
    patient's signal could sit in another's training set; under one it would count twice in the vote."""
    rows = recordings[recordings["path"].notna()]
    keys = [(str(signal_file(r["path"], r.get("format"))), _opt(r.get("channel"))) for r in rows.to_dict("records")]
    for (path, channel), recs in rows.groupby(pd.Series(keys, index=rows.index), sort=False):
        if recs["recording_id"].nunique() < 2:  # alone, or one row given twice (the duplicate recording_id says so)
            continue
        subjects = sorted(recs["subject_id"].dropna().astype(str).unique())
        why = (f"subjects {', '.join(subjects)} would share it, so one patient's signal could be in another's "
               f"training set" if len(subjects) > 1 else f"subject {subjects[0] if subjects else '?'} would "
               f"count it twice")
        problems.append(f"{recordings_tsv}, rows {', '.join(str(r + 2) for r in recs.index)}: recordings "
                        f"{', '.join(repr(r) for r in recs['recording_id'])} read the same signal "
                        f"({path}{'' if channel is None else f', channel {channel}'}): {why}")


def read_recordings(recordings_tsv: str | Path, *, check_files: bool = True) -> pd.DataFrame:
    """A recordings sheet on its own (patients without a subjects sheet, e.g. new patients to diagnose).

    The same checks as :func:`read_cohort` except those that need the subjects sheet; raises
    :class:`CohortError` listing every problem.
    """
    recordings_tsv = Path(recordings_tsv)
    problems: list[str] = []
    raw = _read_sheet(recordings_tsv, problems)
    if raw is None:
        raise CohortError(problems)
    recordings = _validate_rows(raw, recordings_tsv, "recordings", RECORDING_NUMERIC, problems)
    recordings = _check_recordings(recordings, recordings_tsv, problems, known_subjects=None, check_files=check_files)
    if problems:
        raise CohortError(problems)
    return recordings.reset_index(drop=True)


def read_cohort(subjects_tsv: str | Path, recordings_tsv: str | Path, *, check_files: bool = True) -> Cohort:
    """Read and validate a cohort; raises :class:`CohortError` listing every problem found."""
    subjects_tsv, recordings_tsv = Path(subjects_tsv), Path(recordings_tsv)
    problems: list[str] = []
    warnings: list[str] = []
    subj_raw = _read_sheet(subjects_tsv, problems)
    rec_raw = _read_sheet(recordings_tsv, problems)
    if subj_raw is None or rec_raw is None:
        raise CohortError(problems)

    subjects = _validate_rows(subj_raw, subjects_tsv, "subjects", SUBJECT_NUMERIC, problems)
    recordings = _validate_rows(rec_raw, recordings_tsv, "recordings", RECORDING_NUMERIC, problems)
    _duplicates(subjects, "subject_id", subjects_tsv, problems)
    known = set(subjects["subject_id"].dropna())
    with_recs = set(recordings["subject_id"].dropna())
    recordings = _check_recordings(recordings, recordings_tsv, problems, known_subjects=known,
                                   check_files=check_files, subjects_name=subjects_tsv.name)
    for i, row in subjects.iterrows():
        if row["subject_id"] is not None and row["subject_id"] not in with_recs:
            problems.append(f"{subjects_tsv}, row {i + 2}: subject {row['subject_id']!r} has no recordings "
                            f"in {recordings_tsv.name}")

    if problems:
        raise CohortError(problems)

    present = set(subjects["diagnosis"])
    for cls in CLASSES:
        if cls not in present:
            warnings.append(f"{subjects_tsv}: no subjects with diagnosis {cls!r}")
    for loc in LOCATIONS:
        if loc not in set(recordings["location"]):
            warnings.append(f"{recordings_tsv}: no {loc} recordings")
    return Cohort(subjects.reset_index(drop=True), recordings.reset_index(drop=True), subjects_tsv,
                  recordings_tsv, warnings)


def find_sheets(paths: list[str | Path]) -> tuple[Path, Path]:
    """Accept a cohort directory or the two sheet paths in any order (for the command line)."""
    paths = [Path(p) for p in paths]
    if len(paths) == 1 and paths[0].is_dir():
        return paths[0] / "subjects.tsv", paths[0] / "recordings.tsv"
    if len(paths) != 2:
        raise CohortError([f"give a cohort directory or the two sheets (subjects.tsv recordings.tsv); got "
                           f"{' '.join(map(str, paths)) or 'nothing'}"])
    a, b = paths
    if "recording" in a.name and "recording" not in b.name:
        a, b = b, a
    return a, b


def check_signals(cohort: Cohort, *, min_duration_s: float = DEFAULT_MIN_DURATION_S
                  ) -> tuple[dict[str, float], list[str]]:
    """Read every recording through :func:`load_row`; ``({recording_id: duration_s}, problems)``.

    Every unreadable recording (NaN samples, flat line, shorter than ``min_duration_s``, truncated file, a rate
    the file contradicts ...) gives one problem line naming the sheet row and the file, and no duration, so a
    broken file never counts towards the totals. Nothing stops at the first problem.
    """
    return _per_recording(cohort, lambda row: load_row(row, min_duration_s=min_duration_s).duration_s)


def probe_durations(cohort: Cohort, *, min_duration_s: float = DEFAULT_MIN_DURATION_S
                    ) -> tuple[dict[str, float], list[str]]:
    """Like :func:`check_signals` but from the file headers only (``nemg cohort check --quick``): fast, and
    blind to what only the samples show (NaN, flat line, a truncated npy/asc)."""
    def duration(row):
        secs = probe_duration(row["path"], row["format"], _opt(row.get("sampling_rate_hz")))
        if secs < min_duration_s:
            raise RecordingError(row["path"], f"too short: {secs:.3f} s (minimum {min_duration_s:g} s)")
        return secs

    return _per_recording(cohort, duration)


def _per_recording(cohort: Cohort, duration) -> tuple[dict[str, float], list[str]]:
    durations: dict[str, float] = {}
    problems: list[str] = []
    for i, row in zip(cohort.recordings.index, cohort.recordings.to_dict("records")):
        try:
            durations[row["recording_id"]] = float(duration(row))
        except RecordingError as exc:
            problems.append(f"{cohort.recordings_tsv}, row {i + 2}: recording {row['recording_id']!r}: {exc}")
    return durations, problems


def summarize(cohort: Cohort, *, durations: bool | Mapping[str, float] = True) -> pd.DataFrame:
    """Per-class subjects, recordings, proximal/distal and total duration (the S1 Table's numbers).

    ``durations``: a ``{recording_id: seconds}`` mapping (from :func:`check_signals`; recordings missing from it
    add nothing to the totals), True to read them from the file headers (:func:`probe_durations`; raises
    :class:`CohortError` listing every unreadable file), or False for no duration column.
    """
    rec = cohort.with_diagnosis()
    if durations is True:
        durations, problems = probe_durations(cohort)
        if problems:
            raise CohortError(problems)
    if durations is not False:
        rec["duration_s"] = rec["recording_id"].map(dict(durations)).astype(float)
    rows = []
    classes = [c for c in CLASSES if c in set(cohort.subjects["diagnosis"])]
    for cls in classes + ["all"]:
        sub = cohort.subjects if cls == "all" else cohort.subjects[cohort.subjects["diagnosis"] == cls]
        r = rec if cls == "all" else rec[rec["diagnosis"] == cls]
        row = {
            "class": cls,
            "subjects": len(sub),
            "recordings": len(r),
            "proximal": int((r["location"] == "proximal").sum()),
            "distal": int((r["location"] == "distal").sum()),
        }
        if durations is not False:
            row["total_duration_s"] = round(float(r["duration_s"].sum()), 1)
        rows.append(row)
    return pd.DataFrame(rows)
