#!/usr/bin/env python
"""Regenerate src/nemg/datasets/manifests/*.tsv from a copy of ../shared/data (maintainers only).

The manifests list every file of each public data set as it lies at its public home, with its SHA-256, so that
`nemg data fetch` can download and verify without the shared folder. Columns: ``record`` (record name),
``file`` (path under the data set's base URL and under the fetch destination), ``sha256``, ``default``
(1 = part of the subset in ../shared that the project's configs use; 0 = only fetched with ``--all``).

Sources of the checksums:
- n2001: SHA256SUMS (every .hea, and the .bin files present) and RECORDS.csv ``bin_sha256`` (all 475 .bin);
  the two are cross-checked where both exist. ``headers_without_signal/X.hea`` is ``X.hea`` upstream.
- messekher2023: RECORDS.csv ``original_asc_sha256`` (the uncompressed originals, all 397); SHA256SUMS only
  covers the .xz copies. ``--verify-xz`` decompresses the shared copies and checks them against RECORDS.csv.
- emgdb: SHA256SUMS.

Usage: python scripts/make_manifests.py [--shared ../shared/data] [--out src/nemg/datasets/manifests] [--verify-xz]
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import lzma
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def read_sums(path: Path) -> dict[str, str]:
    sums = {}
    for line in path.read_text().splitlines():
        if line.strip():
            digest, name = line.split(None, 1)
            sums[name.lstrip("*")] = digest.lower()
    return sums


def n2001(folder: Path) -> list[dict]:
    sums = read_sums(folder / "SHA256SUMS")
    rows = []
    for rec in csv.DictReader(open(folder / "RECORDS.csv", newline="")):
        name = rec["record"]
        included = rec["signal_included"] == "1"
        hea_key = f"{name}.hea" if included else f"headers_without_signal/{name}.hea"
        if rec["header_path"] != hea_key:
            sys.exit(f"n2001: {name}: RECORDS.csv header_path {rec['header_path']!r}, expected {hea_key!r}")
        bin_sha = rec["bin_sha256"].lower()
        if included and sums.get(f"{name}.bin") != bin_sha:
            sys.exit(f"n2001: {name}.bin: SHA256SUMS and RECORDS.csv disagree")
        if hea_key not in sums:
            sys.exit(f"n2001: {hea_key} missing from SHA256SUMS")
        rows.append(dict(record=name, file=f"{name}.hea", sha256=sums[hea_key], default=int(included)))
        rows.append(dict(record=name, file=f"{name}.bin", sha256=bin_sha, default=int(included)))
    return rows


def messekher(folder: Path, verify_xz: bool) -> list[dict]:
    sums = read_sums(folder / "SHA256SUMS")
    rows = []
    for rec in csv.DictReader(open(folder / "RECORDS.csv", newline="")):
        file = f"{rec['muscle_folder']}/{rec['class_folder']}/{rec['file']}"
        included = bool(rec["included_as"])
        if included:
            if rec["included_as"] != file + ".xz" or rec["included_as"] not in sums:
                sys.exit(f"messekher: {file}: included_as {rec['included_as']!r} not in SHA256SUMS")
            if verify_xz:
                digest = hashlib.sha256(lzma.open(folder / rec["included_as"]).read()).hexdigest()
                if digest != rec["original_asc_sha256"].lower():
                    sys.exit(f"messekher: {rec['included_as']} does not decompress to the original .asc")
        rows.append(dict(record=rec["file"].removesuffix(".asc"), file=file,
                         sha256=rec["original_asc_sha256"].lower(), default=int(included)))
    return rows


def emgdb(folder: Path) -> list[dict]:
    sums = read_sums(folder / "SHA256SUMS")
    return [dict(record=name.rsplit(".", 1)[0], file=name, sha256=digest, default=1)
            for name, digest in sums.items() if name.endswith((".hea", ".dat"))]


def write(rows: list[dict], path: Path) -> None:
    rows = sorted(rows, key=lambda r: r["file"])
    files = [r["file"] for r in rows]
    if len(set(files)) != len(files):
        sys.exit(f"{path.name}: duplicate file entries")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, ["record", "file", "sha256", "default"], delimiter="\t", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    n_default = sum(r["default"] for r in rows)
    print(f"{path}: {len(rows)} files ({n_default} in the default subset)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=REPO / "src" / "nemg" / "datasets" / "manifests")
    ap.add_argument("--verify-xz", action="store_true", help="decompress Messekher .xz copies and check them")
    a = ap.parse_args()
    write(n2001(a.shared / "emglab_n2001"), a.out / "n2001.tsv")
    write(messekher(a.shared / "messekher2023_needle_emg", a.verify_xz), a.out / "messekher2023.tsv")
    write(emgdb(a.shared / "physionet_emgdb"), a.out / "emgdb.tsv")


if __name__ == "__main__":
    main()
