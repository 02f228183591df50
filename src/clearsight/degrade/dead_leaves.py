"""Dead-leaves images: procedural scenes with natural-image statistics and controllable fine texture.

The dead-leaves model (Matheron; used by camera-testing charts such as ISO 19567-2 to measure how much fine
texture a noise reduction destroys) stacks opaque disks whose radii follow a power law ``p(r) ~ r^-3``. The
result is scale invariant, with the ``1/f^2`` power spectrum and the occlusion edges of natural photographs,
and it is made of texture at every scale, which is what noise and blur destroy first.

clearsight uses it where its photo corpus is too small to teach how a scene's *content* bounds its
restoration (the IRP predictor; ``recipes/irp_dynamic.py --dead-leaves``): each image draws its own smallest
leaf, colour palette, shading and in-leaf grain, so images range from smooth flat-coloured patches to dense
fine texture.

*Right*: power-law sizes, occlusion, scale invariance, a per-image texture density from smooth to busy.
*Wrong*: every object is a disk (no straight edges, no perspective, no repeated man-made structure),
colours are independent of each other, there is no lighting or depth.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["dead_leaves", "photo_leaves"]


def _palette(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` colours of one image: a few hues around a random base, saturation and value spread as in photos."""
    base = rng.uniform(0, 180)
    hue = (base + rng.normal(0, rng.uniform(5, 60), n)) % 180
    sat = np.clip(rng.beta(1.2, 4.0, n) * rng.uniform(0.3, 1.0) * 255, 0, 255)
    val = np.clip(rng.beta(2.0, 2.0, n) * 255, 8, 250)
    hsv = np.stack([hue, sat, val], -1).astype(np.uint8)[None]
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0].astype(np.float32) / 255


def _radius_range(
    rng: np.random.Generator,
    size: int,
    r_min: float | None,
    r_max: float | None,
    smallest: tuple[float, float],
    largest: tuple[float, float],
) -> tuple[float, float]:
    """The leaf radius range: ``r_min`` drawn log-uniformly in ``smallest`` and ``r_max`` uniformly in ``largest``
    (fractions of ``size``) where not given; checked."""
    if size < 8:
        raise ValueError(f"size must be at least 8, got {size}")
    r_min = float(np.exp(rng.uniform(*np.log(smallest)))) if r_min is None else float(r_min)
    r_max = float(rng.uniform(*largest) * size) if r_max is None else float(r_max)
    if not 0 < r_min < r_max:
        raise ValueError(f"need 0 < r_min < r_max, got {r_min} and {r_max}")
    return r_min, r_max


def dead_leaves(
    size: int = 512,
    rng: np.random.Generator | None = None,
    r_min: float | None = None,
    r_max: float | None = None,
    grain: float | None = None,
    alpha: float | None = None,
    supersample: int = 2,
) -> np.ndarray:
    """One dead-leaves image, float32 ``(size, size, 3)`` in [0, 1].

    Disks are drawn back to front until every pixel is covered about six times (the last drawn is in front), at
    ``supersample`` times the size and area-downscaled, so edges are anti-aliased as by a lens.

    Args:
        size: side in pixels.
        rng: NumPy generator (default: a fresh unseeded one).
        r_min: smallest radius in output pixels (default: drawn log-uniformly in 0.7-8); small leaves are fine
            texture, so this sets how busy the image is.
        r_max: largest radius (default: drawn in 0.15-0.5 of ``size``).
        grain: strength of a 1/f grain multiplied over the whole image (default: drawn in 0-0.08).
        alpha: exponent of the radius law ``p(r) ~ r^-alpha`` (default: drawn in 2.6-3.4; 3 is scale invariant,
            smaller gives fewer small leaves, a smoother image).
        supersample: drawing scale (1 disables anti-aliasing).

    Returns:
        The image; the same ``rng`` state gives the same image.
    """
    rng = rng if rng is not None else np.random.default_rng()
    r_min, r_max = _radius_range(rng, size, r_min, r_max, (0.7, 8.0), (0.15, 0.5))
    grain = float(rng.uniform(0, 0.08)) if grain is None else float(grain)
    alpha = float(rng.uniform(2.6, 3.4)) if alpha is None else float(alpha)
    if alpha <= 1:
        raise ValueError(f"alpha must be above 1, got {alpha}")
    s = int(supersample)
    big = size * s
    colours = _palette(rng, 64)
    # p(r) ~ r^-alpha on [r_min, r_max] by inverting its CDF; painter's algorithm (the last disk drawn is in
    # front) with enough disks to cover every pixel about six times over
    a, b = r_min ** (1 - alpha), r_max ** (1 - alpha)

    def radii_of(u: np.ndarray) -> np.ndarray:
        return (a - u * (a - b)) ** (1 / (1 - alpha))

    mean_area = np.pi * float(np.mean(radii_of(np.linspace(0, 1, 10_001)) ** 2))
    span = size + 2 * r_max
    n = int(min(400_000, np.ceil(6 * span * span / mean_area)))
    radii = radii_of(rng.uniform(0, 1, n))
    centres = rng.uniform(-r_max, size + r_max, (n, 2))
    ci = rng.integers(0, len(colours), n)
    jitter = rng.normal(0, 0.04, (n, 3))
    fill = np.clip(colours[ci] + jitter, 0, 1)
    img = np.empty((big, big, 3), np.float32)
    img[:] = colours[0]
    for (cx, cy), r, c in zip((centres * s * 16).astype(np.int64), (radii * s * 16).astype(np.int64), fill):
        cv2.circle(img, (int(cx), int(cy)), max(1, int(r)), c.tolist(), -1, cv2.LINE_8, 4)
    if s > 1:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    if grain > 0:  # fine stochastic texture (grass, fabric, fur): 1/f noise, stronger where the image is bright
        noise = rng.normal(0, 1, (size, size)).astype(np.float32)
        f = np.fft.fftfreq(size)
        rad = np.sqrt(f[:, None] ** 2 + f[None] ** 2)
        spec = np.fft.fft2(noise) / np.maximum(rad, 1.0 / size)
        tex = np.real(np.fft.ifft2(spec)).astype(np.float32)
        tex = (tex - tex.mean()) / (tex.std() + 1e-8)
        img = img * (1 + grain * tex[..., None] * 2)
    # smooth shading across the image (illumination), as photos are rarely lit evenly
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    gx, gy = rng.normal(0, 0.25, 2)
    img = img * np.clip(1 + gx * (xx - 0.5) + gy * (yy - 0.5), 0.5, 1.5)[..., None]
    return np.clip(img, 0, 1).astype(np.float32)


def photo_leaves(
    size: int,
    textures: list[np.ndarray],
    rng: np.random.Generator | None = None,
    r_min: float | None = None,
    r_max: float | None = None,
    sources: int = 12,
    p_box: float = 0.3,
) -> np.ndarray:
    """A dead-leaves collage whose leaves are cut from photographs: float32 ``(size, size, 3)`` in [0, 1].

    The leaves (disks, and with probability ``p_box`` rotated rectangles for man-made edges) follow the
    ``r^-3`` size law of :func:`dead_leaves`; each shows, in place, a crop of one of ``sources`` photos drawn
    from ``textures``, downscaled by a random factor in 1-2.5, with its own brightness. Every collage is a new
    arrangement of natural textures, so a model trained on it cannot learn a scene's level by recognising the
    photo. (Made to test whether the IRP predictor's over-rating of busy scenes comes from memorising its 80
    training photos; as extra IRP training scenes it did not help, ``docs/irp.md`` section 5.)

    Args:
        size: side in pixels.
        textures: float32 ``(H, W, 3)`` images in [0, 1] (any size; a small one is enlarged to fit).
        rng: NumPy generator (default: a fresh unseeded one).
        r_min: smallest radius in output pixels (default: drawn log-uniformly in 6-40).
        r_max: largest radius (default: drawn in 0.3-0.8 of ``size``).
        sources: how many photos one collage draws from.
        p_box: share of rectangular leaves.

    Returns:
        The image; the same ``rng`` state and textures give the same image.
    """
    if not textures:
        raise ValueError("photo_leaves needs at least one texture image")
    if sources < 1:
        raise ValueError(f"sources must be at least 1, got {sources}")
    rng = rng if rng is not None else np.random.default_rng()
    r_min, r_max = _radius_range(rng, size, r_min, r_max, (6.0, 40.0), (0.3, 0.8))
    big = 2 * size  # drawn at twice the size and area-downscaled: anti-aliased leaf edges
    layers = []
    for i in rng.choice(len(textures), sources, replace=len(textures) < sources):
        t = textures[int(i)]
        # the photo at 1/d of its size, on the doubled canvas (the final downscale halves it again)
        d = float(np.exp(rng.uniform(0.0, np.log(2.5))))
        f = max(2.0 / d, big / min(t.shape[:2]))
        t = cv2.resize(t, (max(big, round(t.shape[1] * f)), max(big, round(t.shape[0] * f))),
                       interpolation=cv2.INTER_LINEAR if f > 1 else cv2.INTER_AREA)  # fmt: skip
        y0, x0 = rng.integers(0, t.shape[0] - big + 1), rng.integers(0, t.shape[1] - big + 1)
        layers.append(np.ascontiguousarray(t[y0 : y0 + big, x0 : x0 + big], np.float32))
    a, b = r_min**-2.0, r_max**-2.0  # p(r) ~ r^-3 on [r_min, r_max]

    def radii_of(u: np.ndarray) -> np.ndarray:
        return (a - u * (a - b)) ** -0.5

    mean_area = np.pi * float(np.mean(radii_of(np.linspace(0, 1, 10_001)) ** 2))
    span = size + 2 * r_max
    n = int(min(200_000, np.ceil(6 * span * span / mean_area)))
    radii = radii_of(rng.uniform(0, 1, n)) * 2
    centres = rng.uniform(-r_max, size + r_max, (n, 2)) * 2
    which = rng.integers(0, len(layers), n)
    gains = np.clip(rng.normal(1.0, 0.15, n), 0.6, 1.4)
    box = rng.uniform(0, 1, n) < p_box
    angle = rng.uniform(0, np.pi, n)
    aspect = np.exp(rng.uniform(-0.7, 0.7, n))
    ids = np.zeros((big, big), np.float32)  # leaf index + 1 of each pixel (0: background); exact below 2^24
    for k in range(n):
        cx, cy, r = centres[k, 0], centres[k, 1], radii[k]
        if box[k]:
            c, s = np.cos(angle[k]), np.sin(angle[k])
            hw, hh = r * np.sqrt(aspect[k]), r / np.sqrt(aspect[k])
            pts = np.array([[-hw, -hh], [hw, -hh], [hw, hh], [-hw, hh]]) @ np.array([[c, s], [-s, c]])
            cv2.fillConvexPoly(ids, np.round((pts + [cx, cy]) * 16).astype(np.int32), float(k + 1), cv2.LINE_8, 4)
        else:
            cv2.circle(ids, (int(cx * 16), int(cy * 16)), max(1, int(r * 16)), float(k + 1), -1, cv2.LINE_8, 4)
    leaf = ids.astype(np.int64) - 1  # -1: no leaf (the background shows the first photo)
    layer = np.where(leaf >= 0, which[np.maximum(leaf, 0)], 0)
    gain = np.where(leaf >= 0, gains[np.maximum(leaf, 0)], 1.0).astype(np.float32)
    stack = np.stack(layers)  # (K, big, big, 3)
    yy, xx = np.mgrid[0:big, 0:big]
    img = stack[layer, yy, xx] * gain[..., None]
    img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    return np.clip(img, 0, 1).astype(np.float32)
