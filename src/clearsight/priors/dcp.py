"""Dark channel prior dehazing (He, Sun and Tang, CVPR 2009 / TPAMI 2011), guided-filter refinement.

In most haze-free patches at least one colour channel is close to zero; haze lifts that *dark channel*
towards the airlight. Normalising by the airlight ``A``, the transmission is then estimated as

.. math:: \\tilde t(x) = 1 - \\omega \\min_{y \\in \\Omega(x)} \\min_c \\frac{I_c(y)}{A_c}

refined with a guided filter whose guide is the gray hazy image (He et al. 2013), bounded below by
``t0``, and the scene recovered by inverting the scattering model (:func:`clearsight.physics.dehaze`).
``omega < 1`` keeps a little haze for depth perception.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .airlight import estimate_airlight_np
from .base import Restorer, RestorerState
from .filters import dark_channel_np, guided_filter_np

__all__ = ["DCP", "DCPConfig", "dcp_transmission_np", "recover_np"]


@dataclass(frozen=True)
class DCPConfig:
    """Parameters of :class:`DCP`.

    He et al. publish ``omega=0.95`` and no sky tolerance; we default to ``omega=0.9`` and ``K=0.2`` (Sun
    et al.'s tolerance of about 50/255), which remove the pink and green sky artefacts of plain DCP on
    real photos (see ``docs/classical.md``). ``DCP(omega=0.95, tolerance=0, eps=1e-4, airlight="he")`` is
    the textbook configuration.

    Attributes:
        patch: dark-channel window in pixels (odd).
        omega: share of haze removed, in (0, 1].
        t0: lower bound of the transmission.
        radius: guided-filter radius in pixels.
        eps: guided-filter regulariser.
        airlight: airlight estimator (``robust``, ``he`` or ``quadtree``).
        tolerance: ``K`` of the sky tolerance (0 disables it): where the hazy pixel is within ``K`` of
            the airlight (sky, dense fog) the prior does not hold, and the transmission is raised to
            ``t * K / |I - A|`` so that sky noise and colour are not amplified.
    """

    patch: int = 15
    omega: float = 0.9
    t0: float = 0.1
    radius: int = 60
    eps: float = 1e-3
    airlight: str = "robust"
    tolerance: float = 0.2


def sky_tolerance_np(x: np.ndarray, t: np.ndarray, airlight: np.ndarray, k: float) -> np.ndarray:
    """Raise ``t`` where ``|I - A| < k`` (sky and dense fog): ``t' = min(max(k / |I - A|, 1) t, 1)``."""
    if k <= 0:
        return t
    a = np.asarray(airlight, np.float32)
    d = [np.abs(x[:, :, c] - a[c]) for c in range(3)]  # per-plane: faster than a reduction over HWC
    diff = np.maximum(np.maximum(d[0], d[1]), d[2])
    return np.minimum(np.maximum(k / np.maximum(diff, 1e-6), 1.0) * t, 1.0)


def dcp_transmission_np(
    x: np.ndarray, airlight: np.ndarray, patch: int, omega: float, radius: int, eps: float
) -> np.ndarray:
    """Refined DCP transmission ``(H, W)`` of a float32 ``(H, W, 3)`` image for a given airlight.

    ``airlight`` is ``(3,)`` or a spatially varying ``(H, W, 3)`` map.
    """
    a = np.maximum(np.asarray(airlight, np.float32), 1e-3)
    t = 1.0 - omega * dark_channel_np(x / a, patch)
    if radius > 0:
        gray = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)
        t = guided_filter_np(gray, t, radius, eps)
    return t


def recover_np(x: np.ndarray, t: np.ndarray, airlight: np.ndarray, t0: float) -> np.ndarray:
    """``J = (I - A) / max(t, t0) + A``, clipped to [0, 1]; ``t`` is ``(H, W)``."""
    a = np.asarray(airlight, np.float32)
    inv = (1.0 / np.clip(t, t0, 1.0))[:, :, None]
    j = (x - a) * inv
    j += a
    return np.clip(j, 0.0, 1.0, out=j)


class DCP(Restorer):
    """Dark channel prior dehazing for daytime haze and fog.

    Args:
        config: a :class:`DCPConfig`; keyword arguments override its fields.

    Example:
        >>> import torch
        >>> out = DCP()(torch.rand(1, 3, 32, 32))
        >>> out.shape
        torch.Size([1, 3, 32, 32])
    """

    name = "dcp"
    description = "dark channel prior dehazing (He et al.) with guided-filter refinement; day haze and fog"

    def __init__(self, config: DCPConfig | None = None, **overrides) -> None:
        cfg = config or DCPConfig()
        self.config = DCPConfig(**{**cfg.__dict__, **overrides})

    @property
    def halo(self) -> int:
        return self.config.patch // 2 + 2 * self.config.radius

    def prepare(self, preview: np.ndarray) -> RestorerState:
        a = estimate_airlight_np(preview, self.config.airlight, self.config.patch, min_value=0.05)
        return RestorerState(self.name, f"airlight {np.array2string(a, precision=2)}", {"airlight": a})

    def process(self, x: np.ndarray, state: RestorerState) -> np.ndarray:
        c = self.config
        a = state.params["airlight"]
        t = dcp_transmission_np(x, a, c.patch, c.omega, c.radius, c.eps)
        t = sky_tolerance_np(x, t, a, c.tolerance)
        return recover_np(x, t, a, c.t0)

    def __repr__(self) -> str:
        return f"DCP({self.config})"
