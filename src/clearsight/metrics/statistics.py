"""Image statistics for comparing folders of real and synthetic images (``clearsight stats``).

This is the statistical analysis that the RSR/CID synthesis rests on: a synthetic preset is good when
the distributions of these statistics over its images match those of real images of the same kind.

Per image (on a preview of at most 512 px):

=================  ===========================================================================
``dark_channel``   mean dark channel (15-px window): the veil of haze
``haze``           mean of ``1 - t`` with ``t`` the DCP transmission (airlight estimated): haze density
``airlight_r``     red chromaticity ``R / (R + G + B)`` of the estimated airlight (0.33 for grey)
``airlight_b``     blue chromaticity of the estimated airlight (low for sand and dust)
``brightness``     mean luma
``contrast``       standard deviation of the luma
``saturation``     mean HSV saturation
``colourfulness``  Hasler-Suesstrunk colourfulness
``noise``          noise sigma in [0, 1] units, Immerkaer's fast estimator (1996) on the luma
=================  ===========================================================================

Distances between two folders: for each statistic, the 1-D Wasserstein distance between the two
empirical distributions divided by the spread (interquartile range, floored) of the reference folder; the
overall distance is their mean.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from ..priors.airlight import estimate_airlight_np
from ..priors.base import make_preview
from ..priors.dcp import dcp_transmission_np
from ..priors.filters import dark_channel_np

__all__ = ["STATISTICS", "image_statistics", "folder_statistics", "distance", "summarise", "plot_statistics"]

STATISTICS = (
    "dark_channel",
    "haze",
    "airlight_r",
    "airlight_b",
    "brightness",
    "contrast",
    "saturation",
    "colourfulness",
    "noise",
)


def noise_sigma_np(gray: np.ndarray) -> float:
    """Immerkaer's noise estimate of a float32 gray image (sigma in the image's units)."""
    h, w = gray.shape
    if h < 3 or w < 3:
        return 0.0
    k = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    conv = cv2.filter2D(gray, -1, k, borderType=cv2.BORDER_REFLECT)[1:-1, 1:-1]
    return float(math.sqrt(math.pi / 2) * np.abs(conv).sum() / (6 * (w - 2) * (h - 2)))


def image_statistics(rgb: np.ndarray, size: int = 512) -> dict[str, float]:
    """The statistics of one float32 ``(H, W, 3)`` image in [0, 1] (see the module docstring)."""
    x = make_preview(rgb, size)
    gray = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)
    a = estimate_airlight_np(x, "robust", 15, min_value=0.02)
    t = dcp_transmission_np(x, a, 15, 0.95, 0, 0.0)
    hsv = cv2.cvtColor(x, cv2.COLOR_RGB2HSV)
    r, g, b = x[:, :, 0], x[:, :, 1], x[:, :, 2]
    rg, yb = r - g, 0.5 * (r + g) - b
    colourful = math.sqrt(rg.var() + yb.var()) + 0.3 * math.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    # noise is measured at full resolution on a central crop (downscaling would average it away)
    h, w = rgb.shape[:2]
    c = min(h, w, 512)
    y0, x0 = (h - c) // 2, (w - c) // 2
    full_gray = cv2.cvtColor(np.ascontiguousarray(rgb[y0 : y0 + c, x0 : x0 + c], np.float32), cv2.COLOR_RGB2GRAY)
    return {
        "dark_channel": float(dark_channel_np(x, 15).mean()),
        "haze": float(np.clip(1 - t, 0, 1).mean()),
        "airlight_r": float(a[0] / a.sum()),
        "airlight_b": float(a[2] / a.sum()),
        "brightness": float(gray.mean()),
        "contrast": float(gray.std()),
        "saturation": float(hsv[:, :, 1].mean()),
        "colourfulness": float(colourful),
        "noise": noise_sigma_np(full_gray),
    }


def folder_statistics(paths: Sequence[str | Path], progress: bool = False) -> dict[str, np.ndarray]:
    """Statistics of many image files: ``{name: (N,) array}`` plus ``files`` (unreadable files are skipped)."""
    from ..io import load_image

    rows, names = [], []
    it = paths
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(paths, desc="stats", unit="img")
    for p in it:
        try:
            rec = load_image(p)
        except Exception:  # noqa: BLE001 - a broken file must not stop a survey
            continue
        scale = 255.0 if rec.rgb.dtype == np.uint8 else 65535.0
        rows.append(image_statistics(rec.rgb.astype(np.float32) / scale))
        names.append(str(p))
    out = {k: np.array([r[k] for r in rows], np.float64) for k in STATISTICS}
    out["files"] = np.array(names)
    return out


def _wasserstein_1d(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    qs = np.linspace(0, 1, 101)
    return float(np.mean(np.abs(np.quantile(a, qs) - np.quantile(b, qs))))


_SPREAD_FLOOR = {"noise": 0.005, "airlight_r": 0.02, "airlight_b": 0.02}


def distance(reference: dict[str, np.ndarray], other: dict[str, np.ndarray]) -> dict[str, float]:
    """Per-statistic normalised Wasserstein distance of ``other`` from ``reference``, and their ``mean``."""
    out = {}
    for k in STATISTICS:
        ref = reference[k]
        q1, q3 = np.quantile(ref, [0.25, 0.75]) if len(ref) else (0.0, 1.0)
        spread = max(float(q3 - q1), _SPREAD_FLOOR.get(k, 0.05))
        out[k] = _wasserstein_1d(ref, other[k]) / spread
    out["mean"] = float(np.nanmean([out[k] for k in STATISTICS]))
    return out


def summarise(stats: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Median and interquartile range of each statistic."""
    out = {}
    for k in STATISTICS:
        v = stats[k]
        if len(v) == 0:
            out[k] = {"median": float("nan"), "q1": float("nan"), "q3": float("nan")}
            continue
        q1, med, q3 = np.quantile(v, [0.25, 0.5, 0.75])
        out[k] = {"median": float(med), "q1": float(q1), "q3": float(q3)}
    return out


def plot_statistics(groups: dict[str, dict[str, np.ndarray]], path: str | Path, title: str = "") -> Path:
    """Box plots of every statistic, one box per group, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(groups)
    fig, axes = plt.subplots(3, 3, figsize=(4 + 1.1 * len(names) * 3, 10))
    for ax, k in zip(axes.ravel(), STATISTICS):
        data = [groups[n][k] if len(groups[n][k]) else np.array([np.nan]) for n in names]
        ax.boxplot(data, showfliers=False)
        ax.set_xticks(range(1, len(names) + 1), names, rotation=30, ha="right", fontsize=8)
        ax.set_title(k)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
