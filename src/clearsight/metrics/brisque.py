"""BRISQUE (Mittal, Moorthy and Bovik, 2012) with the trained model of the ``brisque`` package.

The features are computed here (the package's own code needs libsvm and numpy < 2) exactly as that
package computes them: luma ``0.2125 R + 0.7154 G + 0.0721 B`` in [0, 1]; MSCN coefficients with a 7x7
Gaussian (sigma 7/6, zero padding, ``C = 1/255``); asymmetric generalised Gaussian fits of the MSCN values
(shape, variance) and of the four neighbour products (shape, mean, left and right variance); at full and
half scale (bicubic). The 36 features are scaled to [-1, 1] with the package's minima and maxima and fed
to its epsilon-SVR (RBF kernel, 770 support vectors), evaluated here with NumPy. Model file:
``brisque_model.npz``, converted from the ``brisque`` 0.2.0 wheel (Apache-2.0) by
``recipes/brisque_model.py``.

Scores are roughly 0 (pristine) to 100 (heavily distorted); lower is better. BRISQUE is a naturalness and
artefact metric trained on noise, blur and compression: it barely reacts to haze, so it is no haze metric.
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

__all__ = ["brisque", "brisque_features", "MODEL_FILE"]

MODEL_FILE = Path(__file__).with_name("brisque_model.npz")

_ALPHAS = np.arange(0.05, 10.0, 0.0005)
_PHI = np.array([math.gamma(2 / a) ** 2 / (math.gamma(1 / a) * math.gamma(3 / a)) for a in _ALPHAS])


def _gauss7() -> np.ndarray:
    y, x = np.indices((7, 7)) - 3
    k = np.exp(-(x**2 + y**2) / (2 * (7 / 6) ** 2))
    return k / k.sum()


def _mscn(gray: np.ndarray) -> np.ndarray:
    k = _gauss7()
    mu = cv2.filter2D(gray, -1, k, borderType=cv2.BORDER_CONSTANT)
    var = cv2.filter2D(gray * gray, -1, k, borderType=cv2.BORDER_CONSTANT)
    return (gray - mu) / (np.sqrt(np.abs(mu * mu - var)) + 1 / 255)


def _aggd(x: np.ndarray) -> tuple[float, float, float, float]:
    x = x.ravel()
    left, right = x[x < 0], x[x >= 0]
    lsq = float(np.mean(left * left)) if left.size else 0.0
    rsq = float(np.mean(right * right)) if right.size else 0.0
    gamma = math.sqrt(lsq) / max(math.sqrt(rsq), 1e-12)
    r_hat = float(np.mean(np.abs(x))) ** 2 / max(float(np.mean(x * x)), 1e-12)
    big_r = r_hat * (gamma**3 + 1) * (gamma + 1) / (gamma**2 + 1) ** 2
    alpha = float(_ALPHAS[np.argmin(np.abs(_PHI - big_r))])
    const = math.sqrt(math.gamma(1 / alpha) / math.gamma(3 / alpha))
    sl, sr = math.sqrt(lsq), math.sqrt(rsq)
    mean = (sr - sl) * const * math.gamma(2 / alpha) / math.gamma(1 / alpha)
    return alpha, mean, sl, sr


def _scale_features(gray: np.ndarray) -> list[float]:
    m = _mscn(gray)
    a, _, sl, sr = _aggd(m)
    feats = [a, (sl * sl + sr * sr) / 2]
    for p in (m[:, :-1] * m[:, 1:], m[:-1, :] * m[1:, :], m[:-1, :-1] * m[1:, 1:], m[1:, :-1] * m[:-1, 1:]):
        a, mean, sl, sr = _aggd(p)
        feats += [a, mean, sl * sl, sr * sr]
    return feats


def brisque_features(rgb: np.ndarray) -> np.ndarray:
    """The 36 BRISQUE features of a float ``(H, W, 3)`` image in [0, 1]."""
    gray = rgb.astype(np.float64) @ np.array([0.2125, 0.7154, 0.0721])
    half = cv2.resize(gray, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_CUBIC)
    return np.array(_scale_features(gray) + _scale_features(half))


@lru_cache(maxsize=1)
def _model() -> dict[str, np.ndarray]:
    if not MODEL_FILE.exists():
        raise FileNotFoundError(f"BRISQUE model {MODEL_FILE.name} is missing; run recipes/brisque_model.py")
    with np.load(MODEL_FILE, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def brisque_np(rgb: np.ndarray) -> float:
    """BRISQUE score of one float ``(H, W, 3)`` image in [0, 1] (at least 16x16)."""
    if min(rgb.shape[:2]) < 16:
        raise ShapeError(f"BRISQUE needs images of at least 16x16 pixels, got {rgb.shape[1]}x{rgb.shape[0]}")
    if float(np.ptp(rgb)) < 1e-6:
        raise ShapeError("BRISQUE is undefined for a constant image")
    m = _model()
    f = brisque_features(rgb)
    x = -1 + 2.0 * (f - m["min_"]) / (m["max_"] - m["min_"])
    k = np.exp(-float(m["gamma"]) * ((m["sv"] - x) ** 2).sum(axis=1))
    return float(k @ m["coef"] - float(m["rho"]))


def brisque(x: torch.Tensor) -> torch.Tensor:
    """BRISQUE per image: :math:`(B, 3, H, W)` in [0, 1] -> :math:`(B,)`; lower is better."""
    check_image(x)
    return torch.tensor(
        [brisque_np(im.detach().permute(1, 2, 0).double().cpu().numpy()) for im in x], dtype=torch.float32
    )
