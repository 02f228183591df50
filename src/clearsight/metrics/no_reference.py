"""Simple no-reference image statistics, one score per image.

These are descriptive statistics for before/after tables, not perceptual quality models (those arrive
with the metrics issue): they say *what changed* (less veil, more contrast, more colour) without
claiming the result looks better.
"""

from __future__ import annotations

import torch

from .._checks import check_image
from ..priors.filters import dark_channel

__all__ = ["haze_score", "rms_contrast", "colorfulness"]

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
