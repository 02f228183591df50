"""A small low-light enhancer that brightens through a smooth gain map, so it cannot invent colours or texture.

The network predicts, from the dark input ``x``:

* a global exposure (one log-gain), a white balance (three log-gains, centred) and a highlight roll-off ``r``
  from pooled features of the whole image;
* a local log-gain correction at half resolution (brighter shadows, kept highlights), upsampled bilinearly.

The output is ``y = c(x * exp(g_global + g_local) * exp(wb))`` with the roll-off ``c(v) = v (1 + r) / (1 + r v)``,
which keeps 1 at 1 and compresses what would clip. Every pixel is its input times a smooth positive factor (per
channel only through the global white balance), so hue is kept locally and edges stay where they were; noise is
brightened with the signal, which is why ``auto`` runs the denoiser after it. Trained on real low/normal-light
pairs (``lowlight/lol_train``) and darkened clean photos (``recipes/lowlight_enhance.py``).

Example:
    >>> import torch
    >>> net = LowLightNet()
    >>> net(torch.rand(1, 3, 48, 64) * 0.1).shape
    torch.Size([1, 3, 48, 64])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ._pad import pad_to_multiple

__all__ = ["LowLightNet", "LowLightConfig"]


@dataclass
class LowLightConfig:
    """Width of the first stage (doubled at each of two stride-2 stages) and the largest gain, as a log."""

    width: int = 24
    max_log_gain: float = 4.5

    @classmethod
    def paper(cls) -> LowLightConfig:
        return cls(width=32)

    @classmethod
    def cpu(cls) -> LowLightConfig:
        return cls()

    @classmethod
    def tiny(cls) -> LowLightConfig:
        return cls(width=8)


def _block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.LeakyReLU(0.1, inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1), nn.LeakyReLU(0.1, inplace=True),
    )  # fmt: skip


class LowLightNet(nn.Module):
    """See the module docstring; ``forward(x)`` maps ``(B, 3, H, W)`` in [0, 1] to the enhanced image (sides
    padded by reflection to multiples of :attr:`size_divisor` inside, and cropped back)."""

    size_divisor = 8

    def __init__(self, config: LowLightConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or LowLightConfig()
        c = config.width
        self.enc1 = _block(4, c)  # at half resolution: RGB and log luminance
        self.enc2 = _block(c, 2 * c, 2)
        self.enc3 = _block(2 * c, 4 * c, 2)
        self.glob = nn.Sequential(nn.Linear(8 * c + 2, 4 * c), nn.LeakyReLU(0.1, inplace=True), nn.Linear(4 * c, 5))
        self.dec2 = _block(6 * c, 2 * c)
        self.dec1 = _block(3 * c, c)
        self.head = nn.Conv2d(c, 1, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        nn.init.zeros_(self.glob[-1].weight)
        nn.init.zeros_(self.glob[-1].bias)

    def gains(
        self, x: torch.Tensor, globals_: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(log gain (B, 1, H/2, W/2), white balance log-gains (B, 3, 1, 1), roll-off (B, 1, 1, 1))``; the
        whole-image quantities come from ``globals_`` ``(B, 5)`` when given (see :meth:`estimate_globals`)."""
        h, w = x.shape[-2:]
        small = F.avg_pool2d(x, 2, ceil_mode=True) if min(h, w) >= 4 else x
        lum = small.amax(1, keepdim=True)
        loglum = torch.log(lum + 1 / 255) / 3 + 1  # about [-0.85, 1]
        f1 = self.enc1(torch.cat([small * 4 - 1, loglum], 1))
        f2 = self.enc2(f1)
        f3 = self.enc3(f2)
        if globals_ is None:
            stats = torch.cat([lum.mean((2, 3)), lum.flatten(1).quantile(0.95, dim=1, keepdim=True)], 1)
            g = self.glob(torch.cat([f3.mean((2, 3)), f3.amax((2, 3)), stats * 4], 1))
        else:  # (the quantile is not computed then: it also keeps the graph exportable to ONNX)
            g = globals_
        d2 = self.dec2(torch.cat([self._up(f3, f2.shape[-2:]), f2], 1))
        d1 = self.dec1(torch.cat([self._up(d2, f1.shape[-2:]), f1], 1))
        m = self.config.max_log_gain
        # start near a 4x brightening: the global gain is a sigmoid over [0, m], the local part a bounded correction
        glob_gain = m * torch.sigmoid(g[:, :1] - 1.0)
        local = 1.5 * torch.tanh(self.head(d1))
        log_gain = (glob_gain[:, :, None, None] + local).clamp(0.0, float(m))
        wb = 0.3 * torch.tanh(g[:, 1:4])
        wb = (wb - wb.mean(1, keepdim=True))[:, :, None, None]
        rolloff = F.softplus(g[:, 4:5])[:, :, None, None]
        return log_gain, wb, rolloff

    #: Set by the ONNX export, whose input sides are multiples of 8: every upsampling is then exactly 2x, and a
    #: fixed scale factor gives the same values as a target size while exporting with dynamic sizes.
    exact_halves: bool = False

    def _up(self, x: torch.Tensor, size) -> torch.Tensor:
        if self.exact_halves:
            return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

    @torch.no_grad()
    def estimate_globals(self, x: torch.Tensor) -> torch.Tensor:
        """The whole-image outputs ``(B, 5)`` (exposure, white balance, roll-off) of ``x``: computed once on a
        preview, they make every tile of a large image use the same exposure."""
        h, w = x.shape[-2:]
        small = F.avg_pool2d(x, 2, ceil_mode=True) if min(h, w) >= 4 else x
        lum = small.amax(1, keepdim=True)
        loglum = torch.log(lum + 1 / 255) / 3 + 1
        f3 = self.enc3(self.enc2(self.enc1(torch.cat([small * 4 - 1, loglum], 1))))
        stats = torch.cat([lum.mean((2, 3)), lum.flatten(1).quantile(0.95, dim=1, keepdim=True)], 1)
        return self.glob(torch.cat([f3.mean((2, 3)), f3.amax((2, 3)), stats * 4], 1))

    def forward(self, x: torch.Tensor, globals_: torch.Tensor | None = None) -> torch.Tensor:
        p, h, w = pad_to_multiple(x, self.size_divisor)  # three 2x stages: every upsampling is then exact
        log_gain, wb, r = self.gains(p, globals_)
        gain = self._up(log_gain.float(), p.shape[-2:])
        y = p.float() * torch.exp(gain + wb.float())
        r = r.float()
        return (y * (1 + r) / (1 + r * y)).clamp(0, 1)[..., :h, :w]
