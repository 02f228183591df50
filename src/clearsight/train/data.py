"""Datasets and samplers of the trainer: online synthesis (from :mod:`clearsight.degrade`), paired folders,
and an index sampler that makes every batch a function of the iteration (exact resume, disjoint ranks)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ..degrade.dataset import SynthesisDataset, image_files
from ..io import load_image
from .config import DataConfig

__all__ = ["PairedFolderDataset", "IterationBatches", "build_train_dataset", "build_val_items"]


class PairedFolderDataset(Dataset):
    """Random aligned crops of ``degraded/NAME`` and ``clean/NAME`` pairs; item ``i`` is fixed by ``(seed, i)``."""

    def __init__(self, degraded: str | os.PathLike, clean: str | os.PathLike, crop: int = 256, seed: int = 0,
                 length: int = 10**9) -> None:  # fmt: skip
        clean_dir = Path(clean)
        self.pairs = [(f, clean_dir / f.name) for f in image_files(degraded) if (clean_dir / f.name).is_file()]
        if not self.pairs:
            raise ValueError(f"no pairs with the same names in {degraded} and {clean}")
        self.crop, self.seed, self.length = int(crop), int(seed), int(length)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng(self.seed * 1_000_003 + index)
        a, b = self.pairs[index % len(self.pairs)]
        x = load_image(a).rgb.astype(np.float32) / 255.0
        y = load_image(b).rgb.astype(np.float32) / 255.0
        h, w = min(x.shape[0], y.shape[0]), min(x.shape[1], y.shape[1])
        c = min(self.crop, h, w)
        i, j = rng.integers(0, h - c + 1), rng.integers(0, w - c + 1)
        x, y = x[i : i + c, j : j + c], y[i : i + c, j : j + c]
        if rng.random() < 0.5:
            x, y = x[:, ::-1], y[:, ::-1]

        def t(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)

        return {"degraded": t(x), "clean": t(y), "index": torch.tensor(index), "task": torch.tensor(0)}


class IterationBatches(Sampler):
    """Batches of dataset indices for iterations ``start .. total - 1``.

    Iteration ``it`` on rank ``r`` of ``world`` takes indices ``((it * world + r) * batch) + [0, batch)``: the
    ranks never share an item, and a resumed run sees exactly the batches the uninterrupted run would have.
    """

    def __init__(self, start: int, total: int, batch: int, rank: int = 0, world: int = 1) -> None:
        self.start, self.total, self.batch, self.rank, self.world = start, total, batch, rank, world

    def __iter__(self):
        for it in range(self.start, self.total):
            base = (it * self.world + self.rank) * self.batch
            yield list(range(base, base + self.batch))

    def __len__(self) -> int:
        return max(0, self.total - self.start)


def _paths(cfg: DataConfig, names: list[str]) -> list[Path]:
    return [Path(cfg.root) / n for n in names]


def build_train_dataset(cfg: DataConfig, seed: int) -> Dataset:
    """The training dataset a :class:`DataConfig` describes."""
    if cfg.kind == "paired":
        if not cfg.degraded or not cfg.clean:
            raise ValueError("data.kind=paired needs data.degraded and data.clean folders")
        return PairedFolderDataset(Path(cfg.root) / cfg.degraded, Path(cfg.root) / cfg.clean, cfg.crop, seed)
    if not cfg.sources:
        raise ValueError("data.sources is empty: give folders of clean images (relative to data.root)")
    return SynthesisDataset(
        _paths(cfg, cfg.sources), preset=dict(cfg.presets), crop=cfg.crop, length=10**12, seed=seed,
        depth=cfg.depth, min_scale=cfg.min_scale, cache=cfg.cache or 10**9, balanced=cfg.balanced,
    )  # fmt: skip


def build_val_items(cfg: DataConfig, seed: int) -> list[dict[str, torch.Tensor]]:
    """A fixed validation set (synthesis on ``val_sources`` with its own seed); empty when there are none."""
    if not cfg.val_sources or cfg.val_items < 1:
        return []
    ds = SynthesisDataset(
        _paths(cfg, cfg.val_sources), preset=dict(cfg.presets), crop=cfg.val_crop, length=cfg.val_items,
        seed=seed + 7919, depth=cfg.depth, min_scale=cfg.min_scale, balanced=cfg.balanced,
    )  # fmt: skip
    return [ds[i] for i in range(len(ds))]
