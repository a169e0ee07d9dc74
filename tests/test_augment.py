"""Amplitude-preserving augmentation: what each transform may and may not change."""
import pytest
import torch

from nemg.augment import augment_batch, is_active, mixup_batch, resolve_augment

OFF = {"polarity_flip": 0.0, "gain_jitter": 0.0, "noise": 0.0, "shift": 0.0, "mixup": 0.0, "spectral_tilt": 0.0}


def batch(b=64, n=400):
    g = torch.Generator().manual_seed(0)
    return torch.randn(b, 1, n, generator=g) * torch.linspace(10, 500, b).view(b, 1, 1)  # µV scale, varied


def gen(seed=1):
    return torch.Generator().manual_seed(seed)


def test_off_by_default_and_validated():
    assert resolve_augment(None) == OFF and not is_active(resolve_augment({}))
    assert is_active(resolve_augment({"noise": 0.1}))
    for bad in ({"flip": 0.5}, {"polarity_flip": 1.5}, {"gain_jitter": -0.1}, {"shift": 2}, {"mixup": -1},
                {"spectral_tilt": -1}):
        with pytest.raises(ValueError):
            resolve_augment(bad)


def test_polarity_flip_and_shift_keep_every_amplitude():
    x = batch()
    cfg = resolve_augment({"polarity_flip": 0.5, "shift": 0.5})
    y = augment_batch(x, cfg, gen())
    # the sorted absolute samples of each segment are unchanged: no rescaling, no normalisation
    assert torch.allclose(y.abs().sort(dim=2).values, x.abs().sort(dim=2).values)
    flipped = (y.sum(dim=2) * x.sum(dim=2) < 0).float().mean()
    assert 0.2 < flipped < 0.8
    assert not torch.equal(y.abs(), x.abs())  # shifted in time


def test_gain_jitter_is_small_and_noise_is_relative_to_the_segment():
    x = batch()
    rms = x.pow(2).mean(dim=2).sqrt()
    y = augment_batch(x, resolve_augment({"gain_jitter": 0.1}), gen())
    ratio = y.pow(2).mean(dim=2).sqrt() / rms
    assert ratio.min() > 0.6 and ratio.max() < 1.6 and ratio.std() > 0.02
    # the amplitude ranking across segments survives: the 50x spread of the batch dwarfs the jitter
    assert torch.corrcoef(torch.stack([rms.flatten(), (rms * ratio).flatten()]))[0, 1] > 0.95
    z = augment_batch(x, resolve_augment({"noise": 0.1}), gen())
    rel = (z - x).pow(2).mean(dim=2).sqrt() / rms
    assert torch.allclose(rel, torch.full_like(rel, 0.1), rtol=0.25)


def test_seeded_draws_reproduce():
    x = batch()
    cfg = resolve_augment({"polarity_flip": 0.5, "gain_jitter": 0.1, "noise": 0.05, "shift": 0.5})
    assert torch.equal(augment_batch(x, cfg, gen(3)), augment_batch(x, cfg, gen(3)))
    assert not torch.equal(augment_batch(x, cfg, gen(3)), augment_batch(x, cfg, gen(4)))


def test_mixup_blends_each_window_with_another_and_its_label_with_it():
    x = batch()
    y = torch.arange(x.shape[0]) % 3
    mixed, y_other, lam = mixup_batch(x, y, 0.4, gen(5))
    assert 0.0 <= lam <= 1.0 and mixed.shape == x.shape
    # one permutation explains every window and its second label
    partner = torch.tensor([int(torch.argmin((mixed[i] - lam * x[i] - (1 - lam) * x).pow(2).sum(dim=(1, 2))))
                            for i in range(x.shape[0])])
    assert sorted(partner.tolist()) == list(range(x.shape[0]))
    torch.testing.assert_close(mixed, lam * x + (1 - lam) * x[partner])
    assert torch.equal(y_other, y[partner])
    # the draws are the generator's: the same seed repeats, another one does not
    again = mixup_batch(x, y, 0.4, gen(5))
    assert torch.equal(again[0], mixed) and again[2] == lam
    assert mixup_batch(x, y, 0.4, gen(6))[2] != lam
    # a small alpha keeps most batches close to one of their two sources (Beta(a, a) piles up at 0 and 1)
    g = gen(7)
    lams = torch.tensor([mixup_batch(x[:4], y[:4], 0.1, g)[2] for _ in range(200)])
    assert ((lams < 0.1) | (lams > 0.9)).float().mean() > 0.5
    assert is_active(resolve_augment({"mixup": 0.2}))


def test_spectral_tilt_reshapes_the_spectrum_and_keeps_each_segments_rms():
    from nemg.augment import TILT_BAND, spectral_tilt, tilt_gains
    x = batch(b=256, n=4000)
    y = augment_batch(x, resolve_augment({"spectral_tilt": 2.0}), gen())
    rms_x, rms_y = x.pow(2).mean(dim=2).sqrt(), y.pow(2).mean(dim=2).sqrt()
    torch.testing.assert_close(rms_y, rms_x, rtol=1e-4, atol=0)  # the amplitude cue is untouched
    # the slope is what changes: high over low band power moves by the drawn dB/octave, both ways
    spec_x, spec_y = torch.fft.rfft(x, dim=2).abs().pow(2), torch.fft.rfft(y, dim=2).abs().pow(2)
    f = torch.fft.rfftfreq(4000)
    low, high = (f > 0.01) & (f < 0.02), (f > 0.1) & (f < 0.2)  # 100-200 Hz and 1-2 kHz at 10 kHz
    change_db = 10 * torch.log10((spec_y[..., high].sum(-1) / spec_y[..., low].sum(-1))
                                 / (spec_x[..., high].sum(-1) / spec_x[..., low].sum(-1))).flatten()
    slopes = change_db / 3.32  # the two bands' centres are log2(10) octaves apart
    assert (slopes > 0.5).any() and (slopes < -0.5).any()
    assert slopes.abs().max() <= 4.0 + 0.3 and 1.4 < slopes.std() < 2.6  # clipped at 2 SD, SD about 2
    # flat outside the band; unit gain at the pivot; reproducible draws
    g = tilt_gains(torch.tensor([3.0]), 4000)[0]
    assert torch.all(g[f <= TILT_BAND[0]] == g[0]) and torch.all(g[f >= TILT_BAND[1]] == g[-1])
    pivot = int(torch.argmin((f - (TILT_BAND[0] * TILT_BAND[1]) ** 0.5).abs()))
    assert abs(float(g[pivot]) - 1.0) < 0.01
    assert torch.equal(spectral_tilt(x, 2.0, gen(3)), spectral_tilt(x, 2.0, gen(3)))
    assert torch.equal(augment_batch(x, resolve_augment({}), gen()), x)
