"""Fit the NIQE pristine model shipped with clearsight (``niqe_pristine_clearsight.npz``).

Recipe (Mittal et al. 2013): 96x96 patches at two scales, 36 features each, patches kept when their
sharpness exceeds 0.75 of the sharpest patch of their image; a multivariate Gaussian over all kept
patches. Fitted on ``clean/Kodak24``, ``clean/CBSD68`` and the even-numbered half of
``clean/Urban100_x2HR``; ``clean/SunHays80``, ``clean/Set14`` and the odd half of Urban100 are held out for
the sanity check (clean photos should score about 2-5; noise, blur and JPEG should raise the score).

Usage::

    python recipes/niqe_pristine.py --data ../shared/data

Peak memory, measured (maximum resident size, ``/usr/bin/time -f %M``): 0.76 GB, 22 s. NumPy/OpenCV only, so
float32 and bf16 do not apply. Reproduces the shipped ``niqe_pristine_clearsight.npz`` exactly (checked 2026-12-06).
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from clearsight.degrade.dataset import image_files
from clearsight.io import load_image

niqe_mod = importlib.import_module("clearsight.metrics.niqe")  # the module (the package exports a function)


def load(f: Path) -> np.ndarray:
    rec = load_image(f)
    return rec.rgb.astype(np.float64) / (255.0 if rec.rgb.dtype == np.uint8 else 65535.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--out", default=str(niqe_mod.PRISTINE_FILE))
    args = ap.parse_args()
    data = Path(args.data)
    urban = image_files(data / "clean/Urban100_x2HR")
    fit_files = image_files([data / "clean/Kodak24", data / "clean/CBSD68"]) + urban[0::2]
    held = image_files([data / "clean/SunHays80", data / "clean/Set14"]) + urban[1::2]
    mu, cov, n = niqe_mod.fit_pristine([load(f) for f in fit_files])
    np.savez(args.out, mu=mu, cov=cov, patches=n, images=len(fit_files))
    niqe_mod._pristine.cache_clear()
    print(f"fitted on {len(fit_files)} images, {n} sharp patches -> {args.out}")

    rng = np.random.default_rng(0)
    rows = {"clean": [], "noise": [], "blur": [], "jpeg": []}
    for f in held:
        x = load(f)
        if min(x.shape[:2]) < 192:
            continue
        rows["clean"].append(niqe_mod.niqe_np(x))
        rows["noise"].append(niqe_mod.niqe_np(np.clip(x + rng.normal(0, 15 / 255, x.shape), 0, 1)))
        rows["blur"].append(niqe_mod.niqe_np(cv2.GaussianBlur(x, (0, 0), 2.0)))
        buf = io.BytesIO()
        Image.fromarray((x * 255 + 0.5).astype(np.uint8)).save(buf, "JPEG", quality=15)
        rows["jpeg"].append(niqe_mod.niqe_np(np.asarray(Image.open(buf), np.float64) / 255))
    c = np.array(rows["clean"])
    summary = {
        "fit_images": len(fit_files),
        "fit_patches": int(n),
        "held_out_images": len(c),
        "clean_median": float(np.median(c)),
        "clean_p10_p90": [float(np.percentile(c, 10)), float(np.percentile(c, 90))],
        **{f"{k}_median": float(np.median(v)) for k, v in rows.items() if k != "clean"},
        **{f"{k}_raises_share": float(np.mean(np.array(v) > c)) for k, v in rows.items() if k != "clean"},
    }
    print(json.dumps(summary, indent=1))
    Path(args.out).with_suffix(".json").write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
