"""Downstream-task check: does restoration give machines back what the haze took?

Two tasks with real pretrained models that work offline, on synthetically degraded images whose
content is known:

* **text recognition** with ``rapidocr`` (its wheel carries PP-OCR detection and recognition models; run
  on ONNX Runtime): lines of text we render on textured backgrounds, hazed with the scattering model;
  score = character accuracy ``1 - edit distance / length`` against the rendered text;
* **face detection** with OpenCV's bundled Haar cascade on the astronaut photo that ships inside
  scikit-image (public domain, NASA), cropped, scaled and flipped into variants and hazed; score =
  share of variants in which a face is found overlapping (IoU >= 0.5) the one found in the clean variant.

Each task reports the clean image's result (the ceiling), the degraded input's and each restorer's.
Install the extras with ``make downstream`` (``rapidocr`` with ``--no-deps`` and its small dependencies,
so that no other runtime is pulled).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import cv2
import numpy as np
import torch

from ..degrade.depth import random_depth
from ..degrade.ops import day_haze
from ..infer import restore_array
from ..models import create_model

__all__ = ["char_accuracy", "ocr_task", "face_task", "run_downstream"]

WORDS = (
    "ROAD CLOSED AHEAD EXIT SPEED LIMIT BRIDGE TUNNEL NORTH SOUTH STATION PLATFORM CAUTION FOG "
    "WARNING LANE PARKING ONLY BUS STOP HOSPITAL CITY CENTRE AIRPORT POLICE DETOUR SLOW SCHOOL ZONE"
).split()


def char_accuracy(truth: str, pred: str) -> float:
    """``1 - Levenshtein(truth, pred) / len(truth)``, clipped at 0 (spaces and case ignored)."""
    a, b = truth.replace(" ", "").upper(), pred.replace(" ", "").upper()
    if not a:
        return 1.0 if not b else 0.0
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return max(0.0, 1.0 - prev[-1] / len(a))


def _text_image(rng: random.Random, h: int = 240, w: int = 560) -> tuple[np.ndarray, str]:
    from PIL import Image, ImageDraw, ImageFont

    base = np.array([rng.uniform(0.35, 0.8) for _ in range(3)])
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    tex = base[None, None] * (0.85 + 0.15 * np.sin(xx[..., None] * rng.uniform(5, 20) + yy[..., None] * 7))
    img = Image.fromarray((np.clip(tex, 0, 1) * 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    lines = []
    y = 15
    for _ in range(3):
        words = [rng.choice(WORDS) for _ in range(rng.randint(1, 3))]
        if rng.random() < 0.5:
            words.append(str(rng.randint(1, 999)))
        text = " ".join(words)
        size = rng.randint(26, 40)
        dark = rng.random() < 0.7
        colour = (20, 20, 25) if dark else (245, 245, 240)
        d.text((rng.randint(10, 40), y), text, fill=colour, font=ImageFont.load_default(size=size))
        lines.append(text)
        y += size + rng.randint(20, 35)
    return np.asarray(img).copy(), " ".join(lines)


def _haze(rgb: np.ndarray, beta: float, seed: int) -> np.ndarray:
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    d = 0.5 + 0.5 * random_depth(1, rgb.shape[0], rgb.shape[1], torch.Generator().manual_seed(seed))
    y, _ = day_haze(x, d, torch.tensor([beta]), torch.tensor([[0.86, 0.87, 0.89]]))
    return (y[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


def _ocr_text(engine, rgb: np.ndarray) -> str:
    res = engine(rgb)
    txts = getattr(res, "txts", None) or ()
    return " ".join(txts)


def ocr_task(methods: Sequence[str], n: int = 12, seed: int = 0, betas: Sequence[float] = (2.0, 3.0)) -> dict:
    """Mean character accuracy of rapidocr on clean, hazed and restored text images."""
    import logging

    from rapidocr import RapidOCR

    logging.getLogger("RapidOCR").setLevel(logging.WARNING)
    engine = RapidOCR()
    restorers = {m: create_model(m) for m in methods}
    rng = random.Random(seed)
    acc: dict[str, list[float]] = {k: [] for k in ["clean", "degraded", *methods]}
    for i in range(n):
        img, truth = _text_image(rng)
        hazy = _haze(img, betas[i % len(betas)], seed * 1000 + i)
        acc["clean"].append(char_accuracy(truth, _ocr_text(engine, img)))
        acc["degraded"].append(char_accuracy(truth, _ocr_text(engine, hazy)))
        for m, r in restorers.items():
            out, _ = restore_array(hazy, r)
            acc[m].append(char_accuracy(truth, _ocr_text(engine, out)))
    return {"n": n, "betas": list(betas), "char_accuracy": {k: float(np.mean(v)) for k, v in acc.items()}}


def _faces(cascade, rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return [tuple(map(int, f)) for f in cascade.detectMultiScale(gray, 1.1, 4, minSize=(40, 40))]


def _found(cascade, rgb: np.ndarray, ref: list) -> float:
    return float(any(_iou(f, r) >= 0.5 for f in _faces(cascade, rgb) for r in ref))


def _iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    return inter / float(aw * ah + bw * bh - inter)


def face_task(methods: Sequence[str], n: int = 12, seed: int = 0, betas: Sequence[float] = (2.0, 3.0)) -> dict:
    """Share of hazed/restored variants in which the clean variant's face is found again (Haar cascade)."""
    from skimage import data as skdata

    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    photo = skdata.astronaut()
    restorers = {m: create_model(m) for m in methods}
    rng = random.Random(seed)
    hits: dict[str, list[float]] = {k: [] for k in ["degraded", *methods]}
    used = 0
    for i in range(n * 3):
        if used >= n:
            break
        s = rng.uniform(0.6, 1.0)
        c = int(512 * s)
        y, x = rng.randint(0, 512 - c), rng.randint(0, 512 - c)
        img = np.ascontiguousarray(photo[y : y + c, x : x + c])
        img = cv2.resize(img, (384, 384), interpolation=cv2.INTER_AREA)
        if rng.random() < 0.5:
            img = np.ascontiguousarray(img[:, ::-1])
        ref = _faces(cascade, img)
        if not ref:
            continue  # the face was cropped out: no ground truth for this variant
        used += 1
        hazy = _haze(img, betas[used % len(betas)], seed * 1000 + i)

        hits["degraded"].append(_found(cascade, hazy, ref))
        for m, r in restorers.items():
            hits[m].append(_found(cascade, restore_array(hazy, r)[0], ref))
    return {"n": used, "betas": list(betas), "detection_rate": {k: float(np.mean(v)) for k, v in hits.items()}}


def run_downstream(methods: Sequence[str], n: int = 12, seed: int = 0) -> dict:
    """Both tasks; a task whose extra is not installed is reported as skipped with the reason."""
    out: dict = {}
    for name, fn in (("ocr", ocr_task), ("faces", face_task)):
        try:
            out[name] = fn(methods, n, seed)
        except ImportError as e:
            out[name] = {"skipped": f"missing package: {e.name} (run make downstream)"}
    return out
