"""Degradation operators: each a function (the physics, deterministic) and a module (sampling + replay).

Ranges are in the units of the tensors: images in [0, 1], noise sigmas in [0, 1] units (``25/255`` is
"sigma 25"), depth normalised to [0, 1] with 0 near and 1 far, so ``beta`` is the optical thickness of
the whole depth range (``t = exp(-beta)`` at the farthest point). Lengths and radii are in pixels.
"""

from __future__ import annotations

import io as _io
import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .._registry import Registry
from .base import (
    Degradation,
    Params,
    bernoulli,
    choice,
    per_sample,
    sample_generator,
    seeds,
    smooth_field,
    uniform,
)

__all__ = [
    "DEGRADATIONS",
    "list_degradations",
    "create_degradation",
    "srgb_to_linear",
    "linear_to_srgb",
    "smooth_field",
    "day_haze",
    "sand_dust",
    "color_cast",
    "blur",
    "motion_kernel",
    "disk_kernel",
    "jpeg",
    "DayHaze",
    "NonHomogeneousHaze",
    "NightHaze",
    "SandDust",
    "LowLight",
    "Noise",
    "ColorCast",
    "MotionBlur",
    "Defocus",
    "Rain",
    "JPEG",
]

DEGRADATIONS: Registry[type[Degradation]] = Registry("degradation")


def _register(cls: type[Degradation]) -> type[Degradation]:
    DEGRADATIONS.register(cls.name, cls)
    return cls


def list_degradations(pattern: str | None = None) -> list[str]:
    """Names of the registered degradation operators."""
    return DEGRADATIONS.names(pattern)


def create_degradation(name: str, **kwargs) -> Degradation:
    """Build the operator ``name`` with ``kwargs`` overriding its default ranges."""
    return DEGRADATIONS.get(name)(**kwargs)


Range = tuple[float, float]


# --------------------------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------------------------- #
def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """sRGB transfer function inverse (IEC 61966-2-1), differentiable."""
    x = x.clamp(0, 1)
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055).clamp_min(1e-12) ** 2.4)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    """sRGB transfer function, differentiable."""
    x = x.clamp(0, 1)
    return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x.clamp_min(1e-12) ** (1 / 2.4) - 0.055)


def _need_depth(x: torch.Tensor, depth: torch.Tensor | None) -> torch.Tensor:
    if depth is None:
        from .depth import estimate_depth

        depth = estimate_depth(x)
    if depth.shape[0] != x.shape[0] or depth.shape[-2:] != x.shape[-2:]:
        raise ValueError(f"depth {tuple(depth.shape)} does not match the image batch {tuple(x.shape)}")
    return depth.to(x.dtype)


# --------------------------------------------------------------------------------------------- #
# haze family
# --------------------------------------------------------------------------------------------- #
def day_haze(
    x: torch.Tensor, depth: torch.Tensor, beta: torch.Tensor, airlight: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``I = J t + A (1 - t)`` with ``t = exp(-beta * depth)``.

    Args:
        x: clean ``(B, 3, H, W)``.
        depth: ``(B, 1, H, W)`` in [0, 1].
        beta: ``(B,)`` or a spatial map ``(B, 1, H, W)``.
        airlight: ``(B, 3)``.

    Returns:
        hazy image and transmission ``(B, 1, H, W)``.
    """
    b = beta.to(x.dtype)
    b = b.view(-1, 1, 1, 1) if b.dim() == 1 else b
    t = torch.exp(-b * depth)
    a = airlight.to(x.dtype).view(-1, 3, 1, 1)
    return x * t + a * (1 - t), t


@_register
class DayHaze(Degradation):
    """Homogeneous day haze: scattering model with depth, grey-ish airlight with a per-channel offset.

    Args:
        beta: optical thickness range over the depth range.
        airlight: range of the airlight brightness.
        offset: half-width of the per-channel airlight offset.
    """

    name = "day_haze"
    needs_depth = True

    def __init__(self, beta: Range = (0.5, 2.5), airlight: Range = (0.65, 0.98), offset: float = 0.025) -> None:
        super().__init__()
        self.beta, self.airlight, self.offset = tuple(beta), tuple(airlight), float(offset)

    def _sample(self, batch: int, generator: torch.Generator | None) -> Params:
        a = uniform(batch, *self.airlight, generator)[:, None] + uniform(
            batch, -self.offset, self.offset, generator, (3,)
        )
        return {"beta": uniform(batch, *self.beta, generator), "airlight": a.clamp(0, 1)}

    def apply(self, x, params, depth=None, maps=None):
        out, t = day_haze(x, _need_depth(x, depth), params["beta"], params["airlight"])
        if maps is not None:
            maps["transmission"] = t
        return out


@_register
class NonHomogeneousHaze(DayHaze):
    """Haze whose density varies in space: ``beta(x) = beta * (1 + strength * (2 f(x) - 1))``, ``f`` a smooth field.

    Args:
        strength: range of the relative density variation.
        cells: coarseness of the density field (cells across the image).
    """

    name = "nonhomogeneous_haze"

    def __init__(
        self,
        beta: Range = (0.8, 2.8),
        airlight: Range = (0.7, 0.98),
        offset: float = 0.025,
        strength: Range = (0.3, 0.8),
        cells: int = 3,
    ) -> None:
        super().__init__(beta, airlight, offset)
        self.strength, self.cells = tuple(strength), int(cells)

    def _sample(self, batch, generator):
        p = super()._sample(batch, generator)
        p["strength"] = uniform(batch, *self.strength, generator)
        p["seed"] = seeds(batch, generator)
        return p

    def apply(self, x, params, depth=None, maps=None):
        b, _, h, w = x.shape
        fields = torch.cat([smooth_field(h, w, sample_generator(s), self.cells, x.dtype) for s in params["seed"]]).to(
            x.device
        )
        beta = per_sample(params, "beta", x) * (1 + per_sample(params, "strength", x) * (2 * fields - 1))
        out, t = day_haze(x, _need_depth(x, depth), beta.clamp_min(0), params["airlight"])
        if maps is not None:
            maps["transmission"] = t
        return out


_WAVELENGTHS = torch.tensor([620.0, 540.0, 460.0])  # nm, dominant wavelengths of R, G, B


def sand_dust(
    x: torch.Tensor,
    depth: torch.Tensor,
    beta: torch.Tensor,
    alpha: torch.Tensor,
    airlight: torch.Tensor,
    absorb: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sand-dust: wavelength-dependent scattering ``beta_c = beta (lambda_c / 550)^-alpha``, blue absorbed.

    Args:
        x: clean ``(B, 3, H, W)``; depth ``(B, 1, H, W)``; beta, alpha ``(B,)``; airlight ``(B, 3)``;
        absorb: ``(B, 3)`` gains on the scene radiance (the blue channel is absorbed on the way).

    Returns:
        dusty image and per-channel transmission ``(B, 3, H, W)``.
    """
    lam = (_WAVELENGTHS.to(x.device, x.dtype) / 550.0).view(1, 3)
    beta_c = beta.to(x.dtype).view(-1, 1) * lam ** (-alpha.to(x.dtype).view(-1, 1))
    t = torch.exp(-beta_c.view(-1, 3, 1, 1) * depth)
    a = airlight.to(x.dtype).view(-1, 3, 1, 1)
    return x * absorb.to(x.dtype).view(-1, 3, 1, 1) * t + a * (1 - t), t


@_register
class SandDust(Degradation):
    """Sand and dust: yellow-orange airlight, blue scattered and absorbed more than red.

    The airlight is drawn in HSV so that its hue stays yellow-orange whatever its density.

    Args:
        beta: optical thickness range (at 550 nm).
        alpha: wavelength exponent range (positive: shorter wavelengths attenuated more).
        hue: airlight hue range in degrees (20 orange, 50 yellow).
        saturation: airlight saturation range.
        value: airlight brightness range.
        absorb_b: range of the gain on the blue channel of the scene radiance (green gets half the loss).
    """

    name = "sand_dust"
    needs_depth = True

    def __init__(
        self,
        beta: Range = (0.6, 2.8),
        alpha: Range = (0.5, 2.5),
        hue: Range = (22.0, 45.0),
        saturation: Range = (0.35, 0.75),
        value: Range = (0.7, 1.0),
        absorb_b: Range = (0.55, 0.95),
    ) -> None:
        super().__init__()
        self.beta, self.alpha = tuple(beta), tuple(alpha)
        self.hue, self.saturation, self.value = tuple(hue), tuple(saturation), tuple(value)
        self.absorb_b = tuple(absorb_b)

    def _sample(self, batch, generator):
        h = uniform(batch, *self.hue, generator) / 60.0  # sector 0..1: red to yellow, R max, B min
        s = uniform(batch, *self.saturation, generator)
        v = uniform(batch, *self.value, generator)
        r, bl = v, v * (1 - s)
        g = bl + (r - bl) * h  # HSV to RGB inside the red-yellow sector
        ab = uniform(batch, *self.absorb_b, generator)
        absorb = torch.stack([torch.ones(batch), 1 - 0.5 * (1 - ab), ab], dim=1)
        return {
            "beta": uniform(batch, *self.beta, generator),
            "alpha": uniform(batch, *self.alpha, generator),
            "airlight": torch.stack([r, g, bl], dim=1),
            "absorb": absorb,
        }

    def apply(self, x, params, depth=None, maps=None):
        out, t = sand_dust(
            x, _need_depth(x, depth), params["beta"], params["alpha"], params["airlight"], params["absorb"]
        )
        if maps is not None:
            maps["transmission"] = t
        return out


_LAMP_COLOURS = torch.tensor(
    [
        [1.00, 0.62, 0.25],  # high-pressure sodium
        [1.00, 0.95, 0.85],  # warm white
        [0.85, 0.92, 1.00],  # cool LED
        [0.80, 1.00, 0.85],  # mercury vapour
    ]
)


@_register
class NightHaze(Degradation):
    """Night haze: a darkened scene lit by coloured lamps, their light scattered into a glow and a
    low, spatially varying airlight.

    The model: ``J_n = k J^gamma`` (night exposure) plus light pools ``J L(x)`` around each lamp,
    transmission ``t = exp(-beta d)``, airlight ``A(x) = a0 c_amb + s * sum_i c_i exp(-r_i^2 / 2 w_i^2)``
    (scattered lamp light), and a glow ``G = sum_i c_i (g1 exp(-r^2 / 2 s1^2) + g2 / (1 + r^2 / s2^2))``
    — a narrow core and a heavy tail, the shape of an atmospheric point-spread function, growing with
    the haze density. ``I = J_n t + A(x) (1 - t) + (1 - e^{-beta}) G``.

    Args:
        gamma, exposure: darkening of the day-time scene.
        lights: range of the number of lamps.
        beta: optical thickness range.
        ambient: range of the ambient airlight level ``a0``.
        glow: range of the glow strength.
        warmth: range of the ambient veil's colour, from neutral (0) to sodium orange (1).
    """

    name = "night_haze"
    needs_depth = True

    def __init__(
        self,
        gamma: Range = (1.2, 2.2),
        exposure: Range = (0.08, 0.35),
        lights: tuple[int, int] = (1, 6),
        beta: Range = (0.5, 2.5),
        ambient: Range = (0.03, 0.2),
        glow: Range = (0.1, 0.5),
        warmth: Range = (0.0, 1.0),
    ) -> None:
        super().__init__()
        self.gamma, self.exposure, self.lights = tuple(gamma), tuple(exposure), (int(lights[0]), int(lights[1]))
        self.beta, self.ambient, self.glow, self.warmth = tuple(beta), tuple(ambient), tuple(glow), tuple(warmth)

    def _sample(self, batch, generator):
        # ambient veil colour: from neutral-blue sky glow (warmth 0) to sodium-lit orange fog (warmth 1)
        w = uniform(batch, *self.warmth, generator)[:, None]
        neutral = uniform(batch, 0.85, 1.0, generator, (3,))
        amb = (1 - w) * neutral + w * _LAMP_COLOURS[0].view(1, 3)
        return {
            "gamma": uniform(batch, *self.gamma, generator),
            "exposure": uniform(batch, *self.exposure, generator),
            "lights": torch.randint(self.lights[0], self.lights[1] + 1, (batch,), generator=generator),
            "beta": uniform(batch, *self.beta, generator),
            "ambient": uniform(batch, *self.ambient, generator),
            "ambient_colour": amb,
            "glow": uniform(batch, *self.glow, generator),
            "seed": seeds(batch, generator),
        }

    def _lamps(self, seed: int, n: int, dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        g = sample_generator(seed)
        pos = torch.rand(n, 2, generator=g, dtype=torch.float64).to(dtype)
        pos[:, 1] = 0.1 + 0.6 * pos[:, 1]  # lamps sit in the upper part of the frame
        idx = torch.multinomial(torch.tensor([0.45, 0.25, 0.2, 0.1]), n, replacement=True, generator=g)
        col = (_LAMP_COLOURS[idx] * (0.9 + 0.1 * torch.rand(n, 3, generator=g))).clamp(0, 1).to(dtype)
        size = (0.008 + 0.025 * torch.rand(n, generator=g, dtype=torch.float64)).to(dtype)
        return pos, col, size

    def apply(self, x, params, depth=None, maps=None):
        b, _, h, w = x.shape
        d = _need_depth(x, depth)
        diag = math.hypot(h, w)
        yy = torch.arange(h, dtype=x.dtype, device=x.device).view(1, h, 1)
        xx = torch.arange(w, dtype=x.dtype, device=x.device).view(1, 1, w)
        outs, ts = [], []
        for i in range(b):
            n = int(params["lights"][i])
            pos, col, size = self._lamps(int(params["seed"][i]), n, x.dtype)
            pos, col, size = pos.to(x.device), col.to(x.device), size.to(x.device)
            r2 = (xx - pos[:, 0].view(n, 1, 1) * (w - 1)) ** 2 + (yy - pos[:, 1].view(n, 1, 1) * (h - 1)) ** 2
            s = (size * diag).view(n, 1, 1)
            pool = 1.0 / (1.0 + r2 / (6 * s) ** 2)  # light falling on the scene
            scatter = torch.exp(-r2 / (2 * (5 * s) ** 2))  # lamp light scattered by the haze
            glow = 0.6 * torch.exp(-r2 / (2 * s**2)) + 0.25 / (1.0 + r2 / (3 * s) ** 2)
            lit = (col.view(n, 3, 1, 1) * pool.unsqueeze(1)).sum(0)
            xi = x[i]
            jn = per_sample(params, "exposure", x)[i, 0] * xi.clamp_min(1e-6) ** per_sample(params, "gamma", x)[i, 0]
            jn = jn + 0.8 * xi * lit
            beta = per_sample(params, "beta", x)[i, 0]
            t = torch.exp(-beta * d[i])
            amb = params["ambient"][i].to(x.dtype) * params["ambient_colour"][i].to(x.device, x.dtype).view(3, 1, 1)
            a_map = amb + 0.35 * (col.view(n, 3, 1, 1) * scatter.unsqueeze(1)).sum(0)
            g = (
                params["glow"][i].to(x.dtype)
                * (1 - torch.exp(-beta))
                * (col.view(n, 3, 1, 1) * glow.unsqueeze(1)).sum(0)
            )
            outs.append((jn * t + a_map * (1 - t) + g).clamp(0, 1))
            ts.append(t)
        if maps is not None:
            maps["transmission"] = torch.stack(ts)
        return torch.stack(outs)


# --------------------------------------------------------------------------------------------- #
# light and noise
# --------------------------------------------------------------------------------------------- #
def _gaussian_like(x: torch.Tensor, seed_values: torch.Tensor, channels: int) -> torch.Tensor:
    b, _, h, w = x.shape
    out = [torch.randn(channels, h, w, generator=sample_generator(int(s))).to(x.dtype) for s in seed_values]
    return torch.stack(out).to(x.device)


@_register
class LowLight(Degradation):
    """Under-exposure in linear light with Poisson-Gaussian sensor noise.

    ``L = srgb_to_linear(x)``; ``L' = k L^gamma``; noise with variance ``a L' + b^2`` (shot and read
    noise, in linear units); back to sRGB.

    Args:
        exposure: range of the exposure factor ``k``.
        gamma: range of the contrast exponent in linear light.
        shot: range of the shot-noise gain ``a``.
        read: range of the read-noise sigma ``b``.
    """

    name = "low_light"

    def __init__(
        self,
        exposure: Range = (0.03, 0.3),
        gamma: Range = (1.0, 1.4),
        shot: Range = (1e-4, 4e-3),
        read: Range = (5e-4, 4e-3),
    ) -> None:
        super().__init__()
        self.exposure, self.gamma, self.shot, self.read = tuple(exposure), tuple(gamma), tuple(shot), tuple(read)

    def _sample(self, batch, generator):
        lo, hi = math.log(self.exposure[0]), math.log(self.exposure[1])
        return {
            "exposure": torch.exp(uniform(batch, lo, hi, generator)),
            "gamma": uniform(batch, *self.gamma, generator),
            "shot": uniform(batch, *self.shot, generator),
            "read": uniform(batch, *self.read, generator),
            "seed": seeds(batch, generator),
        }

    def apply(self, x, params, depth=None, maps=None):
        lin = srgb_to_linear(x).clamp_min(1e-8) ** per_sample(params, "gamma", x) * per_sample(params, "exposure", x)
        var = per_sample(params, "shot", x) * lin + per_sample(params, "read", x) ** 2
        noisy = lin + torch.sqrt(var) * _gaussian_like(x, params["seed"], 3)
        return linear_to_srgb(noisy)


NOISE_MODES = ("gray", "color", "correlated", "poisson_gaussian")


@_register
class Noise(Degradation):
    """Sensor noise in four kinds: grey (shared by the channels), colour (independent), cross-channel
    correlated (covariance ``sigma^2 U^T D U`` with a random rotation ``U``, as in CORUN), and
    Poisson-Gaussian (variance ``a x + sigma^2``).

    Args:
        sigma: range of the noise standard deviation in [0, 1] units (``25/255`` is "sigma 25").
        probs: probabilities of the four kinds, in the order of ``NOISE_MODES``.
        shot: range of the Poisson gain ``a`` for ``poisson_gaussian``.
    """

    name = "noise"

    def __init__(
        self,
        sigma: Range = (2 / 255, 25 / 255),
        probs: Sequence[float] = (0.4, 0.4, 0.2, 0.0),
        shot: Range = (1e-3, 1e-2),
    ) -> None:
        super().__init__()
        self.sigma, self.probs, self.shot = tuple(sigma), tuple(float(p) for p in probs), tuple(shot)

    def _sample(self, batch, generator):
        return {
            "mode": choice(batch, len(NOISE_MODES), generator, self.probs),
            "sigma": uniform(batch, *self.sigma, generator),
            "shot": uniform(batch, *self.shot, generator),
            "seed": seeds(batch, generator),
        }

    def apply(self, x, params, depth=None, maps=None):
        b, _, h, w = x.shape
        outs = []
        for i in range(b):
            g = sample_generator(int(params["seed"][i]))
            mode = NOISE_MODES[int(params["mode"][i])]
            sigma = params["sigma"][i].to(x.dtype)
            z = torch.randn(3, h, w, generator=g).to(x.device, x.dtype)
            if mode == "gray":
                n = sigma * z[:1].expand(3, h, w)
            elif mode == "color":
                n = sigma * z
            elif mode == "correlated":
                u, _ = torch.linalg.qr(torch.rand(3, 3, generator=g, dtype=torch.float64))
                dvec = torch.rand(3, generator=g, dtype=torch.float64)
                cov = u.T @ torch.diag(dvec / dvec.mean()) @ u
                chol = torch.linalg.cholesky(cov + 1e-9 * torch.eye(3, dtype=torch.float64)).to(x.device, x.dtype)
                n = sigma * torch.einsum("ij,jhw->ihw", chol, z)
            else:
                var = params["shot"][i].to(x.dtype) * x[i].clamp_min(0) + sigma**2
                n = torch.sqrt(var) * z
            outs.append(x[i] + n)
        return torch.stack(outs).clamp(0, 1)


def color_cast(x: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
    """Per-channel gains ``(B, 3)`` on ``x``, clipped to [0, 1]."""
    return (x * gains.to(x.dtype).view(-1, 3, 1, 1)).clamp(0, 1)


@_register
class ColorCast(Degradation):
    """A colour cast: per-channel gains, normalised so that their mean is 1 (brightness kept).

    Args:
        gains: range of each channel's gain before normalisation.
        warm_bias: if true, sort the gains so that R >= G >= B (a sand or tungsten tint).
    """

    name = "color_cast"

    def __init__(self, gains: Range = (0.7, 1.3), warm_bias: bool = False) -> None:
        super().__init__()
        self.gains, self.warm_bias = tuple(gains), bool(warm_bias)

    def _sample(self, batch, generator):
        g = uniform(batch, *self.gains, generator, (3,))
        if self.warm_bias:
            g = g.sort(dim=1, descending=True).values
        return {"gains": g / g.mean(dim=1, keepdim=True)}

    def apply(self, x, params, depth=None, maps=None):
        return color_cast(x, params["gains"])


# --------------------------------------------------------------------------------------------- #
# blur
# --------------------------------------------------------------------------------------------- #
def blur(x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Convolve each image with its own kernel ``(B, k, k)`` (odd ``k``), reflect padding, differentiable."""
    b, c, h, w = x.shape
    k = kernels.shape[-1]
    r = k // 2
    mode = "reflect" if r < h and r < w else "replicate"
    xp = F.pad(x.reshape(1, b * c, h, w), (r, r, r, r), mode=mode)
    weight = kernels.to(x.dtype).repeat_interleave(c, dim=0).unsqueeze(1).flip(-1, -2)
    return F.conv2d(xp, weight, groups=b * c).reshape(b, c, h, w)


def motion_kernel(length: float, generator: torch.Generator, size: int | None = None) -> torch.Tensor:
    """A camera-shake kernel: a random walk with inertia (after Boracchi and Foi, 2012), rasterised
    by bilinear splatting and normalised to sum 1. ``length`` is the path extent in pixels."""
    size = size or int(2 * math.ceil(length / 2) + 3)
    steps = 64
    v = torch.randn(2, generator=generator, dtype=torch.float64)
    v = v / v.norm().clamp_min(1e-9)
    pos = torch.zeros(steps, 2, dtype=torch.float64)
    for i in range(1, steps):
        v = 0.85 * v + 0.35 * torch.randn(2, generator=generator, dtype=torch.float64)
        v = v / v.norm().clamp_min(1e-9)
        pos[i] = pos[i - 1] + v
    pos -= pos.mean(0)
    extent = (pos.amax(0) - pos.amin(0)).max().clamp_min(1e-9)
    pos = pos * (length / extent) + (size - 1) / 2
    k = torch.zeros(size, size, dtype=torch.float64)
    for px, py in pos.clamp(0, size - 1.001):
        x0, y0 = int(px), int(py)
        fx, fy = float(px) - x0, float(py) - y0
        k[y0, x0] += (1 - fx) * (1 - fy)
        k[y0, x0 + 1] += fx * (1 - fy)
        k[y0 + 1, x0] += (1 - fx) * fy
        k[y0 + 1, x0 + 1] += fx * fy
    return k / k.sum()


def _centred_grid(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column offsets from the centre of a ``size x size`` kernel, float64."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    return torch.meshgrid(r, r, indexing="ij")


def disk_kernel(radius: float, size: int | None = None) -> torch.Tensor:
    """A defocus (pillbox) kernel of ``radius`` pixels with anti-aliased edges, sum 1."""
    size = size or int(2 * math.ceil(radius) + 1)
    yy, xx = _centred_grid(size)
    r = torch.sqrt(yy**2 + xx**2)
    k = (radius + 0.5 - r).clamp(0, 1)
    return k / k.sum()


@_register
class MotionBlur(Degradation):
    """Camera-shake blur along a random trajectory. Args: ``length``: range of the path extent in pixels."""

    name = "motion_blur"

    def __init__(self, length: Range = (3.0, 21.0)) -> None:
        super().__init__()
        self.length = tuple(length)

    def _sample(self, batch, generator):
        return {"length": uniform(batch, *self.length, generator), "seed": seeds(batch, generator)}

    def kernels(self, params: Params) -> torch.Tensor:
        size = int(2 * math.ceil(float(params["length"].max()) / 2) + 3)
        return torch.stack(
            [
                motion_kernel(float(length), sample_generator(int(s)), size)
                for length, s in zip(params["length"], params["seed"])
            ]
        )

    def apply(self, x, params, depth=None, maps=None):
        return blur(x, self.kernels(params).to(x.device))


@_register
class Defocus(Degradation):
    """Out-of-focus blur with a pillbox kernel. Args: ``radius``: range in pixels."""

    name = "defocus"

    def __init__(self, radius: Range = (1.0, 5.0)) -> None:
        super().__init__()
        self.radius = tuple(radius)

    def _sample(self, batch, generator):
        return {"radius": uniform(batch, *self.radius, generator)}

    def apply(self, x, params, depth=None, maps=None):
        size = int(2 * math.ceil(float(params["radius"].max())) + 1)
        k = torch.stack([disk_kernel(float(r), size) for r in params["radius"]])
        return blur(x, k.to(x.device))


# --------------------------------------------------------------------------------------------- #
# weather and compression
# --------------------------------------------------------------------------------------------- #
def _line_kernel(length: float, angle: float, size: int) -> torch.Tensor:
    yy, xx = _centred_grid(size)
    dx, dy = math.sin(angle), math.cos(angle)  # angle from the vertical
    along = xx * dx + yy * dy
    across = xx * dy - yy * dx
    k = (1 - across.abs()).clamp(0, 1) * (along.abs() <= length / 2)
    return k / k.sum().clamp_min(1e-9)


@_register
class Rain(Degradation):
    """Rain: bright streaks along one direction plus a veil of haze (rain is also fog at a distance).

    Streaks are sparse random drops smeared with a line kernel; they are screen-blended so they can only
    brighten. The veil is ``I = J t + A (1 - t)`` with a near-constant depth.

    Args:
        density: range of the share of pixels seeding a drop.
        length: range of the streak length in pixels.
        angle: range of the streak angle from the vertical, in degrees.
        intensity: range of the streak brightness.
        veil: range of the veil's ``1 - t``.
    """

    name = "rain"

    def __init__(
        self,
        density: Range = (0.002, 0.02),
        length: Range = (8.0, 30.0),
        angle: Range = (-25.0, 25.0),
        intensity: Range = (0.4, 1.0),
        veil: Range = (0.0, 0.35),
    ) -> None:
        super().__init__()
        self.density, self.length, self.angle = tuple(density), tuple(length), tuple(angle)
        self.intensity, self.veil = tuple(intensity), tuple(veil)

    def _sample(self, batch, generator):
        return {
            "density": uniform(batch, *self.density, generator),
            "length": uniform(batch, *self.length, generator),
            "angle": uniform(batch, *self.angle, generator),
            "intensity": uniform(batch, *self.intensity, generator),
            "veil": uniform(batch, *self.veil, generator),
            "airlight": uniform(batch, 0.75, 0.95, generator),
            "seed": seeds(batch, generator),
        }

    def apply(self, x, params, depth=None, maps=None):
        b, _, h, w = x.shape
        size = int(2 * math.ceil(float(params["length"].max()) / 2) + 1)
        drops, kernels = [], []
        for i in range(b):
            g = sample_generator(int(params["seed"][i]))
            u = torch.rand(1, h, w, generator=g, dtype=torch.float64)
            bright = torch.rand(1, h, w, generator=g, dtype=torch.float64)
            drops.append(((u < float(params["density"][i])) * (0.5 + 0.5 * bright)).to(x.dtype))
            kernels.append(_line_kernel(float(params["length"][i]), math.radians(float(params["angle"][i])), size))
        streak = blur(torch.stack(drops).to(x.device), torch.stack(kernels).to(x.device)) * float(size) * 0.5
        streak = (streak * per_sample(params, "intensity", x)).clamp(0, 1)
        veil = per_sample(params, "veil", x)
        hazy = x * (1 - veil) + per_sample(params, "airlight", x) * veil
        return 1 - (1 - hazy) * (1 - streak)


def jpeg(x: torch.Tensor, quality: torch.Tensor | Sequence[int]) -> torch.Tensor:
    """JPEG-compress each image at its quality in [1, 100] (4:2:0, libjpeg via Pillow); not differentiable."""
    from PIL import Image

    outs = []
    for img, q in zip(x.detach(), quality):
        arr = (img.clamp(0, 1).permute(1, 2, 0).cpu().double().numpy() * 255 + 0.5).astype(np.uint8)
        buf = _io.BytesIO()
        Image.fromarray(arr).save(buf, "JPEG", quality=int(q))
        back = np.asarray(Image.open(_io.BytesIO(buf.getvalue())).convert("RGB"), dtype=np.float32) / 255.0
        outs.append(torch.from_numpy(back).permute(2, 0, 1))
    return torch.stack(outs).to(x.device, x.dtype)


@_register
class JPEG(Degradation):
    """JPEG compression. Args: ``quality``: integer range in [1, 100]."""

    name = "jpeg"
    differentiable = False

    def __init__(self, quality: tuple[int, int] = (30, 95)) -> None:
        super().__init__()
        self.quality = (int(quality[0]), int(quality[1]))

    def _sample(self, batch, generator):
        return {"quality": torch.randint(self.quality[0], self.quality[1] + 1, (batch,), generator=generator)}

    def apply(self, x, params, depth=None, maps=None):
        return jpeg(x, params["quality"])


@_register
class Gamma(Degradation):
    """Darkening by a gamma on the sRGB values, ``x^gamma`` (CORUN/RIDCP's low-light step)."""

    name = "gamma"

    def __init__(self, gamma: Range = (1.5, 3.0)) -> None:
        super().__init__()
        self.gamma = tuple(gamma)

    def _sample(self, batch, generator):
        return {"gamma": uniform(batch, *self.gamma, generator)}

    def apply(self, x, params, depth=None, maps=None):
        return x.clamp_min(1e-8) ** per_sample(params, "gamma", x)


__all__ += ["Gamma", "NOISE_MODES", "bernoulli"]
