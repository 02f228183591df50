"""Colabator (Fang et al., NeurIPS 2024): mean-teacher pseudo-labels kept in an optimal label pool.

The parts, each usable alone:

* :class:`LabelPool`: pseudo-labels keyed by image id; an entry is replaced only when the new candidate's
  global quality **and** haze-free scores are both not worse than the stored ones.
* :func:`block_map`: a score computed on non-overlapping blocks, bilinearly upsampled to a per-pixel map.
* :func:`weight_map`: the per-pixel loss weight, ``(M_quality + M_clear) / 2`` ("addition" mode) or their
  product, where ``M_clear`` is the haze-*free* probability: the paper's stated intent (the released code
  ends up weighting hazier blocks more; see ``../shared/docs/methods.md`` §3.3).
* :func:`strong_augment`: photometric-only augmentations (contrast, brightness, posterize, sharpness, blur)
  that keep pixel alignment with the weak view.

MUSIQ and DA-CLIP cannot be had here. Quality is a local sharpness-and-contrast score (block maps, and the
global pool score by default) or, for the global pool score, our BRISQUE (``quality="brisque"``); the haze-free
probability is a logistic function of the dark channel (haze lifts it; clean photos have a dark channel near
zero) or the shipped degradation classifier's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["LabelPool", "PoolEntry", "block_map", "weight_map", "strong_augment", "clear_probability",
           "sharpness_quality", "brisque_quality", "naturalness_quality", "classifier_clear_probability",
           "strength_candidates"]  # fmt: skip


#: BRISQUE points worth one NIQE point in :func:`naturalness_quality`: a little below the ratio of the two metrics'
#: spreads (standard deviations, 14) over restored real hazy photos, so that BRISQUE's optimum counts
#: (``scripts/strength_sweep.py``, ``docs/adaptation.md``).
BRISQUE_PER_NIQE = 10.0


@dataclass
class PoolEntry:
    label: torch.Tensor
    quality: float
    clear: float
    weight: torch.Tensor


class LabelPool:
    """The optimal label pool: ``offer(key, candidate)`` returns the entry to train with."""

    def __init__(self) -> None:
        self.entries: dict[str, PoolEntry] = {}

    def offer(self, key: str, candidate: PoolEntry) -> tuple[PoolEntry, bool]:
        """Insert or replace under the rule; returns the entry to use and whether the candidate was taken."""
        old = self.entries.get(key)
        if old is None or (candidate.quality >= old.quality and candidate.clear >= old.clear):
            self.entries[key] = candidate
            return candidate, True
        return old, False

    def __len__(self) -> int:
        return len(self.entries)

    def state_dict(self) -> dict:
        return {k: vars(e) for k, e in self.entries.items()}

    def load_state_dict(self, state: dict) -> None:
        self.entries = {k: PoolEntry(**v) for k, v in state.items()}


def clear_probability(x: torch.Tensor, centre: float = 0.2, width: float = 0.05, patch: int = 7) -> torch.Tensor:
    """Haze-free probability per image ``(B,)``: ``sigmoid((centre - mean dark channel) / width)``."""
    from ..priors.filters import dark_channel

    d = dark_channel(x.float().clamp(0, 1), patch).mean((1, 2, 3))
    return torch.sigmoid((centre - d) / width)


def classifier_clear_probability(net: torch.nn.Module, size: int = 48) -> Callable[[torch.Tensor], torch.Tensor]:
    """A haze-free score from a degradation classifier (``1 - P(hazy classes)``), on inputs resized to ``size``."""

    def score(x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x.float().clamp(0, 1), size=(size, size), mode="area" if x.shape[-1] > size else "bilinear")
        return net.clear_probability(x)

    return score


def sharpness_quality(x: torch.Tensor, scale: float = 0.08) -> torch.Tensor:
    """Quality in [0, 1) per image ``(B,)``: ``1 - exp(-mean |gradient of luma| / scale)`` (detail and contrast)."""
    y = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).float()
    g = (y[:, :, 1:] - y[:, :, :-1]).abs().mean((1, 2)) + (y[:, 1:] - y[:, :-1]).abs().mean((1, 2))
    return 1.0 - torch.exp(-g / scale)


def brisque_quality(x: torch.Tensor) -> torch.Tensor:
    """Quality in [0, 1] per image ``(B,)``: ``1 - BRISQUE / 100`` (our BRISQUE model, ``clearsight.metrics``).

    A no-reference naturalness score in the role MUSIQ plays in Colabator: unlike :func:`sharpness_quality` it
    penalises amplified noise and ringing, which also raise the gradient energy."""
    from ..metrics import create_metric

    return 1.0 - create_metric("brisque")(x.float().clamp(0, 1)).float().clamp(0, 100) / 100


def naturalness_quality(x: torch.Tensor, brisque_scale: float = BRISQUE_PER_NIQE) -> torch.Tensor:
    """Quality per image ``(B,)``, higher is better: ``-(NIQE + BRISQUE / brisque_scale)`` (our own models).

    The two no-reference metrics together stand in for MUSIQ when candidates of one image are compared: NIQE alone
    keeps rewarding stronger dehazing, BRISQUE has an optimum. ``brisque_scale`` puts a BRISQUE point on NIQE's
    scale (:data:`BRISQUE_PER_NIQE`). NIQE needs at least 192 x 192 pixels: smaller images are scored by BRISQUE
    alone (every candidate of one image has its size, so they stay comparable)."""
    from ..metrics import create_metric
    from ..metrics.niqe import PATCH

    x = x.float().clamp(0, 1)
    q = -create_metric("brisque")(x).float() / brisque_scale
    if min(x.shape[-2:]) >= 2 * PATCH:
        q = q - create_metric("niqe")(x).float()
    return q


def strength_candidates(x: torch.Tensor, y: torch.Tensor, strengths: tuple[float, ...]) -> list[torch.Tensor]:
    """Pseudo-label candidates ``x + s (y - x)`` for each strength ``s``: with a fixed airlight the restored
    image is ``x + (x - A)(1/t - 1)``, so ``s`` scales ``1/t - 1`` (``s > 1`` removes more haze, ``s < 1`` less)."""
    return [(x + s * (y - x)).clamp(0, 1) for s in strengths]


def block_map(x: torch.Tensor, score: Callable[[torch.Tensor], torch.Tensor], block: int = 32) -> torch.Tensor:
    """Score every non-overlapping ``block`` x ``block`` block of ``(B, 3, H, W)`` and upsample to ``(B, 1, H, W)``."""
    b, c, h, w = x.shape
    gh, gw = max(1, h // block), max(1, w // block)
    crop = x[..., : gh * block, : gw * block] if h >= block and w >= block else x
    bh, bw = crop.shape[-2] // gh, crop.shape[-1] // gw
    tiles = crop.unfold(2, bh, bh).unfold(3, bw, bw)  # (B, C, gh, gw, bh, bw)
    tiles = tiles.permute(0, 2, 3, 1, 4, 5).reshape(b * gh * gw, c, bh, bw)
    s = score(tiles).float().view(b, 1, gh, gw)
    return F.interpolate(s, size=(h, w), mode="bilinear", align_corners=False)


def weight_map(quality_map: torch.Tensor, clear_map: torch.Tensor, mode: str = "add") -> torch.Tensor:
    """Per-pixel pseudo-label weight from the quality and haze-free maps (``add``: mean, ``mul``: product)."""
    if mode == "add":
        return (quality_map + clear_map) / 2
    if mode == "mul":
        return quality_map * clear_map
    raise ValueError(f"mode must be add or mul, got {mode!r}")


def strong_augment(x: torch.Tensor, generator: torch.Generator, n: int = 2) -> torch.Tensor:
    """RandAugment-style photometric ops (n drawn with replacement), per image; pixel alignment is kept."""
    out = []
    for im in x:
        for _ in range(n):
            op = int(torch.randint(0, 5, (1,), generator=generator))
            v = float(torch.empty(1).uniform_(0.05, 0.95, generator=generator))
            if op == 0:  # contrast
                m = im.mean()
                im = (m + (im - m) * (0.5 + v)).clamp(0, 1)
            elif op == 1:  # brightness
                im = (im * (0.5 + v)).clamp(0, 1)
            elif op == 2:  # posterize to 4..8 bits
                bits = 4 + int(v * 4.99)
                q = 2**bits - 1
                im = torch.round(im * q) / q
            elif op == 3:  # sharpness: blend with a blurred copy
                blur = F.avg_pool2d(F.pad(im[None], (1, 1, 1, 1), mode="replicate"), 3, 1)[0]
                im = (blur + (im - blur) * (0.5 + 1.5 * v)).clamp(0, 1)
            else:  # Gaussian blur, radius 1..5
                r = 1 + 2 * int(v * 2.99)
                k = torch.exp(-((torch.arange(2 * r + 1) - r) ** 2) / (2 * (r / 2) ** 2))
                k = (k / k.sum()).to(im)
                p = F.pad(im[None], (r, r, r, r), mode="replicate")
                p = F.conv2d(p, k.view(1, 1, 1, -1).expand(3, 1, 1, -1), groups=3)
                im = F.conv2d(p, k.view(1, 1, -1, 1).expand(3, 1, -1, 1), groups=3)[0]
        out.append(im)
    return torch.stack(out)
