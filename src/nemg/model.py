"""nEMGNet: the residual 1-D CNN of Yoo et al. (2022), read top to bottom like the paper's figure.

    input            [B, 1, 4000]                    one 0.4 s segment at 10 kHz
    7 reduction blocks (Conv1d -> BN -> ReLU -> MaxPool1d(2, stride 1), padding kernel // 2)
      block 1  k11 s2    1 -> 64     [B,   64, 1999]
      block 2  k7  s2   64 -> 64     [B,   64,  999]
      block 3  k5  s2   64 -> 64     [B,   64,  499]   + residual stage (64)
      block 4  k3  s1   64 -> 128    [B,  128,  498]   + residual stage (128)
      block 5  k3  s1  128 -> 256    [B,  256,  497]   + residual stage (256)
      block 6  k3  s1  256 -> 512    [B,  512,  496]   + residual stage (512)
      block 7  k3  s1  512 -> 1024   [B, 1024,  495]   + residual stage (1024)
    each residual stage: 2 units of  x + BN(Conv_k5(ReLU(BN(Conv_k5(x)))))   (length and width kept)
    head: flatten [B, 1024 * 495 = 506880] -> FC 512 -> 256 -> 64 -> 16 -> 3, LeakyReLU between
    output: logits [B, 3] (softmax applied by the loss / at prediction time)

Class order everywhere: normal, myopathy, neuropathy.

``width`` multiplies every convolution's channel count and ``head_width`` the hidden FC sizes (at least 8
units each); ``width = head_width = 1`` is the paper's network. ``max_channels`` caps every convolution's
channels and ``min_channels`` sets a floor under them (null = none, the paper); ``log_input_uv`` compresses
the input's amplitude above that many µV (null = the raw signal, the paper); ``rms_to_head`` feeds the
convolutions each segment at unit RMS and the head its log RMS as one more input (false = the paper);
``head_dropout`` drops that share of the pooled features before the first FC layer while training (0 = the paper).
``deep_stride`` (max-pool stride of blocks 4-7), ``stem_pool_stride`` (block 1's max-pool stride: 2 halves every
later map) and ``head`` (flatten | gap | gapmax) are nemg switches, off in the paper preset; the CPU preset uses
deep stride 2 and global average pooling (docs/training.md, "The CPU recipe"). The residual unit has no
activation after the addition, as in the paper's description and the released code.
"""
from __future__ import annotations

import torch
from torch import nn

from nemg.config import section_defaults

from .labels import CLASSES

# Named models; a config gives ``preset`` and/or explicit keys, which override the preset's values.
# ``deep_stride`` (max-pool stride of blocks 4-7) and ``head`` (flatten | gap | gapmax) are nemg deviations from the
# paper, off in the paper preset: the paper's blocks 4-7 keep the length at ~495 samples, which is where a
# narrow network spends its CPU time, and its flatten head ties every class score to fixed time positions of
# a stationary signal (docs/training.md, "The CPU recipe").
PRESETS = {
    # the published network: 290 M parameters, 30 GFLOP/segment (a GPU job)
    "paper": {"width": 1.0, "head_width": 1.0, "deep_stride": 1, "head": "flatten"},
    # the CPU default: stem of 8 channels (8..128), pooling stride 2 in blocks 4-7, global average pooling
    # before a 64-32-8-8 head: 0.48 M parameters, 47 MFLOP per segment (the same width in the paper's layout:
    # 466 MFLOP)
    "cpu": {"width": 1 / 8, "head_width": 1 / 8, "deep_stride": 2, "head": "gap"},
    # the paper's layout shrunk (earlier CPU stand-ins, kept for the ablation in docs/training.md)
    "small": {"width": 1 / 32, "head_width": 1 / 8, "deep_stride": 1, "head": "flatten"},
    "tiny": {"width": 1 / 64, "head_width": 1 / 16, "deep_stride": 1, "head": "flatten"},
}
MODEL_KEYS = ("preset", "width", "head_width", "deep_stride", "head", "max_channels", "min_channels",
              "log_input_uv", "stem_pool_stride", "rms_to_head", "head_dropout")
HEADS = ("flatten", "gap", "gapmax")

PAPER_CHANNELS = (64, 128, 256, 512, 1024)  # after block 3, 4, 5, 6, 7
STEM_KERNELS = (11, 7, 5)  # blocks 1-3, stride 2
HEAD = (512, 256, 64, 16)  # hidden FC sizes; output layer has len(CLASSES) units


# log RMS of a segment is centred here (µV): the head's extra input lies within about ±3 for 5 µV-2 mV segments.
RMS_REF_UV = 100.0


def split_amplitude(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A segment at unit RMS and its log RMS: ``(x / rms, log(rms / RMS_REF_UV))``, shapes ``[B, 1, L]``, ``[B, 1]``.

    The convolutions then read the waveform's shape (a potential's height against the segment's own level, its
    duration, phases, firing pattern), the same for a patient at any recording gain, while the segment's overall
    level, the main diagnostic cue, reaches the head as one number on a log scale (as in the QEMG features) instead
    of scaling every activation of a near-homogeneous ReLU trunk. 0.01 µV floors silent (zero-padded) segments.
    """
    rms = x.pow(2).mean(dim=-1, keepdim=True).sqrt().clamp_min(0.01)
    return x / rms, torch.log(rms / RMS_REF_UV).flatten(1)


def log_compress(x: torch.Tensor, scale_uv: float) -> torch.Tensor:
    """sign(x) * log(1 + |x| / scale): linear below ``scale_uv``, logarithmic above.

    A ReLU network with fixed BatchNorm statistics is close to positively homogeneous, so a patient recorded
    at twice the gain gets roughly twice the logits: raw amplitude, which spans orders of magnitude between
    patients and amplifiers, dominates every score. Compressed, a gain becomes an offset of log(gain) for the
    large potentials, as in the QEMG baseline's log1p features; the order of amplitudes, the diagnostic cue, is
    kept (the map is strictly increasing), the waveform below the scale is untouched. Measured on Messekher
    with two seeds, it did not help (docs/training.md), so every shipped config leaves it off.
    """
    return torch.sign(x) * torch.log1p(x.abs() / scale_uv)


def _pair_slices(x: torch.Tensor, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first and second sample of every 2-sample pooling window (views of ``x``, no copy)."""
    n = (x.shape[-1] - 2) // stride + 1
    return x[..., 0:(n - 1) * stride + 1:stride], x[..., 1:(n - 1) * stride + 2:stride]


class _PairMaxCPU(torch.autograd.Function):
    """max over 2-sample windows with max_pool1d's gradient: all of it to the first of tied samples."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, stride: int) -> torch.Tensor:
        a, b = _pair_slices(x, stride)
        ctx.save_for_backward(a >= b)  # 1 byte per window where max_pool1d keeps an int64 index
        ctx.stride, ctx.shape = stride, x.shape
        return torch.maximum(a, b)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (first,) = ctx.saved_tensors
        to_first = grad * first.to(grad.dtype)  # a float mask: torch.where on a bool mask is ~20x slower on CPU
        to_second = grad - to_first  # g - g = +0, g - 0 = g: exact
        out = grad.new_zeros(ctx.shape)
        # accumulated into zeros like max_pool1d's backward (0 + -0 = +0), so the gradient is the same bit for bit
        a, b = _pair_slices(out, ctx.stride)
        a += to_first
        b += to_second
        return out, None


class PairMaxPool1d(nn.MaxPool1d):
    """nn.MaxPool1d(2, stride) with a faster CPU path, the same values and gradients bit for bit.

    On the CPU, max_pool1d computes and stores an int64 index per window in a scalar loop: 14 % of a cpu-preset
    training step on one Zen 4 core, its stride-1 stem pools the most. Two strided views and torch.maximum give
    the same maxima; the custom backward sends each window's gradient where max_pool1d does (docs/training.md,
    "The default training stage"). CUDA, torch.compile and export tracing keep the stock operator, and so does
    an input too short for one window (its error message).
    """

    def __init__(self, stride: int):
        super().__init__(kernel_size=2, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # tracing first: under torch.jit.trace the length test would be a traced tensor (a TracerWarning)
        if (torch.jit.is_tracing() or torch.jit.is_scripting() or torch.compiler.is_compiling()
                or x.device.type != "cpu" or x.shape[-1] < 2):
            return super().forward(x)
        if torch.is_grad_enabled() and x.requires_grad:
            return _PairMaxCPU.apply(x, self.stride)
        return torch.maximum(*_pair_slices(x, self.stride))


def reduction_block(c_in: int, c_out: int, kernel: int, stride: int, pool_stride: int = 1) -> nn.Sequential:
    """Conv1d -> BN -> ReLU -> MaxPool1d(2, pool_stride); the paper's pool stride is 1 (drops one sample)."""
    return nn.Sequential(
        nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=kernel // 2),
        nn.BatchNorm1d(c_out),
        nn.ReLU(inplace=True),
        PairMaxPool1d(pool_stride),
    )


class ResidualUnit(nn.Module):
    """x + BN(Conv_k5(ReLU(BN(Conv_k5(x))))) at constant width and length."""

    def __init__(self, channels: int, kernel: int = 5):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(channels, channels, kernel, padding=kernel // 2),
            nn.BatchNorm1d(channels),
            nn.ReLU(inplace=True),
            nn.Conv1d(channels, channels, kernel, padding=kernel // 2),
            nn.BatchNorm1d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def residual_stage(channels: int, n_units: int = 2) -> nn.Sequential:
    return nn.Sequential(*[ResidualUnit(channels) for _ in range(n_units)])


def feature_length(n_samples: int, deep_stride: int = 1, stem_pool_stride: int = 1) -> int:
    """Length of the last feature map for an input of ``n_samples`` (495 for 4000 in the paper's layout)."""
    length = n_samples
    # blocks 1-3: stride-2 conv with padding k // 2, then max-pool (2, stride 1; block 1's: stem_pool_stride)
    for i, k in enumerate(STEM_KERNELS):
        length = (length + 2 * (k // 2) - k) // 2 + 1
        length = (length - 2) // (stem_pool_stride if i == 0 else 1) + 1
    for _ in range(4):  # blocks 4-7: 'same' conv, then max-pool (2, deep_stride)
        length = (length - 2) // deep_stride + 1
    return length


def preset_name(model_cfg: dict | None) -> str:
    """The preset a ``model:`` config builds on (the schema's default when it names none)."""
    return (model_cfg or {}).get("preset") or section_defaults("model")["preset"]


def resolve_size(model_cfg: dict | None = None) -> dict:
    """``{"width", "head_width", "deep_stride", "head", "max_channels", "min_channels", "log_input_uv",
    "stem_pool_stride"}`` from a ``model:`` config: the preset, then explicit keys."""
    cfg = dict(model_cfg or {})
    unknown = sorted(set(cfg) - set(MODEL_KEYS))
    if unknown:
        raise ValueError(f"model config: unknown key(s) {unknown}; known: {', '.join(MODEL_KEYS)}")
    preset = preset_name(cfg)
    if preset not in PRESETS:
        raise ValueError(f"model config: unknown preset {preset!r}; known: {sorted(PRESETS)}")
    size = {"max_channels": None, "min_channels": None, "log_input_uv": None, "stem_pool_stride": 1,
            "rms_to_head": False, "head_dropout": 0.0, **PRESETS[preset]}
    cast = {"width": float, "head_width": float, "deep_stride": int, "head": str, "max_channels": int,
            "min_channels": int, "log_input_uv": float, "stem_pool_stride": int, "rms_to_head": bool,
            "head_dropout": float}
    if cfg.get("rms_to_head") is not None and not isinstance(cfg["rms_to_head"], bool):
        raise ValueError(f"model config: rms_to_head must be true or false, got {cfg['rms_to_head']!r}")
    size.update({k: cast[k](cfg[k]) for k in cast if cfg.get(k) is not None})
    if size["max_channels"] is not None and size["max_channels"] < 1:
        raise ValueError(f"model config: max_channels must be at least 1 (or null), got {size['max_channels']!r}")
    if size["min_channels"] is not None and size["min_channels"] < 1:
        raise ValueError(f"model config: min_channels must be at least 1 (or null), got {size['min_channels']!r}")
    if None not in (size["min_channels"], size["max_channels"]) and size["min_channels"] > size["max_channels"]:
        raise ValueError(f"model config: min_channels ({size['min_channels']}) is above max_channels "
                         f"({size['max_channels']})")
    if size["rms_to_head"] and size["log_input_uv"] is not None:
        raise ValueError("model config: rms_to_head and log_input_uv cannot be combined (the trunk's input is at "
                         "unit RMS, there is no amplitude left to compress)")
    if size["log_input_uv"] is not None and not size["log_input_uv"] > 0:
        raise ValueError(f"model config: log_input_uv must be > 0 µV (or null), got {size['log_input_uv']!r}")
    if size["deep_stride"] not in (1, 2):
        raise ValueError(f"model config: deep_stride must be 1 (paper) or 2, got {size['deep_stride']!r}")
    if size["stem_pool_stride"] not in (1, 2):
        raise ValueError(f"model config: stem_pool_stride must be 1 (paper) or 2, got {size['stem_pool_stride']!r}")
    if size["head"] not in HEADS:
        raise ValueError(f"model config: head must be one of {HEADS}, got {size['head']!r}")
    if not 0 <= size["head_dropout"] < 1:
        raise ValueError(f"model config: head_dropout is a probability in [0, 1), got {size['head_dropout']!r}")
    return size


class MeanMaxPool(nn.Module):
    """[B, C, L] -> [B, 2C]: each channel's mean over time, then its maximum (both position-free).

    The mean says how much of a window a feature covers; the maximum keeps its single largest response, which a
    mean over a window of sparse discharges dilutes (a neuropathic giant potential, a myopathic burst).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(dim=-1), x.amax(dim=-1)], dim=1)


class NEMGNet(nn.Module):
    def __init__(self, n_samples: int = 4000, width: float = 1.0, head_width: float = 1.0,
                 n_classes: int = len(CLASSES), deep_stride: int = 1, head: str = "flatten",
                 max_channels: int | None = None, log_input_uv: float | None = None,
                 min_channels: int | None = None, stem_pool_stride: int = 1, rms_to_head: bool = False,
                 head_dropout: float = 0.0):
        super().__init__()
        self.rms_to_head = bool(rms_to_head)
        # no parameters: a checkpoint loads into the network with or without it
        self.head_dropout = nn.Dropout(float(head_dropout)) if head_dropout else None
        self.log_input_uv = None if log_input_uv is None else float(log_input_uv)
        c = [max(1, round(ch * width)) for ch in PAPER_CHANNELS]
        if max_channels is not None:
            c = [min(ch, int(max_channels)) for ch in c]
        if min_channels is not None:  # a floor: widens the narrow stem and early stages only
            c = [max(ch, int(min_channels)) for ch in c]
        hidden = [max(8, round(h * head_width)) for h in HEAD]
        self.n_samples, self.width, self.head_width, self.channels = n_samples, width, head_width, tuple(c)
        self.deep_stride, self.head_kind, self.max_channels = int(deep_stride), head, max_channels
        self.min_channels, self.stem_pool_stride = min_channels, int(stem_pool_stride)
        ds = self.deep_stride
        self.features = nn.Sequential(
            # stem_pool_stride 2 halves every later map (1000 -> 499 -> 249 ...): a 5-kHz network on the 10-kHz input
            reduction_block(1, c[0], STEM_KERNELS[0], 2, self.stem_pool_stride),  # [B, c0, 1999]
            reduction_block(c[0], c[0], STEM_KERNELS[1], 2),  # [B, c0, 999]
            reduction_block(c[0], c[0], STEM_KERNELS[2], 2),  # [B, c0, 499]
            residual_stage(c[0]),
            reduction_block(c[0], c[1], 3, 1, ds),  # [B, c1, 498]
            residual_stage(c[1]),
            reduction_block(c[1], c[2], 3, 1, ds),  # [B, c2, 497]
            residual_stage(c[2]),
            reduction_block(c[2], c[3], 3, 1, ds),  # [B, c3, 496]
            residual_stage(c[3]),
            reduction_block(c[3], c[4], 3, 1, ds),  # [B, c4, 495]
            residual_stage(c[4]),
        )
        if head == "gap":  # mean over time: one value per channel, position-free
            self.flat_features = c[4]
            layers: list[nn.Module] = [nn.AdaptiveAvgPool1d(1), nn.Flatten(1)]
        elif head == "gapmax":  # mean and max over time: how often a feature fires and its largest response
            self.flat_features = 2 * c[4]
            layers = [MeanMaxPool()]
        elif head == "flatten":
            # 1024 * 495 = 506880 at full width
            self.flat_features = c[4] * feature_length(n_samples, ds, self.stem_pool_stride)
            layers = [nn.Flatten(1)]
        else:
            raise ValueError(f"unknown head {head!r}; expected one of {HEADS}")
        self._n_pool = len(layers)  # the head's pooling / flattening layers, before its first Linear
        # rms_to_head: the segment's log RMS joins the pooled features as one more input of the first FC layer
        sizes = (self.flat_features + int(self.rms_to_head), *hidden)  # 506880 -> 512 -> ... -> 16 at full width
        for d_in, d_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(d_in, d_out), nn.LeakyReLU()]
        layers.append(nn.Linear(sizes[-1], n_classes))  # logits
        self.head = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:  # [B, L] -> [B, 1, L]
            x = x.unsqueeze(1)
        if self.log_input_uv is not None:
            x = log_compress(x, self.log_input_uv)
        log_rms = None
        if self.rms_to_head:
            x, log_rms = split_amplitude(x)
        pooled = self.head[:self._n_pool](self.features(x))
        if log_rms is not None:
            pooled = torch.cat([pooled, log_rms.to(pooled.dtype)], dim=1)
        if self.head_dropout is not None:
            pooled = self.head_dropout(pooled)
        return self.head[self._n_pool:](pooled)


def build_model(model_cfg: dict | None = None, n_samples: int = 4000) -> NEMGNet:
    """Model from the ``model:`` config section: ``preset`` and the keys that override it (MODEL_KEYS)."""
    return NEMGNet(n_samples=n_samples, **resolve_size(model_cfg))


def model_from_size(size: dict, n_samples: int) -> NEMGNet:
    """The network a checkpoint or bundle describes by its resolved size keys (``resolve_size``'s output).

    Keys added after a checkpoint was written fall back to the layout it was trained with (no channel cap,
    the paper's stride and head), so older best.pt files and bundles still load.
    """
    cap, floor, log_uv = size.get("max_channels"), size.get("min_channels"), size.get("log_input_uv")
    return NEMGNet(n_samples=int(n_samples), width=float(size["width"]), head_width=float(size["head_width"]),
                   deep_stride=int(size.get("deep_stride", 1)), head=str(size.get("head", "flatten")),
                   max_channels=None if cap is None else int(cap),
                   min_channels=None if floor is None else int(floor),
                   log_input_uv=None if log_uv is None else float(log_uv),
                   stem_pool_stride=int(size.get("stem_pool_stride", 1)),
                   rms_to_head=bool(size.get("rms_to_head", False)),
                   head_dropout=float(size.get("head_dropout", 0.0)))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def conv_flops(module: nn.Module, length: int) -> tuple[int, int]:
    """Forward FLOPs of the convolutions in ``module`` for an input of ``length`` samples, and the length out.

    Walks the modules in order, so it follows the feature extractor's shape changes (strided convolutions,
    the stride-1 max-pools that shorten by one sample).
    """
    flops = 0
    for m in module.modules():
        if isinstance(m, nn.Conv1d):
            k, s, p = m.kernel_size[0], m.stride[0], m.padding[0]
            length = (length + 2 * p - k) // s + 1
            flops += 2 * m.in_channels * m.out_channels * k * length
        elif isinstance(m, nn.MaxPool1d):
            length = (length - m.kernel_size) // m.stride + 1
    return flops, length


def forward_flops(n_samples: int = 4000, n_classes: int = len(CLASSES), **size) -> int:
    """Forward FLOPs per segment (multiply-add = 2 FLOPs) of convolutions and FC layers.

    ``size``: NEMGNet's size keywords (``resolve_size``'s output; none = the paper's network). BatchNorm, ReLU,
    pooling, additions and the input's log compression or RMS split are left out (< 0.1 % of the total).
    """
    with torch.device("meta"):  # structure only, no memory
        model = NEMGNet(n_samples=n_samples, n_classes=n_classes, **size)
    flops, _ = conv_flops(model.features, n_samples)
    for m in model.head.modules():
        if isinstance(m, nn.Linear):
            flops += 2 * m.in_features * m.out_features
    return flops


def training_flops(n_samples: int = 4000, **size) -> int:
    """Forward + backward (input and weight gradients) ~ 3 x forward."""
    return 3 * forward_flops(n_samples, **size)


if __name__ == "__main__":  # python -m nemg.model : shapes and cost of the paper's network
    with torch.device("meta"):
        m = NEMGNet()
        x = torch.empty(2, 1, 4000)
        for i, layer in enumerate(m.features):
            x = layer(x)
            print(f"features[{i:2d}] {type(layer).__name__:<12} -> {tuple(x.shape)}")
        print("logits", tuple(m.head(x).shape))
    print(f"parameters {count_parameters(m):,}; forward {forward_flops() / 1e9:.2f} GFLOP/segment")
