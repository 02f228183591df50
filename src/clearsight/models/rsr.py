"""The RSR / CID scene-recovery network (``../shared/docs/methods.md`` §1.3): a Res2Net encoder truncated after
``layer3``, a DW-GAN-style attention decoder with skips, the pyramid enhancer and a 7x7 tail.

``forward`` maps an image in [0, 1] to its restoration; ``forward_train`` also returns the pooled
representation ``z`` (GAP of the first decoder block, where the sample weights of the "invariant features"
phase are learned) and that block's feature map (whose covariance the "subspace alignment" phase aligns).

What differs from the released network, and why:

* no ImageNet initialisation (none can be had here): the encoder is trained from scratch on our synthesis,
  which stands in for the ImageNet start (see ``docs/adaptation.md``);
* widths scale with ``planes`` (64 in the paper: encoder outputs 256/512/1024 channels, 28 at full
  resolution); the CPU configuration uses 16 and fewer blocks;
* inputs are padded (reflect) to a multiple of 32 and cropped back, where the released test script
  centre-crops to a multiple of 16 (the enhancer's 32x32 pooling needs at least 32 pixels);
* ``residual=True`` (CPU configuration) adds the input to the output, so that the network starts at the
  identity; the paper's output is the tail's Tanh alone.

Example:
    >>> import torch
    >>> net = RSRNet(RSRConfig.tiny()).eval()
    >>> out = net.forward_train(torch.rand(2, 3, 40, 56))
    >>> tuple(out["image"].shape), tuple(out["z"].shape)
    ((2, 3, 40, 56), (2, 256))
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ._pad import pad_to_multiple

__all__ = ["RSRConfig", "RSRNet", "Bottle2neck", "Res2NetEncoder", "DehazeBlock", "Enhancer"]


@dataclass
class RSRConfig:
    """Sizes of :class:`RSRNet`.

    Attributes:
        planes: base width; the encoder's three stages output ``4, 8, 16 x planes`` channels and the
            decoder reaches full resolution with ``7 * planes / 16`` (a multiple of 16 keeps that whole).
        layers: Bottle2neck blocks in ``layer1..layer3`` (Res2Net-101: 3, 4, 23).
        base_width: Res2Net's ``baseWidth`` (split width = ``planes * base_width / 64``).
        scale: number of hierarchical splits.
        enhancer: channels inside the pyramid enhancer (20 in the paper).
        residual: add the input to the output (see the module notes).
    """

    planes: int = 64
    layers: tuple[int, int, int] = (3, 4, 23)
    base_width: int = 26
    scale: int = 4
    enhancer: int = 20
    residual: bool = False

    @classmethod
    def paper(cls) -> RSRConfig:
        """Res2Net-101-v1b-26w-4s up to ``layer3``, as released (about 49 M parameters)."""
        return cls()

    @classmethod
    def cpu(cls) -> RSRConfig:
        """The configuration we train and ship: a quarter of the width, 2/2/4 blocks."""
        return cls(planes=16, layers=(2, 2, 4), residual=True)

    @classmethod
    def tiny(cls) -> RSRConfig:
        """For tests."""
        return cls(planes=16, layers=(1, 1, 1), enhancer=8, residual=True)


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c)


class Bottle2neck(nn.Module):
    """Res2Net's bottleneck: a 1x1 conv, hierarchical 3x3 convs over ``scale`` channel groups, a 1x1 conv.

    In ``stage`` blocks (the first of a layer) every group is convolved on its own and the last group is
    average-pooled; otherwise each group also receives the previous group's output.
    """

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, base_width: int = 26, scale: int = 4,
                 stage: bool = False) -> None:  # fmt: skip
        super().__init__()
        width = max(1, planes * base_width // 64)
        self.width, self.scale, self.stage = width, scale, stage
        self.conv1 = nn.Conv2d(inplanes, width * scale, 1, bias=False)
        self.bn1 = _bn(width * scale)
        self.convs = nn.ModuleList(nn.Conv2d(width, width, 3, stride, 1, bias=False) for _ in range(scale - 1))
        self.bns = nn.ModuleList(_bn(width) for _ in range(scale - 1))
        self.pool = nn.AvgPool2d(3, stride, 1) if stage else None
        self.conv3 = nn.Conv2d(width * scale, planes * self.expansion, 1, bias=False)
        self.bn3 = _bn(planes * self.expansion)
        self.downsample = None
        if stride != 1 or inplanes != planes * self.expansion:  # v1b: average pool, then a 1x1 conv
            self.downsample = nn.Sequential(
                nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False),
                nn.Conv2d(inplanes, planes * self.expansion, 1, bias=False),
                _bn(planes * self.expansion),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        spx = torch.split(out, self.width, 1)
        parts = []
        sp = spx[0]
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            sp = spx[i] if i == 0 or self.stage else sp + spx[i]
            sp = F.relu(bn(conv(sp)))
            parts.append(sp)
        last = spx[self.scale - 1]
        parts.append(self.pool(last) if self.pool is not None else last)
        out = self.bn3(self.conv3(torch.cat(parts, 1)))
        res = x if self.downsample is None else self.downsample(x)
        return F.relu(out + res)


class Res2NetEncoder(nn.Module):
    """Deep stem (three 3x3 convs, the first with stride 2), max-pool, then ``layer1..layer3``.

    Returns the three layer outputs at 1/4, 1/8 and 1/16 of the input size.
    """

    def __init__(self, planes: int, layers: tuple[int, int, int], base_width: int, scale: int) -> None:
        super().__init__()
        s = planes // 2
        self.stem = nn.Sequential(
            nn.Conv2d(3, s, 3, 2, 1, bias=False), _bn(s), nn.ReLU(inplace=True),
            nn.Conv2d(s, s, 3, 1, 1, bias=False), _bn(s), nn.ReLU(inplace=True),
            nn.Conv2d(s, planes, 3, 1, 1, bias=False), _bn(planes), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )  # fmt: skip
        inplanes = planes
        stages = []
        for k, (n, stride) in enumerate(zip(layers, (1, 2, 2))):
            p = planes * 2**k
            blocks = [Bottle2neck(inplanes, p, stride, base_width, scale, stage=True)]
            inplanes = p * Bottle2neck.expansion
            blocks += [Bottle2neck(inplanes, p, 1, base_width, scale) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x1 = self.layer1(self.stem(x))
        x2 = self.layer2(x1)
        return x1, x2, self.layer3(x2)


class DehazeBlock(nn.Module):
    """FFA-Net's block: conv, ReLU, skip, conv, channel attention, pixel attention, skip."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        r = max(1, dim // 8)
        self.conv1 = nn.Conv2d(dim, dim, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim, dim, 3, 1, 1)
        self.ca = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(dim, r, 1), nn.ReLU(inplace=True),
                                nn.Conv2d(r, dim, 1), nn.Sigmoid())  # fmt: skip
        self.pa = nn.Sequential(nn.Conv2d(dim, r, 1), nn.ReLU(inplace=True), nn.Conv2d(r, 1, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.conv1(x)) + x
        y = self.conv2(y)
        y = y * self.ca(y)
        y = y * self.pa(y)
        return y + x


class Enhancer(nn.Module):
    """The pyramid enhancer: two 3x3 convs, average pools of 32/16/8/4 each squeezed to one channel and
    upsampled back, concatenated, a 3x3 conv and Tanh."""

    def __init__(self, cin: int, cout: int, width: int = 20) -> None:
        super().__init__()
        self.refine1 = nn.Conv2d(cin, width, 3, 1, 1)
        self.refine2 = nn.Conv2d(width, width, 3, 1, 1)
        self.squeeze = nn.ModuleList(nn.Conv2d(width, 1, 1) for _ in range(4))
        self.refine3 = nn.Conv2d(width + 4, cout, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(self.refine1(x), 0.2)
        y = F.leaky_relu(self.refine2(y), 0.2)
        size = y.shape[-2:]
        pyr = [
            F.interpolate(F.leaky_relu(conv(F.avg_pool2d(y, k)), 0.2), size=size, mode="nearest")
            for k, conv in zip((32, 16, 8, 4), self.squeeze)
        ]
        return torch.tanh(self.refine3(torch.cat([*pyr, y], 1)))


class RSRNet(nn.Module):
    """RSR/CID's ``Dehaze`` network. ``config`` (or keyword overrides of :class:`RSRConfig`) sets its size."""

    size_divisor = 32

    def __init__(self, config: RSRConfig | None = None, **overrides) -> None:
        super().__init__()
        cfg = RSRConfig(**{**asdict(config or RSRConfig()), **overrides})
        cfg.layers = tuple(cfg.layers)
        if cfg.planes % 16:
            raise ValueError(f"planes must be a multiple of 16, got {cfg.planes}")
        self.config = cfg
        p = cfg.planes
        self.encoder = Res2NetEncoder(p, cfg.layers, cfg.base_width, cfg.scale)
        c3, c2, c1 = 16 * p, 8 * p, 4 * p
        self.mid = DehazeBlock(c3)
        self.block2 = DehazeBlock(c3 // 4)
        d2 = c3 // 4 + c2
        self.block1 = DehazeBlock(d2 // 4)
        d1 = d2 // 4 + c1
        full = d1 // 16
        self.enhancer = Enhancer(full, full, cfg.enhancer)
        self.tail = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(full, 3, 7))

    def _pad(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        return pad_to_multiple(x, self.size_divisor)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encoder features of an image in [0, 1] (already padded)."""
        return self.encoder(x * 2 - 1)

    def forward_train(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``image`` (B, 3, H, W), ``z`` (B, 16 planes): the pooled representation, ``features``: the map it
        pools."""
        p, h, w = self._pad(x)
        x1, x2, x3 = self.encode(p)
        mid = self.mid(x3)
        z = mid.mean((2, 3))
        y = torch.cat([self.block2(F.pixel_shuffle(mid, 2)), x2], 1)
        y = torch.cat([self.block1(F.pixel_shuffle(y, 2)), x1], 1)
        y = F.pixel_shuffle(F.pixel_shuffle(y, 2), 2)
        out = torch.tanh(self.tail(self.enhancer(y)))
        if self.config.residual:
            out = out + p
        return {"image": out[..., :h, :w], "z": z, "features": mid}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_train(x)["image"]
