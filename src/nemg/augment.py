"""Amplitude-preserving augmentation of training segments (a nemg option, off in the paper's protocol).

The diagnostic cue of needle EMG is largely amplitude (large neuropathic, small myopathic potentials), so no
transform here normalises a segment. Each one models a nuisance that differs between recordings of the same
class:

* ``polarity_flip``: probability of multiplying a segment by -1 (needle side of the fibres, electrode
  reference: the same motor unit appears with either polarity);
* ``gain_jitter``: SD of a log-normal gain factor per segment (0.1 -> about +-10 %: amplifier chain and needle
  distance, far below the 2-3x amplitude ratios between classes);
* ``noise``: SD of additive white noise as a fraction of the segment's own RMS (instrument noise floor);
* ``shift``: random circular shift of up to this fraction of the window (where in the window a discharge
  falls carries no information);
* ``spectral_tilt``: SD, in dB per octave, of a random spectral slope per segment, applied as a zero-phase
  filter whose gain is ``slope * log2(f / f_pivot)`` dB over 0.5-40 % of the sampling rate (50 Hz-4 kHz at the
  pipeline's 10 kHz; flat outside), after which the segment is scaled back to its own RMS. It models the
  amplifier chain's and needle's frequency response, which differs between sites (a Messekher control's
  spectrum is 5-8 dB steeper above 300 Hz than an N2001 control's, docs/external.md), while the segment's
  amplitude, the main cue, is kept exactly;
* ``mixup``: the alpha of a Beta(alpha, alpha) draw ``lam`` per batch; the batch becomes ``lam * x + (1 - lam) *
  x[perm]`` and its loss ``lam * CE(y) + (1 - lam) * CE(y[perm])`` (Zhang et al. 2018). The sum of two needle
  recordings is still a plausible interference pattern, and every mixed window keeps amplitudes between its
  two sources', so the cue is blended, not erased; it is a regulariser for cohorts of a few hundred patients.

Draws come from a torch Generator seeded from the run's seed, so an augmented run stays reproducible and its
state is checkpointed with the run for an exact resume.
"""
from __future__ import annotations

import numpy as np
import torch

from nemg.config import section_defaults


def resolve_augment(cfg: dict | None) -> dict:
    """Full augmentation settings (missing keys: the schema's defaults, all off); unknown keys and out-of-range
    values are errors."""
    cfg = dict(cfg or {})
    out = section_defaults("train.augment")
    unknown = sorted(set(cfg) - set(out))
    if unknown:
        raise ValueError(f"train.augment: unknown key(s) {unknown}; known: {', '.join(out)}")
    out.update({k: float(v) for k, v in cfg.items() if v is not None})
    if not 0 <= out["polarity_flip"] <= 1:
        raise ValueError(f"train.augment.polarity_flip is a probability, got {out['polarity_flip']}")
    if not 0 <= out["shift"] <= 1:
        raise ValueError(f"train.augment.shift is a fraction of the window, got {out['shift']}")
    for k in ("gain_jitter", "noise", "mixup", "spectral_tilt"):
        if out[k] < 0:
            raise ValueError(f"train.augment.{k} must be >= 0, got {out[k]}")
    return out


# the tilt's band as fractions of the sampling rate, and the pivot (its geometric centre, ~450 Hz at 10 kHz): below
# 50 Hz lies movement and mains hum, above 4 kHz the anti-alias roll-off, neither of which a site's chain tilts
TILT_BAND = (0.005, 0.4)


def tilt_gains(slopes_db: torch.Tensor, length: int) -> torch.Tensor:
    """Linear gains [B, length // 2 + 1] of the rfft bins of a ``length``-sample window, one slope (dB/octave) per
    row."""
    f = torch.fft.rfftfreq(length).clamp(*TILT_BAND)
    octaves = torch.log2(f / float(np.sqrt(TILT_BAND[0] * TILT_BAND[1])))
    return torch.pow(10.0, slopes_db.unsqueeze(1) * octaves.unsqueeze(0) / 20.0)


def spectral_tilt(x: torch.Tensor, sd: float, gen: torch.Generator) -> torch.Tensor:
    """``x`` [B, 1, L] filtered with a random slope per segment (SD ``sd`` dB/octave, clipped at 2 SD) and scaled
    back to each segment's RMS."""
    b, _, length = x.shape
    slopes = (sd * torch.randn(b, generator=gen)).clamp(-2 * sd, 2 * sd)
    gains = tilt_gains(slopes, length).to(x.device)
    xf = x.float()
    y = torch.fft.irfft(torch.fft.rfft(xf, dim=2) * gains.unsqueeze(1), n=length, dim=2)
    rms_in = xf.pow(2).mean(dim=2, keepdim=True).sqrt()
    rms_out = y.pow(2).mean(dim=2, keepdim=True).sqrt()
    return (y * (rms_in / rms_out.clamp_min(1e-12))).to(x.dtype)


def is_active(cfg: dict) -> bool:
    return any(float(v) > 0 for v in cfg.values())


def augment_batch(x: torch.Tensor, cfg: dict, gen: torch.Generator) -> torch.Tensor:
    """Augmented copy of a batch ``x`` [B, 1, L] (random numbers drawn on the CPU, then moved)."""
    b, _, length = x.shape
    out = x
    if cfg["shift"] > 0:
        max_shift = int(cfg["shift"] * length)
        shifts = torch.randint(-max_shift, max_shift + 1, (b,), generator=gen)
        idx = (torch.arange(length).unsqueeze(0) - shifts.unsqueeze(1)) % length  # [B, L]
        out = torch.gather(out, 2, idx.unsqueeze(1).to(x.device))
    if cfg["spectral_tilt"] > 0:
        out = spectral_tilt(out, cfg["spectral_tilt"], gen)
    scale = torch.ones(b)
    if cfg["polarity_flip"] > 0:
        scale = torch.where(torch.rand(b, generator=gen) < cfg["polarity_flip"], -scale, scale)
    if cfg["gain_jitter"] > 0:
        scale = scale * torch.exp(cfg["gain_jitter"] * torch.randn(b, generator=gen))
    out = out * scale.view(b, 1, 1).to(x.device, x.dtype)
    if cfg["noise"] > 0:
        rms = out.pow(2).mean(dim=2, keepdim=True).sqrt()
        noise = torch.randn(out.shape, generator=gen).to(x.device, x.dtype)
        out = out + cfg["noise"] * rms * noise
    return out


def mixup_batch(x: torch.Tensor, y: torch.Tensor, alpha: float, gen: torch.Generator):
    """``(lam * x + (1 - lam) * x[perm], y[perm], lam)`` for one batch, ``lam ~ Beta(alpha, alpha)``.

    torch's Beta sampler takes no Generator, so ``lam`` comes from a numpy Generator seeded by a draw of ``gen``:
    every draw of an augmented run stays in ``gen``'s checkpointed state.
    """
    seed = int(torch.randint(0, 2**62, (1,), generator=gen))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    perm = torch.randperm(x.shape[0], generator=gen).to(x.device)
    return lam * x + (1.0 - lam) * x[perm], y[perm], lam
