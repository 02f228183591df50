"""Bursts with IRP labels: simulated captures of clean crops, restored by the pool and scored.

:func:`make_bursts` is what the training recipe (``recipes/irp_dynamic.py``) and the benchmark
(``benchmarks/irp.py``) build their data with; scene ``j`` of image ``i`` is drawn from the seed
``seed * 1_000_003 + i * 1_009 + j``, so a set is reproducible and can be built in parallel.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from ..degrade.capture import SIMULATOR_VERSION, Capture, exposure_bracket, sample_scene, simulate_captures
from ..io import load_image
from .labels import irp_labels, shake_kernel_of

__all__ = ["Bursts", "make_bursts", "load_clean", "cached_bursts"]


@dataclass
class Bursts:
    """``S`` scenes of ``N`` frames each.

    Attributes:
        frames: uint8 ``(S, N, H, W, 3)``; clean: uint8 ``(S, H, W, 3)``.
        irp, best_psnr: ``(S, N)``; ssim, psnr: ``(S, N, R)`` per restorer (names in ``restorers``).
        exposure_ms, gain: ``(S, N)``; source: the clean file of each scene; scene: the scene draws (dicts).
        version: the :data:`~clearsight.degrade.capture.SIMULATOR_VERSION` the frames were made with (files
            from before versioning load as 1).
    """

    frames: np.ndarray
    clean: np.ndarray
    irp: np.ndarray
    best_psnr: np.ndarray
    ssim: np.ndarray
    psnr: np.ndarray
    exposure_ms: np.ndarray
    gain: np.ndarray
    source: list[str]
    restorers: list[str]
    version: int = SIMULATOR_VERSION

    def save(self, path: str | os.PathLike) -> None:
        np.savez_compressed(path, **{k: np.asarray(v) for k, v in self.__dict__.items()})

    @classmethod
    def load(cls, path: str | os.PathLike) -> Bursts:
        z = np.load(path, allow_pickle=False)
        d = {k: z[k] for k in z.files}
        d["source"] = [str(s) for s in d["source"]]
        d["restorers"] = [str(s) for s in d["restorers"]]
        d["version"] = int(d["version"]) if "version" in d else 1
        return cls(**d)


def cached_bursts(path: str | os.PathLike, build) -> Bursts:
    """The bursts cached at ``path`` if they were made by the current simulator, else ``build()`` (saved there)."""
    path = Path(path)
    if path.is_file():
        b = Bursts.load(path)
        if b.version == SIMULATOR_VERSION:
            return b
        print(f"{path}: made by simulator version {b.version}, not {SIMULATOR_VERSION}; rebuilding", flush=True)
    b = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    b.save(path)
    return b


def load_clean(path: str | os.PathLike, longest: int = 512) -> np.ndarray:
    """A clean image as float32 ``(H, W, 3)`` in [0, 1], downscaled (area) so its longest side is ``longest``."""
    rec = load_image(path)
    rgb = rec.rgb.astype(np.float32) / (255.0 if rec.rgb.dtype == np.uint8 else 65535.0)
    h, w = rgb.shape[:2]
    s = longest / max(h, w)
    if s < 1:
        rgb = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    return rgb


def _one(args) -> dict:
    path, index, j, seed, crop, settings, longest = args
    torch.set_num_threads(1)
    item_seed = seed * 1_000_003 + index * 1_009 + j
    g = torch.Generator().manual_seed(item_seed)
    rgb = load_clean(path, longest)
    h, w = rgb.shape[:2]
    if min(h, w) < crop:
        s = crop / min(h, w)
        rgb = cv2.resize(rgb, (max(crop, round(w * s)), max(crop, round(h * s))), interpolation=cv2.INTER_CUBIC)
        h, w = rgb.shape[:2]
    y0 = int(torch.randint(0, h - crop + 1, (), generator=g))
    x0 = int(torch.randint(0, w - crop + 1, (), generator=g))
    patch = np.ascontiguousarray(rgb[y0 : y0 + crop, x0 : x0 + crop])
    clean = torch.from_numpy((patch * 255 + 0.5).astype(np.uint8)).permute(2, 0, 1)[None].float() / 255
    scene = sample_scene(g)
    frames, _ = simulate_captures(clean, settings, scene)
    frames = (frames * 255 + 0.5).clamp(0, 255).to(torch.uint8).float() / 255  # what a camera would save
    lab = irp_labels(frames, clean, [shake_kernel_of(scene, s, settings) for s in settings], dehaze=scene.haze_beta > 0)
    return {
        "frames": (frames * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).numpy(),
        "clean": (clean[0] * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy(),
        "irp": lab.irp, "best_psnr": lab.best_psnr, "ssim": lab.ssim, "psnr": lab.psnr,
        "restorers": lab.restorers, "source": str(path),
    }  # fmt: skip


def make_bursts(
    files: Sequence[str | os.PathLike],
    scenes_per_image: int = 1,
    crop: int = 192,
    seed: int = 0,
    settings: Sequence[Capture] | None = None,
    workers: int | None = None,
    longest: int = 512,
    progress: bool = True,
) -> Bursts:
    """Simulate ``scenes_per_image`` bursts per clean file and label every frame (see :mod:`.labels`).

    Args:
        files: clean images.
        scenes_per_image: scenes (random crop + scene draw) per file.
        crop: scene size in pixels (square).
        seed: base seed.
        settings: the bracket (default: 8 settings from 1 to 64 ms).
        workers: processes (default: the CPU count).
        longest: clean images are first downscaled to this longest side.
        progress: show a progress bar.
    """
    settings = list(settings or exposure_bracket(8))
    jobs = [
        (Path(f), i, j, seed, crop, settings, longest) for i, f in enumerate(files) for j in range(scenes_per_image)
    ]
    if not jobs:
        raise ValueError("no clean images given")
    workers = workers or os.cpu_count() or 1
    results = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), desc="IRP bursts", unit="scene")
    if workers > 1:
        with ProcessPoolExecutor(workers) as ex:
            for r in ex.map(_one, jobs, chunksize=2):
                results.append(r)
                if bar is not None:
                    bar.update(1)
    else:
        for job in jobs:
            results.append(_one(job))
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    stack = {k: np.stack([r[k] for r in results]) for k in ("frames", "clean", "irp", "best_psnr", "ssim", "psnr")}
    ex_ms = np.array([[s.exposure_ms for s in settings]] * len(results))
    gain = np.array([[s.gain for s in settings]] * len(results))
    return Bursts(**stack, exposure_ms=ex_ms, gain=gain, source=[r["source"] for r in results],
                  restorers=results[0]["restorers"])  # fmt: skip
