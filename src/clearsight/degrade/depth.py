"""Depth sources for haze synthesis, since the clean corpus has no depth maps and no depth network can be had.

All return ``(B, 1, H, W)`` float tensors in [0, 1], 0 near and 1 far (sky).

* **given** — a depth map the user has (``normalize_depth`` maps metric or inverse depth to this range);
* :func:`estimate_depth` — a geometric prior without learned weights: sky detected as bright, smooth,
  low-saturation regions connected to the top edge; a horizon at the sky's lower boundary; a ground
  plane below it whose depth falls as ``c / (y - horizon + c)``; everything else above the horizon at
  the horizon's distance; then an edge-aware refinement (guided filter with the image as guide) so that
  depth edges follow image edges and flat walls get flat depth.
  *Right*: outdoor scenes with a visible ground and sky (roads, traffic, landscapes); depth is smooth and
  edge-aligned. *Wrong*: indoor scenes, close-ups, aerial views and scenes without a horizon, where the
  ground-plane assumption does not hold; object depth is only "at the horizon".
* :func:`random_depth` — a smooth random field mixed with a vertical gradient. *Right*: cheap, diverse,
  never correlated with image content (so a network cannot learn "texture means near"). *Wrong*:
  not geometric at all; depth discontinuities do not follow objects.
* :mod:`clearsight.degrade.scenes` — procedurally generated 3D scenes with exact depth (see there).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .._checks import check_image
from ..priors.filters import guided_filter_np
from .base import smooth_field

__all__ = ["estimate_depth", "estimate_depth_np", "random_depth", "normalize_depth", "sky_mask_np", "DEPTH_SOURCES"]

DEPTH_SOURCES = ("geometry", "random", "given", "scene")


def normalize_depth(depth: torch.Tensor, inverse: bool = False) -> torch.Tensor:
    """Map a metric (or, with ``inverse=True``, an inverse/disparity) depth map to [0, 1], far = 1, per image."""
    d = depth.float()
    if inverse:
        d = -d
    flat = d.flatten(1)
    lo, hi = flat.amin(1).view(-1, 1, 1, 1), flat.amax(1).view(-1, 1, 1, 1)
    return ((d - lo) / (hi - lo).clamp_min(1e-6)).clamp(0, 1)


def sky_mask_np(rgb: np.ndarray) -> np.ndarray:
    """Boolean sky mask of a float32 ``(H, W, 3)`` image: bright, smooth, not saturated, connected to the top."""
    h, w = rgb.shape[:2]
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    grad = cv2.Laplacian(cv2.GaussianBlur(gray, (0, 0), 1.0), cv2.CV_32F, ksize=3)
    smooth = cv2.blur(np.abs(grad), (7, 7)) < 0.02
    bright = gray > max(0.45, float(np.percentile(gray, 60)))
    blueish = (rgb[:, :, 2] >= rgb[:, :, 0] - 0.02) | (hsv[:, :, 1] < 0.25)
    cand = (smooth & bright & blueish).astype(np.uint8)
    cand = cv2.morphologyEx(cand, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    n, labels = cv2.connectedComponents(cand)
    top = set(np.unique(labels[0])) - {0}
    mask = np.isin(labels, list(top)) if top else np.zeros((h, w), bool)
    return mask


def estimate_depth_np(rgb: np.ndarray, work_size: int = 256) -> np.ndarray:
    """Geometric-prior depth ``(H, W)`` in [0, 1] of a float32 ``(H, W, 3)`` image (see the module docstring)."""
    h, w = rgb.shape[:2]
    scale = min(1.0, work_size / max(h, w))
    sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
    small = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA) if scale < 1 else rgb.astype(np.float32)
    sky = sky_mask_np(small) if min(sh, sw) >= 8 else np.zeros((sh, sw), bool)
    rows = np.arange(sh, dtype=np.float32)[:, None]
    if sky.any():
        lowest_sky = np.where(sky.any(axis=1))[0].max()
        sky_rows = [np.where(sky[:, c])[0].max() for c in range(sw) if sky[:, c].any()]
        horizon = float(np.median(sky_rows)) if sky_rows else float(lowest_sky)
    else:
        horizon = 0.35 * sh
    horizon = float(np.clip(horizon, 0.15 * sh, 0.8 * sh))
    c = 0.12 * sh
    ground = c / (np.maximum(rows - horizon, 0) + c)
    far_level = 0.85
    depth = np.where(rows > horizon, np.minimum(ground, far_level), far_level).astype(np.float32)
    depth = np.broadcast_to(depth, (sh, sw)).copy()
    depth[sky] = 1.0
    if min(sh, sw) >= 4:
        gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        r = max(1, min(sh, sw) // 16)
        depth = guided_filter_np(gray, depth, r, 1e-2)
        depth = np.maximum(depth, sky.astype(np.float32))
    depth = np.clip(depth, 0, 1)
    if scale < 1:
        depth = cv2.resize(depth, (w, h), interpolation=cv2.INTER_LINEAR)
    return depth.astype(np.float32)


def estimate_depth(x: torch.Tensor) -> torch.Tensor:
    """Geometric-prior depth of each image: ``(B, 3, H, W)`` in [0, 1] -> ``(B, 1, H, W)`` in [0, 1]."""
    check_image(x)
    out = [
        torch.from_numpy(estimate_depth_np(np.ascontiguousarray(im.detach().permute(1, 2, 0).float().cpu().numpy())))
        for im in x
    ]
    return torch.stack(out)[:, None].to(x.device, x.dtype)


def random_depth(batch: int, height: int, width: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Smooth random depth ``(B, 1, H, W)`` in [0, 1]: a random mix of a vertical gradient and a smooth field."""
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    out = []
    for _ in range(batch):
        field = smooth_field(height, width, g, cells=3)
        grad = torch.linspace(1.0, 0.0, height).view(1, 1, height, 1).expand(1, 1, height, width)
        mix = float(torch.rand(1, generator=g))
        d = mix * grad + (1 - mix) * field
        out.append(F.avg_pool2d(F.pad(d, (2, 2, 2, 2), mode="replicate"), 5, stride=1))
    return normalize_depth(torch.cat(out))
