"""What the amplifier adds to the muscle's signal: noise, mains hum, drift, needle-movement artifacts at both
edges, the 20 Hz-10 kHz band limit and 16-bit quantisation.

The edge artifacts are the reason the pipeline has a trimming stage, so they are built from what needle
movement really produces: decaying potential steps of several mV, bursts of insertion spikes, and moments
where the amplifier sits at its rail.
"""
from __future__ import annotations

import numpy as np
from scipy.signal import butter, sosfilt


def _artifact_block(n: int, fs: float, a: dict, rng: np.random.Generator, rail_uv: float,
                    fade_at_end: bool) -> tuple[np.ndarray, np.ndarray]:
    """One edge's artifact (µV) and a mask of samples forced to the rail (amplifier saturation)."""
    t = np.arange(n) / fs
    # the needle moving through tissue gives continuous broadband activity for the whole interval (injury
    # and insertion potentials, cable and electrode-interface noise), so the artifact has no quiet gaps that
    # would look like usable signal; its level wanders slowly as the needle moves and stops
    rms = rng.uniform(*a["movement_rms_mv"]) * 1e3
    sos = butter(2, [30.0, min(1500.0, 0.45 * fs)], "bandpass", fs=fs, output="sos")
    noise = sosfilt(sos, rng.normal(0.0, 1.0, n))
    noise /= max(float(np.std(noise)), 1e-12)
    wander = 0.75 + 0.25 * np.sin(2 * np.pi * rng.uniform(0.5, 3.0) * t + rng.uniform(0, 2 * np.pi))
    x = rms * wander * noise
    n_steps = max(1, int(rng.uniform(*a["steps_per_s"]) * n / fs))
    for t0 in rng.uniform(0, n / fs, n_steps):
        amp = rng.uniform(*a["step_mv"]) * 1e3 * rng.choice([-1.0, 1.0])
        tau = rng.uniform(*a["step_tau_ms"]) * 1e-3
        dt = t - t0
        x += np.where(dt >= 0, amp * np.exp(-np.clip(dt, 0, None) / tau), 0.0)
    if rng.random() < a["spike_burst_probability"]:
        # insertion activity: brief sharp biphasic spikes at a high, irregular rate
        rate = rng.uniform(*a["spike_rate_hz"])
        n_spk = max(1, int(rate * n / fs * rng.uniform(0.2, 0.6)))
        start = rng.uniform(0, max(n / fs - 0.1, 1e-3))
        times = start + np.cumsum(rng.exponential(1 / rate, n_spk))
        width = int(0.0006 * fs)
        shape = np.sin(np.linspace(0, 2 * np.pi, width)) * np.hanning(width)
        for ts in times[times < n / fs - 0.001]:
            i = int(ts * fs)
            seg = x[i: i + width]
            seg += rng.uniform(*a["spike_mv"]) * 1e3 * rng.choice([-1.0, 1.0]) * shape[: seg.size]
    sat = np.zeros(n, bool)
    if rng.random() < a["saturation_probability"]:
        m = min(int(rng.uniform(*a["saturation_ms"]) * 1e-3 * fs), n // 2)
        i = int(rng.integers(0, max(n - m, 1)))
        sat[i: i + m] = True
        x[i: i + m] = rail_uv * rng.choice([-1.0, 1.0])
    # the needle settles: the artifact fades out towards the usable signal
    fade = min(int(a["fade_ms"] * 1e-3 * fs), n)
    env = np.ones(n)
    ramp = 0.5 * (1 + np.cos(np.linspace(0, np.pi, fade)))
    if fade_at_end:
        env[n - fade:] = ramp
    else:
        env[:fade] = ramp[::-1]
    return x * env, sat & (env > 0.99)


def add_instrumentation(emg_uv: np.ndarray, p: dict, rng: np.random.Generator, noise_uv: float,
                        art_start_s: float, art_end_s: float) -> tuple[np.ndarray, dict]:
    """Return the recorded signal in ADC units (int16) and facts about what was added."""
    fs = float(p["recording"]["fs"])
    gain = float(p["recording"]["adc_gain_per_uv"])
    nz, a = p["noise"], p["artifacts"]
    n = emg_uv.size
    rail_uv = 32767 / gain
    t = np.arange(n) / fs
    x = emg_uv + rng.normal(0.0, noise_uv, n)

    hum_amp = rng.uniform(*nz["mains_uv"])
    for k, rel in enumerate(nz["mains_harmonics"]):
        x += hum_amp * rel * np.sin(2 * np.pi * nz["mains_hz"] * (2 * k + 1) * t + rng.uniform(0, 2 * np.pi))

    n_start, n_end = int(round(art_start_s * fs)), int(round(art_end_s * fs))
    sat = np.zeros(n, bool)
    art_s, sat_s = _artifact_block(n_start, fs, a, rng, rail_uv, fade_at_end=True)
    art_e, sat_e = _artifact_block(n_end, fs, a, rng, rail_uv, fade_at_end=False)
    x[:n_start] += art_s
    x[n - n_end:] += art_e
    sat[:n_start] |= sat_s
    sat[n - n_end:] |= sat_e

    sos = np.vstack([butter(2, nz["highpass_hz"], "highpass", fs=fs, output="sos"),
                     butter(4, min(nz["lowpass_hz"], 0.45 * fs), "lowpass", fs=fs, output="sos")])
    # causal, like the amplifier's analogue filters (MUAP phases are shifted the way real ones are)
    y = sosfilt(sos, x)
    # residual baseline wander after the high-pass (cable sway, slow needle pressure changes)
    drift_amp = rng.uniform(*nz["drift_uv"])
    f1, f2 = rng.uniform(*nz["drift_hz"], 2)
    y += drift_amp * (0.7 * np.sin(2 * np.pi * f1 * t + rng.uniform(0, 6.3))
                      + 0.3 * np.sin(2 * np.pi * f2 * t + rng.uniform(0, 6.3)))
    # a saturated amplifier shows its rail, not the filtered transient
    y[sat] = np.sign(y[sat] + 1e-9) * rail_uv * 1.01
    # -32768 is WFDB's "invalid sample" code in format 16, so the rails are +-32767
    adc = np.clip(np.rint(y * gain), -32767, 32767).astype(np.int16)
    clipped = float(np.mean(np.abs(adc) == 32767))
    return adc, {"hum_uv": hum_amp, "drift_uv": drift_amp, "clipped_fraction": clipped}
