"""The inference engine: tiled restoration with overlap blending, and batch restoration of files.

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

import glob
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ._checks import check_image
from ._errors import ClearsightError, ImageReadError, ImageWriteError
from .io import WRITABLE_FORMATS, extension_for_format, load_image, save_image
from .models import create_model
from .priors.base import Restorer, RestorerState, make_preview
from .video import VIDEO_EXTENSIONS, is_video, restore_video, video_output_suffix

__all__ = [
    "AUTO_TILE_PIXELS",
    "DEFAULT_TILE",
    "IMAGE_EXTENSIONS",
    "tile_starts",
    "restore_array",
    "restore",
    "FileResult",
    "Summary",
    "collect_inputs",
    "restore_files",
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
            :data:`AUTO_TILE_PIXELS`; ``0`` never tiles.
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
        state = restorer.prepare(make_preview(arr))
    if tile is None:
        tile = DEFAULT_TILE if h * w > AUTO_TILE_PIXELS else 0
    if tile and tile <= 2 * overlap:
        raise ValueError(f"tile ({tile}) must be larger than twice the overlap ({overlap})")
    if not tile or (h <= tile and w <= tile):
        out = restorer.process(_to_float(arr, scale), state)
        if on_tile:
            on_tile(1, 1)
        return _quantize(out, arr.dtype, scale), state

    halo = restorer.halo
    ys, xs = tile_starts(h, tile, overlap), tile_starts(w, tile, overlap)
    wys = [_ramp(y, min(tile, h - y), h, overlap) for y in ys]
    wxs = [_ramp(x, min(tile, w - x), w, overlap) for x in xs]
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
        y1 = min(y0 + tile, h)
        band = np.zeros((y1 - p0, w, 3), np.float32)
        band[: pending.shape[0]] = pending
        ey0, ey1 = max(0, y0 - halo), min(h, y1 + halo)
        for j, x0 in enumerate(xs):
            x1 = min(x0 + tile, w)
            ex0, ex1 = max(0, x0 - halo), min(w, x1 + halo)
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


# --------------------------------------------------------------------------------------------- #
# batches of files
# --------------------------------------------------------------------------------------------- #
@dataclass
class FileResult:
    """What happened to one input file.

    Attributes:
        source: the input path.
        output: where the result was (or would have been) written.
        status: ``done``, ``skipped`` or ``failed``.
        message: reason for a skip or a failure, or what the restorer did.
        method: the restorer that ran (``auto`` reports its pick).
        seconds: wall time spent on the file.
    """

    source: str
    output: str | None
    status: str
    message: str = ""
    method: str = ""
    seconds: float = 0.0


@dataclass
class Summary:
    """The outcome of :func:`restore_files`."""

    results: list[FileResult] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def ok(self) -> bool:
        """No file failed."""
        return self.count("failed") == 0


def _has_magic(s: str) -> bool:
    return any(c in s for c in "*?[")


def collect_inputs(
    inputs: Sequence[str | os.PathLike], recursive: bool = False
) -> tuple[list[tuple[Path, Path]], list[FileResult]]:
    """Expand files, folders and glob patterns into ``(source, relative output path)`` pairs.

    Folders contribute the files with an image or video extension (recursively with ``recursive=True``);
    their relative layout is kept under the output folder. Files named explicitly are always tried,
    whatever their extension. Inputs that match nothing become failures.
    """
    pairs: list[tuple[Path, Path]] = []
    errors: list[FileResult] = []
    seen: set[str] = set()

    def add(src: Path, rel: Path) -> None:
        key = os.path.realpath(src)
        if key not in seen:
            seen.add(key)
            pairs.append((src, rel))

    for item in inputs:
        p = Path(item)
        if p.is_dir():
            it: Iterable[Path] = p.rglob("*") if recursive else p.iterdir()
            found = sorted(
                f
                for f in it
                if f.is_file()
                and (f.suffix.lower() in IMAGE_EXTENSIONS or f.suffix.lower() in VIDEO_EXTENSIONS)
                and not f.name.startswith(".")
            )
            if not found:
                errors.append(FileResult(str(p), None, "failed", f"{p}: folder holds no image or video files"))
            for f in found:
                add(f, f.relative_to(p))
        elif p.exists() or p.is_symlink():
            add(p, Path(p.name))
        elif _has_magic(str(item)):
            matches = sorted(Path(m) for m in glob.glob(str(item), recursive=True))
            files = [m for m in matches if m.is_file()]
            if not files:
                errors.append(FileResult(str(item), None, "failed", f"{item}: no files match this pattern"))
            for f in files:
                add(f, Path(f.name))
        else:
            errors.append(FileResult(str(p), None, "failed", f"{p}: no such file or folder"))
    return pairs, errors


def _sniff_format(path: Path) -> str | None:
    from PIL import Image

    from .io import _PIL_TO_FORMAT

    try:
        with Image.open(path) as im:
            return _PIL_TO_FORMAT.get(im.format or "", "png")
    except Exception:  # noqa: BLE001 - the real read reports the problem
        return None


def restore_files(
    inputs: Sequence[str | os.PathLike],
    outdir: str | os.PathLike,
    model: str | Restorer = "auto",
    tile: int | None = None,
    overlap: int = 32,
    fmt: str = "same",
    overwrite: bool = False,
    recursive: bool = False,
    quality: int = 95,
    progress: bool = True,
    on_result: Callable[[FileResult], None] | None = None,
    smooth: float = 0.9,
) -> Summary:
    """Restore files, folders and glob patterns into ``outdir``.

    Each file is isolated: a failure is recorded and the next file goes on. Existing outputs are
    skipped unless ``overwrite`` (so an interrupted run resumes where it stopped), and a result is never
    written onto one of the input files.

    Args:
        inputs: files, folders or glob patterns.
        outdir: output folder (created if missing).
        model: restorer name (see :func:`clearsight.list_models`) or a restorer object.
        tile: tile size; ``None`` for automatic, ``0`` to never tile.
        overlap: tile overlap in pixels.
        fmt: ``same`` (the input's format; GIF and other read-only formats become PNG) or one of
            ``png``, ``jpg``, ``tif``, ``bmp``, ``webp``.
        overwrite: replace existing outputs.
        recursive: descend into sub-folders of folder inputs.
        quality: JPEG/WebP quality.
        progress: show a progress bar on stderr.
        on_result: called with each :class:`FileResult` as soon as it is known.
        smooth: videos (:mod:`clearsight.video`): weight of the past in the frame-to-frame average of the
            restorer's global parameters; 0 restores each frame on its own.

    Video files (:data:`~clearsight.video.VIDEO_EXTENSIONS`) are restored frame by frame into a video of the
    same name (``fmt`` applies to images only; see :func:`~clearsight.video.restore_video`).
    """
    if fmt != "same" and fmt not in WRITABLE_FORMATS:
        raise ClearsightError(f"unknown output format {fmt!r}; choose same, {', '.join(WRITABLE_FORMATS)}")
    restorer = create_model(model) if isinstance(model, str) else model
    model = restorer.name
    outdir = Path(outdir)
    summary = Summary()

    def record(r: FileResult) -> None:
        summary.results.append(r)
        if on_result:
            on_result(r)

    pairs, errors = collect_inputs(inputs, recursive)
    # an output folder inside an input folder must not feed earlier results back in on a re-run
    out_real = os.path.realpath(outdir)
    explicit = {os.path.realpath(p) for p in inputs if Path(p).is_file()}
    pairs = [
        (s, r)
        for s, r in pairs
        if os.path.realpath(s) in explicit or not os.path.realpath(s).startswith(out_real + os.sep)
    ]
    for e in errors:
        record(e)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        for src, _ in pairs:
            record(
                FileResult(str(src), None, "failed", f"{src}: cannot create output folder {outdir} ({e.strerror or e})")
            )
        return summary

    input_keys = {os.path.realpath(s) for s, _ in pairs}
    claimed: set[str] = set()
    bar = None
    if progress and pairs:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(pairs), unit="img", desc=f"restore ({model})", dynamic_ncols=True)
    try:
        for src, rel in pairs:
            t0 = time.perf_counter()
            out_fmt = fmt
            video = is_video(src)
            if video:
                dst = outdir / rel.with_suffix(video_output_suffix(src))
            else:
                if fmt == "same":
                    out_fmt = _sniff_format(src) or "png"
                    if out_fmt not in WRITABLE_FORMATS:
                        out_fmt = "png"
                dst = outdir / rel.with_suffix(extension_for_format(out_fmt))
            if os.path.realpath(dst) in claimed:  # a.png and a.jpg would both become a.png
                dst = dst.with_name(f"{rel.stem}_{rel.suffix.lstrip('.').lower()}{dst.suffix}")
            key = os.path.realpath(dst)
            claimed.add(key)
            if key in input_keys:
                record(
                    FileResult(
                        str(src), str(dst), "failed", f"{src}: refusing to write the result onto input file {dst}"
                    )
                )
            elif dst.exists() and not overwrite:
                record(FileResult(str(src), str(dst), "skipped", f"{dst} exists (use --overwrite to replace it)"))
            elif video:
                record(_restore_video_file(src, dst, restorer, tile, overlap, smooth, quality, t0, bar is not None))
            else:
                record(_restore_one(src, dst, restorer, tile, overlap, out_fmt, quality, t0, bar is not None))
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return summary


class _TileBar:
    """A second progress bar for the tiles of one large image, created only when there are several."""

    def __init__(self, name: str) -> None:
        self.name, self.bar = name, None

    def __call__(self, done: int, total: int) -> None:
        if total <= 1:
            return
        if self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, unit="tile", desc=self.name[:30], position=1, leave=False, dynamic_ncols=True)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _restore_video_file(
    src: Path,
    dst: Path,
    restorer: Restorer,
    tile: int | None,
    overlap: int,
    smooth: float,
    quality: int,
    t0: float,
    frame_progress: bool = False,
) -> FileResult:
    try:
        info = restore_video(src, dst, restorer, tile, overlap, smooth, quality, progress=frame_progress)
    except ClearsightError as e:
        msg = str(e) if str(src) in str(e) else f"{src}: {e}"
        return FileResult(str(src), str(dst), "failed", msg, seconds=time.perf_counter() - t0)
    except OSError as e:
        return FileResult(str(src), str(dst), "failed", f"{src}: {e.strerror or e}", seconds=time.perf_counter() - t0)
    except MemoryError:
        msg = f"{src}: out of memory; try a smaller --tile"
        return FileResult(str(src), str(dst), "failed", msg, seconds=time.perf_counter() - t0)
    msg = f"{info['frames']} frames at {info['fps']:.3g} fps"
    return FileResult(str(src), str(dst), "done", msg, info["method"], time.perf_counter() - t0)


def _restore_one(
    src: Path,
    dst: Path,
    restorer: Restorer,
    tile: int | None,
    overlap: int,
    out_fmt: str,
    quality: int,
    t0: float,
    tile_progress: bool = False,
) -> FileResult:
    tiles = _TileBar(src.name) if tile_progress else None
    try:
        rec = load_image(src)
        out, state = restore_array(rec.rgb, restorer, tile, overlap, on_tile=tiles)
        dst.parent.mkdir(parents=True, exist_ok=True)
        save_image(
            dst,
            out,
            rec.alpha,
            format=out_fmt,
            grayscale=rec.grayscale,
            quality=quality,
            icc_profile=rec.icc_profile,
            exif=rec.exif,
        )
    except ImageWriteError as e:
        return FileResult(str(src), str(dst), "failed", f"{src}: {e}", seconds=time.perf_counter() - t0)
    except ImageReadError as e:
        return FileResult(str(src), str(dst), "failed", str(e), seconds=time.perf_counter() - t0)
    except ClearsightError as e:
        return FileResult(str(src), str(dst), "failed", f"{src}: {e}", seconds=time.perf_counter() - t0)
    except OSError as e:  # e.g. mkdir of a sub-folder in an unwritable output folder
        return FileResult(str(src), str(dst), "failed", f"{src}: {e.strerror or e}", seconds=time.perf_counter() - t0)
    except MemoryError:
        return FileResult(
            str(src),
            str(dst),
            "failed",
            f"{src}: out of memory; try a smaller --tile",
            seconds=time.perf_counter() - t0,
        )
    finally:
        if tiles is not None:
            tiles.close()
    name = restorer.name if state.method == restorer.name else f"{restorer.name}->{state.method}"
    return FileResult(str(src), str(dst), "done", state.reason, name, time.perf_counter() - t0)
