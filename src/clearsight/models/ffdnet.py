"""A denoiser in the FFDNet family with its own noise-level estimator (blind when no level is given).

FFDNet (Zhang, Zuo and Zhang, TIP 2018) denoises at half resolution: the image is split into four
sub-images (pixel unshuffle), a noise-level map is concatenated, a stack of 3x3 convolutions with ReLU
predicts the result, and pixel shuffle restores the size. Ours predicts the noise (the output is
``x - net(x)``), and its stack is made of residual blocks (conv-ReLU-conv plus the identity) instead of
FFDNet's plain convolutions with batch normalisation: without batch norm a plain 12-layer stack barely
learns on the CPU budget here (it stayed near the noisy input's PSNR after 1900 iterations), residual
blocks learn at once and keep every sample of a batch independent. A small convolutional estimator of the
per-pixel noise level lets the network run blind: ``forward(x)`` estimates the map, ``forward(x, sigma)`` takes it
(a number, a ``(B,)`` tensor or a ``(B, 1, H, W)`` map, in [0, 1] units: sigma 25 of 255 is 0.098).

Shape:
    x: :math:`(B, 3, H, W)` in [0, 1]; output the same shape (any H and W: odd sizes are padded).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FFDNet", "FFDNetConfig"]


@dataclass
class FFDNetConfig:
    """Widths and depths of the denoiser and of its noise-level estimator."""

    channels: int = 64
    blocks: int = 5
    est_channels: int = 32
    est_layers: int = 5

    @classmethod
    def cpu(cls) -> FFDNetConfig:
        return cls()

    @classmethod
    def paper(cls) -> FFDNetConfig:  # FFDNet's colour model is 96 channels wide, 12 layers deep
        return cls(channels=96, blocks=5)

    @classmethod
    def fast(cls) -> FFDNetConfig:  # 48 channels, 4 blocks: 0.57 s instead of 1.07 s per 1080p pass on a 2-core EPYC
        return cls(channels=48, blocks=4)

    @classmethod
    def tiny(cls) -> FFDNetConfig:
        return cls(channels=8, blocks=1, est_channels=8, est_layers=2)


def _stack(cin: int, width: int, cout: int, layers: int) -> nn.Sequential:
    mods: list[nn.Module] = [nn.Conv2d(cin, width, 3, padding=1), nn.ReLU(inplace=True)]
    for _ in range(layers - 2):
        mods += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True)]
    mods.append(nn.Conv2d(width, cout, 3, padding=1))
    return nn.Sequential(*mods)


class _ResBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.a = nn.Conv2d(channels, channels, 3, padding=1)
        self.b = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(F.relu(self.a(x), inplace=True)).add_(x)  # in place on fresh convolution outputs


class FFDNet(nn.Module):
    """Half-resolution residual denoiser conditioned on a noise-level map, with a built-in estimator."""

    size_divisor = 2
    #: convolutions only: an output pixel sees about 34 px around it (12 3x3 layers at half resolution, after a 5-layer
    #: estimator), within the restorer's 48-px halo, so tiles of any size give the whole image's result (the tiling
    #: engine may balance them)
    tile_local = True

    def __init__(self, config: FFDNetConfig | None = None, **overrides) -> None:
        super().__init__()
        cfg = config or FFDNetConfig()
        if overrides:
            cfg = FFDNetConfig(**{**asdict(cfg), **overrides})
        self.config = cfg
        w = cfg.channels
        blocks = [_ResBlock(w) for _ in range(cfg.blocks)]
        self.body = nn.Sequential(
            nn.Conv2d(12 + 1, w, 3, padding=1), nn.ReLU(inplace=True), *blocks, nn.Conv2d(w, 12, 3, padding=1)
        )
        self.estimator = _stack(12, cfg.est_channels, 1, cfg.est_layers)

    def estimate(self, x: torch.Tensor) -> torch.Tensor:
        """The per-pixel noise level of ``x`` at half resolution, :math:`(B, 1, H/2, W/2)`, [0, 1] units."""
        return self._level(F.pixel_unshuffle(x, 2) - 0.5)

    def _level(self, centred: torch.Tensor) -> torch.Tensor:  # from the sub-images less 0.5
        return F.softplus(self.estimator(centred)) * 0.1

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float | None = None) -> torch.Tensor:
        h, w = x.shape[-2:]
        xp = F.pad(x, (0, w % 2, 0, h % 2), mode="replicate") if (h % 2 or w % 2) else x
        down = F.pixel_unshuffle(xp, 2) - 0.5  # once, for the estimator and the body
        if sigma is None:
            level = self._level(down)
        else:
            level = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
            if level.dim() <= 1:  # a number or one per image
                level = level.reshape(-1, 1, 1, 1).expand(down.shape[0], 1, *down.shape[-2:])
            else:  # a full-resolution map
                level = F.avg_pool2d(F.pad(level, (0, w % 2, 0, h % 2), mode="replicate"), 2)
        noise = F.pixel_shuffle(self.body(torch.cat([down, level.to(down.dtype) * 10], 1)), 2)
        return (xp - noise)[..., :h, :w]
