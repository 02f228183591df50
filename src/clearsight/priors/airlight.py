"""Airlight (atmospheric light) estimation.

The airlight ``A`` is the colour of the haze veil at infinite distance. Three estimators:

* ``"he"`` — He et al. (2009): among the 0.1 % pixels with the brightest dark channel, the single pixel
  with the highest intensity. Sensitive to one white object or lamp.
* ``"robust"`` (default) — same candidates, but the average colour of the brighter half of them, so a
  few saturated pixels cannot decide ``A`` alone; computed on a preview of the image so that the result
  does not depend on how the image is tiled.
* ``"quadtree"`` — Kim et al. (2013): recursively keep the quadrant with the highest ``mean - std`` of
  intensity (a bright, flat region: sky or dense haze), then take the pixel closest to white.
"""

from __future__ import annotations

import numpy as np
import torch

from .._checks import check_image
from .filters import dark_channel_np

__all__ = ["estimate_airlight", "estimate_airlight_np", "AIRLIGHT_METHODS"]

AIRLIGHT_METHODS = ("robust", "he", "quadtree")


def _candidates(x: np.ndarray, patch: int, fraction: float) -> np.ndarray:
    dark = dark_channel_np(x, patch).ravel()
    n = max(10, int(round(dark.size * fraction)))
    n = min(n, dark.size)
    idx = np.argpartition(dark, dark.size - n)[dark.size - n :]
    return x.reshape(-1, 3)[idx]


def estimate_airlight_np(
    x: np.ndarray,
    method: str = "robust",
    patch: int = 15,
    fraction: float = 0.001,
    min_value: float = 0.0,
) -> np.ndarray:
    """Estimate the airlight of one float32 ``(H, W, 3)`` image in [0, 1].

    Args:
        x: the hazy image (a preview of a few hundred pixels is enough).
        method: ``robust``, ``he`` or ``quadtree``.
        patch: dark-channel window size in pixels.
        fraction: share of pixels taken as candidates (``he``/``robust``).
        min_value: lower bound for each channel of the result.

    Returns:
        ``(3,)`` float32 airlight in [``min_value``, 1].
    """
    if method == "he":
        cand = _candidates(x, patch, fraction)
        a = cand[np.argmax(cand.sum(axis=1))]
    elif method == "robust":
        cand = _candidates(x, patch, fraction)
        inten = cand.sum(axis=1)
        keep = inten >= np.median(inten)
        a = cand[keep].mean(axis=0)
    elif method == "quadtree":
        a = _quadtree(x)
    else:
        raise ValueError(f"unknown airlight method {method!r}; choose one of {', '.join(AIRLIGHT_METHODS)}")
    return np.clip(np.asarray(a, np.float32), min_value, 1.0)


def _quadtree(x: np.ndarray, min_size: int = 32) -> np.ndarray:
    region = x
    while min(region.shape[0], region.shape[1]) > min_size:
        h2, w2 = region.shape[0] // 2, region.shape[1] // 2
        quads = [region[:h2, :w2], region[:h2, w2:], region[h2:, :w2], region[h2:, w2:]]
        scores = []
        for q in quads:
            g = q.mean(axis=2)
            scores.append(g.mean() - g.std())
        region = quads[int(np.argmax(scores))]
    flat = region.reshape(-1, 3)
    dist = np.linalg.norm(flat - 1.0, axis=1)
    return flat[int(np.argmin(dist))]


def estimate_airlight(img: torch.Tensor, method: str = "robust", patch: int = 15) -> torch.Tensor:
    """Estimate the airlight of each image of a batch.

    Args:
        img: hazy images :math:`(B, 3, H, W)` in [0, 1].
        method: ``robust`` (default), ``he`` or ``quadtree``.
        patch: dark-channel window size in pixels.

    Returns:
        :math:`(B, 3)` airlight in [0, 1].
    """
    check_image(img)
    out = [
        torch.from_numpy(
            estimate_airlight_np(np.ascontiguousarray(im.permute(1, 2, 0).float().cpu().numpy()), method, patch)
        )
        for im in img
    ]
    return torch.stack(out).to(img.device, img.dtype)
