"""PIQE (Venkatanath et al., 2015): a training-free, block-based no-reference quality score.

The image's luma (Rec. 601 weights, rounded to [0, 255]) is normalised into MSCN coefficients (7x7
Gaussian, sigma 7/6, replicate padding, padded at the bottom/right to a multiple of 16). Each 16x16 block
whose MSCN variance exceeds 0.1 is *active*. An active block counts as having a noticeable artefact when
any 6-pixel segment of one of its four edges is nearly flat (sample standard deviation below 0.1), and as
noisy when its standard deviation exceeds twice ``beta = |sigma - r| / max(sigma, r)``, ``r`` being the
ratio of the standard deviation of the two centre columns to that of the surround. Artefact blocks add
``1 - var`` and noisy blocks ``var``; the score is ``100 (sum + 1) / (N_active + 1)``: 0 is best, 100 worst.

This follows the published MATLAB reference (``piqe`` in the Image Processing Toolbox), including its
surround definition, in our own NumPy code; no parameters are learned.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from .._checks import check_image
from .._errors import ShapeError

__all__ = ["piqe", "piqe_np"]

BLOCK = 16
ACTIVITY = 0.1
IMPAIRED = 0.1
WINDOW = 6


def _edges_impaired(block: np.ndarray) -> bool:
    for edge in (block[0], block[:, -1], block[-1], block[:, 0]):
        segs = np.lib.stride_tricks.sliding_window_view(edge, WINDOW)  # 11 segments of 6 pixels
        if (segs.std(axis=1, ddof=1) < IMPAIRED).any():
            return True
    return False


def _centre_surround_ratio(block: np.ndarray) -> float:
    c1 = BLOCK // 2 - 1  # 0-based index of the first centre column (MATLAB: (15 + 1) / 2 = 8)
    centre = np.concatenate([block[:, c1], block[:, c1 + 1]])
    # the reference removes column c1, then column c1 + 1 of what is left (originally c1 + 2)
    surround = np.delete(np.delete(block, c1, axis=1), c1 + 1, axis=1)
    s = surround.std(ddof=1)
    r = centre.std(ddof=1) / s if s > 0 else 0.0
    return 0.0 if not np.isfinite(r) else float(r)


def piqe_np(rgb: np.ndarray) -> float:
    """PIQE of one float ``(H, W, 3)`` image in [0, 1] (at least 16x16); lower is better."""
    h, w = rgb.shape[:2]
    if h < BLOCK or w < BLOCK:
        raise ShapeError(f"PIQE needs images of at least {BLOCK}x{BLOCK} pixels, got {w}x{h}")
    if float(np.ptp(rgb)) < 1e-6:
        raise ShapeError("PIQE is undefined for a constant image")
    gray = np.round(255.0 * (rgb.astype(np.float64) @ np.array([0.2989, 0.5870, 0.1140])))
    gray = np.pad(gray, ((0, (-h) % BLOCK), (0, (-w) % BLOCK)), mode="edge")
    mu = cv2.GaussianBlur(gray, (7, 7), 7 / 6, borderType=cv2.BORDER_REPLICATE)
    sigma = np.sqrt(np.abs(cv2.GaussianBlur(gray * gray, (7, 7), 7 / 6, borderType=cv2.BORDER_REPLICATE) - mu * mu))
    mscn = (gray - mu) / (sigma + 1)
    total, active = 0.0, 0
    for y in range(0, mscn.shape[0], BLOCK):
        for x in range(0, mscn.shape[1], BLOCK):
            block = mscn[y : y + BLOCK, x : x + BLOCK]
            var = float(block.var(ddof=1))
            if var <= ACTIVITY:
                continue
            active += 1
            if _edges_impaired(block):
                total += 1 - var
            s = var**0.5
            r = _centre_surround_ratio(block)
            beta = abs(s - r) / max(s, r)
            if s > 2 * beta:
                total += var
    return 100.0 * (total + 1) / (active + 1)


def piqe(x: torch.Tensor) -> torch.Tensor:
    """PIQE per image: :math:`(B, 3, H, W)` in [0, 1] -> :math:`(B,)`, 0 (best) to 100."""
    check_image(x)
    return torch.tensor([piqe_np(im.detach().permute(1, 2, 0).double().cpu().numpy()) for im in x], dtype=torch.float32)
