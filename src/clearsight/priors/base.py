"""The protocol every training-free restorer follows, so the tiling engine can run any of them.

A restorer splits its work in two:

* :meth:`Restorer.prepare` looks at a small *preview* of the whole image (at most
  ``preview_size`` pixels on its long side) and returns the global state: airlight, colour-cast
  statistics, which method ``auto`` picked, a brightness gain. Global decisions therefore never
  depend on how the image is cut into tiles.
* :meth:`Restorer.process` restores a float32 ``(H, W, 3)`` array (the whole image or one tile with
  ``halo`` pixels of context on each side) given that state. Everything it does is local within
  ``halo`` pixels, so a tile processed with its halo equals the same region of the whole image.
  A state may also describe something placed in the image (``dcp-night``'s lamps and their glow);
  :func:`current_region` tells :meth:`Restorer.process` where its array lies in the whole image.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import torch

from .._checks import check_image

__all__ = [
    "Restorer",
    "RestorerState",
    "make_preview",
    "mean_luma",
    "PREVIEW_SIZE",
    "DARK_LUMA",
    "tile_region",
    "current_region",
]

#: Long side, in pixels, of the preview on which global quantities are estimated.
PREVIEW_SIZE = 640


#: Mean luma below which a photo counts as dark (underexposed): ``auto`` brightens only such photos, and UDAIR's gate
#: never holds them back. 23 of the 24 ``lowlight/lol_train`` inputs are under it; a dim but exposed photo
#: brightened loses fidelity (PolyU's dim crops lost 5-9 dB).
DARK_LUMA = 0.15


_REGION: ContextVar[tuple[int, int, int, int] | None] = ContextVar("clearsight_tile_region", default=None)


@contextmanager
def tile_region(y0: int, x0: int, height: int, width: int) -> Iterator[None]:
    """Within this block, :meth:`Restorer.process` is given the part of a ``height x width`` image whose top-left
    pixel is ``(y0, x0)`` (the tiling engine sets it around each tile)."""
    token = _REGION.set((int(y0), int(x0), int(height), int(width)))
    try:
        yield
    finally:
        _REGION.reset(token)


def current_region(shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """``(y0, x0, height, width)``: where an array of ``shape`` lies in the whole image; the whole image itself
    outside a :func:`tile_region` block."""
    region = _REGION.get()
    return region if region is not None else (0, 0, int(shape[0]), int(shape[1]))


def mean_luma(x: np.ndarray) -> float:
    """Mean Rec. 601 luma of a float ``(H, W, 3)`` RGB array in [0, 1]."""
    return float((x @ np.array([0.299, 0.587, 0.114], np.float32)).mean())


def make_preview(x: np.ndarray, size: int = PREVIEW_SIZE) -> np.ndarray:
    """Downscale an ``(H, W, 3)`` array (uint8, uint16 or float) to at most ``size`` px; float32 [0, 1]."""
    h, w = x.shape[:2]
    scale = size / max(h, w)
    if scale < 1.0:
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        x = cv2.resize(x, (nw, nh), interpolation=cv2.INTER_AREA)
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0
    if x.dtype == np.uint16:
        return x.astype(np.float32) / 65535.0
    return np.ascontiguousarray(x, dtype=np.float32)


@dataclass
class RestorerState:
    """Global state computed once per image by :meth:`Restorer.prepare`.

    Attributes:
        method: the name of the method that will run (``auto`` reports its pick here).
        reason: one line saying why (for ``auto``) or what was estimated.
        params: method-specific values (airlight, gains, ...).
        inner: the state of a wrapped restorer, if any.
    """

    method: str
    reason: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    inner: RestorerState | None = None


class Restorer:
    """Base class of the classical restorers.

    Subclasses set :attr:`name` and :attr:`description` and implement :meth:`prepare`,
    :meth:`process` and :attr:`halo`.
    """

    name: str = "restorer"
    description: str = ""

    #: Whether the tiling engine may cut an image into tiles smaller than the requested size, as equal as their count
    #: allows (:func:`clearsight.infer.balanced_tile`). True where a tile with its halo gives the whole image's result;
    #: a network with attention over the whole tile sets it False and keeps tiles of the full size.
    balanced_tiles: bool = True

    @property
    def halo(self) -> int:
        """Context, in pixels, that :meth:`process` needs around a tile for an exact result."""
        return 0

    def prepare(self, preview: np.ndarray) -> RestorerState:  # pragma: no cover - abstract
        raise NotImplementedError

    def prepare_image(self, arr: np.ndarray) -> RestorerState:
        """The global state of the whole image ``arr`` (any dtype :func:`make_preview` takes): by default
        :meth:`prepare` on its preview; restorers that also need full-resolution statistics (``auto``'s noise
        and blur measures) override it."""
        return self.prepare(make_preview(arr))

    def process(self, x: np.ndarray, state: RestorerState) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    # convenience -------------------------------------------------------------------------------
    def restore_np(self, x: np.ndarray) -> tuple[np.ndarray, RestorerState]:
        """Restore one whole float32 ``(H, W, 3)`` image; returns the result and the state used."""
        state = self.prepare_image(x)
        return self.process(np.ascontiguousarray(x, dtype=np.float32), state), state

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        """Restore a batch :math:`(B, 3, H, W)` in [0, 1]; returns the same shape in [0, 1]."""
        check_image(img)
        outs = []
        for im in img:
            arr = np.ascontiguousarray(im.detach().permute(1, 2, 0).float().cpu().numpy())
            out, _ = self.restore_np(arr)
            outs.append(torch.from_numpy(out).permute(2, 0, 1))
        return torch.stack(outs).to(img.device, img.dtype)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
