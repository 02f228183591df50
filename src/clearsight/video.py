"""Restore video files frame by frame, without flicker.

Traffic, surveillance, drone and dashcam footage is video. Restoring each frame on its own makes the global
estimates of a restorer (the airlight of DCP and of the dehazing networks, the method that ``auto`` picks)
jump from frame to frame, and the result flickers. :func:`restore_video` therefore

* lets ``auto`` pick its method on the first frame and keeps it for the whole clip;
* carries every numeric global parameter of the restorer's state from frame to frame with an exponential
  moving average (``smooth``, the weight of the past; 0 restores each frame on its own), ``dcp-night``'s lamps
  too: matched by position, a lamp found in one frame and missed in the next has its glow faded, not switched;
* streams: one frame in memory at a time, decoded and encoded with OpenCV (whose wheel carries FFmpeg), written
  to a hidden partial file that replaces the output only when the clip is complete.

Frame rate and size are kept. Audio is dropped (OpenCV does not carry it). The output codec is MPEG-4 part 2
(``mp4v``) in ``.mp4``, ``.m4v``, ``.mov`` and ``.mkv`` containers and Motion JPEG in ``.avi``; other inputs
(``.webm``, ``.mpg``) are written as ``.mp4``.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ._errors import ClearsightError
from .infer import restore_array
from .priors.base import Restorer, RestorerState
from .priors.night import blend_lamps, is_lamps

__all__ = ["VIDEO_EXTENSIONS", "is_video", "video_output_suffix", "iter_frames", "smooth_state", "restore_video"]

#: Extensions treated as videos by ``clearsight restore`` and ``clearsight select``.
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"})
_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "mp4v", ".avi": "MJPG"}


def is_video(path: str | os.PathLike) -> bool:
    """Whether ``path`` has a video extension."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def video_output_suffix(path: str | os.PathLike) -> str:
    """The extension the restored video of ``path`` gets: the same where OpenCV can write it, else ``.mp4``."""
    suffix = Path(path).suffix.lower()
    return suffix if suffix in _FOURCC else ".mp4"


def _blend(old, new, weight: float):
    """EMA of a numeric value (number, array, list of numbers); anything else, or a change of shape: ``new``."""
    number = (int, float, np.floating, np.integer)
    if isinstance(new, bool) or isinstance(old, bool):
        return new
    if is_lamps(new) and is_lamps(old):  # dcp-night's lamps: matched by position, their glow fades in and out
        return blend_lamps(old, new, weight)
    if isinstance(new, number) and isinstance(old, number):
        return weight * float(old) + (1 - weight) * float(new)
    if isinstance(new, (np.ndarray, list, tuple)):
        try:
            a, b = np.asarray(old, dtype=np.float64), np.asarray(new, dtype=np.float64)
        except (TypeError, ValueError):
            return new
        if a.shape != b.shape:
            return new
        mixed = weight * a + (1 - weight) * b
        if isinstance(new, np.ndarray):
            return mixed.astype(new.dtype)
        return tuple(mixed.tolist()) if isinstance(new, tuple) else mixed.tolist()
    return new


def smooth_state(prev: RestorerState | None, new: RestorerState, weight: float) -> RestorerState:
    """``new`` with its numeric parameters (and those of its inner state) averaged with ``prev``'s.

    ``weight`` is the weight of ``prev`` in [0, 1): 0 returns ``new``. States of different methods are not
    mixed (``new`` is returned).

    Example:
        >>> a = RestorerState("dcp", params={"airlight": np.array([0.8, 0.8, 0.8])})
        >>> b = RestorerState("dcp", params={"airlight": np.array([1.0, 1.0, 1.0])})
        >>> smooth_state(a, b, 0.75).params["airlight"].round(2).tolist()
        [0.85, 0.85, 0.85]
    """
    if not 0 <= weight < 1:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
    if prev is None or weight == 0 or prev.method != new.method:
        return new
    params = {k: _blend(prev.params[k], v, weight) if k in prev.params else v for k, v in new.params.items()}
    inner = new.inner
    if inner is not None and prev.inner is not None:
        inner = smooth_state(prev.inner, inner, weight)
    return dataclasses.replace(new, params=params, inner=inner)


def _open(path: Path):
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ClearsightError(f"{path}: cannot open this video (unsupported codec or not a video)")
    return cap


def iter_frames(path: str | os.PathLike, every: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """``(index, RGB uint8 frame)`` for every ``every``-th frame of a video; one frame in memory at a time.

    Raises :class:`~clearsight.ClearsightError` when the file cannot be opened or yields no frame.
    """
    cap = _open(Path(path))
    i = 0
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            if i % every == 0:
                yield i, np.ascontiguousarray(bgr[..., ::-1])
            i += 1
    finally:
        cap.release()
    if i == 0:
        raise ClearsightError(f"{path}: no frames could be decoded")


def restore_video(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    restorer: Restorer,
    tile: int | None = None,
    overlap: int = 32,
    smooth: float = 0.9,
    quality: int = 95,
    progress: bool = False,
) -> dict:
    """Restore the video ``src`` into ``dst`` (see the module notes); returns frames, fps, seconds and method.

    ``dst`` must not exist as ``src``; its extension picks the container (:func:`video_output_suffix`).
    Raises :class:`~clearsight.ClearsightError` for a file that cannot be opened, has no frames, or cannot be
    written.
    """
    import cv2

    src, dst = Path(src), Path(dst)
    if not 0 <= smooth < 1:
        raise ClearsightError(f"--smooth must be in [0, 1), got {smooth}")
    if os.path.realpath(src) == os.path.realpath(dst):
        raise ClearsightError(f"{src}: refusing to write the result onto the input")
    fourcc = _FOURCC.get(dst.suffix.lower())
    if fourcc is None:
        raise ClearsightError(f"{dst}: cannot write {dst.suffix} videos; use {', '.join(sorted(_FOURCC))}")
    cap = _open(src)
    fps, total = cap.get(cv2.CAP_PROP_FPS) or 0.0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    cap.release()
    fps = fps if 0 < fps < 1000 else 25.0
    dst.parent.mkdir(parents=True, exist_ok=True)
    partial = dst.with_name(f".{dst.stem}.partial{dst.suffix}")
    writer, state, frames, method, t0 = None, None, 0, restorer.name, time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total or None, unit="frame", desc=src.name[:30], position=1, leave=False, dynamic_ncols=True)
    try:
        for _, rgb in iter_frames(src):
            new = restorer.prepare_image(rgb)
            if frames == 0 and hasattr(restorer, "freeze"):
                # auto: keep the first frame's pick for the whole clip (switching methods would flicker)
                method = f"{restorer.name}->{new.method}"
                restorer, new = restorer.freeze(new)
            state = smooth_state(state, new, smooth)
            out, _ = restore_array(rgb, restorer, tile, overlap, state=state)
            if writer is None:
                h, w = out.shape[:2]
                writer = cv2.VideoWriter(str(partial), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
                if not writer.isOpened():
                    raise ClearsightError(f"{dst}: cannot write this video (no {fourcc} encoder)")
                writer.set(cv2.VIDEOWRITER_PROP_QUALITY, quality)
            writer.write(np.ascontiguousarray(out[..., ::-1]))
            frames += 1
            if bar is not None:
                bar.update(1)
    except BaseException:
        if writer is not None:
            writer.release()
        partial.unlink(missing_ok=True)
        raise
    finally:
        if bar is not None:
            bar.close()
    writer.release()
    os.replace(partial, dst)
    return {"frames": frames, "fps": fps, "seconds": time.perf_counter() - t0, "method": method}
