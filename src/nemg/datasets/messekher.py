"""Messekher et al. 2023 (Mendeley 10.17632/543xpjycj9.1): needle EMG of deltoid and biceps brachii.

Layout: ``<muscle folder>/<class folder>/EMG _NNN _PP_ SM_Cls.asc`` (spaces are part of the names). The public
copy has plain ``.asc`` files; the shared copy keeps the same names with ``.asc.xz``. Both are accepted, and
when a record exists in both forms the uncompressed original is used.

Subject key: class + patient id within the class (``PP`` is only unique inside a class), e.g. ``neuropathy_07``.
The files carry no sex or age, so those cells stay empty. Values are µV at 32 768 Hz (rate from the data set's
description; the files have no header).
"""
from __future__ import annotations

import re
from pathlib import Path

from ._common import DatasetError, require_dir, sheet_path, write_cohort

NAME = "messekher2023"
SAMPLING_RATE_HZ = 32768.0
MUSCLE_FOLDERS = {"01_Deltoid": "D", "02_Biceps Brachii": "B"}
CLASS_FOLDERS = {"Healthy": "Hea", "Myopathy": "Myo", "Neuropathy": "Neu"}
_DIAGNOSIS = {"Hea": "normal", "Myo": "myopathy", "Neu": "neuropathy"}
_SUBJECT_PREFIX = {"Hea": "healthy", "Myo": "myopathy", "Neu": "neuropathy"}
_MUSCLE = {"D": "Deltoid", "B": "Biceps brachii"}
_SIDE = {"R": "right", "L": "left"}
# Tolerant of the spacing because the names were typed by hand; the fields themselves are strict.
_FILE = re.compile(
    r"^EMG\s*_(?P<num>\d{3})\s*_(?P<pp>\d{2})_\s*(?P<side>[RL])(?P<muscle>[DB])_(?P<cls>Hea|Myo|Neu)\.asc(?P<xz>\.xz)?$"
)


def parse_name(path: Path) -> re.Match:
    m = _FILE.match(path.name)
    if not m:
        raise DatasetError(f"{path}: file name does not follow 'EMG _NNN _PP_ SM_Cls.asc[.xz]'")
    return m


def recording_id(m: re.Match) -> str:
    """A space-free id (it becomes part of file names downstream); NNN is unique across the data set."""
    return f"EMG_{m['num']}_{m['pp']}_{m['side']}{m['muscle']}_{m['cls']}"


def import_messekher(source_dir: str | Path, out_dir: str | Path) -> tuple[Path, Path]:
    source = require_dir(source_dir, "Messekher 2023")
    present = [f for f in MUSCLE_FOLDERS if (source / f).is_dir()]
    if not present:
        raise DatasetError(
            f"{source}: no Messekher 2023 muscle folders; expected {' and '.join(repr(f) for f in MUSCLE_FOLDERS)}"
            " each with Healthy/, Myopathy/ and Neuropathy/ holding 'EMG _NNN _PP_ SM_Cls.asc' (or .asc.xz) files"
        )
    chosen: dict[str, tuple[Path, re.Match]] = {}
    for muscle_folder in present:
        for class_folder, cls in CLASS_FOLDERS.items():
            folder = source / muscle_folder / class_folder
            if not folder.is_dir():
                continue
            for f in sorted(folder.iterdir()):
                if not (f.name.endswith(".asc") or f.name.endswith(".asc.xz")):
                    continue
                m = parse_name(f)
                if m["cls"] != cls:
                    raise DatasetError(f"{f}: class {m['cls']!r} in the name but the file is in {class_folder}/")
                if m["muscle"] != MUSCLE_FOLDERS[muscle_folder]:
                    raise DatasetError(f"{f}: muscle code {m['side']}{m['muscle']} does not match {muscle_folder}/")
                rid = recording_id(m)
                if rid in chosen:
                    prev = chosen[rid][0]
                    if prev.parent != f.parent:
                        raise DatasetError(f"{f}: record {m['num']} also appears as {prev}")
                    if m["xz"]:  # the original, uncompressed .asc wins over its .xz copy
                        continue
                chosen[rid] = (f, m)
    if not chosen:
        raise DatasetError(
            f"{source}: no 'EMG _NNN _PP_ SM_Cls.asc' or '.asc.xz' files under "
            + ", ".join(f"{mf}/<Healthy|Myopathy|Neuropathy>/" for mf in present)
        )
    subjects: dict[str, dict] = {}
    recordings = []
    for rid, (f, m) in chosen.items():
        subject_id = f"{_SUBJECT_PREFIX[m['cls']]}_{m['pp']}"
        subjects[subject_id] = {
            "subject_id": subject_id,
            "diagnosis": _DIAGNOSIS[m["cls"]],
            "sex": None,
            "age": None,
            "patient_id_in_class": m["pp"],
            "dataset": NAME,
        }
        recordings.append({
            "recording_id": rid,
            "subject_id": subject_id,
            "muscle": _MUSCLE[m["muscle"]],
            "side": _SIDE[m["side"]],
            "location": "proximal",  # deltoid and biceps brachii are both above the elbow
            "path": sheet_path(f, Path(out_dir)),
            "format": "asc",
            "sampling_rate_hz": SAMPLING_RATE_HZ,
            "units": "uV",
            "patient_id_in_class": m["pp"],
            "record_number": m["num"],
            "source_record": f.name[:-3] if m["xz"] else f.name,
        })
    return write_cohort(out_dir, list(subjects.values()), recordings)
