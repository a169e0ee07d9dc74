"""SHA-256 of a file, the one checksum nemg writes and checks (stores, manifests, bundles, downloads).

SHA-256 rather than a cheaper CRC: ~1.1 s/GB on the development machine against 0.45 s/GB for zlib.crc32, small
next to a training run that reads a store every epoch, and anyone can check it by hand with ``sha256sum``.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

_CHUNK = 1 << 22


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            h.update(block)
    return h.hexdigest()
