"""The three public needle-EMG data sets: registry, importers (folder -> cohort sheets) and downloader.

``import_dataset(name, source_dir, out_dir)`` writes ``subjects.tsv`` and ``recordings.tsv`` whose paths point
at the files in ``source_dir`` (relative to ``out_dir`` when possible); nothing is copied.
``fetch(name, dest)`` downloads a data set from its public home and checks every file's SHA-256 against the
manifest shipped in this package, so users without the shared data folder get byte-identical files.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from ._common import RECORDING_COLUMNS, SUBJECT_COLUMNS, DatasetError
from .emgdb import import_emgdb
from .fetch import ChecksumError, FetchError, fetch_entries, read_manifest, select
from .messekher import import_messekher
from .n2001 import import_n2001

__all__ = [
    "DATASETS", "Dataset", "DatasetError", "FetchError", "ChecksumError",
    "import_dataset", "fetch", "manifest", "SUBJECT_COLUMNS", "RECORDING_COLUMNS",
]


@dataclass(frozen=True)
class Dataset:
    name: str
    description: str
    folder: str  #: folder name under ../shared/data
    home: str  #: public page of the copy that ``fetch`` downloads from
    citation: str
    license_note: str
    base_url: str  #: raw-file URL prefix; ``<base_url><file>`` is one file of the manifest
    origin: str  #: the original distributor, when different from ``home``
    importer: Callable[[str | Path, str | Path], tuple[Path, Path]]


_N2001_COMMIT = "0dc637737e27133244daefabc50f8e159ff6404f"
_MESSEKHER_COMMIT = "88b3eec4b46a58bee28ebd144309abed065126ec"

DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            name="n2001",
            description=(
                "EMGLAB N2001 (Nikolic 2001): concentric-needle EMG of biceps brachii, 23 437.5 Hz WFDB; "
                "controls (normal), myopathy and ALS (neuropathy). 22 subjects / 171 records in the default "
                "subset, 475 records with --all. Patients are all at low contraction, controls alternate "
                "low/moderate (column contraction_level)."
            ),
            folder="emglab_n2001",
            home=f"https://github.com/ChatMED/ALS-EMG/tree/{_N2001_COMMIT}/als_datasets/emglab_dataset_bb",
            base_url=(
                f"https://raw.githubusercontent.com/ChatMED/ALS-EMG/{_N2001_COMMIT}/als_datasets/emglab_dataset_bb/"
            ),
            origin="EMGLAB (emglab.net), Signals / Databases / N2001",
            citation=(
                "M. Nikolic, Detailed Analysis of Clinical Electromyography Signals: EMG Decomposition, Findings "
                "and Firing Pattern Analysis in Controls and Patients with Myopathy and Amyotrophic Lateral "
                "Sclerosis, PhD dissertation, University of Copenhagen, 2001. K. C. McGill, Z. C. Lateva, "
                "H. R. Marateb, EMGLAB: an interactive EMG decomposition program, J. Neurosci. Methods 149 "
                "(2005) 121-133."
            ),
            license_note=(
                "No data licence found in any copy; EMGLAB published the signals for research and asks users to "
                "cite the sources. Treat as research use with attribution; redistribution terms unconfirmed. "
                "(The ChatMED repository's MIT licence cannot relicense the third-party data.)"
            ),
            importer=import_n2001,
        ),
        Dataset(
            name="messekher2023",
            description=(
                "Messekher et al. 2023: needle EMG of deltoid and biceps brachii (both proximal), 5 s at "
                "32 768 Hz, ASCII uV. Healthy / myopathy / neuropathy; 198 recordings (17/65/59 subjects) in "
                "the default subset, 397 with --all. Healthy subjects give 4 recordings, patients ~1."
            ),
            folder="messekher2023_needle_emg",
            home=(
                "https://github.com/massimocoppotelli/EMG-Based_Neuropathy_Diagnosis/tree/"
                f"{_MESSEKHER_COMMIT}/Dataset/EMG%20Dataset%20Repository"
            ),
            base_url=(
                "https://raw.githubusercontent.com/massimocoppotelli/EMG-Based_Neuropathy_Diagnosis/"
                f"{_MESSEKHER_COMMIT}/Dataset/EMG%20Dataset%20Repository/"
            ),
            origin="https://doi.org/10.17632/543xpjycj9.1",
            citation=(
                "A. Messekher, S. Mekaoui, M. Kedir-Talha, M. I. Kediha, F. Mostefaoui, Electromyographic data "
                "recordings during isometric contractions of the biceps brachii and deltoid collected from "
                "patients and healthy subjects, Mendeley Data, V1, 2023, doi:10.17632/543xpjycj9.1."
            ),
            license_note=(
                "Mendeley Data sets are normally CC BY 4.0, but the licence field could not be checked; verify "
                "before redistributing and cite the DOI. The GitHub copy has no licence file."
            ),
            importer=import_messekher,
        ),
        Dataset(
            name="emgdb",
            description=(
                "PhysioNet Examples of Electromyograms (emgdb 1.0.0): one tibialis anterior (distal) recording "
                "per class, 4 kHz WFDB in mV. For smoke tests of loading and inference only."
            ),
            folder="physionet_emgdb",
            home="https://physionet.org/content/emgdb/1.0.0/",
            base_url="https://physionet.org/files/emgdb/1.0.0/",
            origin="https://physionet.org/content/emgdb/1.0.0/",
            citation=(
                "Goldberger AL, Amaral LAN, Glass L, Hausdorff JM, Ivanov PCh, Mark RG, Mietus JE, Moody GB, "
                "Peng C-K, Stanley HE. PhysioBank, PhysioToolkit, and PhysioNet: Components of a New Research "
                "Resource for Complex Physiologic Signals. Circulation 101(23):e215-e220 (2000)."
            ),
            license_note="Open Data Commons Attribution License v1.0 (as listed by PhysioNet; re-check the page).",
            importer=import_emgdb,
        ),
    )
}


def get(name: str) -> Dataset:
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown data set {name!r}; valid names: {', '.join(DATASETS)}") from None


def import_dataset(name: str, source_dir: str | Path, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``out_dir/subjects.tsv`` and ``out_dir/recordings.tsv`` for the data set in ``source_dir``."""
    return get(name).importer(source_dir, out_dir)


def manifest(name: str):
    """Every file of the data set at its public home: entries with ``record``, ``file``, ``sha256``, ``default``."""
    return read_manifest(get(name).name)


def fetch(name: str, dest: str | Path, *, base_url: str | None = None, all_files: bool = False,
          records: Iterable[str] | None = None) -> Path:
    """Download the data set into ``dest`` (created if needed), verifying every file's SHA-256.

    By default the subset kept in ``../shared/data`` (what the project's configs use); ``all_files=True`` for
    every file of the source; ``records`` for just the named records. ``base_url`` replaces the public home,
    e.g. with a ``file://`` mirror. Returns ``dest``, ready for :func:`import_dataset`.
    """
    ds = get(name)
    entries = select(read_manifest(ds.name), all_files=all_files, records=records)
    return fetch_entries(entries, dest, base_url or ds.base_url, label=ds.name)
