"""Edge-aware filters and local priors, in two equivalent forms.

* Torch functions (``box_filter``, ``guided_filter``, ``dark_channel``, ``local_max``) follow the
  library contract (``(B, C, H, W)`` float tensors), are batched and differentiable, so learned
  models and losses can use them.
* NumPy/OpenCV functions with an ``_np`` suffix work on one ``(H, W[, C])`` float32 array and are what
  the classical restorers run on, because OpenCV's box and morphology filters are several times faster
  on a CPU than the equivalent tensor code.

Both forms use the same border rule: every window is clipped to the image, so a mean near the border
averages only the pixels that exist (He et al.'s ``boxfilter``), and a minimum or maximum looks only at
existing pixels. Tests compare both forms against brute-force loops.

All box filters are O(N): their cost does not depend on the radius (cumulative sums in torch,
running sums in OpenCV).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .._checks import check_shape

__all__ = [
    "box_filter",
    "guided_filter",
    "dark_channel",
    "local_max",
    "box_sum_np",
    "box_mean_np",
    "guided_filter_np",
    "min_filter_np",
    "max_filter_np",
    "dark_channel_np",
    "channel_min_np",
    "channel_max_np",
    "compact_lights_np",
    "GuidedFilter",
    "DarkChannel",
]


# --------------------------------------------------------------------------------------------- #
# torch
# --------------------------------------------------------------------------------------------- #
def _window_sum_1d(x: torch.Tensor, r: int, dim: int) -> torch.Tensor:
    n = x.shape[dim]
    c = torch.cumsum(x, dim=dim)
    pad = [0] * (2 * x.dim())
    # F.pad counts dims from the last one backwards
    pad[2 * (x.dim() - 1 - (dim % x.dim())) + 0] = 1
    c = F.pad(c, pad)
    idx = torch.arange(n, device=x.device)
    hi = (idx + r + 1).clamp(max=n)
    lo = (idx - r).clamp(min=0)
    return c.index_select(dim, hi) - c.index_select(dim, lo)


def box_filter(x: torch.Tensor, radius: int, normalize: bool = True) -> torch.Tensor:
    """Mean (or sum) over a ``(2 radius + 1)``-square window clipped to the image; O(N) in the radius.

    Args:
        x: :math:`(B, C, H, W)`.
        radius: window radius in pixels (>= 0).
        normalize: divide by the number of pixels in each clipped window.

    Returns:
        :math:`(B, C, H, W)`.
    """
    check_shape(x, ["B", "C", "H", "W"], "x")
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    s = _window_sum_1d(_window_sum_1d(x, radius, -1), radius, -2)
    if not normalize:
        return s
    h, w = x.shape[-2:]
    ones_h = _window_sum_1d(torch.ones(h, dtype=x.dtype, device=x.device), radius, 0)
    ones_w = _window_sum_1d(torch.ones(w, dtype=x.dtype, device=x.device), radius, 0)
    return s / (ones_h[:, None] * ones_w[None, :])


def guided_filter(guide: torch.Tensor, src: torch.Tensor, radius: int, eps: float) -> torch.Tensor:
    """Guided filter (He, Sun and Tang, 2010/2013) with a gray or channel-wise guide.

    Smooths ``src`` while keeping the edges of ``guide``: in each window the output is a linear function
    ``a * guide + b`` of the guide, fitted by ridge regression with regulariser ``eps``.

    Args:
        guide: :math:`(B, 1, H, W)` or :math:`(B, C, H, W)` (then channel ``c`` of ``src`` is guided by
            channel ``c`` of ``guide``).
        src: :math:`(B, C, H, W)`, the image to filter.
        radius: window radius in pixels.
        eps: regularisation; larger values smooth more (in squared intensity units, e.g. ``1e-3``).

    Returns:
        :math:`(B, C, H, W)`, differentiable with respect to both inputs.
    """
    check_shape(guide, ["B", "C", "H", "W"], "guide")
    check_shape(src, ["B", "C", "H", "W"], "src")
    mean_i = box_filter(guide, radius)
    mean_p = box_filter(src, radius)
    cov_ip = box_filter(guide * src, radius) - mean_i * mean_p
    var_i = box_filter(guide * guide, radius) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box_filter(a, radius) * guide + box_filter(b, radius)


def dark_channel(x: torch.Tensor, patch: int = 15) -> torch.Tensor:
    """Dark channel: minimum over colour channels and over a ``patch x patch`` window (He et al.).

    Args:
        x: :math:`(B, 3, H, W)` in [0, 1].
        patch: odd window size in pixels.

    Returns:
        :math:`(B, 1, H, W)`.
    """
    check_shape(x, ["B", "C", "H", "W"], "x")
    if patch % 2 != 1:
        raise ValueError(f"patch must be odd, got {patch}")
    r = patch // 2
    m = x.amin(dim=1, keepdim=True)
    m = -F.max_pool2d(-m, (1, patch), stride=1, padding=(0, r))
    return -F.max_pool2d(-m, (patch, 1), stride=1, padding=(r, 0))


def local_max(x: torch.Tensor, patch: int) -> torch.Tensor:
    """Per-channel maximum over a ``patch x patch`` window clipped to the image. :math:`(B, C, H, W)`."""
    check_shape(x, ["B", "C", "H", "W"], "x")
    r = patch // 2
    m = F.max_pool2d(x, (1, patch), stride=1, padding=(0, r))
    return F.max_pool2d(m, (patch, 1), stride=1, padding=(r, 0))


class GuidedFilter(torch.nn.Module):
    """Module form of :func:`guided_filter`."""

    def __init__(self, radius: int, eps: float) -> None:
        super().__init__()
        self.radius, self.eps = radius, eps

    def forward(self, guide: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
        return guided_filter(guide, src, self.radius, self.eps)


class DarkChannel(torch.nn.Module):
    """Module form of :func:`dark_channel`."""

    def __init__(self, patch: int = 15) -> None:
        super().__init__()
        self.patch = patch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dark_channel(x, self.patch)


# --------------------------------------------------------------------------------------------- #
# NumPy / OpenCV (fast path for the classical restorers)
# --------------------------------------------------------------------------------------------- #
def _counts(n: int, r: int) -> np.ndarray:
    idx = np.arange(n)
    return (np.minimum(idx + r, n - 1) - np.maximum(idx - r, 0) + 1).astype(np.float32)


def box_sum_np(x: np.ndarray, radius: int) -> np.ndarray:
    """Sum over a clipped ``(2 radius + 1)`` square window of a float32 ``(H, W[, C])`` array."""
    k = 2 * radius + 1
    return cv2.boxFilter(x, -1, (k, k), normalize=False, borderType=cv2.BORDER_CONSTANT)


def box_mean_np(x: np.ndarray, radius: int, inv_count: np.ndarray | None = None) -> np.ndarray:
    """Mean over a clipped ``(2 radius + 1)`` square window of a float32 ``(H, W[, C])`` array."""
    if inv_count is None:
        inv_count = _inv_count(x.shape[0], x.shape[1], radius)
    s = box_sum_np(x, radius)
    if s.ndim == 3:
        return s * inv_count[:, :, None]
    return s * inv_count


def _inv_count(h: int, w: int, radius: int) -> np.ndarray:
    return 1.0 / np.outer(_counts(h, radius), _counts(w, radius))


def guided_filter_np(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """NumPy/OpenCV twin of :func:`guided_filter` for one image.

    Args:
        guide: float32 ``(H, W)`` (gray guide) or ``(H, W, C)`` matching ``src``.
        src: float32 ``(H, W)`` or ``(H, W, C)``.
        radius: window radius in pixels.
        eps: regularisation.
    """
    guide = np.asarray(guide, np.float32)
    src = np.asarray(src, np.float32)
    if guide.ndim == 2 and src.ndim == 3:
        guide_b = guide[:, :, None]
    else:
        guide_b = guide
    inv = _inv_count(src.shape[0], src.shape[1], radius)
    mean_i = box_mean_np(guide, radius, inv)
    mean_i_b = mean_i[:, :, None] if (guide.ndim == 2 and src.ndim == 3) else mean_i
    mean_p = box_mean_np(src, radius, inv)
    corr_ip = box_mean_np(np.ascontiguousarray(guide_b * src), radius, inv)
    var_i = box_mean_np(guide * guide, radius, inv) - mean_i * mean_i
    var_i_b = var_i[:, :, None] if (guide.ndim == 2 and src.ndim == 3) else var_i
    a = (corr_ip - mean_i_b * mean_p) / (var_i_b + eps)
    b = mean_p - a * mean_i_b
    return box_mean_np(a, radius, inv) * guide_b + box_mean_np(b, radius, inv)


def min_filter_np(x: np.ndarray, patch: int) -> np.ndarray:
    """Minimum over a clipped ``patch x patch`` window (float32 ``(H, W[, C])``)."""
    if patch <= 1:
        return x
    return cv2.erode(x, cv2.getStructuringElement(cv2.MORPH_RECT, (patch, patch)))


def max_filter_np(x: np.ndarray, patch: int) -> np.ndarray:
    """Maximum over a clipped ``patch x patch`` window (float32 ``(H, W[, C])``)."""
    if patch <= 1:
        return x
    return cv2.dilate(x, cv2.getStructuringElement(cv2.MORPH_RECT, (patch, patch)))


def channel_min_np(x: np.ndarray) -> np.ndarray:
    """Per-pixel minimum over the channels of an ``(H, W, 3)`` array (``x.min(2)``, about 25x faster: NumPy reduces a
    last axis of 3 slowly)."""
    return np.minimum(np.minimum(x[:, :, 0], x[:, :, 1]), x[:, :, 2])


def channel_max_np(x: np.ndarray) -> np.ndarray:
    """Per-pixel maximum over the channels of an ``(H, W, 3)`` array (``x.max(2)``, faster)."""
    return np.maximum(np.maximum(x[:, :, 0], x[:, :, 1]), x[:, :, 2])


def dark_channel_np(x: np.ndarray, patch: int = 15) -> np.ndarray:
    """Dark channel of a float32 ``(H, W, 3)`` array: ``(H, W)``."""
    return min_filter_np(channel_min_np(x), patch)


def compact_lights_np(y: np.ndarray, floor: float = 0.6, share: float = 0.005) -> tuple[np.ndarray, np.ndarray]:
    """Compact light sources of a luminance map ``(H, W)``: lamps, windows, the sun, not a bright sky or wall.

    The brightest 2% of ``y`` smoothed by 1 px (and at least ``floor``), in 8-connected blobs smaller than ``share`` of
    the image. Returns the blobs' ``labels`` map (0 outside the bright pixels; every bright pixel, compact or not, has
    a label) and a table of the compact ones, one row ``(label, cx, cy, area)`` each, largest first. The judge's
    ring and blotch tests and ``dcp-night``'s lamps use it.
    """
    smooth = cv2.GaussianBlur(y, (0, 0), 1.0)
    bright = (smooth >= max(floor, float(np.percentile(smooth, 98)))).astype(np.uint8)
    n, labels, stats, centres = cv2.connectedComponentsWithStats(bright, connectivity=8)
    area = stats[1:, cv2.CC_STAT_AREA]
    ids = np.flatnonzero(area < share * bright.size) + 1
    ids = ids[np.argsort(-area[ids - 1], kind="stable")]
    table = np.stack([ids, centres[ids, 0], centres[ids, 1], area[ids - 1]], 1) if ids.size else np.zeros((0, 4))
    return labels, table
