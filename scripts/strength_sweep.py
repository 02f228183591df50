"""How the no-reference scores of a dehazing model's output change with its dehazing strength.

Restores the **training** part of a target folder (the images ``clearsight adapt`` trains on; every fifth,
the held-out part, is skipped) with a learned model as ``restore`` runs it, then scores
``x + s (y - x)`` for each strength ``s`` (``s`` scales ``1/t - 1`` at a fixed airlight; 1 is the model's
own output) with NIQE, BRISQUE and the haze score. It also reports the per-image best strength by
``-(NIQE + BRISQUE / 10)`` (``clearsight.adapt.naturalness_quality``), the choice ``--strengths`` lets the
label pool make. ``docs/adaptation.md`` discusses the result.

Usage::

    python scripts/strength_sweep.py ../shared/data/haze/real_day [--model corun.haze] [--strengths 0.7,1,1.3]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from tqdm.auto import tqdm

import clearsight as cs
from clearsight.adapt.colabator import BRISQUE_PER_NIQE
from clearsight.adapt.runner import HAZE_FLOOR
from clearsight.degrade.dataset import image_files
from clearsight.infer import restore_array
from clearsight.io import load_image
from clearsight.models import weights_file


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("target", help="folder of real degraded images (the same one given to clearsight adapt)")
    ap.add_argument("--model", default="corun.haze")
    ap.add_argument("--strengths", default="0.7,0.85,1,1.15,1.3,1.45,1.6")
    args = ap.parse_args()
    strengths = [float(s) for s in args.strengths.split(",")]
    files = [f for k, f in enumerate(image_files(args.target)) if k % 5 != 4]  # adapt's training part only
    restorer = cs.load_restorer(weights_file(args.model))
    niqe, brisque, haze = (cs.create_metric(m) for m in ("niqe", "brisque", "haze_score"))
    scores = np.zeros((len(strengths), len(files), 3))
    for i, f in enumerate(tqdm(files, desc="images")):
        rgb = load_image(f).rgb
        x = rgb.astype(np.float32) / (255.0 if rgb.dtype == np.uint8 else 65535.0)
        y = restore_array(rgb, restorer)[0]
        y = y.astype(np.float32) / (255.0 if y.dtype == np.uint8 else 65535.0 if y.dtype == np.uint16 else 1.0)
        for j, s in enumerate(strengths):
            z = torch.from_numpy(np.clip(x + s * (y - x), 0, 1)).permute(2, 0, 1)[None]
            scores[j, i] = niqe(z).item(), brisque(z).item(), haze(z).item()
    q = -(scores[..., 0] + scores[..., 1] / BRISQUE_PER_NIQE)
    allowed = (scores[..., 2] >= HAZE_FLOOR) | (np.array(strengths)[:, None] <= 1)
    best = np.where(allowed, q, -np.inf).argmax(0)
    print(f"{args.model} on {len(files)} training images of {args.target}")
    print("| strength | NIQE | BRISQUE | haze score | images for which it is best |")
    print("|---|---|---|---|---|")
    for j, s in enumerate(strengths):
        m = scores[j].mean(0)
        print(f"| {s:g} | {m[0]:.3f} | {m[1]:.2f} | {m[2]:.3f} | {int((best == j).sum())} |")
    pick = scores[best, np.arange(len(files))].mean(0)
    print(f"| per-image best | {pick[0]:.3f} | {pick[1]:.2f} | {pick[2]:.3f} | |")
    if 1.0 in strengths:
        one = scores[strengths.index(1.0)]
        print(f"NIQE / BRISQUE spread across images at strength 1: {one[:, 0].std():.3f} / {one[:, 1].std():.2f}")


if __name__ == "__main__":
    main()
