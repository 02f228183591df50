"""Sand-dust restoration: colour-cast correction in CIELAB, then dark channel dehazing.

Sand and dust scatter and absorb short wavelengths: the blue channel is attenuated and the veil is
yellow-orange. Applied directly, DCP takes the dim blue channel as the dark channel everywhere and
leaves a strong cast. This restorer first removes the cast, then dehazes:

1. **blue compensation** (after Ancuti et al.'s red-channel compensation for underwater images): the
   weak channel borrows from the green one where the green one is strong and the weak one is dark,
   ``B' = B + alpha (mean(G) - mean(B)) (1 - B) G``;
2. **gray world in CIELAB**: the mean chroma ``(a*, b*)`` of the image is shifted towards neutral in the
   perceptual space, where moving chroma does not change lightness;
3. **DCP** on the corrected image with an airlight estimated after correction;
4. a second, gentler gray-world shift in CIELAB: dehazing divides by the transmission, which
   amplifies whatever cast is left in the haze, so the residual cast is measured on the dehazed
   preview and removed.

The statistics of steps 1–2 are taken on the preview, so the result does not depend on tiling.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .airlight import estimate_airlight_np
from .base import Restorer, RestorerState
from .dcp import dcp_transmission_np, recover_np, sky_tolerance_np

__all__ = ["DustDCP", "DustConfig", "lab_cast_np", "correct_cast_np"]


@dataclass(frozen=True)
class DustConfig:
    """Parameters of :class:`DustDCP`.

    Attributes:
        compensation: ``alpha`` of the blue compensation (0 disables it).
        cast_strength: share of the mean chroma removed, in [0, 1].
        patch, omega, t0, radius, eps, airlight: as in :class:`~clearsight.priors.dcp.DCPConfig`.
    """

    compensation: float = 1.0
    cast_strength: float = 0.9
    patch: int = 15
    omega: float = 0.9
    t0: float = 0.15
    radius: int = 60
    eps: float = 1e-3
    airlight: str = "robust"
    tolerance: float = 0.2
    post_strength: float = 0.7


def lab_cast_np(x: np.ndarray) -> tuple[float, float]:
    """Mean ``(a*, b*)`` of a float32 RGB image in [0, 1] (CIELAB, D65; b* > 0 is yellow)."""
    lab = cv2.cvtColor(np.ascontiguousarray(x, np.float32), cv2.COLOR_RGB2Lab)
    return float(lab[:, :, 1].mean()), float(lab[:, :, 2].mean())


def _compensate(x: np.ndarray, means: np.ndarray, alpha: float) -> np.ndarray:
    weak = int(np.argmin(means))
    strong = int(np.argmax(means))
    if alpha <= 0 or means[strong] - means[weak] < 1e-3:
        return x
    out = x.copy()
    gap = float(means[strong] - means[weak])
    out[:, :, weak] = x[:, :, weak] + alpha * gap * (1.0 - x[:, :, weak]) * x[:, :, strong]
    return out


def mean_lightness_np(x: np.ndarray) -> float:
    """Mean CIELAB lightness ``L*`` (0-100) of a float32 RGB image."""
    return float(cv2.cvtColor(np.clip(x, 0, 1).astype(np.float32), cv2.COLOR_RGB2Lab)[:, :, 0].mean())


def shift_chroma_np(x: np.ndarray, shift_ab: tuple[float, float], mean_l: float) -> np.ndarray:
    """Remove a chroma cast ``shift_ab`` in CIELAB, in proportion to each pixel's lightness.

    Each pixel moves by ``shift_ab * min(L / mean_l, 1)``: pixels darker than average move less, so
    shadows do not turn blue when a yellow cast is removed, and bright ones no more than the shift,
    so skies do not turn cyan.
    """
    lab = cv2.cvtColor(np.clip(x, 0, 1).astype(np.float32), cv2.COLOR_RGB2Lab)
    w = np.minimum(lab[:, :, 0] / max(mean_l, 1.0), 1.0)
    lab[:, :, 1] -= shift_ab[0] * w
    lab[:, :, 2] -= shift_ab[1] * w
    return np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB), 0.0, 1.0)


def correct_cast_np(
    x: np.ndarray, means: np.ndarray, shift_ab: tuple[float, float], alpha: float, mean_l: float
) -> np.ndarray:
    """Blue compensation with channel ``means``, then :func:`shift_chroma_np`."""
    return shift_chroma_np(_compensate(x, means, alpha), shift_ab, mean_l)


class DustDCP(Restorer):
    """Sand-dust restorer: cast removal in CIELAB, then dark channel dehazing."""

    name = "dcp-dust"
    description = "sand and dust: blue compensation and CIELAB gray-world cast removal, then dark channel dehazing"

    def __init__(self, config: DustConfig | None = None, **overrides) -> None:
        cfg = config or DustConfig()
        self.config = DustConfig(**{**cfg.__dict__, **overrides})

    @property
    def halo(self) -> int:
        return self.config.patch // 2 + 2 * self.config.radius

    def prepare(self, preview: np.ndarray) -> RestorerState:
        c = self.config
        means = preview.reshape(-1, 3).mean(axis=0)
        comp = _compensate(preview, means, c.compensation)
        a_mean, b_mean = lab_cast_np(comp)
        mean_l = mean_lightness_np(comp)
        shift = (c.cast_strength * a_mean, c.cast_strength * b_mean)
        corrected = correct_cast_np(preview, means, shift, c.compensation, mean_l)
        airlight = estimate_airlight_np(corrected, c.airlight, c.patch, min_value=0.05)
        params = {"means": means, "shift": shift, "mean_l": mean_l, "airlight": airlight, "post": (0.0, 0.0)}
        dehazed = self._dehaze(preview, params)
        # what is left is mostly the multiplicative absorption of the direct light: per-channel gains
        # (gray world in RGB, partial), which keep dark pixels dark and neutral
        means2 = np.maximum(dehazed.reshape(-1, 3).mean(axis=0), 1e-3)
        params["gains"] = np.power(means2.mean() / means2, c.post_strength).astype(np.float32)
        return RestorerState(
            self.name,
            f"cast a*={a_mean:.1f} b*={b_mean:.1f} removed, airlight {np.array2string(airlight, precision=2)}",
            params,
        )

    def _dehaze(self, x: np.ndarray, p: dict) -> np.ndarray:
        c = self.config
        y = correct_cast_np(x, p["means"], p["shift"], c.compensation, p["mean_l"])
        t = dcp_transmission_np(y, p["airlight"], c.patch, c.omega, c.radius, c.eps)
        t = sky_tolerance_np(y, t, p["airlight"], c.tolerance)
        return recover_np(y, t, p["airlight"], c.t0)

    def process(self, x: np.ndarray, state: RestorerState) -> np.ndarray:
        p = state.params
        j = self._dehaze(x, p)
        if "gains" in p:
            j = np.clip(j * p["gains"], 0.0, 1.0)
        return j
