"""Simple no-reference image statistics, one score per image.

These are descriptive statistics for before/after tables, not perceptual quality models (those arrive
with the metrics issue): they say *what changed* (less veil, more contrast, more colour) without
claiming the result looks better.
"""

from __future__ import annotations

import torch

from .._checks import check_image
from ..priors.filters import dark_channel

__all__ = ["haze_score", "rms_contrast", "colorfulness", "entropy", "noise_level"]

_LUMA = (0.299, 0.587, 0.114)


def haze_score(x: torch.Tensor, patch: int = 15) -> torch.Tensor:
    """Mean dark channel (He et al.), in [0, 1]: near 0 for clear daylight photos, high under haze. :math:`(B,)`."""
    check_image(x)
    return dark_channel(x, patch).flatten(1).mean(1)


def rms_contrast(x: torch.Tensor) -> torch.Tensor:
    """Standard deviation of the luma, in [0, 0.5]. :math:`(B,)`."""
    check_image(x)
    w = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1).flatten(1).std(1)


def colorfulness(x: torch.Tensor) -> torch.Tensor:
    """Hasler and Suesstrunk (2003) colourfulness on [0, 1] images (about 0–0.5; 0 for gray). :math:`(B,)`."""
    check_image(x)
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    rg = (r - g).flatten(1)
    yb = (0.5 * (r + g) - b).flatten(1)
    std = torch.sqrt(rg.var(1, unbiased=False) + yb.var(1, unbiased=False))
    mean = torch.sqrt(rg.mean(1) ** 2 + yb.mean(1) ** 2)
    return std + 0.3 * mean


def entropy(x: torch.Tensor, bins: int = 256) -> torch.Tensor:
    """Shannon entropy of the 8-bit luma histogram, in bits (0 for a constant image, at most 8). :math:`(B,)`."""
    check_image(x)
    w = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    y = ((x * w).sum(1).clamp(0, 1) * (bins - 1) + 0.5).long().flatten(1)
    out = []
    for row in y:
        p = torch.bincount(row, minlength=bins).double() / row.numel()
        p = p[p > 0]
        out.append(-(p * torch.log2(p)).sum())
    return torch.stack(out).to(torch.float32)


def noise_level(x: torch.Tensor) -> torch.Tensor:
    """Noise sigma of the luma in [0, 1] units, Immerkaer's fast estimator (1996). :math:`(B,)`."""
    check_image(x)
    w = torch.tensor(_LUMA, dtype=torch.float64, device=x.device).view(1, 3, 1, 1)
    y = (x.double() * w).sum(1, keepdim=True)
    h, wd = y.shape[-2:]
    if h < 3 or wd < 3:
        raise ValueError(f"noise_level needs images of at least 3x3 pixels, got {wd}x{h}")
    k = torch.tensor([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=torch.float64, device=x.device).view(1, 1, 3, 3)
    conv = torch.nn.functional.conv2d(y, k).abs().flatten(1).sum(1)
    return (conv * (3.141592653589793 / 2) ** 0.5 / (6 * (wd - 2) * (h - 2))).to(torch.float32)
