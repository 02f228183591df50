"""Padding an image batch to a size a network accepts, and cropping back."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pad_to_multiple(x: torch.Tensor, divisor: int) -> tuple[torch.Tensor, int, int]:
    """``x`` padded at the bottom and right to multiples of ``divisor`` (reflect where the image is large enough,
    else replicate), with its original height and width for cropping back."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % divisor, (-w) % divisor
    if ph or pw:
        mode = "reflect" if h > ph and w > pw else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, h, w
