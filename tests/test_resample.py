"""Resampling keeps a test tone's frequency and amplitude and suppresses content above the new Nyquist."""
import numpy as np
import pytest

from nemg.resample import rational_ratio, resample

RATES = [48_000.0, 32_768.0, 23_437.5, 4_000.0]
OUT = 10_000.0


def tone(freq, rate, seconds=3.0, amp=1000.0):
    t = np.arange(int(rate * seconds)) / rate
    return amp * np.sin(2 * np.pi * freq * t + 0.3)


def spectrum(y, rate):
    """Amplitude spectrum of the middle 2 s (Hann window, amplitude-corrected)."""
    n = int(2 * rate)
    mid = y[(y.size - n) // 2:(y.size - n) // 2 + n]
    w = np.hanning(n)
    return np.fft.rfftfreq(n, 1 / rate), np.abs(np.fft.rfft(mid * w)) / (w.sum() / 2)


@pytest.mark.parametrize("method", ["polyphase", "fft"])
@pytest.mark.parametrize("rate", RATES)
def test_tone_frequency_and_amplitude_preserved(rate, method):
    y = resample(tone(1000.0, rate), rate, OUT, method)
    assert y.dtype == np.float32
    assert y.size == pytest.approx(3.0 * OUT, abs=1)
    f, a = spectrum(y, OUT)
    assert f[a.argmax()] == pytest.approx(1000.0, abs=0.5)
    assert a.max() == pytest.approx(1000.0, rel=0.005)


@pytest.mark.parametrize("method", ["polyphase", "fft"])
@pytest.mark.parametrize("rate", [48_000.0, 32_768.0, 23_437.5])
@pytest.mark.parametrize("freq", [5_600.0, 7_000.0, 9_000.0])
def test_above_nyquist_is_suppressed(rate, method, freq):
    y = resample(tone(freq, rate), rate, OUT, method)
    _, a = spectrum(y, OUT)
    assert 20 * np.log10(a.max() / 1000.0) < -60  # an unfiltered decimation would fold it back at 0 dB


@pytest.mark.parametrize("method", ["polyphase", "fft"])
def test_upsampling_adds_no_images(method):
    y = resample(tone(1500.0, 4000.0), 4000.0, OUT, method)
    f, a = spectrum(y, OUT)
    assert a[f > 2100].max() < 1e-3 * 1000.0  # the 4 kHz image of 1.5 kHz (2.5 kHz) is gone


def test_rational_ratios():
    assert rational_ratio(48_000, 10_000) == (5, 24)
    assert rational_ratio(23_437.5, 10_000) == (32, 75)
    assert rational_ratio(32_768, 10_000) == (625, 2048)
    assert rational_ratio(4_000, 10_000) == (5, 2)


def test_identity_and_errors():
    x = tone(100.0, OUT)
    assert np.array_equal(resample(x, OUT, OUT), x.astype(np.float32))
    with pytest.raises(ValueError, match="unknown resampling method"):
        resample(x, 48_000, OUT, "linear")
