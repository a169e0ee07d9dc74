"""PhysioNet "Examples of Electromyograms" (emgdb 1.0.0): one tibialis anterior recording per class.

Three WFDB records, ``emg_healthy``, ``emg_myopathy`` and ``emg_neuropathy`` (format 16, 4 kHz). Units are those
of the header (``mV``; ``emg_myopathy.hea`` writes ``mv``). Age and sex come from the comment
``<age>: 44 <sex>: M``; the free-text diagnosis is kept as ``diagnosis_detail``. The side is not stated.

With one subject per class this set can smoke-test loading and inference, not a patient-level split.
"""
from __future__ import annotations

import re
from pathlib import Path

from ._common import DatasetError, read_wfdb_header_text, require_dir, sheet_path, write_cohort

NAME = "emgdb"
RECORDS = {"emg_healthy": "normal", "emg_myopathy": "myopathy", "emg_neuropathy": "neuropathy"}
_FIELD = re.compile(r"<(?P<key>[a-z]+)>\s*:?\s*(?P<value>.*?)(?=\s*<[a-z]+>|$)", re.IGNORECASE)
_UNITS = {"uv": "uV", "mv": "mV", "v": "V"}


def parse_header(hea: Path) -> dict:
    """Rate, length, units and the ``<key>: value`` comment fields of one emgdb header."""
    rec, sig, lines = read_wfdb_header_text(hea, 3, "not a single-signal WFDB header")
    try:
        fs = float(rec[2].split("/")[0])
    except ValueError as exc:
        raise DatasetError(f"{hea}: malformed record line {' '.join(rec)!r}") from exc
    gain = sig[2] if len(sig) > 2 else ""
    raw_units = gain.split("/", 1)[1] if "/" in gain else None
    fields: dict[str, str] = {}
    last = None
    for ln in lines:
        if not ln.lstrip().startswith("#"):
            continue
        body = ln.lstrip()[1:]
        found = list(_FIELD.finditer(body.strip()))
        if found:
            for f in found:
                last = f["key"].lower()
                fields[last] = f["value"].strip()
        elif last == "diagnoses" and body.startswith("  "):
            # emg_neuropathy.hea wraps its diagnosis onto an indented second comment line
            fields[last] = f"{fields[last]} {body.strip()}".strip()
        else:
            last = None
            fields.setdefault("notes", "")
            fields["notes"] = f"{fields['notes']} {body.strip()}".strip()
    return {"record": rec[0], "fs": fs, "raw_units": raw_units, "fields": fields}


def import_emgdb(source_dir: str | Path, out_dir: str | Path) -> tuple[Path, Path]:
    source = require_dir(source_dir, "PhysioNet emgdb")
    missing = [f"{r}{ext}" for r in RECORDS for ext in (".hea", ".dat") if not (source / f"{r}{ext}").is_file()]
    if len(missing) == 2 * len(RECORDS):
        raise DatasetError(f"{source}: no emgdb records; expected {', '.join(f'{r}.hea + .dat' for r in RECORDS)}")
    if missing:
        raise DatasetError(f"{source}: emgdb files missing: {', '.join(missing)}")
    subjects, recordings = [], []
    for record, diagnosis in RECORDS.items():
        hea = source / f"{record}.hea"
        h = parse_header(hea)
        f = h["fields"]
        if h["raw_units"] is None or h["raw_units"].strip().lower() not in _UNITS:
            raise DatasetError(f"{hea}: cannot tell the signal units from {h['raw_units']!r}")
        sex = (f.get("sex") or "").strip().upper()[:1] or None
        if sex not in (None, "M", "F"):
            raise DatasetError(f"{hea}: <sex> {f.get('sex')!r} is neither M nor F")
        try:
            age = float(f["age"]) if f.get("age") else None
        except ValueError as exc:
            raise DatasetError(f"{hea}: <age> {f['age']!r} is not a number") from exc
        subject_id = f"emgdb_{record.removeprefix('emg_')}"
        subjects.append({
            "subject_id": subject_id,
            "diagnosis": diagnosis,
            "sex": sex,
            "age": age,
            "diagnosis_detail": f.get("diagnoses", ""),
            "dataset": NAME,
        })
        recordings.append({
            "recording_id": record,
            "subject_id": subject_id,
            "muscle": "Tibialis anterior",
            "side": None,  # the headers do not say which leg
            "location": "distal",  # tibialis anterior: below the knee
            "path": sheet_path(hea, Path(out_dir)),
            "format": "wfdb",
            "sampling_rate_hz": h["fs"],
            "units": _UNITS[h["raw_units"].strip().lower()],
            "source_record": record,
        })
    return write_cohort(out_dir, subjects, recordings)
