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
units each); ``width = head_width = 1`` is the paper's network. The CPU preset shrinks both: at small
widths the ~C x 495 x 512 first FC layer and its Adam update dominate a CPU step. The residual unit has no
activation after the addition, as in the paper's description and the released code.
"""
from __future__ import annotations

import torch
from torch import nn

CLASSES = ("normal", "myopathy", "neuropathy")

# Named model sizes; a config gives ``preset`` and/or explicit ``width`` / ``head_width``.
PRESETS = {
    "paper": {"width": 1.0, "head_width": 1.0},  # the published network: 290 M parameters, 30 GFLOP/segment
    "small": {"width": 1 / 32, "head_width": 1 / 8},  # channels 2..32, FC 64-32-8-8: 1.0 M parameters
    "cpu": {"width": 1 / 64, "head_width": 1 / 16},  # channels 1..16, FC 32-16-8-8: 0.26 M, the 2-core default
}

PAPER_CHANNELS = (64, 128, 256, 512, 1024)  # after block 3, 4, 5, 6, 7
STEM_KERNELS = (11, 7, 5)  # blocks 1-3, stride 2
HEAD = (512, 256, 64, 16)  # hidden FC sizes; output layer has len(CLASSES) units


def reduction_block(c_in: int, c_out: int, kernel: int, stride: int) -> nn.Sequential:
    """Conv1d -> BN -> ReLU -> MaxPool1d(2, stride 1); length L -> floor((L - 1) / stride) + 1 - 1."""
    return nn.Sequential(
        nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=kernel // 2),
        nn.BatchNorm1d(c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool1d(kernel_size=2, stride=1),
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


def feature_length(n_samples: int) -> int:
    """Length of the last feature map for an input of ``n_samples`` (495 for 4000)."""
    length = n_samples
    for k in STEM_KERNELS:  # stride-2 conv with padding k // 2, then max-pool (2, stride 1)
        length = (length + 2 * (k // 2) - k) // 2 + 1 - 1
    return length - 4  # blocks 4-7: 'same' conv, each max-pool removes one sample


def resolve_size(model_cfg: dict | None = None) -> dict:
    """``{"width", "head_width"}`` from a ``model:`` config: the preset's values, then explicit keys."""
    cfg = dict(model_cfg or {})
    unknown = sorted(set(cfg) - {"preset", "width", "head_width"})
    if unknown:
        raise ValueError(f"model config: unknown key(s) {unknown}; known: preset, width, head_width")
    preset = cfg.get("preset") or "paper"
    if preset not in PRESETS:
        raise ValueError(f"model config: unknown preset {preset!r}; known: {sorted(PRESETS)}")
    size = dict(PRESETS[preset])
    size.update({k: float(cfg[k]) for k in ("width", "head_width") if cfg.get(k) is not None})
    return size


class NEMGNet(nn.Module):
    def __init__(self, n_samples: int = 4000, width: float = 1.0, head_width: float = 1.0,
                 n_classes: int = len(CLASSES)):
        super().__init__()
        c = [max(1, round(ch * width)) for ch in PAPER_CHANNELS]
        hidden = [max(8, round(h * head_width)) for h in HEAD]
        self.n_samples, self.width, self.head_width, self.channels = n_samples, width, head_width, tuple(c)
        self.features = nn.Sequential(
            reduction_block(1, c[0], STEM_KERNELS[0], 2),  # [B, c0, 1999]
            reduction_block(c[0], c[0], STEM_KERNELS[1], 2),  # [B, c0, 999]
            reduction_block(c[0], c[0], STEM_KERNELS[2], 2),  # [B, c0, 499]
            residual_stage(c[0]),
            reduction_block(c[0], c[1], 3, 1),  # [B, c1, 498]
            residual_stage(c[1]),
            reduction_block(c[1], c[2], 3, 1),  # [B, c2, 497]
            residual_stage(c[2]),
            reduction_block(c[2], c[3], 3, 1),  # [B, c3, 496]
            residual_stage(c[3]),
            reduction_block(c[3], c[4], 3, 1),  # [B, c4, 495]
            residual_stage(c[4]),
        )
        self.flat_features = c[4] * feature_length(n_samples)  # 1024 * 495 = 506880 at full width
        sizes = (self.flat_features, *hidden)  # 506880 -> 512 -> 256 -> 64 -> 16 at full width
        layers: list[nn.Module] = [nn.Flatten(1)]
        for d_in, d_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(d_in, d_out), nn.LeakyReLU()]
        layers.append(nn.Linear(sizes[-1], n_classes))  # logits
        self.head = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:  # [B, L] -> [B, 1, L]
            x = x.unsqueeze(1)
        return self.head(self.features(x))


def build_model(model_cfg: dict | None = None, n_samples: int = 4000) -> NEMGNet:
    """Model from the ``model:`` config section: ``preset`` (paper | small | cpu), ``width``, ``head_width``."""
    return NEMGNet(n_samples=n_samples, **resolve_size(model_cfg))


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
            length -= 1
    return flops, length


def forward_flops(n_samples: int = 4000, width: float = 1.0, head_width: float = 1.0,
                  n_classes: int = len(CLASSES)) -> int:
    """Forward FLOPs per segment (multiply-add = 2 FLOPs) of convolutions and FC layers.

    BatchNorm, ReLU, pooling and additions are left out (< 0.1 % of the total).
    """
    with torch.device("meta"):  # structure only, no memory
        model = NEMGNet(n_samples=n_samples, width=width, head_width=head_width, n_classes=n_classes)
    flops, _ = conv_flops(model.features, n_samples)
    for m in model.head.modules():
        if isinstance(m, nn.Linear):
            flops += 2 * m.in_features * m.out_features
    return flops


def training_flops(n_samples: int = 4000, width: float = 1.0, head_width: float = 1.0) -> int:
    """Forward + backward (input and weight gradients) ~ 3 x forward."""
    return 3 * forward_flops(n_samples, width, head_width)


if __name__ == "__main__":  # python -m nemg.model : shapes and cost of the paper's network
    with torch.device("meta"):
        m = NEMGNet()
        x = torch.empty(2, 1, 4000)
        for i, layer in enumerate(m.features):
            x = layer(x)
            print(f"features[{i:2d}] {type(layer).__name__:<12} -> {tuple(x.shape)}")
        print("logits", tuple(m.head(x).shape))
    print(f"parameters {count_parameters(m):,}; forward {forward_flops() / 1e9:.2f} GFLOP/segment")
