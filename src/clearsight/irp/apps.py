"""Uses of the IRP predictor: rank images, select the best frames of bursts and videos, advise camera settings.

Example:
    >>> import torch
    >>> from clearsight.models.irp import IRPConfig, IRPNet
    >>> p = IRPPredictor(IRPNet(IRPConfig.tiny()).eval())
    >>> p.score_tensor(torch.rand(1, 3, 32, 32)).shape
    torch.Size([1])
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .._errors import ClearsightError
from ..infer import IMAGE_EXTENSIONS
from ..io import load_image, save_image
from ..video import VIDEO_EXTENSIONS, is_video, iter_frames

__all__ = [
    "IRPPredictor",
    "Advice",
    "advise",
    "frames_of",
    "is_video",
    "load_predictor",
    "read_setting",
    "select_frames",
]


class IRPPredictor:
    """Scores images with an IRP network at native resolution (see :meth:`~clearsight.models.irp.IRPNet.score`).

    Args:
        net: an :class:`~clearsight.models.irp.IRPNet` in eval mode.
        bf16: run in bf16 autocast (faster on CPUs with AMX; scores differ by about 1e-2).
        flip: also score the mirrored image and average the two scores (twice the time; steadier rankings,
            measured in ``docs/irp.md``).
    """

    def __init__(self, net: torch.nn.Module, bf16: bool = False, flip: bool = False) -> None:
        self.net, self.bf16, self.flip = net.eval(), bf16, flip

    def score_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """Scores :math:`(B,)` of images :math:`(B, 3, H, W)` in [0, 1]."""
        s = self.net.score(x, bf16=self.bf16)
        if self.flip:
            s = (s + self.net.score(x.flip(-1), bf16=self.bf16)) / 2
        return s

    def score_array(self, rgb: np.ndarray) -> float:
        """Score of one ``(H, W, 3)`` uint8/uint16 or float [0, 1] image."""
        if rgb.dtype != np.float32:
            rgb = rgb.astype(np.float32) / (255.0 if rgb.dtype == np.uint8 else 65535.0)
        return float(self.score_tensor(torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None])[0])

    def score_file(self, path: str | os.PathLike) -> float:
        """Score of an image file (read by content; one-line errors on unreadable or too small files)."""
        x = load_image(path).to_tensor()
        try:
            return float(self.score_tensor(x)[0])
        except ValueError as e:
            raise ClearsightError(f"{path}: {e}") from None


def load_predictor(weights: str | os.PathLike | None = None, bf16: bool = False, flip: bool = False) -> IRPPredictor:
    """The shipped predictor (``irp.dynamic``) or the one in ``weights`` (``bf16``, ``flip``: see
    :class:`IRPPredictor`)."""
    from ..models._weights import load_weights
    from ..models.learned import WEIGHTS_DIR

    path = Path(weights) if weights else WEIGHTS_DIR / "irp_dynamic.safetensors"
    if not path.is_file():
        raise ClearsightError(f"{path}: no such weights file")
    net, meta = load_weights(path)
    if meta.get("arch") != "irp":
        raise ClearsightError(f"{path}: holds a {meta.get('arch')} network, not an IRP predictor")
    return IRPPredictor(net, bf16, flip)


def _video_frames(path: Path, every: int) -> Iterator[tuple[str, np.ndarray]]:
    for i, rgb in iter_frames(path, every):
        yield f"frame_{i:06d}", rgb


def frames_of(folder: str | os.PathLike, every: int = 1) -> dict[str, list[Path]]:
    """The bursts of an image folder: its own images (one burst) and those of each sub-folder (one burst each),
    every ``every``-th file in name order. Returns ``{burst: [files]}``."""
    p = Path(folder)
    if not p.is_dir():
        raise ClearsightError(f"{p}: no such folder")

    def images(d: Path) -> list[Path]:
        return sorted(f for f in d.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS
                      and not f.name.startswith("."))[::every]  # fmt: skip

    bursts = {p.name or ".": images(p)}
    for d in sorted(x for x in p.iterdir() if x.is_dir() and not x.name.startswith(".")):
        bursts[d.name] = images(d)
    bursts = {k: v for k, v in bursts.items() if v}
    if not bursts:
        raise ClearsightError(f"{p}: holds no images (or folders of images)")
    return bursts


@dataclass
class Selected:
    burst: str
    frame: str
    score: float
    chosen: bool
    output: str | None = None


def select_frames(
    predictor: IRPPredictor,
    source: str | os.PathLike,
    top: int,
    out: str | os.PathLike,
    restorer=None,
    every: int = 1,
    min_gap: int = 0,
    progress: bool = True,
) -> list[Selected]:
    """Score every frame of ``source`` (see :func:`frames_of`), keep the ``top`` best of each burst and write
    them (restored with ``restorer`` when given) to ``out/<burst>/``; ``selection.csv`` lists every frame.

    ``min_gap``: chosen frames are more than this many (sampled) frames apart, so the picks of a video are not
    all neighbours of one sharp moment. Video frames are scored in one decoding pass and only the chosen ones
    are decoded again to be written, so memory does not grow with the video's length. Inputs are never
    overwritten: ``out`` must not be inside ``source``'s folder tree for image folders.
    """
    if top < 1:
        raise ClearsightError("--top must be at least 1")
    if every < 1:
        raise ClearsightError("--every must be at least 1")
    src, out = Path(source), Path(out)
    if src.is_dir() and (out.resolve() == src.resolve() or src.resolve() in out.resolve().parents):
        raise ClearsightError(f"{out}: the output folder must be outside the input folder {src}")
    rows: list[Selected] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(desc="IRP select", unit="frame")
    # per burst: (frame name, score, file); video frames have no file and are decoded again when written
    bursts: dict[str, list[tuple[str, float, Path | None]]] = {}
    try:
        if src.is_file():
            if not is_video(src):
                raise ClearsightError(f"{src}: not a video ({', '.join(sorted(VIDEO_EXTENSIONS))}) or a folder")
            scores = []
            for name, rgb in _video_frames(src, every):
                scores.append((name, predictor.score_array(rgb), None))
                if bar is not None:
                    bar.update(1)
            bursts[src.stem] = scores
        else:
            for burst, files in frames_of(src, every).items():
                scores = []
                for f in files:
                    try:
                        scores.append((f.stem, predictor.score_file(f), f))
                    except ClearsightError as e:  # one bad frame must not stop the selection
                        msg = str(e) if str(f) in str(e) else f"{f}: {e}"
                        (bar.write(f"skipped {msg}") if bar is not None else print(f"skipped {msg}", file=sys.stderr))
                    if bar is not None:
                        bar.update(1)
                if scores:
                    bursts[burst] = scores
    finally:
        if bar is not None:
            bar.close()
    out.mkdir(parents=True, exist_ok=True)
    picks: dict[str, list[int]] = {}
    for burst, scores in bursts.items():
        chosen: list[int] = []
        for i in sorted(range(len(scores)), key=lambda i: -scores[i][1]):
            if len(chosen) == top:
                break
            if all(abs(i - j) > min_gap for j in chosen):
                chosen.append(i)
        picks[burst] = chosen
        rows += [Selected(burst, name, s, i in chosen) for i, (name, s, _) in enumerate(scores)]
    wanted = {scores[i][0] for burst, scores in bursts.items() for i in picks[burst]}
    decoded = {n: a for n, a in _video_frames(src, every) if n in wanted} if src.is_file() else {}
    by_key = {(r.burst, r.frame): r for r in rows}
    for burst, chosen in picks.items():
        for rank, i in enumerate(chosen):
            name, _, f = bursts[burst][i]
            rgb = decoded[name] if f is None else load_image(f).rgb
            if restorer is not None:
                from ..infer import restore_array

                rgb, _ = restore_array(rgb, restorer)
            dest = out / burst / f"{rank + 1:02d}_{name}.png"
            dest.parent.mkdir(parents=True, exist_ok=True)
            save_image(dest, rgb)
            by_key[(burst, name)].output = str(dest)
    with open(out / "selection.csv", "w") as fh:
        fh.write("burst,frame,irp,chosen,output\n")
        for r in rows:
            fh.write(f"{r.burst},{r.frame},{r.score:.4f},{int(r.chosen)},{r.output or ''}\n")
    return rows


_MS = re.compile(r"(\d+(?:\.\d+)?)ms")


def read_setting(path: str | os.PathLike) -> tuple[float | None, float | None]:
    """``(exposure_ms, gain)`` of an image, from (in order) its EXIF (ExposureTime, ISO/100), the
    ``clearsight synth --preset dynamic`` sidecar, or a ``<number>ms`` in the file name; ``None`` if unknown."""
    p = Path(path)
    try:
        from PIL import Image

        with Image.open(p) as im:
            exif = im.getexif()
            sub = exif.get_ifd(0x8769) if exif else {}
            t = sub.get(0x829A) or exif.get(0x829A)
            iso = sub.get(0x8827) or exif.get(0x8827)
            if t:
                iso_v = iso[0] if isinstance(iso, (tuple, list)) else iso
                return float(t) * 1000.0, (float(iso_v) / 100.0 if iso_v else None)
    except Exception:  # noqa: BLE001 - EXIF is optional; fall through to the other sources
        pass
    side = p.parent.parent.parent / "params" / f"{p.parent.name}.json"
    if side.is_file():
        meta = json.loads(side.read_text())
        for fr in meta.get("frames", []):
            if Path(fr.get("file", "")).name == p.name:
                return float(fr["exposure_ms"]), float(fr["gain"])
    m = _MS.search(p.stem)
    if m:
        return float(m.group(1)), None
    return None, None


@dataclass
class Advice:
    """Predicted IRP per capture, the best capture and, with at least three known exposures, the exposure at
    the peak of a parabola fitted to the scores in log-exposure around the best one (inside the bracket)."""

    files: list[str]
    exposure_ms: list[float | None]
    gain: list[float | None]
    scores: list[float]
    best: int
    peak_exposure_ms: float | None


def advise(predictor: IRPPredictor, paths: Sequence[str | os.PathLike]) -> Advice:
    """Which setting of a bracket gives the most restorable frame?"""
    if not paths:
        raise ClearsightError("advise needs the captures of a bracket")
    files, scores = [], []
    for p in paths:
        try:
            scores.append(predictor.score_file(p))
            files.append(str(p))
        except ClearsightError as e:  # report and go on with the rest of the bracket
            print(f"skipped {e}", file=sys.stderr)
    if not files:
        raise ClearsightError("no capture of the bracket could be scored")
    settings = [read_setting(p) for p in files]
    best = int(np.argmax(scores))
    peak = None
    known = [(math.log(t), s) for (t, _), s in zip(settings, scores) if t]
    if len(known) >= 3 and settings[best][0]:
        known.sort()
        xs = np.array([k for k, _ in known])
        ys = np.array([s for _, s in known])
        i = int(np.argmin(np.abs(xs - math.log(settings[best][0]))))
        lo, hi = max(0, i - 1), min(len(xs), i + 2)
        if hi - lo == 3:
            a, b, _ = np.polyfit(xs[lo:hi], ys[lo:hi], 2)
            peak = math.exp(float(np.clip(-b / (2 * a), xs[lo], xs[hi - 1]))) if a < 0 else math.exp(xs[i])
        else:
            peak = math.exp(xs[i])
    return Advice(files, [s[0] for s in settings], [s[1] for s in settings], scores, best, peak)
