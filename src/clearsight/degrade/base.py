"""The contract every degradation follows: sampling kept apart from application.

A :class:`Degradation` is an ``nn.Module`` with two halves:

* :meth:`Degradation.sample` draws every random quantity for a batch from an explicit
  ``torch.Generator`` and returns them as a dict of tensors with a leading batch dimension (scalars per
  sample, colours ``(B, 3)``, and an ``int64`` ``seed`` per sample from which spatial randomness —
  noise fields, light positions, blur trajectories, rain streaks — is regenerated);
* :meth:`Degradation.apply` is deterministic given the params: calling it again with the same params
  reproduces the output exactly (replay), and the params can be logged as JSON.

``forward(x, params=None, generator=None, depth=None)`` samples when no params are given and returns
``(output, params)``. Per-sample draws mean each image of a batch gets its own degradation; pass
``same_on_batch=True`` to :meth:`sample` to share one draw across the batch.

Images are ``(B, 3, H, W)`` float tensors in [0, 1]; depth is ``(B, 1, H, W)`` in [0, 1] (0 near,
1 far), see :mod:`clearsight.degrade.depth`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_image

__all__ = ["Degradation", "Params", "uniform", "choice", "bernoulli", "seeds", "sample_generator", "smooth_field"]

Params = dict[str, torch.Tensor]


def uniform(
    batch: int, low: float, high: float, generator: torch.Generator | None, shape: Sequence[int] = ()
) -> torch.Tensor:
    """``batch`` draws from U(low, high) (float32), each of ``shape``."""
    return low + (high - low) * torch.rand((batch, *shape), generator=generator)


def choice(batch: int, n: int, generator: torch.Generator | None, probs: Sequence[float] | None = None) -> torch.Tensor:
    """``batch`` indices in ``[0, n)``, uniform or with ``probs``."""
    if probs is None:
        return torch.randint(0, n, (batch,), generator=generator)
    p = torch.as_tensor(probs, dtype=torch.float64)
    return torch.multinomial(p / p.sum(), batch, replacement=True, generator=generator)


def bernoulli(batch: int, p: float, generator: torch.Generator | None) -> torch.Tensor:
    """``batch`` booleans, true with probability ``p``."""
    return torch.rand(batch, generator=generator) < p


def seeds(batch: int, generator: torch.Generator | None) -> torch.Tensor:
    """``batch`` int64 seeds for regenerating spatial randomness in :meth:`Degradation.apply`."""
    return torch.randint(0, 2**62, (batch,), generator=generator, dtype=torch.int64)


def sample_generator(seed: torch.Tensor | int, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator seeded from one per-sample seed (used inside ``apply``)."""
    g = torch.Generator(device=device)
    g.manual_seed(int(seed))
    return g


class Degradation(nn.Module):
    """Base class: subclasses set :attr:`name` and implement :meth:`sample` and :meth:`apply`.

    Attributes:
        name: registry name.
        needs_depth: whether :meth:`apply` uses the ``depth`` argument.
        differentiable: whether :meth:`apply` is differentiable with respect to the image.
    """

    name: str = "degradation"
    needs_depth: bool = False
    differentiable: bool = True

    def sample(
        self,
        batch: int,
        generator: torch.Generator | None = None,
        same_on_batch: bool = False,
    ) -> Params:
        """Draw params for ``batch`` images (see the module docstring)."""
        if same_on_batch and batch > 1:
            one = self._sample(1, generator)
            return {k: v.expand(batch, *v.shape[1:]).clone() for k, v in one.items()}
        return self._sample(batch, generator)

    def _sample(self, batch: int, generator: torch.Generator | None) -> Params:  # pragma: no cover - abstract
        raise NotImplementedError

    def apply(
        self,
        x: torch.Tensor,
        params: Params,
        depth: torch.Tensor | None = None,
        maps: dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Degrade ``x`` with ``params``; deterministic. Haze operators write their transmission into ``maps``."""
        raise NotImplementedError  # pragma: no cover - abstract

    def forward(
        self,
        x: torch.Tensor,
        params: Params | None = None,
        generator: torch.Generator | None = None,
        depth: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, Params]:
        check_image(x)
        if params is None:
            params = self.sample(x.shape[0], generator)
        return self.apply(x, params, depth), params

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config().items())

    def config(self) -> dict[str, Any]:
        """Constructor arguments, for logging and YAML round trips."""
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_") and k != "training"}


def per_sample(params: Params, key: str, x: torch.Tensor) -> torch.Tensor:
    """Param ``key`` reshaped to broadcast over ``x`` ``(B, C, H, W)``.

    ``(B,)`` becomes ``(B, 1, 1, 1)`` and ``(B, 3)`` becomes ``(B, 3, 1, 1)``.
    """
    v = params[key].to(device=x.device, dtype=x.dtype)
    while v.dim() < 4:
        v = v.unsqueeze(-1)
    return v


def smooth_field(
    height: int, width: int, generator: torch.Generator, cells: int = 4, dtype=torch.float32
) -> torch.Tensor:
    """A smooth random field ``(1, 1, H, W)`` in [0, 1]: bicubic upsampling of a ``cells``-wide grid, two octaves."""
    out = torch.zeros(1, 1, height, width, dtype=dtype)
    amp, total = 1.0, 0.0
    for octave in range(2):
        c = max(2, cells * 2**octave)
        grid = torch.rand(1, 1, c, c, generator=generator, dtype=torch.float64).to(dtype)
        out += amp * F.interpolate(grid, size=(height, width), mode="bicubic", align_corners=True)
        total += amp
        amp *= 0.5
    out = out / total
    lo, hi = out.amin(), out.amax()
    return ((out - lo) / (hi - lo).clamp_min(1e-6)).clamp(0, 1)
