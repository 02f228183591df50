"""Sand-dust restoration: dark channel dehazing with the dust's own airlight, then a white balance by its colour.

Sand and dust scatter a yellow-orange veil and filter the daylight that lights the scene. Two steps, each from the
scattering model ``I = J t + A (1 - t)``:

1. **the veil**: DCP with the airlight ``A`` estimated on the preview, coloured as the dust makes it; the dark
   channel is taken on ``I / A``, so the weak blue channel does not read as haze-free everywhere, and inverting the
   model removes the veil's colour with the veil (``J = (I - A) / t + A``). What remains is what the scene looked like
   under the dust's light: ``J`` itself is tinted, and where the veil is total (a sky) ``J`` is ``A``;
2. **the light**: per-channel gains ``(mean(A) / A_c) ^ balance`` (von Kries, with the veil's colour standing for the
   colour of the light it filtered). The sky becomes grey; a brick wall stays brick.

The correction is bounded by what was measured: the veil is removed only where the dark channel says there is one,
and the gains are those of the airlight, whatever the scene's own colours (a gray-world balance instead turns a
sandstorm's sky lavender over an olive street, and the cast removal used until session 35 turned real sandstorm
skies mint and their brick walls magenta; ``docs/classical.md``). ``balance`` was chosen on the ``sand_dust``
synthesis of clean photos (``benchmarks/dust.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .base import RestorerState
from .dcp import DCP, DCPConfig

__all__ = ["DustDCP", "DustConfig", "lab_cast_np", "airlight_gains_np"]


@dataclass(frozen=True)
class DustConfig(DCPConfig):
    """Parameters of :class:`DustDCP`: those of :class:`~clearsight.priors.dcp.DCPConfig`, and

    Attributes:
        balance: exponent of the white balance by the airlight's colour, in [0, 1.5]; 0 leaves the light's tint
            (``dcp`` with its airlight), 1 divides it out fully. 0.85 was best on validation.
    """

    balance: float = 0.85


def lab_cast_np(x: np.ndarray) -> tuple[float, float]:
    """Mean ``(a*, b*)`` of a float32 RGB image in [0, 1] (CIELAB, D65; b* > 0 is yellow)."""
    lab = cv2.cvtColor(np.ascontiguousarray(x, np.float32), cv2.COLOR_RGB2Lab)
    return float(lab[:, :, 1].mean()), float(lab[:, :, 2].mean())


def airlight_gains_np(airlight: np.ndarray, balance: float) -> np.ndarray:
    """Per-channel gains ``(mean(A) / A_c) ^ balance`` that make the airlight ``A`` grey at ``balance`` 1."""
    a = np.maximum(np.asarray(airlight, np.float32), 1e-3)
    return np.power(a.mean() / a, balance).astype(np.float32)


class DustDCP(DCP):
    """Sand-dust restorer: DCP with the dust's airlight, then a white balance by the airlight's colour."""

    name = "dcp-dust"
    description = "sand and dust: dark channel dehazing with the dust's airlight, then a white balance by its colour"

    def __init__(self, config: DustConfig | None = None, **overrides) -> None:
        cfg = config or DustConfig()
        self.config = DustConfig(**{**cfg.__dict__, **overrides})
        if not 0 <= self.config.balance <= 1.5:
            raise ValueError(f"balance must be in [0, 1.5], got {self.config.balance}")

    def prepare(self, preview: np.ndarray) -> RestorerState:
        state = super().prepare(preview)
        a = state.params["airlight"]
        gains = airlight_gains_np(a, self.config.balance)
        reason = f"airlight {np.array2string(a, precision=2)}, gains {np.array2string(gains, precision=2)}"
        return RestorerState(self.name, reason, {**state.params, "gains": gains})

    def process(self, x: np.ndarray, state: RestorerState) -> np.ndarray:
        j = super().process(x, state)
        return np.clip(j * np.asarray(state.params["gains"], np.float32), 0.0, 1.0)

    def __repr__(self) -> str:
        return f"DustDCP({self.config})"
