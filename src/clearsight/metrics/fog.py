"""A FADE-style fog density, with models fitted here (``fog_density``; *not* the original FADE).

FADE (Choi, You and Bovik, 2015) describes an image by fog-aware statistics of small patches and
compares them with two multivariate Gaussians, one fitted on fog-free and one on foggy images:
``D = D_f / (D_ff + 1)``, where ``D_f`` is the distance from the fog-free model (large when foggy) and
``D_ff`` the distance from the foggy model (small when foggy). Higher is foggier.

The twelve patch features follow the published list: MSCN variance, variance of the vertical MSCN
product, sharpness (mean local standard deviation), its coefficient of variation, Michelson contrast,
contrast energy of the gray, yellow-blue and red-green channels (here: mean gradient magnitude after
Gaussian smoothing, not the published divisive-normalised filter response), entropy (16-level histogram),
dark channel, HSV saturation and colourfulness. Patches are 8x8 on a 384-px preview.

The models are ours: fog-free on clean photos of ``../shared/data/clean``, foggy on the same photos hazed by
clearsight's ``day_haze`` and ``dense_haze`` presets (``recipes/fog_density.py``), shipped as
``fog_density_clearsight.npz``. No real hazy photo is used for fitting, so real hazy sets remain fair
test material. Scores are not on FADE's scale; compare them only with each other.
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
from ..priors.base import make_preview

__all__ = ["fog_density", "fog_distances", "fog_features", "fit_mvg", "MODEL_FILE", "FOG_FEATURES"]

MODEL_FILE = Path(__file__).with_name("fog_density_clearsight.npz")
FOG_FEATURES = (
    "mscn_var",
    "vprod_var",
    "sharpness",
    "sharpness_cv",
    "michelson",
    "ce_gray",
    "ce_yb",
    "ce_rg",
    "entropy",
    "dark_channel",
    "saturation",
    "colourfulness",
)
PATCH = 8
SIZE = 384


def _blocks(a: np.ndarray, p: int) -> np.ndarray:
    h, w = (a.shape[0] // p) * p, (a.shape[1] // p) * p
    return a[:h, :w].reshape(h // p, p, w // p, p).swapaxes(1, 2).reshape(-1, p * p)


def fog_features(rgb: np.ndarray) -> np.ndarray:
    """Patch features ``(N, 12)`` of a float ``(H, W, 3)`` image in [0, 1] (see the module docstring)."""
    x = make_preview(np.ascontiguousarray(rgb, np.float32), SIZE).astype(np.float32)
    if min(x.shape[:2]) < 2 * PATCH:
        raise ShapeError(f"fog_density needs images of at least {2 * PATCH}x{2 * PATCH} pixels")
    gray = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY) * 255.0
    mu = cv2.GaussianBlur(gray, (7, 7), 7 / 6, borderType=cv2.BORDER_REPLICATE)
    sigma = np.sqrt(np.abs(cv2.GaussianBlur(gray * gray, (7, 7), 7 / 6, borderType=cv2.BORDER_REPLICATE) - mu * mu))
    mscn = (gray - mu) / (sigma + 1)
    vprod = np.zeros_like(mscn)
    vprod[:-1] = mscn[:-1] * mscn[1:]
    r, g, b = x[:, :, 0], x[:, :, 1], x[:, :, 2]
    yb, rg = 0.5 * (r + g) - b, r - g

    def energy(c: np.ndarray) -> np.ndarray:
        s = cv2.GaussianBlur(c, (0, 0), 1.0)
        gx, gy = cv2.Sobel(s, cv2.CV_32F, 1, 0), cv2.Sobel(s, cv2.CV_32F, 0, 1)
        return np.sqrt(gx * gx + gy * gy)

    hsv = cv2.cvtColor(x, cv2.COLOR_RGB2HSV)
    dark = np.minimum(np.minimum(r, g), b)
    bg, bs = _blocks(gray, PATCH), _blocks(sigma, PATCH)
    q = np.minimum((bg / 16).astype(np.int64), 15)
    counts = np.stack([(q == k).sum(1) for k in range(16)], 1) / q.shape[1]
    ent = -(np.where(counts > 0, counts * np.log2(np.maximum(counts, 1e-12)), 0)).sum(1)
    brg, byb = _blocks(rg, PATCH), _blocks(yb, PATCH)
    colourful = np.sqrt(brg.var(1) + byb.var(1)) + 0.3 * np.sqrt(brg.mean(1) ** 2 + byb.mean(1) ** 2)
    mx, mn = bg.max(1), bg.min(1)
    feats = np.stack(
        [
            _blocks(mscn, PATCH).var(1),
            _blocks(vprod, PATCH).var(1),
            bs.mean(1),
            bs.std(1) / (bs.mean(1) + 1e-3),
            (mx - mn) / (mx + mn + 1e-3),
            _blocks(energy(gray / 255.0), PATCH).mean(1),
            _blocks(energy(yb), PATCH).mean(1),
            _blocks(energy(rg), PATCH).mean(1),
            ent,
            _blocks(dark, PATCH).min(1),
            _blocks(hsv[:, :, 1], PATCH).mean(1),
            colourful,
        ],
        axis=1,
    ).astype(np.float64)
    return feats[np.isfinite(feats).all(axis=1)]


def fit_mvg(images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of the pooled patch features of many images."""
    f = np.concatenate([fog_features(im) for im in images])
    return f.mean(0), np.cov(f, rowvar=False)


def _distance(mu_m: np.ndarray, cov_m: np.ndarray, feats: np.ndarray) -> float:
    mu, cov = feats.mean(0), np.cov(feats, rowvar=False)
    d = mu_m - mu
    return float(math.sqrt(max(d @ np.linalg.pinv((cov_m + cov) / 2) @ d, 0.0)))


@lru_cache(maxsize=1)
def _models() -> tuple[np.ndarray, ...]:
    if not MODEL_FILE.exists():
        raise FileNotFoundError(f"fog-density model {MODEL_FILE.name} is missing; run recipes/fog_density.py")
    with np.load(MODEL_FILE, allow_pickle=False) as z:
        return z["mu_clear"], z["cov_clear"], z["mu_fog"], z["cov_fog"]


def fog_distances(rgb: np.ndarray) -> tuple[float, float]:
    """Distances ``(D_f, D_ff)`` of one float ``(H, W, 3)`` image in [0, 1] from the fog-free and the foggy
    model; raises :class:`ShapeError` where they are undefined (a constant or too small image)."""
    if float(np.ptp(rgb)) < 1e-6:
        raise ShapeError("fog_density is undefined for a constant image")
    feats = fog_features(rgb)
    if len(feats) < 13:
        raise ShapeError("fog_density needs more image content (at least 13 patches of 8x8)")
    mu_c, cov_c, mu_f, cov_f = _models()
    return _distance(mu_c, cov_c, feats), _distance(mu_f, cov_f, feats)


def fog_density_np(rgb: np.ndarray) -> float:
    """Fog density of one float ``(H, W, 3)`` image in [0, 1]; higher is foggier."""
    d_clear, d_fog = fog_distances(rgb)
    return d_clear / (d_fog + 1.0)


def fog_density(x: torch.Tensor) -> torch.Tensor:
    """FADE-style fog density per image: :math:`(B, 3, H, W)` in [0, 1] -> :math:`(B,)`; higher is foggier."""
    check_image(x)
    if not torch.isfinite(x).all():
        raise ShapeError("fog_density input contains NaN or infinite values")
    return torch.tensor(
        [fog_density_np(im.detach().permute(1, 2, 0).double().cpu().numpy()) for im in x], dtype=torch.float32
    )
