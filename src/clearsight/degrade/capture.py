"""Dynamic-scene capture simulator: the blur/noise trade-off of exposure time and gain (IRP, methods §4.2).

A camera photographing a moving scene at a fixed brightness can expose long at low gain (few photons
lost to noise, but camera shake and moving objects smear) or short at high gain (sharp, but few photons,
so shot and read noise are amplified). :func:`simulate_captures` renders one scene under a bracket of
settings with **exposure x gain constant**, so the mean brightness stays the same and only the mix of
blur and noise changes.

The model, in linear light ``L = srgb_to_linear(x)`` (optionally hazed first):

* camera shake: one random trajectory with inertia per scene, ``speed`` pixels per millisecond; an exposure
  of ``t`` ms integrates its first ``t`` ms, so the blur path grows with exposure. The kernel is centred on
  its centroid, so the frame stays aligned with the clean image (the label needs pixel alignment).
* object motion (optional): a soft elliptical region moving at ``object_speed`` px/ms in a fixed direction;
  its extra linear blur of ``object_speed * t`` pixels is composited with a matching blurred matte.
* sensor: ``electrons ~ Poisson(L_blur * photons * t)`` plus Gaussian read noise ``read`` electrons; the
  digital value is ``electrons / (photons * t)`` (the gain ``t_ref / t`` times a fixed scale), so the mean is
  ``L_blur`` at every setting, while the relative shot noise grows as ``1 / sqrt(t)`` and the read noise as
  ``1 / t``. ``photons`` (electrons per ms at white) is the light level: low light is a small ``photons``.
* camera pipeline (optional, ``cfa``): the sensor is a Bayer mosaic (RGGB), so each pixel records one colour
  with its own noise, and a bilinear demosaic fills in the others; the noise becomes spatially correlated
  and chromatic, as in real camera images, instead of independent per pixel and channel.
* the frame is clipped to [0, 1] and returned in sRGB, JPEG-compressed at ``jpeg_quality`` if it is set.

Parameters are drawn by :func:`sample_scene` from an explicit generator and returned for replay.

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> scene = sample_scene(g)
    >>> frames, info = simulate_captures(torch.rand(1, 3, 48, 48), exposure_bracket(4), scene)
    >>> frames.shape, len(info)
    (torch.Size([4, 3, 48, 48]), 4)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from .base import sample_generator
from .ops import blur, jpeg, linear_to_srgb, srgb_to_linear

__all__ = [
    "SIMULATOR_VERSION",
    "Capture",
    "SceneMotion",
    "demosaic_bilinear",
    "exposure_bracket",
    "sample_scene",
    "shake_kernel",
    "simulate_captures",
]


#: Bumped whenever the simulator's output for a given draw changes (2: camera pipeline), so cached bursts
#: made by an older one are rebuilt rather than silently mixed with new ones.
SIMULATOR_VERSION = 2


@dataclass(frozen=True)
class Capture:
    """One camera setting.

    Attributes:
        exposure_ms: exposure time in milliseconds.
        gain: analog gain relative to the bracket's longest exposure (1 = base ISO); ``exposure_ms * gain`` is
            constant within a bracket.
    """

    exposure_ms: float
    gain: float


def exposure_bracket(n: int = 8, shortest_ms: float = 1.0, longest_ms: float = 64.0) -> list[Capture]:
    """``n`` settings with exposures spaced evenly in stops from ``shortest_ms`` to ``longest_ms`` and the gain
    that keeps the brightness of the longest one (gain 1 at ``longest_ms``)."""
    if n < 1 or not 0 < shortest_ms <= longest_ms:
        raise ValueError(f"need n >= 1 and 0 < shortest_ms <= longest_ms, got {n}, {shortest_ms}, {longest_ms}")
    if n == 1:
        return [Capture(float(longest_ms), 1.0)]
    r = math.log(longest_ms / shortest_ms)
    times = [shortest_ms * math.exp(r * i / (n - 1)) for i in range(n)]
    return [Capture(t, longest_ms / t) for t in times]


@dataclass
class SceneMotion:
    """The per-scene draw of :func:`sample_scene` (all that a bracket of captures shares).

    Attributes:
        speed: camera-shake speed in pixels per millisecond.
        photons: electrons per millisecond at white (the light level).
        read: read-noise standard deviation in electrons.
        object_speed: speed of the moving object in px/ms (0: no moving object).
        object_angle: its direction in radians.
        object_box: its ellipse ``(cy, cx, ry, rx)`` as fractions of the image height/width.
        haze_beta: haze density (0: no haze) applied with a vertical depth ramp before the capture.
        seed: the seed of the trajectory and of the noise.
        shake: ``random`` (a random walk with inertia) or ``linear`` (a straight path in a random direction: a
            controlled ladder where the blur extent grows exactly with the exposure).
        cfa: sample through a Bayer mosaic and demosaic bilinearly (correlated, chromatic noise).
        jpeg_quality: JPEG quality of the saved frames (0: none).
    """

    speed: float = 0.3
    photons: float = 100.0
    read: float = 3.0
    object_speed: float = 0.0
    object_angle: float = 0.0
    object_box: tuple[float, float, float, float] = (0.5, 0.5, 0.2, 0.2)
    haze_beta: float = 0.0
    seed: int = 0
    shake: str = "random"
    cfa: bool = False
    jpeg_quality: int = 0

    def to_json(self) -> dict:
        return asdict(self)


def _u(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=g, dtype=torch.float64))


def sample_scene(
    generator: torch.Generator,
    speed: tuple[float, float] = (0.08, 1.5),
    photons: tuple[float, float] = (15.0, 3000.0),
    read: tuple[float, float] = (1.0, 8.0),
    p_object: float = 0.5,
    p_haze: float = 0.15,
    p_cfa: float = 0.7,
    p_jpeg: float = 0.6,
    jpeg_quality: tuple[int, int] = (70, 95),
) -> SceneMotion:
    """Draw a scene: shake speed (log-uniform), light level (log-uniform), read noise, an optional moving object,
    optional light haze, and the camera pipeline (Bayer mosaic with probability ``p_cfa``, JPEG with
    ``p_jpeg``)."""
    g = generator
    sp = math.exp(_u(g, math.log(speed[0]), math.log(speed[1])))
    ph = math.exp(_u(g, math.log(photons[0]), math.log(photons[1])))
    rd = _u(g, *read)
    has_obj = _u(g, 0, 1) < p_object
    obj_speed = _u(g, 0.1, 1.0) if has_obj else 0.0
    angle = _u(g, 0, 2 * math.pi)
    box = (_u(g, 0.3, 0.7), _u(g, 0.3, 0.7), _u(g, 0.12, 0.3), _u(g, 0.12, 0.3))
    beta = _u(g, 0.3, 1.2) if _u(g, 0, 1) < p_haze else 0.0
    seed = int(torch.randint(0, 2**31 - 1, (), generator=g))
    cfa = _u(g, 0, 1) < p_cfa
    q = round(_u(g, *jpeg_quality)) if _u(g, 0, 1) < p_jpeg else 0
    return SceneMotion(sp, ph, rd, obj_speed, angle, box, beta, seed, cfa=cfa, jpeg_quality=q)


def _bayer_masks(h: int, w: int, dtype) -> torch.Tensor:
    """``(1, 3, H, W)`` 0/1 masks of the R, G and B sites of an RGGB mosaic."""
    m = torch.zeros(1, 3, h, w, dtype=dtype)
    m[:, 0, 0::2, 0::2] = 1
    m[:, 1, 0::2, 1::2] = 1
    m[:, 1, 1::2, 0::2] = 1
    m[:, 2, 1::2, 1::2] = 1
    return m


def demosaic_bilinear(mosaic: torch.Tensor) -> torch.Tensor:
    """Bilinear demosaic of an RGGB mosaic held as ``(B, 3, H, W)`` with zeros off each colour's sites."""
    k_rb = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]], dtype=mosaic.dtype) / 4
    k_g = torch.tensor([[0.0, 1.0, 0.0], [1.0, 4.0, 1.0], [0.0, 1.0, 0.0]], dtype=mosaic.dtype) / 4
    k = torch.stack([k_rb, k_g, k_rb])[:, None]
    return F.conv2d(F.pad(mosaic, (1, 1, 1, 1), mode="reflect"), k, groups=3)


def _trajectory(seed: int, steps: int = 256, kind: str = "random") -> torch.Tensor:
    """A unit-speed path ``(steps, 2)`` in (x, y) pixel units per step, starting at 0: a random walk with inertia
    or (``kind="linear"``) a straight line."""
    g = sample_generator(seed)
    v = torch.randn(2, generator=g, dtype=torch.float64)
    v = v / v.norm().clamp_min(1e-9)
    if kind == "linear":
        return torch.arange(steps, dtype=torch.float64)[:, None] * v[None]
    if kind != "random":
        raise ValueError(f"shake must be 'random' or 'linear', got {kind!r}")
    pos = torch.zeros(steps, 2, dtype=torch.float64)
    for i in range(1, steps):
        v = 0.9 * v + 0.3 * torch.randn(2, generator=g, dtype=torch.float64)
        v = v / v.norm().clamp_min(1e-9)
        pos[i] = pos[i - 1] + v
    return pos


def _splat(points: torch.Tensor) -> torch.Tensor:
    """Rasterise ``(N, 2)`` points (x, y) into a normalised kernel centred on their centroid (odd size)."""
    pts = points - points.mean(0)
    r = int(math.ceil(float(pts.abs().max()))) + 1
    size = 2 * r + 1
    pts = (pts + r).clamp(0, size - 1.001)
    k = torch.zeros(size, size, dtype=torch.float64)
    x0, y0 = pts[:, 0].floor().long(), pts[:, 1].floor().long()
    fx, fy = pts[:, 0] - x0, pts[:, 1] - y0
    flat = k.view(-1)
    for dy, dx, wgt in ((0, 0, (1 - fx) * (1 - fy)), (0, 1, fx * (1 - fy)), (1, 0, (1 - fx) * fy), (1, 1, fx * fy)):
        flat.index_add_(0, (y0 + dy) * size + (x0 + dx), wgt)
    return k / k.sum()


def shake_kernel(scene: SceneMotion, exposure_ms: float, longest_ms: float | None = None) -> torch.Tensor:
    """The camera-shake kernel ``(k, k)`` (float64, sum 1) of ``exposure_ms`` for ``scene``: the first
    ``exposure_ms`` of the scene's trajectory, at ``scene.speed`` px/ms. Its path grows with the exposure."""
    longest_ms = max(longest_ms or exposure_ms, exposure_ms)
    steps = 256
    traj = _trajectory(scene.seed, steps, scene.shake) * (scene.speed * longest_ms / (steps - 1))
    n = max(2, int(round(1 + (steps - 1) * exposure_ms / longest_ms)))
    pts = traj[:n]
    # sub-sample densely so long paths rasterise without gaps
    dense = F.interpolate(pts.T[None], size=max(n, 4 * n), mode="linear", align_corners=True)[0].T
    return _splat(dense)


def _line_points(length: float, angle: float) -> torch.Tensor:
    n = max(2, int(math.ceil(4 * length)) + 1)
    s = torch.linspace(-length / 2, length / 2, n, dtype=torch.float64)
    return torch.stack([s * math.cos(angle), s * math.sin(angle)], 1)


def _convolve_kernels(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Full 2-D convolution of two kernels (odd sizes), sum 1."""
    pad = b.shape[-1] - 1
    out = F.conv2d(F.pad(a[None, None], (pad, pad, pad, pad)), b.flip(-1, -2)[None, None])[0, 0]
    return out / out.sum()


def _ellipse(h: int, w: int, box: Sequence[float], dtype) -> torch.Tensor:
    cy, cx, ry, rx = box
    yy = (torch.arange(h, dtype=dtype) + 0.5) / h
    xx = (torch.arange(w, dtype=dtype) + 0.5) / w
    d = ((yy[:, None] - cy) / ry) ** 2 + ((xx[None] - cx) / rx) ** 2
    edge = 2.0 / max(min(h * ry, w * rx), 1.0)  # about one pixel of soft edge
    return ((1 - d) / edge).clamp(0, 1)[None, None]


def _haze(lin: torch.Tensor, beta: float) -> torch.Tensor:
    """Light day haze in linear light with a vertical depth ramp (far at the top)."""
    h = lin.shape[-2]
    depth = torch.linspace(1.0, 0.2, h, dtype=lin.dtype).view(1, 1, h, 1)
    t = torch.exp(-beta * 2.0 * depth)
    return lin * t + 0.8 * (1 - t)


def simulate_captures(
    clean: torch.Tensor, settings: Sequence[Capture], scene: SceneMotion
) -> tuple[torch.Tensor, list[dict]]:
    """Render the captures of one scene.

    Args:
        clean: the sharp scene :math:`(1, 3, H, W)`, sRGB in [0, 1].
        settings: the bracket (see :func:`exposure_bracket`).
        scene: the scene draw (see :func:`sample_scene`).

    Returns:
        The frames :math:`(N, 3, H, W)` in sRGB [0, 1], and one dict per frame with the setting, the blur path
        lengths in pixels (``blur_px``: camera, ``object_blur_px``: the object) and the noise standard deviation at
        mid-grey in linear units (``noise_sigma``).
    """
    if clean.ndim != 4 or clean.shape[0] != 1 or clean.shape[1] != 3:
        raise ValueError(f"clean must be (1, 3, H, W), got {tuple(clean.shape)}")
    if not settings:
        raise ValueError("settings is empty")
    dtype = clean.dtype if clean.dtype in (torch.float32, torch.float64) else torch.float32
    x = clean.to(dtype)
    h, w = x.shape[-2:]
    lin = srgb_to_linear(x)
    if scene.haze_beta > 0:
        lin = _haze(lin, scene.haze_beta)
    longest = max(s.exposure_ms for s in settings)
    mask = _ellipse(h, w, scene.object_box, dtype) if scene.object_speed > 0 else None
    g = sample_generator(scene.seed + 1)
    bayer = _bayer_masks(h, w, torch.float64) if scene.cfa else None
    frames, info = [], []
    for s in settings:
        t = float(s.exposure_ms)
        k = shake_kernel(scene, t, longest)
        img = blur(lin, k[None])
        obj_len = scene.object_speed * t
        if mask is not None and obj_len > 0:
            ko = _convolve_kernels(k, _splat(_line_points(obj_len, scene.object_angle)))
            m = blur(mask, ko[None])
            img = img * (1 - m) + blur(lin * mask, ko[None])
        lam = (img.clamp_min(0) * scene.photons * t).double()
        electrons = torch.poisson(lam, generator=g) + scene.read * torch.randn(lam.shape, generator=g, dtype=lam.dtype)
        y = (electrons / (scene.photons * t)).clamp(0, 1)
        if bayer is not None:  # each site keeps its own colour's sample; the demosaic fills in the rest
            y = demosaic_bilinear(y * bayer).clamp(0, 1)
        frames.append(linear_to_srgb(y.to(dtype)))
        sigma = math.sqrt(0.18 * scene.photons * t + scene.read**2) / (scene.photons * t)
        info.append(
            {
                "exposure_ms": t,
                "gain": float(s.gain),
                "blur_px": scene.speed * t,
                "object_blur_px": obj_len,
                "noise_sigma": sigma,
            }  # fmt: skip
        )
    out = torch.cat(frames)
    if scene.jpeg_quality:
        out = jpeg(out, [scene.jpeg_quality] * len(out))
    return out, info
