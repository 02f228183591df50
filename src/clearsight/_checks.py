"""Named-shape checks at public boundaries.

Checks raise :class:`~clearsight.ShapeError` with a message that says how to fix the input. They
can be switched off in production with the environment variable ``CLEARSIGHT_CHECKS=0``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from ._errors import ShapeError

__all__ = ["checks_enabled", "check_shape", "check_image"]


def checks_enabled() -> bool:
    """Return whether boundary checks are on (``CLEARSIGHT_CHECKS`` is not ``0``)."""
    return os.environ.get("CLEARSIGHT_CHECKS", "1") not in ("0", "false", "False")


def check_shape(x: torch.Tensor, names: Sequence[str], what: str = "input") -> None:
    """Check that ``x`` has ``len(names)`` dimensions; integer names must match exactly.

    Example:
        >>> check_shape(torch.zeros(2, 3, 4, 5), ["B", "3", "H", "W"])
    """
    if not checks_enabled():
        return
    if not isinstance(x, torch.Tensor):
        raise ShapeError(f"{what} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != len(names):
        raise ShapeError(
            f"{what} must have shape ({', '.join(names)}), got {tuple(x.shape)}; "
            f"add a batch dimension with x[None] if you passed a single image"
            if x.dim() == len(names) - 1
            else f"{what} must have shape ({', '.join(names)}), got {tuple(x.shape)}"
        )
    for size, name in zip(x.shape, names):
        if name.isdigit() and size != int(name):
            raise ShapeError(f"{what} must have shape ({', '.join(names)}), got {tuple(x.shape)}")


def check_image(x: torch.Tensor, what: str = "image", channels: int | None = 3) -> None:
    """Check the library's image contract: float tensor ``(B, C, H, W)`` with values in [0, 1]."""
    if not checks_enabled():
        return
    check_shape(x, ["B", str(channels) if channels else "C", "H", "W"], what)
    if not x.is_floating_point():
        raise ShapeError(f"{what} must be a float tensor in [0, 1], got {x.dtype}; divide by 255 first")
    if x.numel() and not torch.isfinite(x.detach()).all():
        raise ShapeError(f"{what} contains NaN or infinite values; check the data that produced it")
    if x.numel() and (x.detach().amin() < -1e-3 or x.detach().amax() > 1 + 1e-3):
        raise ShapeError(f"{what} values must lie in [0, 1]; clamp it first: x.clamp(0, 1)")
