"""Full-reference fidelity metrics: PSNR and SSIM, one score per image.

Both match scikit-image (``skimage.metrics.peak_signal_noise_ratio`` and
``structural_similarity``) on the same data range; the tests check it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._checks import check_shape
from .._errors import ShapeError

__all__ = ["psnr", "ssim", "ms_ssim", "gaussian_window", "MS_SSIM_WEIGHTS"]

#: Scale weights of Wang, Simoncelli and Bovik (2003).
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _check_pair(x: torch.Tensor, y: torch.Tensor) -> None:
    check_shape(x, ["B", "C", "H", "W"], "x")
    check_shape(y, ["B", "C", "H", "W"], "y")
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
        raise ShapeError("metric inputs contain NaN or infinite values")


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB, per image.

    Args:
        x: restored images :math:`(B, C, H, W)`.
        y: reference images, same shape.
        data_range: the span of valid values (1.0 for [0, 1] images, 255 for 8-bit codes).

    Returns:
        :math:`(B,)`; ``inf`` where the images are identical.

    Example:
        >>> y = torch.zeros(1, 3, 4, 4); x = y + 0.1
        >>> round(psnr(x, y).item(), 4)
        20.0
    """
    _check_pair(x, y)
    mse = (x.double() - y.double()).pow(2).flatten(1).mean(1)
    return (10.0 * torch.log10(data_range**2 / mse)).to(x.dtype if x.is_floating_point() else torch.float32)


def gaussian_window(sigma: float = 1.5, truncate: float = 3.5, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """1-D normalised Gaussian of radius ``int(truncate * sigma + 0.5)`` (scikit-image's window)."""
    r = int(truncate * sigma + 0.5)
    t = torch.arange(-r, r + 1, dtype=dtype)
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    return g / g.sum()


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    gaussian: bool = True,
    win_size: int = 7,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004), mean over the valid region and channels, per image.

    The default is the standard form: an 11x11 Gaussian window with sigma 1.5 and population
    covariances, equal to ``skimage.metrics.structural_similarity(..., gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False, data_range=data_range, channel_axis=...)``. With
    ``gaussian=False`` it is scikit-image's default instead: a uniform ``win_size`` window and sample
    covariances.

    Args:
        x: restored images :math:`(B, C, H, W)`.
        y: reference images, same shape.
        data_range: span of valid values.
        gaussian: Gaussian (standard) or uniform window.
        win_size: uniform window size (odd), used when ``gaussian=False``.
        sigma: Gaussian window sigma.
        k1, k2: stabilising constants.

    Returns:
        :math:`(B,)`.
    """
    _check_pair(x, y)
    b, c, h, w = x.shape
    xd, yd = x.double(), y.double()
    if gaussian:
        g = gaussian_window(sigma)
        kh = g.view(1, 1, -1, 1).expand(c, 1, -1, 1)
        kw = g.view(1, 1, 1, -1).expand(c, 1, 1, -1)
        n = g.numel()
        cov_norm = 1.0
    else:
        if win_size % 2 != 1:
            raise ValueError(f"win_size must be odd, got {win_size}")
        n = win_size
        u = torch.full((win_size,), 1.0 / win_size, dtype=torch.float64)
        kh = u.view(1, 1, -1, 1).expand(c, 1, -1, 1)
        kw = u.view(1, 1, 1, -1).expand(c, 1, 1, -1)
        npix = win_size * win_size
        cov_norm = npix / (npix - 1)
    if h < n or w < n:
        raise ValueError(f"images of {h}x{w} are smaller than the {n}x{n} SSIM window")

    def filt(z: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(z, kh, groups=c), kw, groups=c)

    ux, uy = filt(xd), filt(yd)
    uxx, uyy, uxy = filt(xd * xd), filt(yd * yd), filt(xd * yd)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    out = s.flatten(1).mean(1)
    return out.to(x.dtype if x.is_floating_point() else torch.float32)


def _ssim_cs(xd: torch.Tensor, yd: torch.Tensor, data_range: float, k1: float, k2: float):
    c = xd.shape[1]
    g = gaussian_window(1.5)
    kh = g.view(1, 1, -1, 1).expand(c, 1, -1, 1)
    kw = g.view(1, 1, 1, -1).expand(c, 1, 1, -1)

    def filt(z):
        return F.conv2d(F.conv2d(z, kh, groups=c), kw, groups=c)

    ux, uy = filt(xd), filt(yd)
    vx, vy, vxy = filt(xd * xd) - ux * ux, filt(yd * yd) - uy * uy, filt(xd * yd) - ux * uy
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    cs = (2 * vxy + c2) / (vx + vy + c2)
    lum = (2 * ux * uy + c1) / (ux * ux + uy * uy + c1)
    return (lum * cs).flatten(2).mean(2), cs.flatten(2).mean(2)  # (B, C) each


def ms_ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    weights: tuple[float, ...] = MS_SSIM_WEIGHTS,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """Multi-scale SSIM (Wang, Simoncelli and Bovik, 2003), per image.

    Five scales by default (2x2 average pooling between them), an 11x11 Gaussian window (sigma 1.5),
    contrast-structure terms at every scale and luminance at the coarsest, each raised to its weight;
    negative per-scale terms are clipped to 0 (as common implementations do) and channels are averaged.

    Args:
        x, y: :math:`(B, C, H, W)`, at least ``11 * 2^(scales - 1)`` pixels on each side (176 for five scales).
        data_range: span of valid values.
        weights: per-scale exponents (their number sets the number of scales).

    Returns:
        :math:`(B,)` in [0, 1].
    """
    _check_pair(x, y)
    n = len(weights)
    min_side = 11 * 2 ** (n - 1)
    if min(x.shape[-2:]) < min_side:
        raise ValueError(f"MS-SSIM with {n} scales needs images of at least {min_side}x{min_side} pixels")
    xd, yd = x.double(), y.double()
    w = torch.tensor(weights, dtype=torch.float64, device=x.device)
    terms = []
    for i in range(n):
        s, cs = _ssim_cs(xd, yd, data_range, k1, k2)
        terms.append((s if i == n - 1 else cs).clamp_min(0))
        if i < n - 1:
            xd, yd = F.avg_pool2d(xd, 2), F.avg_pool2d(yd, 2)
    stack = torch.stack(terms, dim=0)  # (n, B, C)
    val = torch.prod(stack ** w.view(-1, 1, 1), dim=0)
    return val.mean(1).to(x.dtype if x.is_floating_point() else torch.float32)
