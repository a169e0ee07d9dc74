"""EMGLAB N2001 (Nikolic 2001): biceps brachii needle EMG of controls, myopathy and ALS patients.

One WFDB record per signal: ``N2001<class><subject>BB<nn>.hea`` + ``.bin`` (format ``16+20``: int16 after a
20-byte offset, in uV). Class, subject and record come from the file name; sex, age, side, muscle and contraction
level from the header's ``#key: value`` comments. Only records whose ``.bin`` is present are imported; the
``headers_without_signal/`` folder of the shared copy is ignored because those records have no signal.

``contraction_level`` is kept as an extra column: every patient record is ``low`` while control records alternate
``low``/``moderate``, so a model can learn the contraction level instead of the disease.
"""
from __future__ import annotations

import re
from pathlib import Path

from ._common import DatasetError, merge_subject, read_wfdb_header_text, require_dir, sheet_path, write_cohort

NAME = "n2001"
_RECORD = re.compile(r"^N2001(?P<cls>[ACM])(?P<subj>\d{2})(?P<muscle>[A-Z]{2})(?P<num>\d{2})$")
_DIAGNOSIS = {"A": "neuropathy", "C": "normal", "M": "myopathy"}
# The header's free-text diagnosis must agree with the class letter of the file name.
_DIAGNOSIS_TEXT = {"A": "als", "C": "control", "M": ("myopathy", "dystrophy", "myositis")}
_SIDES = {"left": "left", "right": "right"}
_SEX = {"m": "M", "male": "M", "f": "F", "female": "F"}


def parse_header(hea: Path) -> dict:
    """Record line, signal line and ``#key: value`` comments of one N2001 header."""
    rec, sig, lines = read_wfdb_header_text(
        hea, 4, "not a single-signal WFDB header (expected a record line and a signal line)")
    try:
        n_sig, fs, n_samples = int(rec[1]), float(rec[2]), int(rec[3])
    except ValueError as exc:
        raise DatasetError(f"{hea}: malformed record line {' '.join(rec)!r}") from exc
    if n_sig != 1:
        raise DatasetError(f"{hea}: expected 1 signal, header declares {n_sig}")
    comments = {}
    for ln in lines:
        s = ln.strip()
        if s.startswith("#") and ":" in s:
            key, _, value = s[1:].partition(":")
            comments[key.strip().lower()] = value.strip()
    units = sig[2].split("/", 1)[1] if "/" in sig[2] else None
    return {"record": rec[0], "fs": fs, "n_samples": n_samples, "data_file": sig[0], "units": units,
            "comments": comments}


def _units(raw: str | None) -> str | None:
    if raw is None:
        return None
    key = raw.strip().lower().replace("µ", "u").replace("μ", "u")
    return {"uv": "uV", "mv": "mV", "v": "V"}.get(key)


def import_n2001(source_dir: str | Path, out_dir: str | Path) -> tuple[Path, Path]:
    source = require_dir(source_dir, "N2001")
    headers = sorted(source.glob("N2001*.hea"))
    if not headers:
        extra = (" (only headers_without_signal/ is there: those records have no .bin)"
                 if (source / "headers_without_signal").is_dir() else "")
        raise DatasetError(f"{source}: no N2001 records (N2001*.hea + .bin) found{extra}")
    subjects: dict[str, dict] = {}
    recordings: list[dict] = []
    missing: list[str] = []
    for hea in headers:
        record = hea.stem
        m = _RECORD.match(record)
        if not m:
            raise DatasetError(f"{hea}: file name does not follow N2001<A|C|M><subject><muscle><nn>.hea")
        h = parse_header(hea)
        if h["record"] != record:
            raise DatasetError(f"{hea}: header names record {h['record']!r}, file name says {record!r}")
        data = source / h["data_file"]
        if not data.is_file():
            missing.append(h["data_file"])
            continue
        c = h["comments"]
        cls = m["cls"]
        detail = c.get("diagnosis", "")
        expected = _DIAGNOSIS_TEXT[cls]
        if detail and not any(e in detail.lower() for e in ((expected,) if isinstance(expected, str) else expected)):
            raise DatasetError(
                f"{hea}: header diagnosis {detail!r} contradicts class letter {cls!r} of the file name"
            )
        sex = _SEX.get(c.get("gender", "").strip().lower())
        age_text = c.get("age", "").strip()
        try:
            age = float(age_text) if age_text else None
        except ValueError as exc:
            raise DatasetError(f"{hea}: #age {age_text!r} is not a number") from exc
        subject_id = f"N2001{cls}{m['subj']}"
        merge_subject(subjects, {
            "subject_id": subject_id,
            "diagnosis": _DIAGNOSIS[cls],
            "sex": sex,
            "age": age,
            "diagnosis_detail": detail,
            "disease_duration": c.get("duration", ""),
            "dataset": NAME,
        }, hea)
        side_text = c.get("side", "").strip().lower()
        units = _units(h["units"])
        if h["units"] is not None and units is None:
            raise DatasetError(f"{hea}: unknown units {h['units']!r} in the signal line")
        recordings.append({
            "recording_id": record,
            "subject_id": subject_id,
            "muscle": c.get("muscle") or "Biceps brachii",
            "side": _SIDES.get(side_text),
            "location": "proximal",  # biceps brachii: above the elbow
            "path": sheet_path(hea, Path(out_dir)),
            "format": "wfdb",
            "sampling_rate_hz": h["fs"],
            "units": units,
            "contraction_level": c.get("level", ""),
            "source_record": record,
        })
    if missing:
        raise DatasetError(
            f"{source}: {len(missing)} header(s) without their signal file: {', '.join(missing[:10])}"
            + (" ..." if len(missing) > 10 else "")
            + " (fetch them with `nemg data fetch n2001`, or remove the headers)"
        )
    return write_cohort(out_dir, list(subjects.values()), recordings)
