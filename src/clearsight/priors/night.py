"""Night-time dehazing with a spatially varying airlight (maximum reflectance prior, glow-aware).

At night the veil is lit by street lamps, not by the sky, so one global airlight is wrong: near a lamp
the haze glows in the lamp's colour, far from it the veil is dim. Following the *maximum reflectance
prior* (Zhang, Cao, Fang and Tao, CVPR 2017) — in most local patches some pixel reflects close to all
the light of each colour channel — the local maximum of each channel estimates the local illumination,
which serves as a spatially varying airlight ``A(x)``:

1. ``A(x)``: per-channel maximum over a large window (of a slightly smoothed copy, so that noise and JPEG blocks
   do not pick the maxima), smoothed with a guided filter (gray guide) so that it follows the broad glow of each
   light source rather than object edges;
2. ``t(x)``: the dark channel of ``I / A(x)`` (DCP on the locally normalised image), guided-filter refined;
3. ``J = (I - A(x)) / max(t, t0) + A(x)``;
4. optional colour correction: each pixel is divided by the (partial) chroma of its illumination, taken from a
   Gaussian-smoothed ``A(x)`` (a chroma that varies from window to window paints purple and green blotches into
   a dark sky), which removes the orange/green cast of sodium and mercury lamps while keeping their brightness;
5. a global gain and gamma, estimated on the preview, bring the mean brightness to a visible level.

Night photos are noisy and dehazing divides by ``t``, so the image is first split into a smooth base
(self-guided filter) and a detail layer; only the base is dehazed, and the detail is added back with a
bounded gain, which keeps sensor noise from being amplified several times.

Inside a lamp's glow ``A(x)`` approaches the observed intensity, the transmission there stays high, and
the glow is kept rather than turned into a dark halo (the usual failure of day-time DCP at night).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .base import Restorer, RestorerState
from .dcp import dcp_transmission_np, recover_np
from .filters import guided_filter_np, max_filter_np

__all__ = ["NightDCP", "NightConfig", "local_airlight_np"]


@dataclass(frozen=True)
class NightConfig:
    """Parameters of :class:`NightDCP`.

    Attributes:
        light_patch: window (px) of the maximum-reflectance illumination estimate.
        light_radius: guided-filter radius (px) that smooths the illumination into ``A(x)``.
        light_eps: regulariser of that guided filter (large: follows glow, not edges).
        light_presmooth: Gaussian sigma (px) of the copy whose local maxima estimate the illumination.
        cast_smooth: Gaussian sigma (px) of the illumination whose chroma the colour correction divides by.
        patch, omega, t0, radius, eps: as in :class:`~clearsight.priors.dcp.DCPConfig`.
        color_correction: strength in [0, 1] of the removal of the illumination's colour.
        target_mean: mean luminance the output is brought towards (0 disables the brightness step).
        max_gain: cap on the brightness gain.
        denoise_radius, denoise_eps: self-guided filter that splits the image into a smooth base,
            which is dehazed, and a detail layer (edges and sensor noise), which is added back with
            at most ``detail_gain`` amplification instead of ``1 / t`` (0 radius disables the split).
    """

    light_patch: int = 31
    light_radius: int = 30
    light_eps: float = 1e-2
    light_presmooth: float = 2.0
    cast_smooth: float = 31.0
    patch: int = 15
    omega: float = 0.9
    t0: float = 0.2
    radius: int = 40
    eps: float = 1e-3
    color_correction: float = 0.6
    target_mean: float = 0.35
    max_gain: float = 2.5
    denoise_radius: int = 2
    denoise_eps: float = 4e-4
    detail_gain: float = 1.5


def local_airlight_np(x: np.ndarray, patch: int, radius: int, eps: float, presmooth: float = 0.0) -> np.ndarray:
    """Spatially varying airlight ``(H, W, 3)`` from the maximum reflectance prior (the local maxima of ``x``
    smoothed by a Gaussian of sigma ``presmooth`` px first, when it is positive)."""
    lmax = max_filter_np(cv2.GaussianBlur(x, (0, 0), presmooth) if presmooth > 0 else x, patch)
    gray = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)
    a = guided_filter_np(gray, lmax, radius, eps)
    return np.clip(a, 0.02, 1.0)


def _smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing of a smooth map with a large ``sigma``, computed on a copy reduced so that sigma is
    about 4 px there (a 31-px Gaussian at full size doubled the restorer's time)."""
    k = max(1, int(sigma // 4))
    h, w = x.shape[:2]
    if k == 1 or min(h, w) < 4 * k:
        return cv2.GaussianBlur(x, (0, 0), sigma)
    small = cv2.resize(x, (max(1, w // k), max(1, h // k)), interpolation=cv2.INTER_AREA)
    return cv2.resize(cv2.GaussianBlur(small, (0, 0), sigma / k), (w, h), interpolation=cv2.INTER_LINEAR)


class NightDCP(Restorer):
    """Night-haze restorer: local airlight from the maximum reflectance prior, glow kept, cast removed."""

    name = "dcp-night"
    description = "night haze: spatially varying airlight (maximum reflectance prior), lamp-cast removal, brightening"

    def __init__(self, config: NightConfig | None = None, **overrides) -> None:
        cfg = config or NightConfig()
        self.config = NightConfig(**{**cfg.__dict__, **overrides})

    @property
    def halo(self) -> int:
        c = self.config
        blur = 3 * round(c.light_presmooth) + 3 * round(c.cast_smooth)
        return 2 * c.denoise_radius + c.light_patch // 2 + 2 * c.light_radius + c.patch // 2 + 2 * c.radius + blur

    def _restore_core(self, x: np.ndarray) -> np.ndarray:
        c = self.config
        if c.denoise_radius > 0:
            base = guided_filter_np(x, x, c.denoise_radius, c.denoise_eps)
            detail = x - base
        else:
            base, detail = x, None
        a = local_airlight_np(base, c.light_patch, c.light_radius, c.light_eps, c.light_presmooth)
        t = dcp_transmission_np(base, a, c.patch, c.omega, c.radius, c.eps)
        j = recover_np(base, t, a, c.t0)
        if detail is not None:
            gain = np.minimum(1.0 / np.clip(t, c.t0, 1.0), c.detail_gain)[:, :, None]
            j = np.clip(j + gain * detail, 0.0, 1.0)
        if c.color_correction > 0:
            light = _smooth(a, c.cast_smooth) if c.cast_smooth > 0 else a
            chroma = light / np.maximum(light.mean(axis=2, keepdims=True), 1e-3)
            j = j / np.power(np.maximum(chroma, 0.2), c.color_correction)
        return j

    def prepare(self, preview: np.ndarray) -> RestorerState:
        c = self.config
        gain, gamma = 1.0, 1.0
        if c.target_mean > 0:
            j = np.clip(self._restore_core(preview), 0, 1)
            mean = float(cv2.cvtColor(j, cv2.COLOR_RGB2GRAY).mean())
            gain = float(np.clip(c.target_mean / max(mean, 1e-3), 1.0, c.max_gain))
            # what the gain cannot reach (it is capped, and highlights clip), a gamma adds
            reached = min(mean * gain, 0.999)
            if reached < c.target_mean and reached > 1e-3:
                gamma = float(np.clip(np.log(c.target_mean) / np.log(reached), 0.5, 1.0))
        return RestorerState(
            self.name, f"brightness gain {gain:.2f}, gamma {gamma:.2f}", {"gain": gain, "gamma": gamma}
        )

    def process(self, x: np.ndarray, state: RestorerState) -> np.ndarray:
        j = self._restore_core(x)
        gain, gamma = state.params["gain"], state.params["gamma"]
        if gain != 1.0:
            # compress highlights smoothly instead of clipping them: y = g x / (1 + (g - 1) x)
            j = gain * j / (1.0 + (gain - 1.0) * np.clip(j, 0, 1))
        j = np.clip(j, 0.0, 1.0)
        if gamma != 1.0:
            j = np.power(j, gamma)
        return j.astype(np.float32, copy=False)
