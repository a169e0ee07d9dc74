"""Amplitude-preserving augmentation: what each transform may and may not change."""
import pytest
import torch

from nemg.augment import augment_batch, is_active, resolve_augment

OFF = {"polarity_flip": 0.0, "gain_jitter": 0.0, "noise": 0.0, "shift": 0.0}


def batch(b=64, n=400):
    g = torch.Generator().manual_seed(0)
    return torch.randn(b, 1, n, generator=g) * torch.linspace(10, 500, b).view(b, 1, 1)  # µV scale, varied


def gen(seed=1):
    return torch.Generator().manual_seed(seed)


def test_off_by_default_and_validated():
    assert resolve_augment(None) == OFF and not is_active(resolve_augment({}))
    assert is_active(resolve_augment({"noise": 0.1}))
    for bad in ({"flip": 0.5}, {"polarity_flip": 1.5}, {"gain_jitter": -0.1}, {"shift": 2}):
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
