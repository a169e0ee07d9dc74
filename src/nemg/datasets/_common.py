"""Pieces every importer shares: the sheet columns, the error type and the TSV writer."""
from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

#: Column order of ``workflow/schemas/subjects.schema.yaml`` (a test keeps the two in step).
SUBJECT_COLUMNS = ("subject_id", "diagnosis", "sex", "age")
#: Column order of ``workflow/schemas/recordings.schema.yaml``.
RECORDING_COLUMNS = (
    "recording_id", "subject_id", "muscle", "side", "location", "path", "format",
    "sampling_rate_hz", "units", "trim_start_s", "trim_end_s",
)


class DatasetError(ValueError):
    """A public data set cannot be imported or fetched; the message names the folder, file or URL."""


def read_wfdb_header_text(hea: Path, min_record_fields: int, what: str) -> tuple[list[str], list[str], list[str]]:
    """(record line fields, signal line fields, all lines) of a single-signal WFDB header, read as text.

    The importers parse headers themselves because the comment lines carry the demographics, in two
    data-set-specific styles that wfdb does not interpret.
    """
    try:
        lines = hea.read_text(encoding="latin-1").splitlines()
    except OSError as exc:
        raise DatasetError(f"{hea}: cannot read header ({exc})") from exc
    spec = [ln.split() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    if len(spec) < 2 or len(spec[0]) < min_record_fields or len(spec[1]) < 3:
        raise DatasetError(f"{hea}: {what}")
    return spec[0], spec[1], lines


def require_dir(source_dir: str | Path, dataset: str) -> Path:
    source = Path(source_dir)
    if not source.is_dir():
        raise DatasetError(
            f"{source}: {dataset} source folder not found"
            + (" (it is a file, not a folder)" if source.exists() else "")
        )
    return source


def sheet_path(file: Path, out_dir: Path) -> str:
    """Path of ``file`` as written in a sheet: relative to the sheet's folder when one exists, else absolute.

    ``abspath`` rather than ``resolve`` keeps the user's own spelling (e.g. a symlinked ``../shared``).
    """
    target = os.path.abspath(file)
    try:
        return Path(os.path.relpath(target, os.path.abspath(out_dir))).as_posix()
    except ValueError:  # different drives on Windows: no relative path exists
        return Path(target).as_posix()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return str(int(value)) if value.is_integer() else repr(value)
    text = str(value)
    if "\t" in text or "\n" in text or "\r" in text:
        raise DatasetError(f"value {text!r} contains a tab or newline and cannot go into a TSV sheet")
    return text


def write_tsv(path: Path, rows: Iterable[Mapping[str, Any]], columns: Iterable[str], sort_key: str) -> Path:
    """Write rows sorted by ``sort_key`` with the schema columns first, then extra columns in first-seen order.

    Written to a temporary name and renamed, so a failed import never leaves half a sheet behind.
    """
    rows = sorted(rows, key=lambda r: r[sort_key])
    cols = list(columns)
    for row in rows:
        cols.extend(k for k in row if k not in cols)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        writer.writerow(cols)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in cols])
    os.replace(tmp, path)
    return path


def write_cohort(out_dir: str | Path, subjects: list[dict], recordings: list[dict]) -> tuple[Path, Path]:
    out = Path(out_dir)
    _check_unique(subjects, "subject_id")
    _check_unique(recordings, "recording_id")
    known = {s["subject_id"] for s in subjects}
    orphans = sorted({r["subject_id"] for r in recordings} - known)
    if orphans:  # an importer bug, not a user error; still worth a clear message
        raise DatasetError(f"recordings refer to subjects missing from the subject sheet: {', '.join(orphans)}")
    subjects_tsv = write_tsv(out / "subjects.tsv", subjects, SUBJECT_COLUMNS, "subject_id")
    recordings_tsv = write_tsv(out / "recordings.tsv", recordings, RECORDING_COLUMNS, "recording_id")
    return subjects_tsv, recordings_tsv


def _check_unique(rows: list[dict], key: str) -> None:
    seen: dict[str, int] = {}
    for row in rows:
        seen[row[key]] = seen.get(row[key], 0) + 1
    dups = sorted(k for k, n in seen.items() if n > 1)
    if dups:
        raise DatasetError(f"duplicate {key} values: {', '.join(dups[:20])}")


def merge_subject(subjects: dict[str, dict], row: dict, where: Path) -> None:
    """Add a subject row, or check that a subject seen in an earlier file has the same facts."""
    sid = row["subject_id"]
    old = subjects.get(sid)
    if old is None:
        subjects[sid] = row
        return
    for key, value in row.items():
        if old.get(key) != value:
            raise DatasetError(
                f"{where}: subject {sid} has {key}={value!r} here but {old.get(key)!r} in an earlier file"
            )
