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

Lamps and their glow (session 32). ``A(x)``, a window's maximum smoothed, stands above a lamp's glow, which falls
off faster than the window does: ``J = A + (I - A) / t`` then drew a dark collar and a bright ring around every street
lamp. Following the glow-layer separation of Li, Tan and Brown (ICCV 2015), the glow is taken out first and put back
unchanged at the end:

0. on the preview, each compact bright source (at most ``glow_lamps``: the brightest 2%, at least 0.6, in blobs under
   0.5% of the image) that stands out from its surroundings (median luminance 4-6% of the diagonal away at most half
   its peak) gets a glow: the ``glow_quantile`` of the luminance in rings around it (a low quantile, so that the
   scene lit around the lamp does not count), smoothed along the radius, made non-increasing outwards, less its level
   at ``glow_reach`` of the diagonal (faded out over the last quarter of that reach), in the colour of the light just
   outside the lamp. Lamps are taken one after another on what the previous glows left. The state keeps them in
   coordinates relative to the image, so every tile (:func:`~clearsight.priors.base.current_region`) draws the same
   glow;
1. steps 1-4 run on ``I - G`` (``G`` at most 0.9 of the slightly smoothed image), and ``G`` is added back before the
   brightness step: the lamp keeps its glow and its colour.

A smooth glow that falls with the radius has no ring to draw, and the maximum filter no longer meets a steep one.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .base import Restorer, RestorerState, current_region
from .dcp import dcp_transmission_np, recover_np
from .filters import compact_lights_np, guided_filter_np, max_filter_np

__all__ = ["NightDCP", "NightConfig", "local_airlight_np", "glow_lamps_np", "render_glow_np", "blend_lamps", "is_lamps"]


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
        glow_lamps: most lamps whose glow is taken out first and put back (0: no separation, the restorer of
            sessions 5-31).
        glow_quantile: quantile of the luminance in each ring around a lamp that measures its glow.
        glow_reach: radius, as a share of the image diagonal, at which a glow ends.
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
    glow_lamps: int = 8
    glow_quantile: float = 0.2
    glow_reach: float = 0.35


def local_airlight_np(x: np.ndarray, patch: int, radius: int, eps: float, presmooth: float = 0.0) -> np.ndarray:
    """Spatially varying airlight ``(H, W, 3)`` from the maximum reflectance prior (the local maxima of ``x``
    smoothed by a Gaussian of sigma ``presmooth`` px first, when it is positive)."""
    lmax = max_filter_np(cv2.GaussianBlur(x, (0, 0), presmooth) if presmooth > 0 else x, patch)
    gray = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)
    a = guided_filter_np(gray, lmax, radius, eps)
    return np.clip(a, 0.02, 1.0)


def _lamp_blobs(y: np.ndarray, most: int) -> list[tuple[float, float, float]]:
    """Compact light sources of a luminance map (:func:`~clearsight.priors.filters.compact_lights_np`) of at least 2
    px, largest first: ``(cx, cy, radius)`` in pixels."""
    _, table = compact_lights_np(y)
    return [(float(cx), float(cy), float(np.sqrt(a / np.pi))) for _, cx, cy, a in table if a >= 2][:most]


def glow_lamps_np(x: np.ndarray, most: int = 8, quantile: float = 0.2, reach: float = 0.35) -> list[dict]:
    """The lamps of an ``(H, W, 3)`` image and their glow (see the module docstring), in coordinates relative to
    the image: centre ``x``, ``y`` (share of the width and height), ``radius`` and ``step`` (share of the
    diagonal), the glow's luminance ``profile`` at radii ``0, step, 2 step, ...``, and its ``colour`` (mean 1)."""
    h, w = x.shape[:2]
    diag = float(np.hypot(h, w))
    step = max(1.0, diag / 400)
    y = x.mean(axis=2)
    rest = y.copy()
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    nbins = int(reach * diag / step) + 1
    lamps = []
    for cx, cy, radius in _lamp_blobs(y, most):
        r = np.hypot(xx - cx, yy - cy)
        # a light source stands out from its surroundings; a bright cloud in a bright sky does not
        around = (r > radius + 0.04 * diag) & (r < radius + 0.06 * diag)
        if not around.any() or np.median(y[around]) > 0.5 * float(y[r <= radius + 1].max()):
            continue
        idx = np.minimum(r / step, nbins - 1).astype(np.int64).ravel()
        counts = np.bincount(idx, minlength=nbins)
        values = rest.ravel()[np.lexsort((rest.ravel(), idx))]  # by ring, then by value within the ring
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        have = np.flatnonzero(counts)
        prof = values[starts[have] + np.floor(quantile * (counts[have] - 1)).astype(np.int64)]
        prof = np.interp(np.arange(nbins), have, prof).astype(np.float32)
        prof = cv2.GaussianBlur(prof[:, None], (1, 0), sigmaX=0.1, sigmaY=4.0, borderType=cv2.BORDER_REPLICATE)[:, 0]
        prof = np.minimum.accumulate(prof)  # non-increasing outwards
        core = min(int(np.ceil(radius / step)) + 1, nbins - 1)
        prof[:core] = prof[core]
        prof = np.maximum(prof - prof[-1], 0.0)
        # and fades out smoothly over the last quarter of its reach: a kink in the glow would be amplified by 1 / t
        fade = np.clip((nbins - 1 - np.arange(nbins)) / (0.25 * nbins), 0.0, 1.0)
        prof *= (0.5 - 0.5 * np.cos(np.pi * fade)).astype(np.float32)
        if prof[0] <= 1e-3:
            continue
        ring = (r > radius + 2) & (r < radius + 10)
        colour = x[ring].mean(axis=0) if ring.any() else np.ones(3, np.float32)
        colour = colour / max(float(colour.mean()), 1e-3)
        rest -= np.interp(r, np.arange(nbins) * step, prof, right=0.0).astype(np.float32)
        lamps.append(
            {
                "x": (cx + 0.5) / w,
                "y": (cy + 0.5) / h,
                "radius": radius / diag,
                "step": step / diag,
                "profile": [round(float(v), 5) for v in prof],
                "colour": [round(float(v), 4) for v in colour],
            }
        )
    return lamps


def render_glow_np(
    lamps: list[dict], shape: tuple[int, ...], region: tuple[int, int, int, int], coarse: int | None = None
) -> np.ndarray:
    """The glow ``(h, w, 3)`` of ``lamps`` (:func:`glow_lamps_np`) over an array of ``shape`` that lies at
    ``region`` ``(y0, x0, height, width)`` of the whole image.

    The glow is smooth, so it is evaluated every ``coarse`` px of the whole image's grid (one sample per block, at the
    block's centre; one block more on every side) and interpolated bilinearly, which is the same for a tile as for the
    whole image and took a quarter of the time at 1920x1080 with 3 lamps. By default ``coarse`` is the profiles'
    finest step in pixels of this image, at most 4 (1 px on a small image, 4 px from about 1 MP)."""
    h, w = int(shape[0]), int(shape[1])
    y0, x0, full_h, full_w = region
    diag = float(np.hypot(full_h, full_w))
    if not lamps:
        return np.zeros((h, w, 3), np.float32)
    if coarse is None:
        coarse = int(np.clip(min(lamp["step"] for lamp in lamps) * diag, 1, 4))
    i0, i1 = y0 // coarse - 1, -(-(y0 + h) // coarse) + 1  # coarse rows and columns covering the region, and one more
    j0, j1 = x0 // coarse - 1, -(-(x0 + w) // coarse) + 1
    ys = (np.arange(i0, i1, dtype=np.float32) * coarse + (coarse - 1) / 2)[:, None]
    xs = (np.arange(j0, j1, dtype=np.float32) * coarse + (coarse - 1) / 2)[None, :]
    small = np.zeros((i1 - i0, j1 - j0, 3), np.float32)
    for lamp in lamps:
        prof = np.append(np.asarray(lamp["profile"], np.float32), np.float32(0.0))  # zero beyond the reach
        cx, cy = np.float32(lamp["x"] * full_w - 0.5), np.float32(lamp["y"] * full_h - 0.5)
        pos = np.sqrt((xs - cx) ** 2 + (ys - cy) ** 2) * np.float32(1.0 / (lamp["step"] * diag))  # in profile steps
        if float(pos.min()) >= prof.size - 2:
            continue
        k = np.minimum(pos.astype(np.int32), prof.size - 2)
        frac = np.minimum(pos - k, np.float32(1.0))
        g = prof[k] + frac * (prof[k + 1] - prof[k])  # linear interpolation along the radius
        small += g[:, :, None] * np.asarray(lamp["colour"], np.float32)
    if not small.any():
        return np.zeros((h, w, 3), np.float32)
    # sample k of ``small`` lies at global position (i0 + k) coarse + (coarse - 1) / 2, so OpenCV's bilinear resize by
    # ``coarse`` puts output pixel q at global position i0 coarse + q
    big = cv2.resize(small, ((j1 - j0) * coarse, (i1 - i0) * coarse), interpolation=cv2.INTER_LINEAR)
    oy, ox = y0 - i0 * coarse, x0 - j0 * coarse
    return np.ascontiguousarray(big[oy : oy + h, ox : ox + w])


def is_lamps(value) -> bool:
    """Whether ``value`` is a list of lamps (:func:`glow_lamps_np`)."""
    return isinstance(value, list) and all(isinstance(v, dict) and "profile" in v for v in value)


def blend_lamps(old: list[dict], new: list[dict], weight: float, match: float = 0.03) -> list[dict]:
    """Lamps of consecutive video frames carried with an exponential moving average (``weight``: the past's).

    A lamp of ``new`` within ``match`` (share of the width and height) of one of ``old`` has its centre, size, colour
    and glow averaged with it; a lamp found in only one of the two fades: a new one enters at ``1 - weight`` of its
    glow, a lost one keeps ``weight`` of its own (dropped once faint). A lamp found in one frame and missed in the
    next therefore changes the glow by a fraction, instead of switching it on and off (a flicker around the lamp).
    """
    out, used = [], set()
    for lamp in new:
        dist = [
            np.hypot(o["x"] - lamp["x"], o["y"] - lamp["y"]) if i not in used else np.inf for i, o in enumerate(old)
        ]
        i = int(np.argmin(dist)) if dist else -1
        if i >= 0 and dist[i] <= match:
            used.add(i)
            o = old[i]
            mixed = {k: weight * o[k] + (1 - weight) * lamp[k] for k in ("x", "y", "radius", "step")}
            n = max(len(o["profile"]), len(lamp["profile"]))
            po, pn = (np.pad(np.asarray(p, np.float64), (0, n - len(p))) for p in (o["profile"], lamp["profile"]))
            mixed["profile"] = [round(float(v), 5) for v in weight * po + (1 - weight) * pn]
            mixed["colour"] = [
                round(float(weight * a + (1 - weight) * b), 4) for a, b in zip(o["colour"], lamp["colour"])
            ]
            out.append(mixed)
        else:
            out.append({**lamp, "profile": [round(float(v) * (1 - weight), 5) for v in lamp["profile"]]})
    for i, o in enumerate(old):
        if i not in used and max(o["profile"], default=0.0) * weight > 2e-3:
            out.append({**o, "profile": [round(float(v) * weight, 5) for v in o["profile"]]})
    return out


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
    description = (
        "night haze: spatially varying airlight (maximum reflectance prior), lamp glow kept apart, lamp-cast removal, "
        "brightening"
    )

    def __init__(self, config: NightConfig | None = None, **overrides) -> None:
        cfg = config or NightConfig()
        self.config = NightConfig(**{**cfg.__dict__, **overrides})

    @property
    def halo(self) -> int:
        c = self.config
        blur = 3 * round(c.light_presmooth) + 3 * round(c.cast_smooth)
        return 6 + 2 * c.denoise_radius + c.light_patch // 2 + 2 * c.light_radius + c.patch // 2 + 2 * c.radius + blur

    def _restore_core(self, x: np.ndarray, lamps: list[dict]) -> np.ndarray:
        c = self.config
        glow = None
        if lamps:
            glow = render_glow_np(lamps, x.shape, current_region(x.shape))
            glow = np.minimum(glow, 0.9 * cv2.GaussianBlur(x, (0, 0), 2.0))
            x = np.maximum(x - glow, 0.0)
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
        if glow is not None:
            j = j + glow
        return j

    def prepare(self, preview: np.ndarray) -> RestorerState:
        c = self.config
        gain, gamma = 1.0, 1.0
        lamps = glow_lamps_np(preview, c.glow_lamps, c.glow_quantile, c.glow_reach) if c.glow_lamps > 0 else []
        if c.target_mean > 0:
            j = np.clip(self._restore_core(preview, lamps), 0, 1)
            mean = float(cv2.cvtColor(j, cv2.COLOR_RGB2GRAY).mean())
            gain = float(np.clip(c.target_mean / max(mean, 1e-3), 1.0, c.max_gain))
            # what the gain cannot reach (it is capped, and highlights clip), a gamma adds
            reached = min(mean * gain, 0.999)
            if reached < c.target_mean and reached > 1e-3:
                gamma = float(np.clip(np.log(c.target_mean) / np.log(reached), 0.5, 1.0))
        reason = f"brightness gain {gain:.2f}, gamma {gamma:.2f}"
        if lamps:
            reason += f", {len(lamps)} lamps' glow kept"
        return RestorerState(self.name, reason, {"gain": gain, "gamma": gamma, "lamps": lamps})

    def process(self, x: np.ndarray, state: RestorerState) -> np.ndarray:
        j = self._restore_core(x, state.params.get("lamps", []))
        gain, gamma = state.params["gain"], state.params["gamma"]
        if gain != 1.0:
            # compress highlights smoothly instead of clipping them: y = g x / (1 + (g - 1) x)
            j = gain * j / (1.0 + (gain - 1.0) * np.clip(j, 0, 1))
        j = np.clip(j, 0.0, 1.0)
        if gamma != 1.0:
            j = np.power(j, gamma)
        return j.astype(np.float32, copy=False)
