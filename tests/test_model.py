"""nEMGNet architecture: the paper's layer shapes, parameter count and cost; width presets."""
import math

import pytest
import torch

from nemg.model import (PRESETS, NEMGNet, PairMaxPool1d, build_model, count_parameters, feature_length,
                        forward_flops, resolve_size)

# (channels, length) after each entry of NEMGNet.features for a 1 x 4000 input (PAPER.md)
PAPER_SHAPES = [
    (64, 1999), (64, 999), (64, 499), (64, 499),  # blocks 1-3 (stride 2) + residual stage
    (128, 498), (128, 498),  # block 4 + stage
    (256, 497), (256, 497),
    (512, 496), (512, 496),
    (1024, 495), (1024, 495),  # block 7 + stage -> flatten 1024 x 495
]


def test_full_width_shapes_and_parameter_count():
    with torch.device("meta"):  # the paper's network without allocating its 1.2 GB of weights
        model = NEMGNet()
        x = torch.empty(2, 1, 4000)
        for layer, (c, length) in zip(model.features, PAPER_SHAPES, strict=True):
            x = layer(x)
            assert tuple(x.shape) == (2, c, length)
        assert tuple(model.head(x).shape) == (2, 3)
    assert model.flat_features == 1024 * 495 == 506880
    fc = [m for m in model.head if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in fc] == [(506880, 512), (512, 256), (256, 64), (64, 16), (16, 3)]
    assert all(isinstance(model.head[i], torch.nn.LeakyReLU) for i in (2, 4, 6, 8))
    assert fc[0].weight.numel() + fc[0].bias.numel() == 259_523_072  # "the first FC layer alone ~260 M"
    assert count_parameters(model) == 289_775_619
    n_res_units = sum(type(m).__name__ == "ResidualUnit" for m in model.modules())
    n_convs = sum(isinstance(m, torch.nn.Conv1d) for m in model.modules())
    assert (n_res_units, n_convs) == (10, 7 + 20)  # 5 stages x 2 units; 7 block convs + 2 per unit


@pytest.mark.parametrize("stride,length", [(1, 1999), (1, 8), (2, 499), (2, 62), (2, 9)])
def test_the_cpu_pool_gives_max_pool1d_values_and_gradients_bit_for_bit(stride, length):
    torch.manual_seed(length)
    x = torch.relu(torch.randn(3, 4, length))
    # ties: ReLU's zeros, and equal positive samples (a clipped, saturated stretch) where max_pool1d sends the
    # gradient to the first sample of a window, never half to each
    x[0, :, 2:6] = 0.75
    x[1, 1, :] = 0.0
    stock, fast = x.clone().requires_grad_(), x.clone().requires_grad_()
    y_stock = torch.nn.functional.max_pool1d(stock, 2, stride)
    y_fast = PairMaxPool1d(stride)(fast)
    assert y_fast.grad_fn is not None and "PairMax" in type(y_fast.grad_fn).__name__  # the fast path ran
    grad = torch.randn_like(y_stock)
    grad[0, 0, :3] = -0.0  # max_pool1d accumulates into zeros: a -0 gradient leaves +0
    y_stock.backward(grad)
    y_fast.backward(grad)
    assert torch.equal(y_fast, y_stock)
    assert torch.equal(fast.grad, stock.grad)
    assert torch.equal(fast.grad.signbit(), stock.grad.signbit())
    with torch.no_grad():  # inference: plain maxima, no mask kept
        assert torch.equal(PairMaxPool1d(stride)(x), y_stock.detach())
    pool = PairMaxPool1d(stride)
    assert isinstance(pool, torch.nn.MaxPool1d) and (pool.kernel_size, pool.stride) == (2, stride)
    with pytest.raises(RuntimeError, match="output size"):  # not an empty map: the stock error
        pool(torch.ones(1, 2, 1))


def test_flops_match_the_paper_estimate():
    total = forward_flops()
    assert total == pytest.approx(30e9, rel=0.03)  # PAPER.md: ~30 GFLOP per segment forward
    stage_1024 = 4 * 2 * 1024 * 1024 * 5 * 495  # 2 units x 2 convs, k5, length 495
    assert 0.65 < stage_1024 / total < 0.72  # "~70 % of it in the 1024-channel residual stage"


@pytest.mark.parametrize("n", [4000, 1000, 256])
def test_feature_length_matches_the_network(n):
    model = NEMGNet(n_samples=n, width=1 / 64, head_width=1 / 16)
    assert model.features(torch.zeros(2, 1, n)).shape[-1] == feature_length(n)
    assert feature_length(4000) == 495


def test_narrow_model_runs_forward_and_backward():
    model = build_model({"preset": "tiny"}, n_samples=512)
    assert model.channels == (1, 2, 4, 8, 16)
    out = model(torch.randn(4, 512))  # [B, L] accepted too
    assert out.shape == (4, 3)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("n", [4000, 1000, 256])
def test_deep_stride_and_gap_head(n):
    """The CPU preset's deviations: stride-2 pooling in blocks 4-7 shortens the map, GAP makes the head width-only."""
    model = build_model({"preset": "cpu"}, n_samples=n)
    assert model.channels == (8, 16, 32, 64, 128)  # a stem of 8 channels
    feats = model.features(torch.zeros(2, 1, n))
    assert feats.shape[-1] == feature_length(n, deep_stride=2)
    assert model.flat_features == 128  # global average pooling: independent of the input length
    assert model(torch.randn(3, 1, n)).shape == (3, 3)
    assert feature_length(4000, deep_stride=2) == 31
    # stride 2 with a flatten head: the head sees the shortened map
    flat = NEMGNet(n_samples=n, width=1 / 8, head_width=1 / 8, deep_stride=2, head="flatten")
    assert flat.flat_features == 128 * feature_length(n, deep_stride=2)


@pytest.mark.parametrize("n", [4000, 1000, 512])
def test_stem_pool_stride_halves_every_later_map_and_rebuilds_from_its_checkpoint_keys(n):
    """``stem_pool_stride: 2``: block 1's max-pool takes every other pair, so every later map is half as long
    (the cpu preset's last map 31 -> 15 samples at 4000) and the convolutions cost about half; the weights are the
    same tensors, so only the size keys tell the layouts apart, and older keys rebuild the paper's stride 1."""
    from nemg.model import model_from_size

    size = resolve_size({"preset": "cpu", "stem_pool_stride": 2})
    net = build_model(size, n_samples=n)
    assert net.features[0][3].stride == 2 and all(b[3].stride == 1 for b in net.features[1:3])
    assert net.features(torch.zeros(2, 1, n)).shape[-1] == feature_length(n, 2, stem_pool_stride=2)
    assert feature_length(4000, 2, stem_pool_stride=2) == 15
    flat = NEMGNet(n_samples=n, width=1 / 64, head_width=1 / 16, stem_pool_stride=2)
    assert flat.features(torch.zeros(2, 1, n)).shape[-1] == feature_length(n, stem_pool_stride=2)
    assert flat(torch.randn(2, 1, n)).shape == (2, 3)
    full = forward_flops(4000, **resolve_size({"preset": "cpu"}))
    assert 0.45 < forward_flops(4000, **size) / full < 0.56
    assert count_parameters(net) == count_parameters(build_model({"preset": "cpu"}))
    assert model_from_size(size, n).stem_pool_stride == 2
    assert model_from_size({k: v for k, v in size.items() if k != "stem_pool_stride"}, n).stem_pool_stride == 1
    for bad in (0, 3):
        with pytest.raises(ValueError, match="stem_pool_stride"):
            resolve_size({"stem_pool_stride": bad})


def test_gapmax_head_pools_each_channel_by_its_mean_and_its_maximum():
    """``head: gapmax`` feeds the head each channel's mean over time and then its maximum: a single large response
    that the mean dilutes moves the second half only, and the head stays independent of the input length."""
    from nemg.model import MeanMaxPool

    x = torch.zeros(1, 2, 31)
    x[0, 0, 5] = 31.0  # one large response in a quiet channel
    x[0, 1] = 1.0  # a feature active everywhere
    assert MeanMaxPool()(x).tolist() == [[1.0, 1.0, 31.0, 1.0]]
    for n in (4000, 1000):
        model = build_model({"preset": "cpu", "head": "gapmax"}, n_samples=n)
        assert model.flat_features == 256
        assert model(torch.randn(3, 1, n)).shape == (3, 3)
    # only the first FC layer widens: 128 more inputs x 64 units
    assert count_parameters(build_model({"preset": "cpu", "head": "gapmax"})) == 484_443 + 128 * 64
    assert resolve_size({"preset": "cpu", "head": "gapmax"})["head"] == "gapmax"


def test_min_channels_widens_only_the_stages_below_the_floor():
    """``min_channels`` is a floor on every convolution's channels: at 16 the cpu preset's stem (8 channels) and
    its residual stage widen, every later stage keeps its width; older size keys rebuild the narrow stem."""
    from nemg.model import model_from_size

    wide = build_model({"preset": "cpu", "min_channels": 16})
    assert wide.channels == (16, 16, 32, 64, 128)
    assert wide.features[0][0].out_channels == 16 and wide.features[3][0].body[0].in_channels == 16
    assert wide(torch.randn(2, 1, 4000)).shape == (2, 3)
    size = resolve_size({"preset": "cpu", "min_channels": 16})
    cpu = resolve_size({"preset": "cpu"})
    assert forward_flops(4000, **cpu) < forward_flops(4000, **size) < 1.25 * forward_flops(4000, **cpu)
    assert model_from_size(size, 4000).channels == (16, 16, 32, 64, 128)
    old = {k: v for k, v in cpu.items() if k != "min_channels"}
    assert model_from_size(old, 4000).channels == (8, 16, 32, 64, 128)
    assert build_model({"preset": "cpu", "min_channels": 200, "max_channels": 200}).channels == (200,) * 5
    with pytest.raises(ValueError, match="min_channels"):
        resolve_size({"min_channels": 0})
    with pytest.raises(ValueError, match="above max_channels"):
        resolve_size({"min_channels": 64, "max_channels": 32})


def test_cpu_preset_is_far_cheaper_per_segment_than_its_paper_layout():
    cpu = resolve_size({"preset": "cpu"})
    same_width_paper_layout = {**cpu, "deep_stride": 1, "head": "flatten"}
    assert forward_flops(4000, **cpu) * 8 < forward_flops(4000, **same_width_paper_layout)


def test_presets_and_overrides():
    none = {"max_channels": None, "min_channels": None, "log_input_uv": None, "stem_pool_stride": 1,
            "rms_to_head": False, "head_dropout": 0.0}
    assert resolve_size({}) == {**PRESETS["paper"], **none} == {
        "width": 1.0, "head_width": 1.0, "deep_stride": 1, "head": "flatten", **none}
    assert resolve_size({"preset": "cpu"}) == {"width": 1 / 8, "head_width": 1 / 8, "deep_stride": 2, "head": "gap",
                                               **none}
    assert resolve_size({"preset": "small", "width": 0.25}) == {"width": 0.25, "head_width": 1 / 8,
                                                                "deep_stride": 1, "head": "flatten", **none}
    assert resolve_size({"preset": "paper", "head": "gap"})["head"] == "gap"
    with pytest.raises(ValueError, match="unknown preset"):
        resolve_size({"preset": "huge"})
    with pytest.raises(ValueError, match="widht"):
        resolve_size({"widht": 0.5})
    with pytest.raises(ValueError, match="deep_stride"):
        resolve_size({"deep_stride": 3})
    with pytest.raises(ValueError, match="head"):
        resolve_size({"head": "attention"})
    assert count_parameters(build_model({"preset": "cpu"})) == 484_443
    assert count_parameters(build_model({"preset": "small"})) == 1_046_599
    assert count_parameters(build_model({"preset": "tiny"})) == 262_059


def test_max_channels_caps_every_convolution_and_old_checkpoints_still_load():
    """``max_channels`` narrows only the stages above the cap (the cpu preset's block 7: 128 -> 64 channels);
    a checkpoint's size keys written before the key existed rebuild the uncapped network they were trained as."""
    from nemg.model import model_from_size

    capped = build_model({"preset": "cpu", "max_channels": 64})
    assert capped.channels == (8, 16, 32, 64, 64)
    assert capped.flat_features == 64
    assert capped(torch.randn(2, 1, 4000)).shape == (2, 3)
    size = resolve_size({"preset": "cpu", "max_channels": 64})
    assert forward_flops(4000, **size) < forward_flops(4000, **resolve_size({"preset": "cpu"}))
    assert count_parameters(capped) < count_parameters(build_model({"preset": "cpu"}))
    assert model_from_size(size, 4000).channels == (8, 16, 32, 64, 64)
    old = {"preset": "cpu", "width": 1 / 8, "head_width": 1 / 8, "deep_stride": 2, "head": "gap"}
    assert model_from_size(old, 4000).channels == (8, 16, 32, 64, 128)
    net = build_model({"preset": "cpu"})
    model_from_size(old, 4000).load_state_dict(net.state_dict())  # same layout, strict load
    with pytest.raises(ValueError, match="max_channels"):
        resolve_size({"max_channels": 0})


def test_log_input_compresses_amplitude_keeps_its_order_and_survives_the_checkpoint_round_trip():
    """``log_input_uv``: sign(x) log(1 + |x| / s) before the first convolution, a map without parameters, so the
    layers, FLOPs and a raw-input network's weights are unchanged; the size keys rebuild it (older ones without
    the key rebuild the raw-input network they were trained as)."""
    from nemg.model import log_compress, model_from_size

    x = torch.tensor([-5000.0, -20.0, -1.0, 0.0, 1.0, 20.0, 200.0, 5000.0])
    y = log_compress(x, 20.0)
    assert torch.all(y[1:] > y[:-1])  # strictly increasing: the order of amplitudes is kept
    assert torch.allclose(y, -log_compress(-x, 20.0))  # odd: polarity kept
    assert y[5].item() == pytest.approx(math.log(2.0))
    assert y[6].item() == pytest.approx(math.log(11.0))
    assert y[2].item() == pytest.approx(-1 / 20, rel=0.03)  # ~linear well below the scale
    # a gain becomes an offset above the scale: 10x the amplitude adds ~log(10)
    assert (log_compress(torch.tensor(50_000.0), 20.0) - y[-1]).item() == pytest.approx(math.log(10), abs=0.01)

    size = resolve_size({"preset": "cpu", "log_input_uv": 20})
    assert size["log_input_uv"] == 20.0
    net, raw = build_model(size), build_model({"preset": "cpu"})
    assert count_parameters(net) == count_parameters(raw)
    assert forward_flops(4000, **size) == forward_flops(4000, **resolve_size({"preset": "cpu"}))
    raw.load_state_dict(net.state_dict())
    seg = torch.randn(3, 1, 4000) * 300
    net.eval(), raw.eval()
    with torch.no_grad():
        assert torch.allclose(net(seg), raw(log_compress(seg, 20.0)))
        assert not torch.allclose(net(seg), raw(seg))
        rebuilt = model_from_size(size, 4000)
        rebuilt.load_state_dict(net.state_dict())
        rebuilt.eval()
        assert torch.equal(rebuilt(seg), net(seg))
    assert model_from_size({k: v for k, v in size.items() if k != "log_input_uv"}, 4000).log_input_uv is None
    for bad in (0, -5):
        with pytest.raises(ValueError, match="log_input_uv"):
            resolve_size({"log_input_uv": bad})


def test_rms_to_head_reads_the_waveform_at_unit_rms_and_passes_the_level_as_one_head_input():
    """``rms_to_head``: the convolutions see each segment divided by its RMS, the head's first FC layer gets the
    segment's log RMS as one extra input. So a gain reaches the scores only through that input: with its weight
    zeroed the network is gain-invariant; with it, the level still decides (the diagnostic cue is not erased)."""
    from nemg.model import RMS_REF_UV, model_from_size, split_amplitude

    seg = torch.randn(3, 1, 4000) * 300
    unit, log_rms = split_amplitude(seg)
    assert torch.allclose(unit.pow(2).mean(-1), torch.ones(3, 1), atol=1e-5)
    assert log_rms.shape == (3, 1)
    assert torch.allclose(log_rms.exp() * RMS_REF_UV, seg.pow(2).mean(-1).sqrt(), rtol=1e-5)
    assert torch.isfinite(split_amplitude(torch.zeros(1, 1, 4000))[1]).all()  # a silent segment stays finite

    size = resolve_size({"preset": "cpu", "rms_to_head": True})
    net, raw = build_model(size), build_model({"preset": "cpu"})
    assert count_parameters(net) == count_parameters(raw) + net.head[net._n_pool].out_features
    assert forward_flops(4000, **size) > forward_flops(4000, **resolve_size({"preset": "cpu"}))
    net.eval()
    with torch.no_grad():
        assert not torch.allclose(net(seg), net(seg * 4), atol=1e-4)
        first = net.head[net._n_pool]
        first.weight[:, -1] = 0  # cut the level's input: what is left cannot see the gain
        assert torch.allclose(net(seg), net(seg * 4), atol=1e-4)
        rebuilt = model_from_size(size, 4000)
        rebuilt.load_state_dict(net.state_dict())
        rebuilt.eval()
        assert torch.equal(rebuilt(seg), net(seg))
    assert model_from_size({k: v for k, v in size.items() if k != "rms_to_head"}, 4000).rms_to_head is False
    for head in ("flatten", "gapmax"):
        other = build_model({"preset": "tiny", "head": head, "rms_to_head": True})
        loss = other(seg).sum()
        loss.backward()
        assert other.head[other._n_pool].in_features == other.flat_features + 1
    with pytest.raises(ValueError, match="cannot be combined"):
        resolve_size({"rms_to_head": True, "log_input_uv": 20})
    with pytest.raises(ValueError, match="rms_to_head"):
        resolve_size({"rms_to_head": "yes"})


@pytest.mark.parametrize("rms_to_head", [False, True])
def test_head_dropout_drops_pooled_features_in_training_only_and_adds_no_weights(rms_to_head):
    from nemg.model import model_from_size

    size = resolve_size({"preset": "cpu", "head_dropout": 0.5, "rms_to_head": rms_to_head})
    torch.manual_seed(0)
    net = build_model(size)
    plain = build_model({**size, "head_dropout": 0.0})
    assert plain.head_dropout is None and net.head_dropout.p == 0.5
    # no parameters or buffers of its own: checkpoints (a pretrained start, a bundle) load either way
    assert net.state_dict().keys() == plain.state_dict().keys()
    plain.load_state_dict(net.state_dict())
    seg = torch.randn(4, 1, 4000) * 200
    net.eval(), plain.eval()
    with torch.no_grad():
        assert torch.equal(net(seg), plain(seg))  # scoring is the network without dropout
    net.train()
    seen = {}
    net.head[net._n_pool].register_forward_pre_hook(lambda m, args: seen.update(x=args[0].detach()))
    net(seg)
    dropped = seen["x"] == 0
    assert 0.3 < dropped.float().mean() < 0.7  # about half of the first FC layer's inputs
    assert not torch.equal(net(seg), net(seg))  # a fresh mask per pass
    rebuilt = model_from_size(size, 4000)
    assert rebuilt.head_dropout.p == 0.5
    assert model_from_size({k: v for k, v in size.items() if k != "head_dropout"}, 4000).head_dropout is None
    for bad in (1.0, -0.1):
        with pytest.raises(ValueError, match="head_dropout"):
            resolve_size({"preset": "cpu", "head_dropout": bad})
