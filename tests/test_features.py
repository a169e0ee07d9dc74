"""Classical qEMG feature extractors (nemg.features) on synthetic signals with known answers."""
import numpy as np
import pytest

from nemg import features as F

FS = 10_000.0
N = 4000  # 0.4 s, the study's segment
T = np.arange(N) / FS


def sine(freq, amp=100.0, phase=0.0):
    return amp * np.sin(2 * np.pi * freq * T + phase)


# ---------------------------------------------------------------------------------------------- time domain

def test_rms_and_waveform_length_exact():
    a = 37.0
    square = np.where(np.arange(N) % 2 == 0, a, -a)  # alternates every sample
    assert F.rms(square)[0] == pytest.approx(a)
    assert F.waveform_length(square, FS)[0] == pytest.approx((N - 1) * 2 * a / 0.4)
    assert F.rms(sine(50, amp=10.0))[0] == pytest.approx(10 / np.sqrt(2), rel=1e-9)  # 20 whole periods
    ramp = 0.5 * np.arange(N)
    assert F.waveform_length(ramp, FS)[0] == pytest.approx((N - 1) * 0.5 / 0.4)
    assert F.rms(F.centred(np.full(N, 123.0)))[0] == pytest.approx(0.0, abs=1e-9)


def test_zero_crossings_of_a_sine_and_the_dead_band():
    # sin(2 pi 50 t) on [0, 0.4): crossings at k / 100 s, k = 1..39 (the start at 0 is not a crossing)
    assert F.zero_crossings(sine(50), FS, deadband=10)[0] == pytest.approx(39 / 0.4)
    # cos: crossings at 0.005 + k / 100 s, k = 0..39
    assert F.zero_crossings(sine(50, phase=np.pi / 2), FS, deadband=10)[0] == pytest.approx(40 / 0.4)
    # the rate tracks 2 f
    for f in (120, 400, 1000):
        assert F.zero_crossings(sine(f), FS, deadband=10)[0] == pytest.approx(2 * f, abs=1 / 0.4)
    # a 5 uV ripple around zero stays inside a 10 uV dead band: no crossing; without the band it crosses
    ripple = sine(700, amp=5.0)
    assert F.zero_crossings(ripple, FS, deadband=10)[0] == 0
    assert F.zero_crossings(ripple, FS, deadband=0)[0] > 1000
    # hysteresis: a 50 Hz sine carrying the 5 uV ripple still crosses 39 times, not more
    assert F.zero_crossings(sine(50) + ripple, FS, deadband=10)[0] == pytest.approx(39 / 0.4)


# ------------------------------------------------------------------------------------------------ turns, NSS

def spike_train(amp, every=100, ramp_up=5, fall=10, back=5):
    """Biphasic spikes 0 -> +amp -> -amp -> 0 (linear), one every ``every`` samples, on a flat baseline."""
    one = np.concatenate([np.linspace(0, amp, ramp_up, endpoint=False), np.linspace(amp, -amp, fall, endpoint=False),
                          np.linspace(-amp, 0, back, endpoint=False)])
    x = np.zeros(N)
    for s in range(0, N - len(one) + 1, every):
        x[s:s + len(one)] = one
    return x


def test_turns_of_a_spike_train_with_known_amplitude_and_spacing():
    x = spike_train(300.0)  # 40 spikes at 100 per second
    n_turns, amp_sum, n_int, _ = F.zigzag_turns(x, 100.0)
    # every spike gives a peak (+300) and a trough (-300); consecutive turns differ by 600 uV
    assert n_turns[0] == 80
    assert n_int[0] == 79 and amp_sum[0] / n_int[0] == pytest.approx(600.0)
    f = dict(zip(F.feature_names(), F.segment_features(x, FS)[0]))
    assert f["turns_per_s"] == pytest.approx(80 / 0.4)
    assert f["amplitude_per_turn_uv"] == pytest.approx(600.0)
    # a +-40 uV ripple (below the 100 uV criterion) adds no turn
    n2, *_ = F.zigzag_turns(x + sine(2000, amp=40.0), 100.0)
    assert n2[0] == 80
    # spikes of 40 uV never make a turn
    assert F.zigzag_turns(spike_train(40.0), 100.0)[0][0] == 0


def test_turns_of_a_triangle_wave():
    # triangle between -250 and +250 uV, period 200 samples (50 Hz), starting at the trough
    tri = 250 - 500 * np.abs(((np.arange(N) / 200) % 1) * 2 - 1)
    n_turns, amp_sum, n_int, _ = F.zigzag_turns(tri, 100.0)
    # peaks at 100, 300, ..., 3900 (20) and troughs at 200, ..., 3800 (19): the start is a pivot, not a turn
    assert n_turns[0] == 39
    assert amp_sum[0] / n_int[0] == pytest.approx(500.0)


def test_number_of_small_segments():
    # a zigzag of 50 uV legs, a reversal every 10 samples: 400 legs, every one a small segment
    zig = 50 * np.abs(((np.arange(N) / 20) % 1) * 2 - 1)
    _, _, n_int, n_small = F.zigzag_turns(zig, 20.0, small=100.0)
    assert n_small[0] == n_int[0] and n_int[0] >= 397
    f = dict(zip(F.feature_names(), F.segment_features(zig, FS)[0]))
    assert f["nss_per_s"] == pytest.approx(n_small[0] / 0.4)
    assert f["turns_per_s"] == 0  # no 100 uV turn at all
    # the same zigzag with 150 uV legs: no small segment, and now every reversal is a turn
    big = 3 * zig
    assert F.zigzag_turns(big, 20.0, small=100.0)[3][0] == 0
    assert F.zigzag_turns(big, 100.0)[0][0] >= 398


# --------------------------------------------------------------------------------------------------- spectral

@pytest.mark.parametrize("freq", [50.0, 500.0, 1230.0])
def test_mean_and_median_frequency_of_a_sine(freq):
    mean_f, median_f, _ = F.spectral_features(sine(freq), FS)
    assert mean_f[0] == pytest.approx(freq, abs=5.0)
    assert median_f[0] == pytest.approx(freq, abs=10.0)


@pytest.mark.parametrize("freq,band", [(60, 0), (170, 1), (370, 2), (750, 3), (1500, 4), (3000, 5)])
def test_band_power_of_a_tone_lands_in_its_band(freq, band):
    _, _, fracs = F.spectral_features(sine(freq), FS)
    assert fracs[0].sum() == pytest.approx(1.0)
    assert fracs[0, band] > 0.95


def test_spectrum_of_two_tones_and_of_silence():
    mean_f, median_f, fracs = F.spectral_features(sine(300) + sine(1500), FS)
    assert mean_f[0] == pytest.approx(900.0, abs=10)  # equal power at 300 and 1500 Hz
    assert fracs[0, 2] == pytest.approx(0.5, abs=0.02) and fracs[0, 4] == pytest.approx(0.5, abs=0.02)
    assert 300 <= median_f[0] <= 1500
    mean_f, median_f, fracs = F.spectral_features(np.zeros(N), FS)
    assert mean_f[0] == 0 and median_f[0] == 0 and fracs.sum() == 0


# ------------------------------------------------------------------------------------------------ MUAP level

def test_threshold_detected_potentials():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 5.0, N)
    for s in (500, 1500, 2500, 3500):  # 4 rectangular potentials of 500 uV, 20 samples = 2 ms wide
        x[s:s + 20] = 500.0
    rate, amp, width = F.muap_features(x, FS, k=5.0, min_uv=20.0)
    assert rate[0] == pytest.approx(4 / 0.4)
    assert amp[0] == pytest.approx(500.0)
    assert width[0] == pytest.approx(2.0)
    rate, amp, width = F.muap_features(rng.normal(0, 5.0, (3, N)), FS, k=5.0, min_uv=20.0)
    assert (rate == 0).all() and (amp == 0).all() and (width == 0).all()


# ------------------------------------------------------------------------------------------------ the store

def test_extract_features_is_chunk_invariant_and_deterministic(tmp_path):
    rng = np.random.default_rng(1)
    segs = (rng.normal(0, 50, (7, N)) + spike_train(400.0)[None, :] * rng.uniform(0.5, 2, (7, 1))).astype(np.float32)
    np.save(tmp_path / "segments.npy", segs)
    a = F.extract_features(tmp_path / "segments.npy", tmp_path / "a.npy", tmp_path / "names.txt", fs=FS,
                           params={"chunk": 3})
    b = F.extract_features(tmp_path / "segments.npy", tmp_path / "b.npy", tmp_path / "names.txt", fs=FS,
                           params={"chunk": 100})
    assert a.dtype == np.float32 and a.shape == (7, len(F.feature_names()))
    assert np.array_equal(a, b) and np.isfinite(a).all()
    x, names = F.read_features(tmp_path / "a.npy", tmp_path / "names.txt")
    assert names == F.feature_names() and np.array_equal(x, a)
    assert len(set(names)) == len(names) == 18
