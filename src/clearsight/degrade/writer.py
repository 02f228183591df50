"""Write synthetic degraded/clean pairs to disk (``clearsight synth``).

Layout of the output folder::

    degraded/NAME.png   the degraded image
    clean/NAME.png      its clean counterpart (same name)
    depth/NAME.png      16-bit depth in [0, 1] (0 near), when the preset uses depth
    transmission/NAME.png  16-bit transmission of the last haze stage, when there is one
    params/NAME.json    every drawn parameter (replay with clearsight.degrade.pipeline.Degrader.replay)

``NAME`` is ``{clean stem}_{k}`` for the ``k``-th draw of a clean image. Item ``(i, k)`` uses the
seed ``seed * 1_000_003 + i * 1_009 + k``, so outputs are deterministic and independent of each other:
an interrupted run resumes by skipping items whose JSON (written last) exists.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from .._errors import ClearsightError
from ..io import load_image, save_image, to_array
from ..runtime import one_thread
from .dataset import image_files
from .depth import estimate_depth_np, random_depth
from .pipeline import Degrader, params_to_json
from .scenes import SCENE_KINDS, render_scene

__all__ = ["SynthSummary", "synthesize", "synthesize_dynamic"]


@dataclass
class SynthSummary:
    written: int = 0
    skipped: int = 0
    failed: int = 0


def _resize_long(rgb: np.ndarray, size: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    s = size / max(h, w)
    if s >= 1:
        return rgb
    return cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def _atomic_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def _clean_files(clean: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """The image files under ``clean``; none is an error (a run that writes nothing is a mistake, not a result)."""
    files = image_files(clean)
    if not files:
        names = [clean] if isinstance(clean, (str, os.PathLike)) else list(clean)
        raise ClearsightError(f"{', '.join(map(str, names))}: no clean images found")
    return files


@one_thread()
def synthesize(
    preset: str,
    clean: Sequence[str | os.PathLike] | str | os.PathLike,
    out: str | os.PathLike,
    per_image: int = 1,
    seed: int = 0,
    size: int = 512,
    depth: str | None = None,
    progress: bool = True,
) -> SynthSummary:
    """Degrade every clean image ``per_image`` times with ``preset`` and write the pairs to ``out``.

    Args:
        preset: preset name or YAML pipeline file.
        clean: clean image files or folders.
        out: output folder.
        per_image: draws per clean image.
        seed: base seed.
        size: longest side of the outputs in pixels (larger images are downscaled).
        depth: ``geometry``, ``random`` or ``scene`` (procedural scenes textured with the clean images, at
            ``size x size``); default: the preset's.
        progress: show a progress bar.
    """
    deg = Degrader.from_config(preset)
    depth = depth or deg.config.depth
    files = _clean_files(clean)
    out = Path(out)
    for sub in ("degraded", "clean", "params") + (("depth", "transmission") if deg.needs_depth else ()):
        (out / sub).mkdir(parents=True, exist_ok=True)
    summary = SynthSummary()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(files) * per_image, desc=f"synth {deg.name}", unit="img")
    try:
        for i, f in enumerate(files):
            rgb_full: np.ndarray | None = None
            for k in range(per_image):
                name = f"{f.stem}_{k}"
                if (out / "params" / f"{name}.json").exists():
                    summary.skipped += 1
                    if bar is not None:
                        bar.update(1)
                    continue
                item_seed = seed * 1_000_003 + i * 1_009 + k
                gen = torch.Generator().manual_seed(item_seed)
                try:
                    if depth == "scene":
                        rng = np.random.default_rng(item_seed)
                        photos = [_resize_long(_load(p), 512) for p in (f, files[rng.integers(len(files))])]
                        rgb, dist = render_scene(SCENE_KINDS[rng.integers(len(SCENE_KINDS))], size, size, rng, photos)
                        finite = np.isfinite(dist)
                        ref = np.percentile(dist[finite], 98) if finite.any() else 1.0
                        d = np.where(finite, np.minimum(dist / max(ref, 1e-6), 1.0), 1.0).astype(np.float32)
                    else:
                        if rgb_full is None:
                            rgb_full = _resize_long(_load(f), size)
                        rgb = rgb_full
                        d = estimate_depth_np(rgb) if depth == "geometry" else None
                    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float()
                    if d is None:
                        dt = random_depth(1, x.shape[2], x.shape[3], gen)
                    else:
                        dt = torch.from_numpy(d)[None, None]
                    maps: dict[str, torch.Tensor] = {}
                    y, params = deg(x, depth=dt if deg.needs_depth else None, generator=gen, maps=maps)
                    save_image(out / "degraded" / f"{name}.png", to_array(y))
                    save_image(out / "clean" / f"{name}.png", to_array(x))
                    if deg.needs_depth:
                        dm = maps.get("depth", dt)
                        save_image(
                            out / "depth" / f"{name}.png", to_array(dm[:, :1].repeat(1, 3, 1, 1), 16), grayscale=True
                        )
                        if "transmission" in maps:
                            tm = maps["transmission"][:, :1].repeat(1, 3, 1, 1)
                            save_image(out / "transmission" / f"{name}.png", to_array(tm, 16), grayscale=True)
                    meta = {
                        "preset": deg.name,
                        "source": str(f),
                        "seed": item_seed,
                        "depth_source": depth,
                        "size": [int(x.shape[2]), int(x.shape[3])],
                        "params": params_to_json({k2: v[0] for k2, v in params.items() if k2 != "depth"}),
                    }
                    _atomic_json(out / "params" / f"{name}.json", meta)
                    summary.written += 1
                except Exception as e:  # noqa: BLE001 - one bad clean image must not stop the run
                    summary.failed += 1
                    msg = f"error: {f}: {' '.join(str(e).split())}"
                    (bar.write(msg) if bar is not None else print(msg))
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return summary


def _load(path: Path) -> np.ndarray:
    rec = load_image(path)
    scale = 255.0 if rec.rgb.dtype == np.uint8 else 65535.0
    return rec.rgb.astype(np.float32) / scale


@one_thread()
def synthesize_dynamic(
    clean: Sequence[str | os.PathLike] | str | os.PathLike,
    out: str | os.PathLike,
    per_image: int = 1,
    seed: int = 0,
    size: int = 512,
    frames: int = 8,
    shortest_ms: float = 1.0,
    longest_ms: float = 64.0,
    progress: bool = True,
) -> SynthSummary:
    """Write simulated capture bursts (``clearsight synth --preset dynamic``; :mod:`.capture`).

    Layout: ``degraded/NAME/fJJ_T.TTms.png`` (the ``frames`` captures of scene ``NAME`` from the shortest to the
    longest exposure), ``clean/NAME.png`` and ``params/NAME.json`` (the scene draw and, per frame, exposure,
    gain, blur path length and noise level). ``NAME`` is ``{clean stem}_{k}``; seeds as in :func:`synthesize`;
    re-running skips scenes whose JSON exists.
    """
    from .capture import exposure_bracket, sample_scene, simulate_captures

    settings = exposure_bracket(frames, shortest_ms, longest_ms)
    files = _clean_files(clean)
    out = Path(out)
    for sub in ("degraded", "clean", "params"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    summary = SynthSummary()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(files) * per_image, desc="synth dynamic", unit="scene")
    try:
        for i, f in enumerate(files):
            for k in range(per_image):
                name = f"{f.stem}_{k}"
                if (out / "params" / f"{name}.json").exists():
                    summary.skipped += 1
                else:
                    item_seed = seed * 1_000_003 + i * 1_009 + k
                    try:
                        rgb = _resize_long(_load(f), size)
                        x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float()
                        scene = sample_scene(torch.Generator().manual_seed(item_seed))
                        ys, info = simulate_captures(x, settings, scene)
                        (out / "degraded" / name).mkdir(exist_ok=True)
                        for j, (y, meta) in enumerate(zip(ys, info)):
                            meta["file"] = f"degraded/{name}/f{j:02d}_{meta['exposure_ms']:.2f}ms.png"
                            save_image(out / meta["file"], to_array(y[None]))
                        save_image(out / "clean" / f"{name}.png", to_array(x))
                        meta = {"preset": "dynamic", "source": str(f), "seed": item_seed,
                                "size": [int(x.shape[2]), int(x.shape[3])], "scene": scene.to_json(),
                                "frames": info}  # fmt: skip
                        _atomic_json(out / "params" / f"{name}.json", meta)
                        summary.written += 1
                    except Exception as e:  # noqa: BLE001 - one bad clean image must not stop the run
                        summary.failed += 1
                        msg = f"error: {f}: {' '.join(str(e).split())}"
                        (bar.write(msg) if bar is not None else print(msg))
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return summary
