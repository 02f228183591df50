"""An online synthesis dataset: crops of clean images degraded on the fly with a preset.

Every item is a deterministic function of ``(seed, index)``, so a run can be reproduced and resumed
exactly, and workers of a ``DataLoader`` never repeat each other's draws.

Example:
    >>> from clearsight.degrade.dataset import SynthesisDataset
    >>> ds = SynthesisDataset(["photo1.jpg", "photo2.png"], preset="day_haze", crop=256)  # doctest: +SKIP
    >>> item = ds[0]; item["degraded"].shape, item["clean"].shape                          # doctest: +SKIP
    (torch.Size([3, 256, 256]), torch.Size([3, 256, 256]))
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..io import load_image
from .depth import estimate_depth_np
from .pipeline import Degrader
from .scenes import SCENE_KINDS, render_scene

__all__ = ["SynthesisDataset", "image_files", "near_duplicates"]

_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def image_files(sources: Sequence[str | os.PathLike] | str | os.PathLike) -> list[Path]:
    """Image files under folders (recursively) and files named directly, sorted."""
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    out: list[Path] = []
    for s in sources:
        p = Path(s)
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.suffix.lower() in _EXT and f.is_file())
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
    return out


def _thumbnail(path: Path) -> np.ndarray:
    """A 32 x 48 grey thumbnail, landscape, normalised to zero mean and unit spread."""
    img = load_image(path).rgb.astype(np.float32).mean(-1)
    if img.shape[0] > img.shape[1]:
        img = img.T
    t = cv2.resize(np.ascontiguousarray(img), (48, 32), interpolation=cv2.INTER_AREA)
    return (t - t.mean()) / (t.std() + 1e-6)


def near_duplicates(
    candidates: Sequence[str | os.PathLike],
    references: Sequence[str | os.PathLike],
    threshold: float = 0.2,
) -> dict[Path, Path]:
    """Candidates that show the same picture as a reference, up to scale, flips, a turn and compression.

    Public image sets reuse each other's photos (some rain pairs are drawn on CBSD68 images); training on a copy
    of a benchmark image would leak it. Images are compared as normalised 32 x 48 grey thumbnails under the
    flips that map a landscape frame to itself; the mean absolute difference of copies is below 0.03, that of
    different photos above 0.45 on the sets in ``../shared/data``.

    Returns:
        ``{candidate: the closest reference}`` for every candidate whose distance is below ``threshold``.
    """
    refs = [(Path(r), _thumbnail(Path(r))) for r in references]
    out: dict[Path, Path] = {}
    for c in map(Path, candidates):
        a = _thumbnail(c)
        views = (a, a[::-1], a[:, ::-1], a[::-1, ::-1])
        dist, ref = min(((min(float(np.abs(v - t).mean()) for v in views), r) for r, t in refs), default=(np.inf, None))
        if ref is not None and dist < threshold:
            out[c] = ref
    return out


class SynthesisDataset(Dataset):
    """Clean crops degraded on the fly.

    Args:
        sources: clean image files or folders.
        preset: preset name, YAML path or config (see :mod:`clearsight.degrade.pipeline`), or a mapping of
            presets to sampling weights (a multi-domain mixture: each item draws its preset; ``task`` says which).
        crop: side of the square crops in pixels (smaller images are upscaled to fit).
        length: number of items per epoch (default: 8 per clean image).
        seed: base seed; item ``i`` uses ``seed * 1_000_003 + i``.
        depth: ``geometry`` (estimated from the whole image, cached), ``random`` (smooth random field),
            ``scene`` (a procedural 3D scene textured with the clean images, exact depth, replaces the photo)
            or ``mixed`` (per item: geometry 40 %, random 40 %, scene 20 %). Default ``random``: the source
            whose networks generalised best in the synthesis proxy benchmark (``docs/synthesis.md``).
        scene_kinds: kinds of procedural scenes for ``depth="scene"``.
        min_scale: crops are taken after a random downscale by a factor in ``[min_scale, 1]`` (relative to
            the largest scale at which the crop fits), so haze sees varied scene scales.
        cache: how many decoded images (with their depth) to keep in memory.
        degrade: apply the preset in ``__getitem__`` (``False`` returns clean and depth only, for batched
            degradation on the training side).
        balanced: item ``i`` gets task ``i mod len(tasks)`` (and a randomly drawn image), so any run of
            consecutive indices whose length is a multiple of the task count holds every task equally often
            (UDAIR's task-balanced batches); otherwise each item draws its task by the mixture weights.

    Items are dicts with ``degraded`` and ``clean`` ``(3, crop, crop)`` in [0, 1], ``depth`` ``(1, crop, crop)``,
    ``transmission`` (ones where the preset has no haze), ``index`` and ``task`` (the preset's position in
    :attr:`tasks`).
    """

    def __init__(
        self,
        sources: Sequence[str | os.PathLike] | str | os.PathLike,
        preset: str | Mapping[str, float] = "day_haze",
        crop: int = 256,
        length: int | None = None,
        seed: int = 0,
        depth: str = "random",
        scene_kinds: Sequence[str] = SCENE_KINDS,
        min_scale: float = 0.5,
        cache: int = 64,
        degrade: bool = True,
        balanced: bool = False,
    ) -> None:
        self.files = image_files(sources)
        if not self.files:
            raise ValueError("no clean images found")
        if depth not in ("geometry", "random", "scene", "mixed"):
            raise ValueError(f"depth must be geometry, random, scene or mixed, got {depth!r}")
        if isinstance(preset, Mapping) and "stages" not in preset:
            weights = np.array([float(w) for w in preset.values()])
            if len(weights) == 0 or (weights < 0).any() or weights.sum() <= 0:
                raise ValueError("preset weights must be non-negative and not all zero")
            self.tasks = [str(k) for k in preset]
            self.task_p = weights / weights.sum()
            self.degraders = [Degrader.from_config(k) for k in self.tasks]
        else:
            self.tasks = [preset if isinstance(preset, str) else "custom"]
            self.task_p = np.ones(1)
            self.degraders = [Degrader.from_config(preset)]
        self.crop, self.seed, self.depth_source = int(crop), int(seed), depth
        self.length = int(length) if length is not None else 8 * len(self.files)
        self.scene_kinds, self.min_scale, self.degrade = tuple(scene_kinds), float(min_scale), degrade
        self.balanced = bool(balanced)
        self._cache: OrderedDict[int, tuple[np.ndarray, np.ndarray | None]] = OrderedDict()
        self._cache_size = int(cache)

    def __len__(self) -> int:
        return self.length

    def _load(self, k: int) -> tuple[np.ndarray, np.ndarray | None]:
        if k in self._cache:
            self._cache.move_to_end(k)
            return self._cache[k]
        rec = load_image(self.files[k])
        scale = 255.0 if rec.rgb.dtype == np.uint8 else 65535.0
        rgb = rec.rgb.astype(np.float32) / scale
        depth = estimate_depth_np(rgb) if self.depth_source in ("geometry", "mixed") else None
        self._cache[k] = (rgb, depth)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return rgb, depth

    def _crop(self, rgb: np.ndarray, depth: np.ndarray | None, rng: np.random.Generator):
        h, w = rgb.shape[:2]
        c = self.crop
        fit = c / min(h, w)  # scale at which the short side equals the crop
        s = max(fit, rng.uniform(max(self.min_scale, fit), 1.0)) if fit < 1 else fit
        if abs(s - 1.0) > 1e-3:
            nh, nw = max(c, round(h * s)), max(c, round(w * s))
            interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
            rgb = cv2.resize(rgb, (nw, nh), interpolation=interp)
            depth = cv2.resize(depth, (nw, nh), interpolation=cv2.INTER_LINEAR) if depth is not None else None
            h, w = nh, nw
        y, x = rng.integers(0, h - c + 1), rng.integers(0, w - c + 1)
        rgb = rgb[y : y + c, x : x + c]
        depth = depth[y : y + c, x : x + c] if depth is not None else None
        if rng.random() < 0.5:
            rgb = rgb[:, ::-1]
            depth = depth[:, ::-1] if depth is not None else None
        return np.clip(rgb, 0, 1), depth

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < self.length:
            raise IndexError(index)
        item_seed = self.seed * 1_000_003 + index
        rng = np.random.default_rng(item_seed)
        gen = torch.Generator().manual_seed(item_seed)
        source = self.depth_source
        if source == "mixed":
            source = ("geometry", "random", "scene")[int(rng.choice(3, p=[0.4, 0.4, 0.2]))]
        if source == "scene":
            photos = [self._load(int(k))[0] for k in rng.integers(0, len(self.files), 3)]
            kind = self.scene_kinds[rng.integers(len(self.scene_kinds))]
            rgb, dist = render_scene(kind, self.crop, self.crop, rng, photos)
            finite = np.isfinite(dist)
            ref = np.percentile(dist[finite], 98) if finite.any() else 1.0
            depth = np.where(finite, np.minimum(dist / max(ref, 1e-6), 1.0), 1.0).astype(np.float32)
        else:
            k = int(rng.integers(len(self.files))) if self.balanced else index % len(self.files)
            rgb, depth = self._crop(*self._load(k), rng)
            if source == "random":
                depth = None
        clean = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float()
        if depth is None:
            from .depth import random_depth

            d = random_depth(1, self.crop, self.crop, gen)[0]
        else:
            d = torch.from_numpy(np.ascontiguousarray(depth)).float()[None]
        if self.balanced:  # task-balanced: item i has task i mod T (consecutive indices cycle the tasks)
            task = index % len(self.degraders)
        elif len(self.degraders) > 1:
            task = int(rng.choice(len(self.degraders), p=self.task_p))
        else:
            task = 0
        item = {"clean": clean, "depth": d, "index": torch.tensor(index), "task": torch.tensor(task)}
        if self.degrade:
            maps: dict[str, torch.Tensor] = {}
            out, _ = self.degraders[task](clean[None], depth=d[None], generator=gen, maps=maps)
            item["degraded"] = out[0]
            t = maps.get("transmission")
            item["transmission"] = t[0, :1] if t is not None else torch.ones_like(d)
        return item
