"""Loaders: every format round-trips through a file the test writes, and broken files fail with the path named."""
from __future__ import annotations

import lzma

import numpy as np
import pytest
import wfdb
from scipy.io import wavfile

from nemg.io import load_recording, probe_duration, write_edf
from nemg.recording import RecordingError, clipped_fraction

FS = 10_000.0


@pytest.fixture
def tone():
    t = np.arange(int(FS * 1.2)) / FS
    # 300 µV tone plus a slow component, so the signal is neither flat nor symmetric
    return (300.0 * np.sin(2 * np.pi * 150 * t) + 40.0 * np.sin(2 * np.pi * 7 * t)).astype(np.float64)


def _write_wfdb(tmp_path, name, x, units="uV", gain=10.0, fmt="16"):
    wfdb.wrsamp(name, fs=FS, units=[units], sig_name=["EMG"], p_signal=x[:, None], fmt=[fmt],
                adc_gain=[gain], baseline=[0], write_dir=str(tmp_path))
    return tmp_path / f"{name}.hea"


def test_wfdb_roundtrip_and_units(tmp_path, tone):
    hea = _write_wfdb(tmp_path, "rec_uv", tone)
    rec = load_recording(hea, "wfdb")
    assert rec.samples.dtype == np.float32 and rec.fs == FS and rec.n_samples == tone.size
    np.testing.assert_allclose(rec.samples, tone, atol=0.06)  # quantisation step 0.1 µV
    # the same signal stored in mV comes back in µV
    hea_mv = _write_wfdb(tmp_path, "rec_mv", tone / 1000.0, units="mV", gain=10000.0)
    rec_mv = load_recording(tmp_path / "rec_mv", "wfdb")  # bare record name works too
    np.testing.assert_allclose(rec_mv.samples, tone, atol=0.06)
    assert rec_mv.meta["source_units"] == "mV"
    assert probe_duration(hea_mv, "wfdb") == pytest.approx(1.2)


def test_wfdb_byte_offset_is_honoured(tmp_path, tone):
    # N2001 stores a 20-byte preamble before the samples ("16+20"); reading from byte 0 would shift everything
    digital = np.round(tone * 13.107).astype("<i2")
    (tmp_path / "off.bin").write_bytes(b"\x00\x50" * 10 + digital.tobytes() + b"\x00" * 20)
    (tmp_path / "off.hea").write_text(f"off 1 {FS:g} {tone.size}\noff.bin 16+20 13.1070/uV\n")
    rec = load_recording(tmp_path / "off.hea", "wfdb")
    np.testing.assert_allclose(rec.samples, tone, atol=0.05)
    assert rec.meta["byte_offset"] == 20


def test_wfdb_truncated_data_file(tmp_path, tone):
    hea = _write_wfdb(tmp_path, "trunc", tone)
    dat = tmp_path / "trunc.dat"
    dat.write_bytes(dat.read_bytes()[: 1000])
    with pytest.raises(RecordingError, match=r"trunc\.dat: truncated: 1000 bytes but the header trunc\.hea needs 24000"):
        load_recording(hea, "wfdb")


def test_wfdb_missing_data_file(tmp_path, tone):
    hea = _write_wfdb(tmp_path, "nodat", tone)
    (tmp_path / "nodat.dat").unlink()
    with pytest.raises(RecordingError, match=r"nodat\.dat: data file named in nodat\.hea not found"):
        load_recording(hea, "wfdb")


def test_wfdb_wrong_units_in_header(tmp_path, tone):
    hea = _write_wfdb(tmp_path, "kpa", tone, units="kPa")
    with pytest.raises(RecordingError, match=r"kpa\.hea: unknown units 'kPa'; expected one of V, mV, uV"):
        load_recording(hea, "wfdb")


def test_sheet_units_must_agree_with_file(tmp_path, tone):
    hea = _write_wfdb(tmp_path, "agree", tone)
    with pytest.raises(RecordingError, match="units mismatch: the sample sheet says 'mV' but the file says 'uV'"):
        load_recording(hea, "wfdb", units="mV")


def test_wrong_sampling_rate_is_an_error(tmp_path, tone):
    hea = _write_wfdb(tmp_path, "rate", tone)
    with pytest.raises(RecordingError, match=r"rate\.hea: wrong sampling rate: the sample sheet says 48000 Hz but the file says 10000 Hz"):
        load_recording(hea, "wfdb", sampling_rate_hz=48000)


@pytest.mark.parametrize("compress", [False, True])
def test_asc(tmp_path, tone, compress):
    text = " ".join(f"{v:.1f}" for v in tone).encode()
    path = tmp_path / ("EMG _001 _01_ RD_Hea.asc" + (".xz" if compress else ""))  # spaces, as in Messekher
    path.write_bytes(lzma.compress(text) if compress else text)
    rec = load_recording(path, "asc", sampling_rate_hz=FS)
    np.testing.assert_allclose(rec.samples, tone, atol=0.051)
    with pytest.raises(RecordingError, match="sampling_rate_hz is required for asc files"):
        load_recording(path, "asc")


def test_asc_with_nan_names_the_file_and_sample(tmp_path, tone):
    vals = [f"{v:.1f}" for v in tone]
    vals[5000] = "nan"
    path = tmp_path / "bad.asc"
    path.write_text(" ".join(vals))
    with pytest.raises(RecordingError, match=r"bad\.asc: contains 1 NaN/Inf samples \(first at sample 5000, t = 0\.5000 s\)"):
        load_recording(path, "asc", sampling_rate_hz=FS)


def test_asc_with_garbage(tmp_path):
    path = tmp_path / "garbage.asc"
    path.write_text("1.0 2.0 hello 3.0")
    with pytest.raises(RecordingError, match=r"garbage\.asc: non-numeric value 'hello'"):
        load_recording(path, "asc", sampling_rate_hz=FS)


@pytest.mark.parametrize("bdf", [False, True])
def test_edf_bdf_roundtrip(tmp_path, tone, bdf):
    path = write_edf(tmp_path / ("x.bdf" if bdf else "x.edf"), tone, FS, bdf=bdf)
    rec = load_recording(path, "bdf" if bdf else "edf")
    assert rec.fs == FS
    # EDF pads the last data record; 1.2 s at 1 s records -> 2 s in the file
    np.testing.assert_allclose(rec.samples[: tone.size], tone, atol=(700 / 65535) if not bdf else 1e-3)
    assert probe_duration(path) == pytest.approx(2.0)


def test_edf_truncated(tmp_path, tone):
    path = write_edf(tmp_path / "t.edf", tone, FS)
    path.write_bytes(path.read_bytes()[:-5000])
    with pytest.raises(RecordingError, match=r"t\.edf: truncated: 35000 data bytes but the header announces 2 records of 20000 bytes"):
        load_recording(path, "edf")


def _patch_header(path, start: int, width: int, value: str):
    raw = bytearray(path.read_bytes())
    raw[start: start + width] = value.ljust(width).encode("ascii")
    path.write_bytes(bytes(raw))


def test_edf_plus_d_is_refused_and_edf_plus_c_accepted(tmp_path, tone):
    plain = write_edf(tmp_path / "plain.edf", tone, FS)
    cont = write_edf(tmp_path / "cont.edf", tone, FS)
    _patch_header(cont, 192, 44, "EDF+C")  # the reserved field
    for path in (plain, cont):
        np.testing.assert_allclose(load_recording(path, "edf").samples[: tone.size], tone, atol=700 / 65535)
    disc = write_edf(tmp_path / "disc.edf", tone, FS)
    _patch_header(disc, 192, 44, "EDF+D")
    with pytest.raises(RecordingError, match=r"disc\.edf: EDF\+D \(discontinuous\) is not supported"):
        load_recording(disc, "edf")
    with pytest.raises(RecordingError, match=r"disc\.edf: EDF\+D \(discontinuous\) is not supported"):
        probe_duration(disc)
    bdf = write_edf(tmp_path / "disc.bdf", tone, FS, bdf=True)
    _patch_header(bdf, 192, 44, "BDF+D")
    with pytest.raises(RecordingError, match=r"disc\.bdf: BDF\+D \(discontinuous\) is not supported"):
        load_recording(bdf, "bdf")


def test_edf_header_claiming_more_records_than_the_file_holds(tmp_path, tone):
    path = write_edf(tmp_path / "claims50.edf", tone, FS)  # 2 records of 1 s
    _patch_header(path, 236, 8, "50")
    msg = r"claims50\.edf: truncated: 40000 data bytes but the header announces 50 records of 20000 bytes " \
          r"\(the file holds 2 complete records\)"
    with pytest.raises(RecordingError, match=msg):
        probe_duration(path)  # the header-only path used by `nemg cohort check` catches it too
    with pytest.raises(RecordingError, match=msg):
        load_recording(path, "edf")


def test_edf_header_size_field_must_match_the_signal_count(tmp_path, tone):
    path = write_edf(tmp_path / "hsize.edf", tone, FS)
    _patch_header(path, 184, 8, "768")
    with pytest.raises(RecordingError, match=r"hsize\.edf: unreadable EDF header \(the header-size field says 768"):
        load_recording(path, "edf")


def test_edf_header_is_read_with_bounded_reads(tmp_path, tone, monkeypatch):
    import nemg.io as nio

    path = write_edf(tmp_path / "big.edf", np.tile(tone, 20), FS)  # 24 s: 480 kB of samples
    reads: list[int] = []

    class Spy:
        def __init__(self, fh):
            self._fh = fh

        def read(self, n=-1):
            reads.append(n)
            return self._fh.read(n)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._fh.close()

        def __getattr__(self, name):
            return getattr(self._fh, name)

    def no_whole_file_read(self):
        raise AssertionError(f"read the whole of {self}")

    monkeypatch.setattr(nio, "open", lambda *a, **k: Spy(open(*a, **k)), raising=False)
    monkeypatch.setattr(type(path), "read_bytes", no_whole_file_read)
    assert probe_duration(path) == pytest.approx(24.0)
    assert reads and all(n >= 0 for n in reads) and sum(reads) == 512  # 256 fixed + 256 for the one signal


def test_edf_reader_agrees_with_edfio(tmp_path):
    """Cross-check against an independent implementation: files written by edfio (test extra), read by us."""
    edfio = pytest.importorskip("edfio", reason="edfio is not installed (it is in the `test` extra: "
                                                "pip install -e '.[test]'); EDF cross-check skipped")
    rng = np.random.default_rng(13)
    emg = rng.normal(0, 150, 30_000).clip(-990, 990)  # 3 s at 10 kHz, in µV
    slow = 0.4 * np.sin(2 * np.pi * 3 * np.arange(12_000) / 4000)  # 3 s at 4 kHz, in mV
    edf = edfio.Edf([edfio.EdfSignal(emg, 10_000, label="EMG1", physical_dimension="uV",
                                     physical_range=(-1000, 1000)),
                     edfio.EdfSignal(slow, 4000, label="EMG2", physical_dimension="mV", physical_range=(-1, 1))],
                    annotations=[edfio.EdfAnnotation(0.5, None, "needle in")])  # EDF+C with an annotation signal
    path = tmp_path / "edfio.edf"
    edf.write(path)
    assert path.read_bytes()[192:197] == b"EDF+C"
    step_uv = 2000 / 65535  # physical range / digital range of EMG1: one digital step
    rec = load_recording(path, "edf", channel="EMG1")
    assert rec.fs == 10_000 and rec.n_samples == emg.size and rec.meta["source_units"] == "uV"
    np.testing.assert_allclose(rec.samples, emg, atol=step_uv)
    rec2 = load_recording(path, "edf", channel=1)  # index among the data signals: the annotations are not one
    assert rec2.fs == 4000 and rec2.n_samples == slow.size and rec2.meta["source_units"] == "mV"
    np.testing.assert_allclose(rec2.samples, slow * 1000, atol=1000 * 2 / 65535)  # read back in µV
    with pytest.raises(RecordingError, match=r"edfio\.edf: has 2 signals \(EMG1, EMG2\)"):
        load_recording(path, "edf")
    assert probe_duration(path) == pytest.approx(3.0)
    # edfio's own reading of the same file agrees with ours
    np.testing.assert_allclose(rec.samples, edfio.read_edf(path).signals[0].data, atol=1e-3)

    bdf = edfio.Bdf([edfio.BdfSignal(emg, 10_000, label="EMG", physical_dimension="uV",
                                     physical_range=(-1000, 1000))])
    bpath = tmp_path / "edfio.bdf"
    bdf.write(bpath)
    rec = load_recording(bpath, "bdf")
    assert rec.fs == 10_000 and rec.n_samples == emg.size
    np.testing.assert_allclose(rec.samples, emg, atol=2000 / (2**24 - 1) + 1e-4)  # float32 of ~1000 µV: 6e-5


def test_wav_int_and_float(tmp_path, tone):
    wavfile.write(tmp_path / "i.wav", int(FS), np.round(tone).astype(np.int16))
    rec = load_recording(tmp_path / "i.wav", "wav", units="uV")
    np.testing.assert_allclose(rec.samples, np.round(tone))
    wavfile.write(tmp_path / "f.wav", int(FS), (tone / 1e6).astype(np.float32))
    rec = load_recording(tmp_path / "f.wav", "wav", units="V")
    np.testing.assert_allclose(rec.samples, tone, rtol=1e-5, atol=1e-3)


def test_wav_stereo_needs_a_channel(tmp_path, tone):
    wavfile.write(tmp_path / "s.wav", int(FS), np.stack([tone, -tone], 1).astype(np.float32))
    with pytest.raises(RecordingError, match=r"s\.wav: has 2 signals"):
        load_recording(tmp_path / "s.wav", "wav")
    rec = load_recording(tmp_path / "s.wav", "wav", channel=1)
    np.testing.assert_allclose(rec.samples, -tone, rtol=1e-6, atol=1e-3)


def test_npy_npz_csv(tmp_path, tone):
    np.save(tmp_path / "x.npy", tone / 1000.0)
    rec = load_recording(tmp_path / "x.npy", "npy", sampling_rate_hz=FS, units="mV")
    np.testing.assert_allclose(rec.samples, tone, rtol=1e-6)
    np.savez(tmp_path / "x.npz", signal=tone, fs=FS)
    rec = load_recording(tmp_path / "x.npz", "npz")
    assert rec.fs == FS
    np.savez(tmp_path / "two.npz", a=tone, b=tone)
    with pytest.raises(RecordingError, match=r"two\.npz: cannot tell which array is the signal"):
        load_recording(tmp_path / "two.npz", "npz", sampling_rate_hz=FS)
    (tmp_path / "x.csv").write_text("emg_uv\n" + "\n".join(f"{v:.3f}" for v in tone))
    rec = load_recording(tmp_path / "x.csv", "csv", sampling_rate_hz=FS)
    np.testing.assert_allclose(rec.samples, tone, atol=1e-3)
    (tmp_path / "wide.csv").write_text("\n".join(f"{v},{v}" for v in tone))
    with pytest.raises(RecordingError, match=r"wide\.csv: expected a single column, found 2 columns"):
        load_recording(tmp_path / "wide.csv", "csv", sampling_rate_hz=FS)


def test_complex_or_overflowing_samples_name_the_file(tmp_path, tone):
    np.save(tmp_path / "iq.npy", tone + 1j * tone)  # an FFT's or a demodulator's output, not a signal
    with pytest.raises(RecordingError, match=r"iq\.npy: samples are complex \(dtype complex128\)"):
        load_recording(tmp_path / "iq.npy", "npy", sampling_rate_hz=FS)
    # finite in the file, infinite as float32 microvolts: trimming failed later without the file's name
    np.save(tmp_path / "huge.npy", tone * 1e35)
    with pytest.raises(RecordingError, match=r"huge\.npy: samples up to .* V exceed float32's range"):
        load_recording(tmp_path / "huge.npy", "npy", sampling_rate_hz=FS, units="V")


def test_flat_short_missing(tmp_path):
    np.save(tmp_path / "flat.npy", np.full(20000, 3.0))
    with pytest.raises(RecordingError, match=r"flat\.npy: flat line: all 20000 samples equal 3 \(disconnected"):
        load_recording(tmp_path / "flat.npy", "npy", sampling_rate_hz=FS)
    np.save(tmp_path / "short.npy", np.random.default_rng(0).normal(size=2000))
    with pytest.raises(RecordingError, match=r"short\.npy: too short: 2000 samples = 0\.200 s at 10000 Hz \(minimum 0\.5 s\)"):
        load_recording(tmp_path / "short.npy", "npy", sampling_rate_hz=FS)
    with pytest.raises(RecordingError, match=r"nothere\.hea: file not found"):
        load_recording(tmp_path / "nothere", "wfdb")
    # a sheet row whose path is empty or '.' resolves to its folder: say so rather than 'not found'
    with pytest.raises(RecordingError, match=r": is a folder, not a signal file"):
        load_recording(tmp_path, "npy", sampling_rate_hz=FS)


def test_clipped_fraction():
    x = np.sin(np.linspace(0, 20, 1000))
    assert clipped_fraction(x) == 0.0
    y = np.clip(x, -0.5, 0.5)
    expected = np.mean(np.abs(x) >= 0.5)
    assert clipped_fraction(y) == pytest.approx(expected, abs=0.01)
    z = np.array([-32768, 0, 5, 32767, 3, 1, 2], dtype=np.int16)
    assert clipped_fraction(z, -32768, 32767) == pytest.approx(2 / 7)


def test_clipping_is_recorded_in_meta(tmp_path, tone):
    np.save(tmp_path / "c.npy", np.clip(np.round(tone * 200), -32768, 32767).astype(np.int16))
    rec = load_recording(tmp_path / "c.npy", "npy", sampling_rate_hz=FS)
    assert rec.meta["clipped_fraction"] > 0.3
