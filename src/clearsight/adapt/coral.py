"""Second-order (CORAL-style) feature alignment, as in RSR/CID's "subspace domain alignment".

``coral_exp_loss`` is the bounded form drawn in RSR's Fig. 1: ``L_u = 1 - exp(-||C_s - C_t||_F^2 / (4 d^2))``,
where ``C`` are ``d x d`` feature covariances over a batch (or over the pixels of feature maps).

Example:
    >>> import torch
    >>> f = torch.randn(16, 8)
    >>> float(coral_exp_loss(f, f))
    0.0
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["feature_covariance", "coral_loss", "coral_exp_loss", "Projection"]


def _as_rows(f: torch.Tensor) -> torch.Tensor:
    """``(N, d)`` rows from ``(N, d)`` vectors or ``(B, d, H, W)`` maps (every pixel a row)."""
    if f.dim() == 4:
        return f.permute(0, 2, 3, 1).reshape(-1, f.shape[1])
    if f.dim() != 2:
        raise ValueError(f"features must be (N, d) or (B, d, H, W), got {tuple(f.shape)}")
    return f


def feature_covariance(f: torch.Tensor) -> torch.Tensor:
    """Unbiased ``d x d`` covariance of the rows of ``f`` (``(N, d)`` or ``(B, d, H, W)``), in float32."""
    x = _as_rows(f).float()
    n = x.shape[0]
    if n < 2:
        raise ValueError("a covariance needs at least 2 feature vectors")
    x = x - x.mean(0, keepdim=True)
    return x.T @ x / (n - 1)


def coral_loss(fs: torch.Tensor, ft: torch.Tensor) -> torch.Tensor:
    """Deep CORAL: ``||C_s - C_t||_F^2 / (4 d^2)``."""
    d = _as_rows(fs).shape[1]
    return (feature_covariance(fs) - feature_covariance(ft)).pow(2).sum() / (4 * d * d)


def coral_exp_loss(fs: torch.Tensor, ft: torch.Tensor) -> torch.Tensor:
    """RSR's bounded alignment loss ``1 - exp(-CORAL)``, in [0, 1): zero for equal covariances."""
    return 1.0 - torch.exp(-coral_loss(fs, ft))


class Projection(nn.Module):
    """The optional learnable projection ("transformed subspace") applied before the covariances.

    Initialised to the identity when ``out == d`` so that it starts as plain CORAL.
    """

    def __init__(self, d: int, out: int | None = None) -> None:
        super().__init__()
        out = out or d
        self.linear = nn.Linear(d, out, bias=False)
        if out == d:
            nn.init.eye_(self.linear.weight)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.linear(_as_rows(f))
