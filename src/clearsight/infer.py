"""The inference engine: tiled restoration with overlap blending (batches of files: :mod:`clearsight.batch`).

Tiling keeps memory flat in image size. The image is cut into ``tile x tile`` tiles that overlap by at
least ``overlap`` pixels; each tile is processed with ``restorer.halo`` extra pixels of context on every
side (cropped off afterwards), and overlapping tiles are blended with linear ramps. Only one row of
tiles is held in floating point at a time, so restoring a 10000 x 8000 photo needs the 8-bit input and
output arrays plus one band of ``tile`` rows.

Global quantities (airlight, which method ``auto`` picks, brightness gains) are estimated once on a
preview of the whole image, so a tiled result equals the untiled one up to float rounding whenever the
halo covers the restorer's receptive field (it does for every classical restorer).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from ._checks import check_image
from .models import create_model
from .priors.base import Restorer, RestorerState, tile_region

__all__ = [
    "AUTO_TILE_PIXELS",
    "DEFAULT_TILE",
    "IMAGE_EXTENSIONS",
    "tile_starts",
    "restore_array",
    "restore",
]

#: Images with more pixels than this are tiled when ``tile=None``.
AUTO_TILE_PIXELS = 12_000_000
#: Tile size used when tiling is automatic.
DEFAULT_TILE = 1024
#: Extensions picked up when scanning a folder (files named explicitly are always tried).
IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".tif", ".tiff", ".bmp", ".webp", ".gif", ".ppm", ".pgm", ".pnm"}
)


# --------------------------------------------------------------------------------------------- #
# tiling
# --------------------------------------------------------------------------------------------- #
def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``[0, length)``, neighbours overlapping >= ``overlap``.

    Tiles are spread evenly, so the last one ends exactly at ``length``.
    """
    if length <= tile:
        return [0]
    n = math.ceil((length - overlap) / (tile - overlap))
    n = max(n, 2)
    return [int(round(v)) for v in np.linspace(0, length - tile, n)]


def balanced_tile(length: int, tile: int, overlap: int) -> int:
    """The size of the tiles that cover ``[0, length)`` with as few tiles of at most ``tile`` as
    :func:`tile_starts` needs, made as equal as possible: a 1080-px side in 1024-px tiles is two 556-px tiles,
    not two 1024-px tiles that overlap by 968 (which nearly doubled a network's work on a 1080p image)."""
    if length <= tile:
        return length
    n = max(2, math.ceil((length - overlap) / (tile - overlap)))
    return min(tile, math.ceil((length + (n - 1) * overlap) / n))


def _ramp(start: int, size: int, length: int, overlap: int) -> np.ndarray:
    p = np.arange(size, dtype=np.float32)
    w = np.ones(size, np.float32)
    if start > 0:
        w = np.minimum(w, (p + 1) / (overlap + 1))
    if start + size < length:
        w = np.minimum(w, (size - p) / (overlap + 1))
    return w


def _scale_of(dtype: np.dtype) -> float:
    if dtype == np.uint8:
        return 255.0
    if dtype == np.uint16:
        return 65535.0
    return 1.0


def _to_float(a: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return np.ascontiguousarray(a, dtype=np.float32)
    return a.astype(np.float32) * np.float32(1.0 / scale)


def _quantize(x: np.ndarray, dtype: np.dtype, scale: float) -> np.ndarray:
    if scale == 1.0:
        return np.clip(x, 0.0, 1.0).astype(dtype, copy=False)
    return np.clip(x * scale + 0.5, 0, scale).astype(dtype)


def restore_array(
    arr: np.ndarray,
    restorer: Restorer,
    tile: int | None = None,
    overlap: int = 32,
    on_tile: Callable[[int, int], None] | None = None,
    state: RestorerState | None = None,
) -> tuple[np.ndarray, RestorerState]:
    """Restore one image held as an ``(H, W, 3)`` array, tiling it if needed.

    Args:
        arr: ``uint8``, ``uint16`` (full range) or float32 in [0, 1] pixels, RGB.
        restorer: any :class:`~clearsight.priors.base.Restorer`.
        tile: tile size in pixels; ``None`` tiles with :data:`DEFAULT_TILE` only images larger than
            :data:`AUTO_TILE_PIXELS` (or the restorer's ``auto_tile_pixels``, e.g. a network at full resolution);
            ``0`` never tiles.
        overlap: minimum overlap between neighbouring tiles, blended with linear ramps.
        on_tile: called as ``on_tile(done, total)`` after each tile (for progress bars).
        state: the restorer's global state to use (e.g. smoothed over the frames of a video); ``None``:
            ``restorer.prepare`` on a preview of ``arr``.

    Returns:
        the restored array (same dtype and shape as ``arr``) and the state the restorer used.
    """
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) array, got shape {arr.shape}")
    h, w = arr.shape[:2]
    scale = _scale_of(arr.dtype)
    if state is None:
        state = restorer.prepare_image(arr)
    if tile is None:
        limit = getattr(restorer, "auto_tile_pixels", None) or AUTO_TILE_PIXELS
        tile = DEFAULT_TILE if h * w > limit else 0
    if tile and tile <= 2 * overlap:
        raise ValueError(f"tile ({tile}) must be larger than twice the overlap ({overlap})")
    if not tile or (h <= tile and w <= tile):
        out = restorer.process(_to_float(arr, scale), state)
        if on_tile:
            on_tile(1, 1)
        return _quantize(out, arr.dtype, scale), state

    halo = restorer.halo
    th, tw = tile, tile
    if getattr(restorer, "balanced_tiles", True):
        th, tw = balanced_tile(h, tile, overlap), balanced_tile(w, tile, overlap)
    ys, xs = tile_starts(h, th, overlap), tile_starts(w, tw, overlap)
    wys = [_ramp(y, min(th, h - y), h, overlap) for y in ys]
    wxs = [_ramp(x, min(tw, w - x), w, overlap) for x in xs]
    norm_y = np.zeros(h, np.float32)
    norm_x = np.zeros(w, np.float32)
    for y, wy in zip(ys, wys):
        norm_y[y : y + len(wy)] += wy
    for x, wx in zip(xs, wxs):
        norm_x[x : x + len(wx)] += wx
    inv_x = (1.0 / norm_x)[None, :, None]

    out = np.empty_like(arr)
    total, done = len(ys) * len(xs), 0
    p0 = 0
    pending = np.zeros((0, w, 3), np.float32)
    for i, y0 in enumerate(ys):
        y1 = min(y0 + th, h)
        band = np.zeros((y1 - p0, w, 3), np.float32)
        band[: pending.shape[0]] = pending
        ey0, ey1 = max(0, y0 - halo), min(h, y1 + halo)
        for j, x0 in enumerate(xs):
            x1 = min(x0 + tw, w)
            ex0, ex1 = max(0, x0 - halo), min(w, x1 + halo)
            with tile_region(ey0, ex0, h, w):
                res = restorer.process(_to_float(arr[ey0:ey1, ex0:ex1], scale), state)
            core = res[y0 - ey0 : y1 - ey0, x0 - ex0 : x1 - ex0]
            band[y0 - p0 : y1 - p0, x0:x1] += core * wys[i][:, None, None] * wxs[j][None, :, None]
            done += 1
            if on_tile:
                on_tile(done, total)
        nxt = ys[i + 1] if i + 1 < len(ys) else h
        rows = band[: nxt - p0] * (1.0 / norm_y[p0:nxt])[:, None, None] * inv_x
        out[p0:nxt] = _quantize(rows, arr.dtype, scale)
        pending = band[nxt - p0 :]
        p0 = nxt
    return out, state


def restore(
    img: torch.Tensor,
    model: str | Restorer = "auto",
    tile: int | None = None,
    overlap: int = 32,
) -> torch.Tensor:
    """Restore a batch of images with a registered model (or a restorer object).

    Args:
        img: :math:`(B, 3, H, W)` in [0, 1].
        model: a name from :func:`clearsight.list_models` or a restorer.
        tile: tile size (see :func:`restore_array`).
        overlap: tile overlap in pixels.

    Returns:
        :math:`(B, 3, H, W)` in [0, 1].

    Example:
        >>> import clearsight as cs, torch
        >>> cs.restore(torch.rand(1, 3, 40, 40), model="dcp").shape
        torch.Size([1, 3, 40, 40])
    """
    check_image(img)
    restorer = create_model(model) if isinstance(model, str) else model
    outs = []
    for im in img:
        arr = np.ascontiguousarray(im.detach().permute(1, 2, 0).float().cpu().numpy())
        out, _ = restore_array(arr, restorer, tile, overlap)
        outs.append(torch.from_numpy(out).permute(2, 0, 1))
    return torch.stack(outs).to(img.device, img.dtype)
