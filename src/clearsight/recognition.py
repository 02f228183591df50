"""Recognise what a photo needs: haze, night haze, sand-dust, low light, noise, rain, blur, or nothing (clean).

A small multi-label classifier over measured image statistics, not over pixels: with a few hundred real
degraded photos to learn from, statistics that mean the same on every camera (brightness, dark channel,
saturation, colour cast, noise level in flat regions, sharpness, streak orientation, BRISQUE's natural-scene
statistics) generalise to unseen sources far better than a network would (``docs/auto.md`` has the
leave-one-source-out figures).

Features are taken on a 384-pixel preview (global appearance) and on a centre crop of at most 512x512 pixels at the
image's own resolution (noise and blur, which downscaling hides). The classifier is a one-hidden-layer network with
one sigmoid per label, its logits divided by a temperature fitted on held-out sources, so each probability is
calibrated on its own and several can be high at once (a night street can be dark, noisy and hazy).
``clean`` is a label like the others; :func:`recognise` returns every probability.

Trained by ``recipes/recogniser.py`` on our synthesis and on the real folders of the shared data, labelled by
folder; shipped as ``models/weights/recogniser_real.npz`` with its card. Two features come from shipped networks
(the denoiser's noise-level estimate, the synthetic degradation classifier), which the caller passes in:
:func:`clearsight.models.auto.recognise` (``cs.recognise``) loads them.

Example:
    >>> import numpy as np
    >>> from clearsight.models.auto import recognition_nets
    >>> f = features_np(np.full((64, 96, 3), 0.5, np.float32), recognition_nets())
    >>> f.shape == (len(FEATURE_NAMES),)
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ._errors import ClearsightError
from .priors.filters import channel_max_np, channel_min_np

__all__ = ["LABELS", "FEATURE_NAMES", "features_np", "Recogniser", "Recognition"]

#: Labels, in the order of the classifier's outputs.
LABELS = ("clean", "haze", "night_haze", "sand_dust", "low_light", "noise", "rain", "blur")

_PREVIEW = 384
_CROP = 512
_LAP = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)


def _names() -> tuple[str, ...]:
    names = ["y_mean", "y_std", "y_p05", "y_p50", "y_p95", "y_dark_frac", "y_bright_frac"]
    names += ["dc_mean", "dc_p10", "dc_p50", "dc_p90", "bc_mean", "span_mean", "sat_mean", "sat_p90"]
    names += ["lab_a", "lab_b", "lab_a_std", "lab_b_std", "chroma_mean", "local_contrast", "local_contrast_dark"]
    names += ["noise_y", "noise_y_flat", "noise_c_flat", "noise_rel", "noise_dark_flat"]
    names += ["lap_var", "grad_p50", "grad_p90", "grad_p99", "hf_ratio", "hf_ratio_half", "edge_sharp"]
    names += ["streak_h", "streak_v", "orient_peak", "orient_entropy", "bright_thin"]
    names += [f"brisque_{i}" for i in range(36)]
    names += ["est_noise_mean", "est_noise_p10", "est_noise_p90", "est_noise_dark"]
    names += [f"degclass_{c}" for c in ("clean", "day_haze", "dense_haze", "night_haze", "sand_dust", "low_light",
                                         "noise", "rain", "blur")]  # fmt: skip
    names += ["fog_dist_clear", "fog_dist_foggy", "fog_density"]
    return tuple(names)


def _net_features(crop: np.ndarray, preview: np.ndarray, nets) -> list[float]:
    import torch

    ffd, deg = nets
    with torch.no_grad():
        c = torch.from_numpy(np.ascontiguousarray(crop[: crop.shape[0] // 2 * 2, : crop.shape[1] // 2 * 2]))
        est = ffd.estimate(c.permute(2, 0, 1)[None].float())[0, 0].numpy()
        lum = cv2.resize(_gray(crop), (est.shape[1], est.shape[0]), interpolation=cv2.INTER_AREA)
        dark = lum < np.percentile(lum, 30)
        small = cv2.resize(preview, (96, 96), interpolation=cv2.INTER_AREA)
        p = deg.probabilities(torch.from_numpy(small).permute(2, 0, 1)[None].float())[0].numpy()
    return [est.mean() * 20, np.percentile(est, 10) * 20, np.percentile(est, 90) * 20,
            (est[dark].mean() if dark.any() else est.mean()) * 20, *p.tolist()]  # fmt: skip


def _fog(preview: np.ndarray) -> list[float]:
    """Log distances of the patch statistics from the fog-free and the foggy model of
    :mod:`clearsight.metrics.fog`, and the log fog density they give (zeros where it is undefined)."""
    from .metrics.fog import fog_distances

    try:
        dc, df = fog_distances(preview)
    except ClearsightError:
        return [0.0, 0.0, 0.0]
    return [np.log1p(dc), np.log1p(df), np.log(dc / (df + 1.0) + 1e-3)]


#: Names of the features, in order.
FEATURE_NAMES = _names()


def _gray(x: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)


def _flat_noise(y: np.ndarray, block: int = 16) -> tuple[float, float]:
    """Noise sigma of ``y`` from the Laplacian-like residual: overall, and in the flattest tenth of blocks."""
    h, w = y.shape
    if h < 8 or w < 8:
        return 0.0, 0.0
    r = np.abs(cv2.filter2D(y, cv2.CV_32F, _LAP, borderType=cv2.BORDER_REFLECT))[1:-1, 1:-1]
    k = np.sqrt(np.pi / 2) / 6
    overall = float(r.mean() * k)
    hb, wb = r.shape[0] // block, r.shape[1] // block
    if hb * wb < 4:
        return overall, overall
    blocks = r[: hb * block, : wb * block].reshape(hb, block, wb, block).mean((1, 3)).ravel()
    return overall, float(np.percentile(blocks, 10) * k)


def _crop(x: np.ndarray, size: int = _CROP) -> np.ndarray:
    h, w = x.shape[:2]
    y0, x0 = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return x[y0 : y0 + size, x0 : x0 + size]


def _preview(x: np.ndarray, size: int) -> np.ndarray:
    h, w = x.shape[:2]
    s = size / max(h, w)
    if s < 1:
        x = cv2.resize(x, (max(8, round(w * s)), max(8, round(h * s))), interpolation=cv2.INTER_AREA)
    return x


def image_array(image) -> np.ndarray:
    """An ``(H, W, 3)`` array of ``image``: a file path (read with :func:`clearsight.io.load_image`; grayscale
    repeated), an array (returned as it is) or a ``(3, H, W)`` / ``(1, 3, H, W)`` tensor in [0, 1]."""
    if isinstance(image, np.ndarray):
        return image
    if hasattr(image, "detach"):
        t = image[0] if image.dim() == 4 else image
        return t.detach().permute(1, 2, 0).float().cpu().numpy()
    from .io import load_image

    rgb = load_image(image).rgb
    return np.repeat(rgb[..., None], 3, 2) if rgb.ndim == 2 else rgb


def _to_float(x: np.ndarray) -> np.ndarray:
    """uint8, uint16 or float pixels -> contiguous float32 in [0, 1]."""
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255
    if x.dtype == np.uint16:
        return x.astype(np.float32) / 65535
    return np.clip(np.ascontiguousarray(x, np.float32), 0, 1)


def features_np(rgb: np.ndarray, nets) -> np.ndarray:
    """The :data:`FEATURE_NAMES` statistics of an ``(H, W, 3)`` image (uint8, uint16, or float in [0, 1]; at least
    16x16 pixels). ``nets``: the shipped denoiser and degradation classifier
    (:func:`clearsight.models.auto.recognition_nets`)."""
    from .metrics.brisque import brisque_features
    from .priors.filters import dark_channel_np

    if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 16:
        raise ClearsightError(f"recognise needs an RGB image of at least 16x16 pixels, got shape {rgb.shape}")
    p = _to_float(_preview(rgb, _PREVIEW))  # never a float copy of the whole image (a 80 MP photo is 1 GB)
    y = _gray(p)
    f: list[float] = [y.mean(), y.std(), *np.percentile(y, [5, 50, 95]), (y < 0.08).mean(), (y > 0.95).mean()]
    dc = dark_channel_np(p, 7)
    mx, mn = channel_max_np(p), channel_min_np(p)
    hsv = cv2.cvtColor(p, cv2.COLOR_RGB2HSV)
    f += [dc.mean(), *np.percentile(dc, [10, 50, 90]), cv2.dilate(mx, np.ones((7, 7), np.uint8)).mean()]
    f += [(mx - mn).mean(), hsv[:, :, 1].mean(), np.percentile(hsv[:, :, 1], 90)]
    lab = cv2.cvtColor(p, cv2.COLOR_RGB2Lab)
    a, b = lab[:, :, 1], lab[:, :, 2]
    f += [a.mean() / 10, b.mean() / 10, a.std() / 10, b.std() / 10, np.sqrt(a * a + b * b).mean() / 10]
    mu = cv2.blur(y, (7, 7))
    sd = np.sqrt(np.maximum(cv2.blur(y * y, (7, 7)) - mu * mu, 0))
    dark = y < np.percentile(y, 30)
    f += [sd.mean() / (y.mean() + 0.05), sd[dark].mean() / (y[dark].mean() + 0.05) if dark.any() else 0.0]
    # noise and sharpness at the image's own resolution
    c = _to_float(_crop(rgb))
    cy = _gray(c)
    ycc = cv2.cvtColor(c, cv2.COLOR_RGB2YCrCb)
    n_all, n_flat = _flat_noise(cy)
    _, n_c = _flat_noise(np.ascontiguousarray(ycc[:, :, 1]))
    cdark = cy < np.percentile(cy, 25)
    _, n_dark = _flat_noise(np.where(cdark, cy, cy[cdark].mean() if cdark.any() else 0).astype(np.float32))
    f += [n_all * 20, n_flat * 20, n_c * 20, n_flat / (cy.mean() + 0.02), n_dark * 20]
    lap = cv2.Laplacian(cy, cv2.CV_32F, ksize=3)
    gx, gy = cv2.Sobel(cy, cv2.CV_32F, 1, 0), cv2.Sobel(cy, cv2.CV_32F, 0, 1)
    gm = np.sqrt(gx * gx + gy * gy)
    b1, b2 = cv2.GaussianBlur(cy, (0, 0), 1.0), cv2.GaussianBlur(cy, (0, 0), 2.0)
    half = cv2.resize(cy, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    h1, h2 = cv2.GaussianBlur(half, (0, 0), 1.0), cv2.GaussianBlur(half, (0, 0), 2.0)
    hf = np.abs(cy - b1).mean() / (np.abs(b1 - b2).mean() + 1e-4)
    hf_half = np.abs(half - h1).mean() / (np.abs(h1 - h2).mean() + 1e-4)
    g90 = np.percentile(gm, 90)
    f += [np.log(lap.var() + 1e-6), np.percentile(gm, 50) * 4, g90 * 4, np.percentile(gm, 99) * 4, hf, hf_half]
    f += [np.percentile(gm, 99) / (np.percentile(np.abs(cy - b2), 99) * 8 + 1e-4)]
    # streaks: bright thin structures and the orientation of the fine gradients
    top = np.maximum(y - cv2.medianBlur((y * 255).astype(np.uint8), 5).astype(np.float32) / 255, 0)
    tx, ty = cv2.Sobel(top, cv2.CV_32F, 1, 0), cv2.Sobel(top, cv2.CV_32F, 0, 1)
    tm = np.sqrt(tx * tx + ty * ty) + 1e-8
    strong = tm > np.percentile(tm, 90)
    tot = tm[strong].sum() + 1e-8
    ax, ay = np.abs(tx), np.abs(ty)
    f += [tm[strong & (ax > 2 * ay)].sum() / tot, tm[strong & (ay > 2 * ax)].sum() / tot]
    ang = (np.degrees(np.arctan2(ty[strong], tx[strong])) % 180).astype(np.float32)
    hist = np.histogram(ang, bins=18, range=(0, 180), weights=tm[strong])[0] + 1e-8
    hist = hist / hist.sum()
    f += [hist.max(), -(hist * np.log(hist)).sum() / np.log(18), top.mean() * 20]
    bq = brisque_features(p)
    f += list(np.nan_to_num(bq, nan=0.0, posinf=0.0, neginf=0.0))
    f += _net_features(c, p, nets)
    f += _fog(p)
    out = np.asarray(f, np.float64)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


@dataclass(frozen=True)
class Recognition:
    """The probability of every label, and what they add up to.

    Attributes:
        probabilities: label -> calibrated probability.
        threshold: a label is *found* at or above this probability (one for all labels, or one per label).
    """

    probabilities: dict[str, float]
    threshold: float | dict[str, float] = 0.5

    def threshold_of(self, label: str) -> float:
        return self.threshold[label] if isinstance(self.threshold, dict) else self.threshold

    @property
    def found(self) -> list[str]:
        """Degradations found, most probable first; empty when the photo looks clean."""
        order = sorted(self.probabilities, key=self.probabilities.get, reverse=True)
        return [k for k in order if k != "clean" and self.probabilities[k] >= self.threshold_of(k)]

    @property
    def main(self) -> str:
        """The most probable label (``clean`` included)."""
        return max(self.probabilities, key=self.probabilities.get)

    @property
    def is_clean(self) -> bool:
        return not self.found

    def __str__(self) -> str:
        order = sorted(self.probabilities, key=self.probabilities.get, reverse=True)
        return ", ".join(f"{k} {self.probabilities[k]:.2f}" for k in order[:3])


class Recogniser:
    """The classifier: standardise the features, one hidden layer (ReLU), one logit per label, temperature.

    Args:
        mean, std: feature standardisation ``(F,)``.
        w1, b1, w2, b2: the layers ``(F, H)``, ``(H,)``, ``(H, L)``, ``(L,)``.
        temperature: divides the logits ``(L,)`` (calibration).
        threshold: probability at which a label counts as found: one number, or one per label ``(L,)``.
        nets: the networks :func:`features_np` needs (to recognise images; not to score features).
    """

    def __init__(self, mean, std, w1, b1, w2, b2, temperature, threshold=0.5, nets=None) -> None:
        self.nets = nets
        self.mean, self.std = np.asarray(mean, np.float64), np.asarray(std, np.float64)
        self.w1, self.b1 = np.asarray(w1, np.float64), np.asarray(b1, np.float64)
        self.w2, self.b2 = np.asarray(w2, np.float64), np.asarray(b2, np.float64)
        self.temperature = np.asarray(temperature, np.float64)
        self.threshold = np.broadcast_to(np.asarray(threshold, np.float64), (len(LABELS),)).copy()
        if self.w1.shape[0] != len(FEATURE_NAMES) or self.w2.shape[1] != len(LABELS):
            raise ClearsightError(
                f"recogniser weights are for {self.w1.shape[0]} features and {self.w2.shape[1]} labels; this "
                f"version computes {len(FEATURE_NAMES)} and {len(LABELS)} (retrain with recipes/recogniser.py)"
            )

    def logits(self, feats: np.ndarray) -> np.ndarray:
        z = (np.atleast_2d(feats) - self.mean) / self.std
        h = np.maximum(z @ self.w1 + self.b1, 0)
        return (h @ self.w2 + self.b2) / self.temperature

    def probabilities(self, feats: np.ndarray) -> np.ndarray:
        """``(N, L)`` probabilities of ``(N, F)`` or ``(F,)`` features."""
        return 1 / (1 + np.exp(-np.clip(self.logits(feats), -40, 40)))

    def __call__(self, rgb: np.ndarray) -> Recognition:
        if self.nets is None:
            raise ClearsightError("this recogniser was loaded without its networks (use clearsight.models.auto)")
        p = self.probabilities(features_np(rgb, self.nets))[0]
        return Recognition({k: float(v) for k, v in zip(LABELS, p)}, dict(zip(LABELS, self.threshold.tolist())))

    def save(self, path: str | Path, **meta: str) -> None:
        np.savez(
            path, mean=self.mean, std=self.std, w1=self.w1, b1=self.b1, w2=self.w2, b2=self.b2,
            temperature=self.temperature, threshold=self.threshold, labels=np.array(LABELS),
            features=np.array(FEATURE_NAMES), **{k: np.array(v) for k, v in meta.items()},
        )  # fmt: skip

    @classmethod
    def load(cls, path: str | Path, nets=None) -> Recogniser:
        try:
            with np.load(path) as z:
                args = [z[k] for k in ("mean", "std", "w1", "b1", "w2", "b2", "temperature", "threshold")]
            return cls(*args, nets=nets)
        except (OSError, KeyError, ValueError) as e:
            raise ClearsightError(f"{path}: not a recogniser file ({e})") from None
