"""Downloader: manifests, SHA-256 verification, atomic writes, resumption, and clear errors.

There is no internet here, so downloads go to ``file://`` mirrors built in tmp_path: synthetic ones everywhere,
and copies of ../shared/data (the layout of the public homes) when that folder is available.
"""
from __future__ import annotations

import csv
import functools
import hashlib
import http.server
import importlib
import io
import logging
import lzma
import os
import re
import shutil
import threading
import urllib.request
from pathlib import Path

import pytest

from nemg.cli import main
from nemg.cohort import read_cohort
from nemg.datasets import DATASETS, ChecksumError, DatasetError, FetchError, fetch, import_dataset, manifest
from nemg.datasets.fetch import ManifestEntry, fetch_entries, file_url, select

# the package attribute `fetch` is the function, which hides the submodule of the same name
fetch_module = importlib.import_module("nemg.datasets.fetch")

REPO = Path(__file__).resolve().parents[1]


def shared_data() -> Path:
    root = Path(os.environ.get("NEMG_SHARED_DATA") or REPO.parent / "shared" / "data")
    if not root.is_dir():
        pytest.skip(f"public data not found at {root} (set NEMG_SHARED_DATA to the shared data folder)")
    return root


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def mirror(tmp_path):
    """A two-file mirror with a space in a folder and a file name, like Messekher's."""
    root = tmp_path / "mirror"
    files = {"a.hea": b"header\n", "02_Biceps Brachii/Healthy/EMG _001 _01_ RB_Hea.asc": b"1.0 -2.5 3.1\n"}
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    entries = [ManifestEntry(rel.rsplit("/", 1)[-1], rel, sha(data), True) for rel, data in files.items()]
    return root, entries


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".part")]


# ---------------------------------------------------------------------------------------------------------------
# mechanics on a synthetic mirror


def test_fetch_downloads_and_verifies(mirror, tmp_path):
    root, entries = mirror
    dest = tmp_path / "new" / "dest"  # created on demand
    assert fetch_entries(entries, dest, root.as_uri()) == dest
    for e in entries:
        assert sha((dest / e.file).read_bytes()) == e.sha256
    assert not leftovers(dest)


def test_fetch_skips_verified_files_and_repairs_bad_ones(mirror, tmp_path, monkeypatch):
    root, entries = mirror
    dest = tmp_path / "dest"
    fetch_entries(entries, dest, root.as_uri())
    calls = []
    real_urlopen = urllib.request.urlopen

    def counting_urlopen(request, *a, **kw):
        calls.append(request.full_url)
        return real_urlopen(request, *a, **kw)

    monkeypatch.setattr(urllib.request, "urlopen", counting_urlopen)
    fetch_entries(entries, dest, root.as_uri())
    assert calls == []  # everything present with the right hash
    (dest / "a.hea").write_bytes(b"truncated")
    fetch_entries(entries, dest, str(root))  # a bare folder works as a base URL too
    assert calls == [root.as_uri() + "/a.hea"] and (dest / "a.hea").read_bytes() == b"header\n"


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def many_files(tmp_path):
    root = tmp_path / "mirror_many"
    root.mkdir()
    entries = []
    for i in range(12):
        data = f"record {i}\n".encode() * (i + 1)
        (root / f"r{i:02d}.dat").write_bytes(data)
        entries.append(ManifestEntry(f"r{i:02d}", f"r{i:02d}.dat", sha(data), True))
    return root, entries


def test_progress_is_one_line_rewritten_in_place_on_a_terminal(many_files, tmp_path, caplog):
    root, entries = many_files
    term = FakeTerminal()
    with caplog.at_level(logging.DEBUG, logger="nemg.datasets.fetch"):
        fetch_entries(entries, tmp_path / "dest", root.as_uri(), label="demo_set", stream=term)
    text = term.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")  # one line for the data set, not one per file
    last = text.rstrip("\n").split("\r")[-1]
    assert last.startswith("demo_set") and "12/12" in last and "already present" in last
    # the per-file URLs are debug detail now; the summary is the one INFO line
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO] == [
        f"{tmp_path / 'dest'}: 12 file(s) downloaded (0.0 MB), 0 already present and verified"]
    term = FakeTerminal()
    fetch_entries(entries, tmp_path / "dest", root.as_uri(), label="demo_set", stream=term)  # all present
    assert "12 already present" in term.getvalue().split("\r")[-1]


def test_progress_is_quiet_when_not_a_terminal(many_files, tmp_path, caplog):
    root, entries = many_files
    log_file = io.StringIO()  # e.g. stderr redirected to a file: only the summary
    with caplog.at_level(logging.INFO, logger="nemg.datasets.fetch"):
        fetch_entries(entries, tmp_path / "dest", root.as_uri(), label="demo_set", stream=log_file)
    assert log_file.getvalue() == ""
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and "12 file(s) downloaded" in messages[0]


def test_spaces_are_url_encoded():
    url = file_url("https://example.org/Dataset/EMG%20Dataset%20Repository", "02_Biceps Brachii/Healthy/EMG _001.asc")
    assert url == "https://example.org/Dataset/EMG%20Dataset%20Repository/02_Biceps%20Brachii/Healthy/EMG%20_001.asc"


def test_checksum_mismatch_deletes_and_names_everything(mirror, tmp_path):
    root, entries = mirror
    (root / "a.hea").write_bytes(b"tampered\n")
    dest = tmp_path / "dest"
    with pytest.raises(ChecksumError) as info:
        fetch_entries(entries, dest, root.as_uri())
    msg = str(info.value)
    assert str(dest / "a.hea") in msg and root.as_uri() + "/a.hea" in msg
    assert f"expected {entries[0].sha256}, got {sha(b'tampered' + bytes([10]))}" in msg
    assert not (dest / "a.hea").exists() and not leftovers(dest)
    assert isinstance(info.value, ValueError)  # the CLI reports ValueErrors as user-facing failures


def test_missing_remote_file_names_the_url(mirror, tmp_path):
    root, entries = mirror
    (root / entries[1].file).unlink()
    with pytest.raises(FetchError, match=re.escape(file_url(root.as_uri(), entries[1].file)) + ": not found"):
        fetch_entries(entries, tmp_path / "dest", root.as_uri())
    assert not leftovers(tmp_path / "dest")


@pytest.fixture
def http_mirror(mirror):
    """The synthetic mirror served over real HTTP on a free local port."""
    root, entries = mirror
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **kw: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", root, entries
    finally:
        server.shutdown()
        server.server_close()


def test_fetch_over_http_and_404(http_mirror, tmp_path):
    base, root, entries = http_mirror
    fetch_entries(entries, tmp_path / "dest", base)  # the space-containing path is URL-encoded
    assert sha((tmp_path / "dest" / entries[1].file).read_bytes()) == entries[1].sha256
    (root / "a.hea").unlink()
    with pytest.raises(FetchError, match=re.escape(base + "a.hea") + r": not found \(HTTP 404\)"):
        fetch_entries(entries, tmp_path / "dest2", base)
    assert not leftovers(tmp_path / "dest2")


def test_unreachable_host_names_the_url(mirror, tmp_path, monkeypatch):
    _, entries = mirror
    monkeypatch.setattr(fetch_module, "RETRY_DELAY_S", 0.0)
    attempts = []
    real_urlopen = urllib.request.urlopen
    monkeypatch.setattr(urllib.request, "urlopen", lambda req, **kw: attempts.append(1) or real_urlopen(req, **kw))
    with pytest.raises(FetchError, match=r"http://127\.0\.0\.1:9/a\.hea: cannot be reached"):
        fetch_entries(entries[:1], tmp_path / "dest", "http://127.0.0.1:9/")
    assert len(attempts) == 1 + fetch_module.RETRIES  # connection refused counts as transient


def test_transient_failure_is_retried(mirror, tmp_path, monkeypatch):
    root, entries = mirror
    monkeypatch.setattr(fetch_module, "RETRY_DELAY_S", 0.0)
    real_urlopen = urllib.request.urlopen
    failures = [ConnectionResetError("connection reset by peer")]

    def flaky(request, **kw):
        if failures:
            raise failures.pop()
        return real_urlopen(request, **kw)

    monkeypatch.setattr(urllib.request, "urlopen", flaky)
    fetch_entries(entries[:1], tmp_path / "dest", root.as_uri())
    assert (tmp_path / "dest" / "a.hea").read_bytes() == b"header\n" and not failures


# ---------------------------------------------------------------------------------------------------------------
# the manifests shipped in the package


@pytest.mark.parametrize("name, n_all, n_default", [
    ("n2001", 950, 342), ("messekher2023", 397, 198), ("emgdb", 6, 6),
])
def test_manifest_sizes(name, n_all, n_default):
    entries = manifest(name)
    assert len(entries) == n_all and sum(e.default for e in entries) == n_default
    assert len({e.file for e in entries}) == n_all
    assert all(re.fullmatch(r"[0-9a-f]{64}", e.sha256) for e in entries)
    assert len(select(entries)) == n_default and len(select(entries, all_files=True)) == n_all


def test_manifest_layouts():
    n2001 = manifest("n2001")
    records = {e.record for e in n2001}
    assert len(records) == 475
    assert {e.file for e in n2001} == {f"{r}{ext}" for r in records for ext in (".hea", ".bin")}
    msk = manifest("messekher2023")
    assert all(re.fullmatch(r"0[12]_(Deltoid|Biceps Brachii)/(Healthy|Myopathy|Neuropathy)/EMG _\d{3} _\d{2}_ "
                            r"[RL][DB]_(Hea|Myo|Neu)\.asc", e.file) for e in msk)


def test_select_records():
    entries = manifest("messekher2023")
    # the sheet's space-free recording id and the original record name pick the same file
    a = select(entries, records=["EMG_356_53_LB_Neu"])
    b = select(entries, records=["EMG _356 _53_ LB_Neu"])
    assert a == b and [e.file for e in a] == ["02_Biceps Brachii/Neuropathy/EMG _356 _53_ LB_Neu.asc"]
    assert len(select(manifest("n2001"), records=["N2001A01BB09"])) == 2  # header and signal
    with pytest.raises(DatasetError, match=r"unknown record\(s\) for this data set: nope"):
        select(entries, records=["EMG_356_53_LB_Neu", "nope"])


@pytest.mark.shared_data
def test_manifests_agree_with_the_shared_checksums():
    root = shared_data()

    def sums(folder):
        return {ln.split(None, 1)[1]: ln.split()[0] for ln in (root / folder / "SHA256SUMS").read_text().splitlines()}

    n2001 = {e.file: e.sha256 for e in manifest("n2001")}
    for rel, digest in sums("emglab_n2001").items():
        if rel.endswith((".hea", ".bin")):
            assert n2001[rel.removeprefix("headers_without_signal/")] == digest, rel
    with open(root / "emglab_n2001" / "RECORDS.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            assert n2001[f"{row['record']}.bin"] == row["bin_sha256"]
    msk = {e.file: e for e in manifest("messekher2023")}
    with open(root / "messekher2023_needle_emg" / "RECORDS.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            e = msk[f"{row['muscle_folder']}/{row['class_folder']}/{row['file']}"]
            assert e.sha256 == row["original_asc_sha256"] and e.default == bool(row["included_as"])
    emgdb = {e.file: e.sha256 for e in manifest("emgdb")}
    assert emgdb == {k: v for k, v in sums("physionet_emgdb").items() if k != "PROVENANCE.md"}


# ---------------------------------------------------------------------------------------------------------------
# real files from a file:// mirror of ../shared/data, then imported


@pytest.mark.shared_data
def test_fetch_emgdb_from_mirror_via_cli(tmp_path, capsys):
    mirror = shared_data() / DATASETS["emgdb"].folder  # already laid out like physionet.org/files/emgdb/1.0.0/
    dest = tmp_path / "emgdb"
    assert main(["data", "fetch", "emgdb", "--dest", str(dest), "--base-url", mirror.as_uri()]) == 0
    assert sorted(p.name for p in dest.iterdir()) == sorted(e.file for e in manifest("emgdb"))
    assert main(["data", "import", "emgdb", "--source", str(dest), "--out", str(tmp_path / "cohort")]) == 0
    cohort = read_cohort(tmp_path / "cohort" / "subjects.tsv", tmp_path / "cohort" / "recordings.tsv")
    assert cohort.load("emg_healthy").n_samples == 50_860


@pytest.mark.shared_data
def test_fetch_n2001_records_from_mirror(tmp_path):
    mirror = shared_data() / DATASETS["n2001"].folder
    picked = ["N2001A01BB01", "N2001C01BB51", "N2001C01BB52", "N2001M02BB03"]
    dest = fetch("n2001", tmp_path / "n2001", base_url=mirror.as_uri(), records=picked)
    assert sorted(p.name for p in dest.iterdir()) == sorted(f"{r}{x}" for r in picked for x in (".bin", ".hea"))
    s_tsv, r_tsv = import_dataset("n2001", dest, tmp_path / "cohort")
    cohort = read_cohort(s_tsv, r_tsv)
    assert sorted(cohort.recordings["recording_id"]) == picked
    assert dict(cohort.subjects.groupby("diagnosis").size()) == {"myopathy": 1, "neuropathy": 1, "normal": 1}


@pytest.mark.shared_data
def test_fetch_n2001_all_stops_at_a_record_missing_from_the_mirror(tmp_path):
    # the shared copy lacks the .bin of N2001A01BB09 (it is in headers_without_signal/), as a broken mirror would
    mirror = shared_data() / DATASETS["n2001"].folder
    dest = tmp_path / "n2001"
    with pytest.raises(FetchError, match=re.escape(mirror.as_uri() + "/N2001A01BB09.bin") + ": not found"):
        fetch("n2001", dest, base_url=mirror.as_uri(), all_files=True)
    assert not (dest / "N2001A01BB09.bin").exists() and not leftovers(dest)


@pytest.mark.shared_data
def test_fetch_messekher_original_asc_from_mirror(tmp_path):
    shared = shared_data() / DATASETS["messekher2023"].folder
    rels = [  # the public home has the uncompressed .asc; rebuild a few of them from the .xz copies
        "01_Deltoid/Healthy/EMG _001 _01_ RD_Hea.asc",
        "02_Biceps Brachii/Myopathy/EMG _301 _50_ RB_Myo.asc",
        "02_Biceps Brachii/Neuropathy/EMG _356 _53_ LB_Neu.asc",
    ]
    mirror = tmp_path / "mirror"
    for rel in rels:
        src = shared / (rel + ".xz")
        if not src.is_file():
            pytest.skip(f"{src} not in the shared copy")
        (mirror / rel).parent.mkdir(parents=True, exist_ok=True)
        with lzma.open(src) as fin, open(mirror / rel, "wb") as fout:
            shutil.copyfileobj(fin, fout)
    records = [Path(r).name.removesuffix(".asc") for r in rels]
    dest = fetch("messekher2023", tmp_path / "msk", base_url=mirror.as_uri(), records=records)
    by_file = {e.file: e.sha256 for e in manifest("messekher2023")}
    for rel in rels:
        assert sha((dest / rel).read_bytes()) == by_file[rel]
    s_tsv, r_tsv = import_dataset("messekher2023", dest, tmp_path / "cohort")
    cohort = read_cohort(s_tsv, r_tsv)
    assert sorted(cohort.recordings["path_in_sheet"].str.rsplit("/", n=1).str[-1]) == sorted(
        Path(r).name for r in rels)
    assert cohort.load("EMG_356_53_LB_Neu").n_samples in (163_840, 163_841)
