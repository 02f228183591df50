"""Batch restoration of files: images and videos, files, folders and glob patterns, into an output folder.

This is the layer above :mod:`clearsight.infer` (tiled restoration of one image) and :mod:`clearsight.video`
(one video, frame by frame): it expands the inputs, decides per file which of the two runs, isolates failures,
skips finished outputs (so an interrupted batch resumes), never writes onto an input, and reports progress.
"""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ._errors import ClearsightError, ImageReadError, ImageWriteError
from .infer import IMAGE_EXTENSIONS, restore_array
from .io import WRITABLE_FORMATS, extension_for_format, hidden_name, load_image, save_image, temp_prefix
from .models import create_model
from .priors.base import Restorer
from .runtime import is_out_of_memory, release_memory
from .video import VIDEO_EXTENSIONS, is_video, restore_video, video_output_suffix

__all__ = ["FileResult", "Summary", "collect_inputs", "restore_files"]


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

    from .io import _PIL_TO_FORMAT, _TIFF_MAGIC

    try:
        with Image.open(path) as im:
            return _PIL_TO_FORMAT.get(im.format or "", "png")
    except Exception:  # noqa: BLE001 - the real read reports the problem
        pass
    try:  # Pillow opens no floating-point TIFF with several channels; the reader does
        with open(path, "rb") as f:
            return "tif" if f.read(4) in _TIFF_MAGIC else None
    except OSError:
        return None


def same_format(path: Path) -> str:
    """The format a result of ``path`` is written in with ``fmt="same"``: the input's content format, or PNG
    for formats clearsight reads but does not write (GIF, ...)."""
    fmt = _sniff_format(path) or "png"
    return fmt if fmt in WRITABLE_FORMATS else "png"


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
    client=None,
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

    ``client``: a ``dask.distributed.Client``; each file (a video too) becomes one task on its cluster, the
    restorer is sent to each worker once, and the outputs are the same bytes as in a run without it (the
    workers must see the input and output folders at the same paths: a shared file system). Skipping, locks,
    atomic writes and failure reports work as without it; ``on_result`` sees the files as they complete and
    the summary lists them in input order. Needs the ``dask`` extra (``pip install 'clearsight[dask]'``).
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

    if not outdir.exists() and outdir.suffix.lower() in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS:
        # ``-o out.png`` would create a folder named out.png: the restored file keeps its own name inside it
        raise ClearsightError(
            f"{outdir}: the output is a folder, and this looks like a file name; give a folder (e.g. "
            f"{outdir.with_suffix('')}/): each restored file keeps its input's name there"
        )
    out_real = os.path.realpath(outdir)
    folders = [os.path.realpath(p) for p in inputs if Path(p).is_dir()]
    if out_real in folders:  # every result would land beside (or onto) its input; a re-run would take them for inputs
        item = next(p for p in inputs if Path(p).is_dir() and os.path.realpath(p) == out_real)
        raise ClearsightError(
            f"{outdir}: the output folder is the input folder {item}; choose another output folder "
            f"(a sub-folder such as {Path(item) / 'restored'} works)"
        )
    pairs, errors = collect_inputs(inputs, recursive)

    # an output folder inside an input folder must not feed earlier results back in on a re-run: files found
    # by scanning a folder are left out when they lie in the output folder; files named or matched by a
    # pattern are always restored
    def scanned(src: Path) -> bool:
        real = os.path.realpath(src)
        return any(real.startswith(f + os.sep) for f in folders)

    pairs = [(s, r) for s, r in pairs if not (scanned(s) and os.path.realpath(s).startswith(out_real + os.sep))]
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
    jobs: list[_Job] = []
    for src, rel in pairs:
        out_fmt = fmt
        video = is_video(src)
        if video:
            dst = outdir / rel.with_suffix(video_output_suffix(src))
        else:
            if fmt == "same":
                out_fmt = same_format(src)
            dst = outdir / rel.with_suffix(extension_for_format(out_fmt))
        if os.path.realpath(dst) in claimed:  # a.png and a.jpg would both become a.png
            dst = dst.with_name(f"{rel.stem}_{rel.suffix.lstrip('.').lower()}{dst.suffix}")
        key = os.path.realpath(dst)
        claimed.add(key)
        if key in input_keys:
            jobs.append(_Job(src, dst, out_fmt, video, f"{src}: refusing to write the result onto input file {dst}"))
        else:
            jobs.append(_Job(src, dst, out_fmt, video))
    opts = _Options(tile, overlap, smooth, quality, overwrite)
    bar = None
    if progress and jobs:
        from tqdm.auto import tqdm

        where = f", {_workers_label(client)}" if client is not None else ""
        bar = tqdm(total=len(jobs), unit="img", desc=f"restore ({model}{where})", dynamic_ncols=True)
    try:
        if client is None:
            for job in jobs:
                record(_run_job(job, restorer, opts, bar is not None))
                if bar is not None:
                    bar.update(1)
        else:
            summary.results.extend(_run_distributed(client, jobs, restorer, opts, on_result, bar))
    finally:
        if bar is not None:
            bar.close()
    return summary


@dataclass(frozen=True)
class _Job:
    """One input file and where its result goes; ``refused`` is the reason it must not run."""

    src: Path
    dst: Path
    out_fmt: str
    video: bool
    refused: str = ""


@dataclass(frozen=True)
class _Options:
    tile: int | None
    overlap: int
    smooth: float
    quality: int
    overwrite: bool


def _run_job(job: _Job, restorer: Restorer, opts: _Options, inner_progress: bool = False) -> FileResult:
    """Restore one file (or skip or refuse it): the same in this process and on a Dask worker."""
    src, dst, t0 = job.src, job.dst, time.perf_counter()
    if job.refused:
        return FileResult(str(src), str(dst), "failed", job.refused)
    if dst.exists() and not opts.overwrite:
        _OutputLock.sweep(dst)
        return FileResult(str(src), str(dst), "skipped", f"{dst} exists (use --overwrite to replace it)")
    with _OutputLock(dst) as lock:
        if lock.owner is not None:  # another run writes it now: leave it to that run
            msg = f"{dst} is being written by another clearsight run (process {lock.owner})"
            return FileResult(str(src), str(dst), "skipped", msg)
        if dst.exists() and not opts.overwrite:  # finished by another run while we got here
            return FileResult(str(src), str(dst), "skipped", f"{dst} exists (use --overwrite)")
        if job.video:
            return _restore_video_file(
                src, dst, restorer, opts.tile, opts.overlap, opts.smooth, opts.quality, t0, inner_progress
            )
        return _restore_one(src, dst, restorer, opts.tile, opts.overlap, job.out_fmt, opts.quality, t0, inner_progress)


def _workers_label(client) -> str:
    try:
        n = len(client.scheduler_info().get("workers", {}))
    except Exception:  # noqa: BLE001 - only a label
        return "dask"
    return f"{n} dask worker{'s' if n != 1 else ''}"


def _worker_job(job: _Job, restorer: Restorer, opts: _Options) -> FileResult:
    """A Dask task: one file on a worker. Failures are results, as in the serial run; what is not caught here
    (a bug) is sent back and re-raised by the client."""
    from .runtime import tune_allocator

    tune_allocator()
    return _run_job(job, restorer, opts)


def _run_distributed(client, jobs: list[_Job], restorer: Restorer, opts: _Options, notify, bar) -> list[FileResult]:
    """Run ``jobs`` as one Dask task each on ``client``'s cluster; ``notify`` sees each result as it completes,
    the results are returned in input order. The restorer is sent to every worker once; a task whose worker
    dies is run again on another (Dask's ``allowed-failures``), and the lock the dead worker left is taken
    over."""
    from distributed import as_completed

    remote = client.scatter(restorer, broadcast=True, hash=False)
    futures = {
        client.submit(_worker_job, job, remote, opts, key=f"clearsight-restore-{i}-{os.getpid()}-{time.time_ns()}",
                      pure=False): i
        for i, job in enumerate(jobs)
    }  # fmt: skip
    done: dict[int, FileResult] = {}
    try:
        for fut in as_completed(futures):
            i = futures[fut]
            try:
                res = fut.result()
            except Exception as e:  # noqa: BLE001 - e.g. the task's workers kept dying: report the file, go on
                job = jobs[i]
                msg = f"{job.src}: failed on the Dask cluster ({type(e).__name__}: {e})"
                res = FileResult(str(job.src), str(job.dst), "failed", msg)
            done[i] = res
            if notify is not None:
                notify(res)
            if bar is not None:
                bar.update(1)
    finally:
        for fut in futures:
            fut.release()
    return [done[i] for i in range(len(jobs))]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class _OutputLock:
    """A lock file beside an output while one run writes it, so two runs writing into one folder at once never
    write the same file twice or half: the second leaves it to the first. A lock left by a run that was killed
    (its process is gone) is taken over, and so are the temporary files it left; an unwritable folder is
    reported by the write itself, not here.

    ``owner`` is the process id of the run that holds the lock, or ``None`` when this run got it.
    """

    def __init__(self, dst: Path) -> None:
        self.dst, self.path, self.owner, self.held = dst, dst.parent / hidden_name(dst, ".lock"), None, False

    def __enter__(self) -> _OutputLock:
        try:
            self.dst.parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            return self
        self.sweep(self.dst)
        mine = self.path.with_name(f"{self.path.name}.{os.getpid()}")
        try:  # the lock appears with its content at once (a hard link), so no run ever reads it empty
            mine.write_text(str(os.getpid()))
        except OSError:  # e.g. a read-only folder: the write reports it
            return self
        try:
            return self._take(mine)
        finally:
            mine.unlink(missing_ok=True)

    def _take(self, mine: Path) -> _OutputLock:
        for _ in range(2):
            try:
                os.link(mine, self.path)
            except FileExistsError:
                try:
                    pid = int(self.path.read_text().strip() or 0)
                except (OSError, ValueError):
                    pid = 0
                if pid and pid != os.getpid() and _alive(pid):
                    self.owner = pid
                    return self
                self.path.unlink(missing_ok=True)  # stale: its run was killed
                continue
            except OSError:  # no hard links on this file system: go without a lock
                return self
            self.held = True
            for stale in self.dst.parent.glob(glob.escape(temp_prefix(self.dst)) + "*.part"):
                stale.unlink(missing_ok=True)  # half-written files of a killed run
            return self
        return self

    def __exit__(self, *exc) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)

    @staticmethod
    def sweep(dst: Path) -> None:
        """Remove the lock files a killed run left beside ``dst`` (it may have finished the file itself)."""
        lock = dst.parent / hidden_name(dst, ".lock")
        for p in [lock, *dst.parent.glob(glob.escape(lock.name) + ".*")]:
            try:  # the lock holds its run's process id; a run's own staging file carries it in its name
                pid = int(p.read_text().strip()) if p == lock else int(p.name.rsplit(".", 1)[1])
            except (OSError, ValueError):
                continue
            if pid != os.getpid() and not _alive(pid):
                p.unlink(missing_ok=True)


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
    except (MemoryError, RuntimeError) as e:
        if not is_out_of_memory(e):
            raise
        release_memory()
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
    except (MemoryError, RuntimeError) as e:
        if not is_out_of_memory(e):
            raise
        release_memory()
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
