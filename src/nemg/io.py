"""Loaders for the needle-EMG file formats nemg reads, all returning :class:`nemg.recording.Recording`.

Formats: WFDB (``.hea`` + ``.dat``/``.bin``, any byte offset such as N2001's ``16+20``), Messekher-style
ASCII (``.asc`` or ``.asc.xz``: whitespace-separated µV values), EDF/BDF, WAV, NPY/NPZ and single-column CSV.

Rules shared by every format:
- values end up as float32 microvolts; units come from the file when it states them (WFDB, EDF/BDF), from the
  sample sheet otherwise (default µV);
- the sampling rate comes from the file when it has one; a rate given in the sheet must then agree with it,
  because a silently wrong rate would corrupt every later stage;
- the fraction of clipped samples is measured (ADC rails when the format states them, plus flat runs at the
  signal's extremes) and kept in ``meta["clipped_fraction"]``;
- every failure is a :class:`RecordingError` whose message starts with the file's path.
"""
from __future__ import annotations

import lzma
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .recording import DEFAULT_MIN_DURATION_S, Recording, RecordingError, make_recording

FORMATS = ("wfdb", "asc", "edf", "bdf", "wav", "npy", "npz", "csv")
#: formats whose files carry their own sampling rate
SELF_DESCRIBING_RATE = {"wfdb", "edf", "bdf", "wav"}

_RATE_RTOL = 1e-6


def guess_format(path: str | Path) -> str:
    """Format from the file name, for users who do not fill the ``format`` column."""
    name = str(path).lower()
    for suffix, fmt in ((".asc.xz", "asc"), (".asc", "asc"), (".hea", "wfdb"), (".edf", "edf"),
                        (".bdf", "bdf"), (".wav", "wav"), (".npy", "npy"), (".npz", "npz"), (".csv", "csv")):
        if name.endswith(suffix):
            return fmt
    raise RecordingError(path, f"cannot tell the format from the file name; give one of {', '.join(FORMATS)}")


def wfdb_header_path(path: str | Path) -> Path:
    """The ``.hea`` file of a WFDB record given as header path, data path or bare record name."""
    p = Path(path)
    if p.suffix == ".hea":
        return p
    if p.suffix in (".dat", ".bin"):
        return p.with_suffix(".hea")
    return p.with_name(p.name + ".hea")


def signal_file(path: str | Path, fmt: str | None) -> Path:
    """The one file that identifies a recording, absolute: a WFDB record by its header, however it is named."""
    return (wfdb_header_path(path) if fmt == "wfdb" else Path(path)).resolve()


def missing_file(path: Path) -> str:
    """Why ``path`` is not a readable file: a sheet row pointing at a folder (an empty or '.' path) is not 'not found'."""
    return "is a folder, not a signal file" if path.is_dir() else "file not found"


def load_recording(
    path: str | Path,
    fmt: str | None = None,
    *,
    sampling_rate_hz: float | None = None,
    units: str | None = None,
    channel: int | str | None = None,
    min_duration_s: float = DEFAULT_MIN_DURATION_S,
) -> Recording:
    """Read one single-channel needle-EMG recording.

    ``sampling_rate_hz`` and ``units`` are the sample sheet's values (``None`` = not given). ``channel`` picks
    one signal of a multi-channel WFDB/EDF file by index or label; a multi-channel file without it is an error,
    not a silent choice of the first channel.
    """
    fmt = (fmt or guess_format(path)).lower()
    if fmt not in FORMATS:
        raise RecordingError(path, f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    sampling_rate_hz = _none_if_nan(sampling_rate_hz)
    units = None if units is None or (isinstance(units, float) and math.isnan(units)) or units == "" else units
    check_path = wfdb_header_path(path) if fmt == "wfdb" else Path(path)
    if not check_path.is_file():
        raise RecordingError(check_path, missing_file(check_path))
    reader = _READERS[fmt]
    values, file_fs, file_units, meta, clip_limits = reader(Path(path), channel)

    fs = _resolve_rate(path, fmt, file_fs, sampling_rate_hz)
    if file_units is not None:
        if units is not None and _norm_units(units) != _norm_units(file_units):
            raise RecordingError(
                path, f"units mismatch: the sample sheet says {units!r} but the file says {file_units!r}"
            )
        units = file_units
    units = units or "uV"
    meta.update(format=fmt)
    return make_recording(
        values, fs, path, units=units, meta=meta, min_duration_s=min_duration_s, clip_limits=clip_limits
    )


def probe_duration(path: str | Path, fmt: str | None = None, sampling_rate_hz: float | None = None) -> float:
    """Duration in seconds, reading only the header where the format has one (cheap cohort summaries)."""
    fmt = (fmt or guess_format(path)).lower()
    sampling_rate_hz = _none_if_nan(sampling_rate_hz)
    if fmt == "wfdb":
        import wfdb

        hea = wfdb_header_path(path)
        try:
            h = wfdb.rdheader(str(hea.with_suffix("")))
        except Exception as exc:  # wfdb raises many types for a broken header
            raise RecordingError(hea, f"unreadable WFDB header ({exc})") from exc
        data_file = hea.parent / h.file_name[0]
        if not data_file.is_file():
            raise RecordingError(data_file, f"data file named in {hea.name} not found")
        _check_wfdb_size(hea, h, data_file)  # a stat, so the quick check still sees a truncated .dat
        return h.sig_len / _resolve_rate(hea, fmt, float(h.fs), sampling_rate_hz)
    if fmt in ("edf", "bdf"):
        hdr = _read_edf_header(Path(path), fmt == "bdf")
        return hdr["n_records"] * hdr["record_duration"]
    if fmt == "npy":
        arr = np.load(path, mmap_mode="r")
        if sampling_rate_hz is None:
            raise RecordingError(path, "sampling_rate_hz is required for npy files")
        return arr.shape[0] / sampling_rate_hz
    rec = load_recording(path, fmt, sampling_rate_hz=sampling_rate_hz, min_duration_s=0.0)
    return rec.duration_s


# --------------------------------------------------------------------------------------------------------------
# helpers


def _none_if_nan(x: Any) -> float | None:
    if x is None or x == "":
        return None
    x = float(x)
    return None if math.isnan(x) else x


def _norm_units(u: str) -> str:
    return str(u).strip().lower().replace("µ", "u").replace("μ", "u")


def _resolve_rate(path, fmt: str, file_fs: float | None, sheet_fs: float | None) -> float:
    if file_fs is not None:
        if sheet_fs is not None and abs(sheet_fs - file_fs) > _RATE_RTOL * file_fs:
            raise RecordingError(
                path,
                f"wrong sampling rate: the sample sheet says {sheet_fs:g} Hz but the file says {file_fs:g} Hz",
            )
        return float(file_fs)
    if sheet_fs is None:
        raise RecordingError(path, f"sampling_rate_hz is required for {fmt} files (the format does not store it)")
    return float(sheet_fs)


def _pick_channel(path, labels: list[str], channel: int | str | None) -> int:
    if channel is None or (isinstance(channel, float) and math.isnan(channel)) or channel == "":
        if len(labels) != 1:
            raise RecordingError(
                path, f"has {len(labels)} signals ({', '.join(labels)}); set the `channel` column to pick one"
            )
        return 0
    if isinstance(channel, str) and not channel.lstrip("-").isdigit():
        if channel not in labels:
            raise RecordingError(path, f"no signal labelled {channel!r}; signals are {', '.join(labels)}")
        return labels.index(channel)
    idx = int(channel)
    if not 0 <= idx < len(labels):
        raise RecordingError(path, f"channel {idx} out of range: the file has {len(labels)} signal(s)")
    return idx


# --------------------------------------------------------------------------------------------------------------
# readers: each returns (values, fs or None, units or None, meta, clip_limits in value units or None)


def _read_wfdb(path: Path, channel):
    import wfdb

    hea = wfdb_header_path(path)
    record_name = str(hea.with_suffix(""))
    try:
        header = wfdb.rdheader(record_name)
    except Exception as exc:
        raise RecordingError(hea, f"unreadable WFDB header ({exc})") from exc
    labels = [str(n) for n in (header.sig_name or [f"sig{i}" for i in range(header.n_sig)])]
    ch = _pick_channel(hea, labels, channel)
    data_file = hea.parent / header.file_name[ch]
    if not data_file.is_file():
        raise RecordingError(data_file, f"data file named in {hea.name} not found")
    _check_wfdb_size(hea, header, data_file)
    try:
        rec = wfdb.rdrecord(record_name, channels=[ch], physical=False)
    except Exception as exc:
        raise RecordingError(data_file, f"unreadable WFDB signal ({exc})") from exc
    digital = rec.d_signal[:, 0]
    gain = float(rec.adc_gain[0]) or 200.0  # WFDB: a gain of 0 means the default 200 adu per unit
    baseline = float(rec.baseline[0])
    values = (digital.astype(np.float64) - baseline) / gain
    res = int(rec.adc_res[0]) if rec.adc_res and rec.adc_res[0] else 0
    fmt = str(rec.fmt[0])
    bits = {"16": 16, "61": 16, "80": 8, "160": 16, "212": 12, "310": 10, "311": 10, "24": 24, "32": 32}.get(fmt, res)
    clip = None
    if bits:
        lo_d, hi_d = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        clip = ((lo_d - baseline) / gain, (hi_d - baseline) / gain)
    units = rec.units[0] if rec.units and rec.units[0] else None
    meta = {
        "record": rec.record_name,
        "wfdb_format": fmt,
        "byte_offset": (header.byte_offset or [None])[ch],
        "adc_gain": gain,
        "signal_name": labels[ch],
        "comments": list(header.comments or []),
    }
    return values, float(rec.fs), units, meta, clip


_WFDB_BYTES_PER_SAMPLE = {"16": 2, "61": 2, "80": 1, "160": 2, "24": 3, "32": 4, "212": 1.5, "310": 4 / 3, "311": 4 / 3}


def _check_wfdb_size(hea: Path, header, data_file: Path) -> None:
    """Catch truncated data files up front: wfdb would otherwise return a short or garbled signal."""
    if header.sig_len is None:
        return
    same_file = [i for i, f in enumerate(header.file_name) if f == header.file_name[0]]
    fmt = str(header.fmt[0])
    bps = _WFDB_BYTES_PER_SAMPLE.get(fmt)
    if bps is None:
        return
    offset = (header.byte_offset or [0])[0] or 0
    need = offset + math.ceil(bps * header.sig_len * len(same_file))
    have = data_file.stat().st_size
    if have < need:
        raise RecordingError(
            data_file,
            f"truncated: {have} bytes but the header {hea.name} needs {need} "
            f"({header.sig_len} samples x {len(same_file)} signal(s) in format {fmt}, byte offset {offset})",
        )


def _read_asc(path: Path, channel):
    try:
        opener = lzma.open if path.name.lower().endswith(".xz") else open
        with opener(path, "rb") as fh:
            text = fh.read()
    except (OSError, lzma.LZMAError, EOFError) as exc:
        raise RecordingError(path, f"unreadable ASCII signal ({exc})") from exc
    tokens = text.split()
    try:
        values = np.array(tokens, dtype=np.float64)
    except ValueError:
        bad = next(t for t in tokens if not _is_float(t))
        raise RecordingError(path, f"non-numeric value {bad.decode(errors='replace')!r} in ASCII signal") from None
    return values, None, None, {}, None


def _is_float(tok: bytes) -> bool:
    try:
        float(tok)
        return True
    except ValueError:
        return False


def _read_csv(path: Path, channel):
    try:
        lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordingError(path, f"unreadable CSV ({exc})") from exc
    if lines and not _is_float(lines[0].split(",")[0].encode()):
        lines = lines[1:]  # one header line is allowed
    if not lines:
        raise RecordingError(path, "contains no samples")
    ncols = {len(ln.split(",")) for ln in lines}
    if ncols != {1}:
        raise RecordingError(path, f"expected a single column, found {max(ncols)} columns")
    try:
        values = np.array(lines, dtype=np.float64)
    except ValueError:
        bad = next(ln for ln in lines if not _is_float(ln.encode()))
        raise RecordingError(path, f"non-numeric value {bad!r} in CSV") from None
    return values, None, None, {}, None


def _read_npy(path: Path, channel):
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise RecordingError(path, f"unreadable NPY file ({exc})") from exc
    return arr, None, None, {}, _int_limits(arr)


_NPZ_SIGNAL_KEYS = ("signal", "samples", "x", "data")


def _read_npz(path: Path, channel):
    try:
        with np.load(path, allow_pickle=False) as z:
            content = {k: z[k] for k in z.files}
    except Exception as exc:
        raise RecordingError(path, f"unreadable NPZ file ({exc})") from exc
    key = next((k for k in _NPZ_SIGNAL_KEYS if k in content), None)
    arrays = [k for k, v in content.items() if v.ndim >= 1 and v.size > 1]
    if key is None:
        if len(arrays) != 1:
            raise RecordingError(
                path, f"cannot tell which array is the signal (arrays: {', '.join(content) or 'none'}); "
                f"name it one of {', '.join(_NPZ_SIGNAL_KEYS)}"
            )
        key = arrays[0]
    fs = None
    for k in ("fs", "sampling_rate_hz"):
        if k in content:
            fs = float(content[k])
    units = str(content["units"]) if "units" in content else None
    arr = content[key]
    return arr, fs, units, {"npz_key": key}, _int_limits(arr)


def _int_limits(arr: np.ndarray):
    if np.issubdtype(arr.dtype, np.integer):
        info = np.iinfo(arr.dtype)
        return float(info.min), float(info.max)
    return None


def _read_wav(path: Path, channel):
    from scipy.io import wavfile

    try:
        fs, data = wavfile.read(path)
    except Exception as exc:
        raise RecordingError(path, f"unreadable WAV file ({exc})") from exc
    if data.ndim == 2:
        labels = [f"channel {i}" for i in range(data.shape[1])]
        data = data[:, _pick_channel(path, labels, channel)]
    return data, float(fs), None, {"wav_dtype": str(data.dtype)}, _int_limits(data)


_EDF_FIXED_HEADER = 256  # bytes of the fixed header; each signal adds another 256


def _read_edf_header(path: Path, bdf: bool) -> dict[str, Any]:
    """The EDF/BDF header, read with bounded reads (256 bytes, then 256 per signal) and checked against the file.

    Errors (each a :class:`RecordingError` naming the file): a short or malformed header, EDF+D/BDF+D
    (discontinuous: joining its data records would silently close the gaps between them), and a header that
    announces more data records than the file holds. Plain EDF/BDF and EDF+C/BDF+C are accepted.
    """
    kind = "BDF" if bdf else "EDF"
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            raw = fh.read(_EDF_FIXED_HEADER)
            if len(raw) < _EDF_FIXED_HEADER:
                raise ValueError(f"file is {len(raw)} bytes, shorter than the 256-byte {kind} header")
            ns = int(raw[252:256].decode("ascii").strip())
            if ns < 1:
                raise ValueError(f"the header gives {ns} signals")
            sig_hdr = fh.read(256 * ns)
        header_bytes = int(raw[184:192].decode("ascii").strip())
        if len(sig_hdr) < 256 * ns:
            raise ValueError(f"header shorter than its signal count says ({ns} signals need "
                             f"{_EDF_FIXED_HEADER + 256 * ns} bytes, the file has {size})")
        if header_bytes != _EDF_FIXED_HEADER + 256 * ns:
            raise ValueError(f"the header-size field says {header_bytes} bytes but {ns} signal(s) make "
                             f"{_EDF_FIXED_HEADER + 256 * ns}")
        reserved = raw[192:236].decode("latin-1").strip()

        def field(start: int, width: int) -> list[str]:
            return [sig_hdr[start + i * width: start + (i + 1) * width].decode("latin-1").strip() for i in range(ns)]

        base = 0
        labels = field(base, 16); base += 16 * ns
        base += 80 * ns  # transducer
        dims = field(base, 8); base += 8 * ns
        pmin = [float(v) for v in field(base, 8)]; base += 8 * ns
        pmax = [float(v) for v in field(base, 8)]; base += 8 * ns
        dmin = [float(v) for v in field(base, 8)]; base += 8 * ns
        dmax = [float(v) for v in field(base, 8)]; base += 8 * ns
        base += 80 * ns  # prefiltering
        spr = [int(v) for v in field(base, 8)]
        n_records = int(raw[236:244].decode("ascii").strip())
        duration = float(raw[244:252].decode("ascii").strip())
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        raise RecordingError(path, f"unreadable {kind} header ({exc})") from exc
    if reserved[:5].upper() in ("EDF+D", "BDF+D"):
        raise RecordingError(
            path, f"{reserved[:5]} (discontinuous) is not supported: its data records are not contiguous in time "
            "and reading them as one signal would silently join the gaps; export the recording as continuous "
            "EDF/EDF+C (one file per continuous stretch)")
    if duration <= 0:
        raise RecordingError(path, f"{kind} header gives a record duration of {duration} s")
    if any(n < 0 for n in spr) or sum(spr) == 0:
        raise RecordingError(path, f"{kind} header gives samples per data record {spr}")
    record_bytes = sum(spr) * (3 if bdf else 2)
    payload = size - header_bytes
    if n_records < 0:  # -1 = "unknown" while a recorder was still writing
        n_records = payload // record_bytes
    if payload < n_records * record_bytes:
        held = payload // record_bytes
        raise RecordingError(
            path, f"truncated: {payload} data bytes but the header announces {n_records} records of {record_bytes} "
            f"bytes (the file holds {held} complete record{'' if held == 1 else 's'})")
    return dict(header_bytes=header_bytes, ns=ns, labels=labels, dims=dims, pmin=pmin, pmax=pmax, dmin=dmin,
                dmax=dmax, spr=spr, n_records=n_records, record_duration=duration, record_bytes=record_bytes,
                reserved=reserved)


def _read_edf(path: Path, channel, bdf: bool = False):
    kind = "BDF" if bdf else "EDF"
    h = _read_edf_header(path, bdf)
    bps = 3 if bdf else 2
    data_idx = [i for i, lab in enumerate(h["labels"]) if "annotations" not in lab.lower()]
    if not data_idx:
        raise RecordingError(path, f"{kind} file has no signal (only annotations)")
    labels = [h["labels"][i] for i in data_idx]
    sig = data_idx[_pick_channel(path, labels, channel)]
    n_records, record_bytes = h["n_records"], h["record_bytes"]
    with open(path, "rb") as fh:
        fh.seek(h["header_bytes"])
        buf = np.frombuffer(fh.read(n_records * record_bytes), dtype=np.uint8)
    recs = buf.reshape(n_records, record_bytes)
    start = sum(h["spr"][:sig]) * bps
    chunk = recs[:, start: start + h["spr"][sig] * bps].reshape(-1)
    if bdf:
        b = chunk.reshape(-1, 3).astype(np.int32)
        digital = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        digital = np.where(digital >= 1 << 23, digital - (1 << 24), digital)
    else:
        digital = chunk.view("<i2").astype(np.int32)
    dmin, dmax, pmin, pmax = h["dmin"][sig], h["dmax"][sig], h["pmin"][sig], h["pmax"][sig]
    if dmax == dmin:
        raise RecordingError(path, f"{kind} header gives equal digital min and max for signal {h['labels'][sig]!r}")
    scale = (pmax - pmin) / (dmax - dmin)
    values = (digital - dmin) * scale + pmin
    fs = h["spr"][sig] / h["record_duration"]
    units = h["dims"][sig] or None
    clip = (pmin, pmax) if pmin < pmax else (pmax, pmin)
    return values, fs, units, {"signal_name": h["labels"][sig]}, clip


def _read_bdf(path: Path, channel):
    return _read_edf(path, channel, bdf=True)


_READERS = {
    "wfdb": _read_wfdb,
    "asc": _read_asc,
    "csv": _read_csv,
    "npy": _read_npy,
    "npz": _read_npz,
    "wav": _read_wav,
    "edf": _read_edf,
    "bdf": _read_bdf,
}


# --------------------------------------------------------------------------------------------------------------
# writers (used by tests and by users converting their own exports)


def write_edf(path: str | Path, samples_uv: np.ndarray, fs: float, *, bdf: bool = False, label: str = "EMG",
              record_duration: float = 1.0) -> Path:
    """Write one µV channel as EDF (16-bit) or BDF (24-bit), padding the last data record with zeros.

    The physical range is the signal's own range, so quantisation error stays below one digital step.
    """
    path = Path(path)
    x = np.asarray(samples_uv, dtype=np.float64)
    spr = int(round(fs * record_duration))
    if abs(spr - fs * record_duration) > 1e-9:
        raise ValueError(f"fs x record_duration must be an integer number of samples, got {fs * record_duration}")
    n_records = math.ceil(len(x) / spr)
    padded = np.zeros(n_records * spr)
    padded[: len(x)] = x
    dmin, dmax = (-(2**23), 2**23 - 1) if bdf else (-32768, 32767)
    pmin, pmax = float(np.floor(x.min())) - 1.0, float(np.ceil(x.max())) + 1.0
    digital = np.round((padded - pmin) / (pmax - pmin) * (dmax - dmin) + dmin).astype(np.int64)

    def f(v: Any, width: int) -> bytes:
        s = str(v)
        if len(s) > width:
            raise ValueError(f"EDF header field {s!r} longer than {width} characters")
        return s.ljust(width).encode("ascii")

    def num(v: float) -> str:
        s = f"{v:g}"
        return s if len(s) <= 8 else f"{v:.0f}"

    header = b"".join([
        b"\xffBIOSEMI" if bdf else f("0", 8),
        f("X X X X", 80), f("Startdate X X X X", 80), f("01.01.00", 8), f("00.00.00", 8),
        f(512, 8), f("24BIT" if bdf else "", 44), f(n_records, 8), f(num(record_duration), 8), f(1, 4),
        f(label, 16), f("needle electrode", 80), f("uV", 8), f(num(pmin), 8), f(num(pmax), 8),
        f(dmin, 8), f(dmax, 8), f("", 80), f(spr, 8), f("", 32),
    ])
    if bdf:
        d = digital & 0xFFFFFF
        body = np.stack([d & 0xFF, (d >> 8) & 0xFF, (d >> 16) & 0xFF], axis=1).astype(np.uint8).tobytes()
    else:
        body = digital.astype("<i2").tobytes()
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(header + body)
    os.replace(tmp, path)
    return path
