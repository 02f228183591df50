"""The atmospheric scattering model (Koschmieder / McCartney), batched and differentiable.

A hazy image ``I`` of a clear scene ``J`` seen through a homogeneous medium is

.. math::

    I(x) = J(x)\\,t(x) + A\\,(1 - t(x)), \\qquad t(x) = e^{-\\beta d(x)}

with ``t`` the transmission, ``A`` the airlight (the colour of the veil: bright grey for fog,
yellow-orange for sand and dust, dim and coloured for night haze), ``beta`` the scattering
coefficient (per channel for wavelength-dependent scattering) and ``d`` the scene depth.

Shapes: images ``(B, 3, H, W)`` in [0, 1]; ``t`` and ``d`` ``(B, 1, H, W)`` or ``(B, 3, H, W)``;
``A`` anything that broadcasts to ``(B, 3, 1, 1)`` (a float, ``(3,)``, ``(B, 3)``,
``(B, 3, 1, 1)`` or a spatially varying ``(B, 3, H, W)`` map); ``beta`` a float, ``(B,)``,
``(B, 3)`` or anything that broadcasts to ``(B, C, 1, 1)``.
"""

from __future__ import annotations

import torch
from torch import nn

from ._checks import check_shape

__all__ = [
    "as_airlight",
    "transmission_from_depth",
    "depth_from_transmission",
    "haze",
    "dehaze",
    "Haze",
    "Dehaze",
]


def as_airlight(A: torch.Tensor | float, ref: torch.Tensor) -> torch.Tensor:
    """Broadcast an airlight given as a float, ``(3,)``, ``(B, 3)`` or ``(B, 3, ...)`` to ``ref``'s rank.

    Returns a tensor of shape ``(B or 1, 3 or 1, 1 or H, 1 or W)`` on ``ref``'s device and dtype.
    """
    A = torch.as_tensor(A, dtype=ref.dtype, device=ref.device)
    if A.dim() == 0:
        return A.reshape(1, 1, 1, 1)
    if A.dim() == 1:
        return A.reshape(1, -1, 1, 1)
    if A.dim() == 2:
        return A.reshape(A.shape[0], A.shape[1], 1, 1)
    if A.dim() == 4:
        return A
    raise ValueError(f"airlight must be a float, (3,), (B, 3) or (B, 3, H, W); got shape {tuple(A.shape)}")


def _as_beta(beta: torch.Tensor | float, ref: torch.Tensor) -> torch.Tensor:
    beta = torch.as_tensor(beta, dtype=ref.dtype, device=ref.device)
    if beta.dim() == 0:
        return beta.reshape(1, 1, 1, 1)
    if beta.dim() == 1:  # (B,)
        return beta.reshape(-1, 1, 1, 1)
    if beta.dim() == 2:  # (B, C)
        return beta.reshape(beta.shape[0], beta.shape[1], 1, 1)
    return beta


def transmission_from_depth(depth: torch.Tensor, beta: torch.Tensor | float) -> torch.Tensor:
    """Transmission ``t = exp(-beta * depth)``.

    Args:
        depth: scene depth :math:`(B, 1, H, W)`, non-negative, in the same (arbitrary) unit as ``1/beta``.
        beta: scattering coefficient: a float, ``(B,)``, or ``(B, 3)`` for wavelength-dependent
            scattering (then the result has 3 channels).

    Returns:
        transmission in (0, 1], :math:`(B, 1 \\text{ or } 3, H, W)`.
    """
    check_shape(depth, ["B", "C", "H", "W"], "depth")
    return torch.exp(-_as_beta(beta, depth) * depth)


def depth_from_transmission(t: torch.Tensor, beta: torch.Tensor | float, t_min: float = 1e-6) -> torch.Tensor:
    """Inverse of :func:`transmission_from_depth`: ``d = -log(t) / beta``."""
    check_shape(t, ["B", "C", "H", "W"], "t")
    return -torch.log(t.clamp_min(t_min)) / _as_beta(beta, t)


def haze(J: torch.Tensor, t: torch.Tensor, A: torch.Tensor | float) -> torch.Tensor:
    """Compose a hazy image: ``I = J * t + A * (1 - t)``.

    Args:
        J: clear scene radiance :math:`(B, 3, H, W)`, in [0, 1].
        t: transmission :math:`(B, 1, H, W)` or :math:`(B, 3, H, W)`, in [0, 1].
        A: airlight (see the module docstring for accepted shapes), in [0, 1].

    Returns:
        hazy image :math:`(B, 3, H, W)`; it stays in [0, 1] when the inputs do.

    Example:
        >>> J = torch.rand(2, 3, 8, 8); t = torch.full((2, 1, 8, 8), 0.6)
        >>> I = haze(J, t, 0.9)
        >>> torch.allclose(dehaze(I, t, 0.9), J, atol=1e-5)
        True
    """
    check_shape(J, ["B", "3", "H", "W"], "J")
    check_shape(t, ["B", "C", "H", "W"], "t")
    A = as_airlight(A, J)
    return J * t + A * (1.0 - t)


def dehaze(I: torch.Tensor, t: torch.Tensor, A: torch.Tensor | float, t_min: float = 0.0) -> torch.Tensor:  # noqa: E741
    """Invert the scattering model: ``J = (I - A) / max(t, t_min) + A``.

    Args:
        I: hazy image :math:`(B, 3, H, W)`.
        t: transmission :math:`(B, 1, H, W)` or :math:`(B, 3, H, W)`.
        A: airlight (see the module docstring).
        t_min: lower bound on ``t``, which keeps noise in dense haze from being amplified without
            limit (He et al. use 0.1). With ``t_min=0`` and the true ``t`` and ``A`` the inversion is
            exact wherever ``t > 0``.

    Returns:
        scene radiance :math:`(B, 3, H, W)`, **not** clamped (clamp to [0, 1] for display).
    """
    check_shape(I, ["B", "3", "H", "W"], "I")
    check_shape(t, ["B", "C", "H", "W"], "t")
    A = as_airlight(A, I)
    denom = t.clamp_min(t_min) if t_min > 0 else t
    return (I - A) / denom + A


class Haze(nn.Module):
    """Module form of :func:`haze` (no parameters)."""

    def forward(self, J: torch.Tensor, t: torch.Tensor, A: torch.Tensor | float) -> torch.Tensor:
        return haze(J, t, A)


class Dehaze(nn.Module):
    """Module form of :func:`dehaze`."""

    def __init__(self, t_min: float = 0.0) -> None:
        super().__init__()
        self.t_min = t_min

    def forward(self, I: torch.Tensor, t: torch.Tensor, A: torch.Tensor | float) -> torch.Tensor:  # noqa: E741
        return dehaze(I, t, A, self.t_min)
