"""Benchmark the synthesis: speed of every preset, and how close each preset's statistics are to real images.

Usage::

    python benchmarks/synthesis.py --data ../shared/data [--montage DIR]

Writes ``benchmarks/results/synthesis.{json,md}``:

* 256x256 patches per second for each preset on this machine (batch of 16, torch threads = cores, median
  of 7 runs; this shared machine's speed varies by up to 2x from run to run), with
  depth supplied (as in training, where the dataset caches each photo's depth) and with the geometric
  depth estimate computed per patch;
* for each real set, the distance (``clearsight.metrics.statistics.distance``: normalised Wasserstein,
  mean over nine statistics, lower is closer) of the matching preset's images before calibration (the
  generic ranges of methods.md) and after (the shipped preset), on the calibration split and on a
  held-out split of the real images;
* with ``--montage DIR``, side-by-side pictures of real and synthetic images per kind, written to DIR
  (outside the repository by default: the real images may not be committed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from calibrate import REAL, UNCALIBRATED, load_clean, synth_stats  # noqa: E402

from clearsight.degrade.dataset import image_files  # noqa: E402
from clearsight.degrade.depth import random_depth  # noqa: E402
from clearsight.degrade.pipeline import PRESETS, Degrader  # noqa: E402
from clearsight.metrics.statistics import distance, folder_statistics  # noqa: E402


def speed(repeats: int = 7, batch: int = 16) -> dict:
    torch.set_num_threads(os.cpu_count() or 1)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 3, 256, 256, generator=g) * 0.8 + 0.1
    depth = random_depth(batch, 256, 256, g)
    rows = {}
    for name in sorted(PRESETS):
        deg = Degrader.from_preset(name)
        deg(x, depth=depth, generator=g)  # warm-up
        res = {}
        for mode in ("depth_given", "depth_estimated"):
            times = []
            for r in range(repeats):
                t0 = time.perf_counter()
                deg(x, depth=depth if mode == "depth_given" else None, generator=torch.Generator().manual_seed(r))
                times.append(time.perf_counter() - t0)
            res[mode] = batch / float(np.median(times))
        rows[name] = res
        print(
            f"  {name:<11} {res['depth_given']:7.1f} patches/s (depth given)  {res['depth_estimated']:7.1f} (estimated)"
        )
    return rows


def realism(data: Path, n_clean: int) -> dict:
    clean = load_clean(data, n_clean, 384)
    rows = {}
    for preset, (cal_dirs, held_dirs) in REAL.items():
        real_cal = folder_statistics(image_files([data / d for d in cal_dirs]))
        real_held = folder_statistics(image_files([data / d for d in held_dirs]))
        before = synth_stats(UNCALIBRATED[preset], clean)
        after = synth_stats(PRESETS[preset], clean)
        rows[preset] = {
            "real_calibration": cal_dirs,
            "real_held_out": held_dirs,
            "n_real": [int(len(real_cal["files"])), int(len(real_held["files"]))],
            "before": {"cal": distance(real_cal, before), "held_out": distance(real_held, before)},
            "after": {"cal": distance(real_cal, after), "held_out": distance(real_held, after)},
        }
        r = rows[preset]
        print(
            f"  {preset:<11} before {r['before']['cal']['mean']:.3f} / {r['before']['held_out']['mean']:.3f}"
            f"  after {r['after']['cal']['mean']:.3f} / {r['after']['held_out']['mean']:.3f}"
        )
    return rows


def montage(data: Path, out: Path, n: int = 4) -> None:
    import cv2

    from clearsight.io import load_image, save_image
    from clearsight.priors.base import make_preview

    out.mkdir(parents=True, exist_ok=True)
    clean = load_clean(data, n, 256)
    for preset, (cal_dirs, _) in REAL.items():
        real = image_files([data / d for d in cal_dirs])[:n]
        tiles_real = [cv2.resize(make_preview(load_image(f).rgb, 256), (256, 192)) for f in real]
        deg = Degrader.from_preset(preset)
        tiles_syn = []
        for i, (x, d) in enumerate(clean):
            xt = torch.from_numpy(x).permute(2, 0, 1)[None]
            y, _ = deg(
                xt,
                depth=torch.from_numpy(d)[None, None] if deg.needs_depth else None,
                generator=torch.Generator().manual_seed(i),
            )
            tiles_syn.append(cv2.resize(y[0].permute(1, 2, 0).numpy(), (256, 192)))
        width = max(len(tiles_real), len(tiles_syn))
        blank = np.zeros((192, 256, 3), np.float32)
        row_r = np.concatenate(tiles_real + [blank] * (width - len(tiles_real)), 1)
        row_s = np.concatenate(tiles_syn + [blank] * (width - len(tiles_syn)), 1)
        img = (np.clip(np.concatenate([row_r, row_s], 0), 0, 1) * 255 + 0.5).astype(np.uint8)
        save_image(out / f"{preset}_real_vs_synthetic.jpg", img, quality=85)
    print(f"  montages in {out}")


def to_markdown(res: dict) -> str:
    lines = [
        "# Synthesis",
        "",
        f"Command: `{res['command']}`  ",
        f"Machine: {res['machine']}",
        "",
        "## Speed (256x256 patches per second, batch 16)",
        "",
        "| preset | depth given (training path) | depth estimated per patch |",
        "|---|---|---|",
    ]
    for k, v in res["speed"].items():
        lines.append(f"| {k} | {v['depth_given']:.0f} | {v['depth_estimated']:.0f} |")
    lines += [
        "",
        "## Distance of synthetic statistics from real images (lower is closer)",
        "",
        "Normalised Wasserstein distance averaged over nine statistics (`clearsight stats`). *Before*: the",
        "generic ranges suggested in methods.md; *after*: the shipped preset. *cal*: the real images the",
        "ranges were calibrated on; *held-out*: real images not used for calibration (for night haze, sand-dust",
        "and rain there are too few real images to hold any out, so both columns use the same images).",
        "",
        "| preset | real set (cal / held-out) | n real | before cal | after cal | before held-out | after held-out |",
        "|---|---|---|---|---|---|---|",
    ]
    for k, v in res["realism"].items():
        sets = f"{', '.join(v['real_calibration'])} / {', '.join(v['real_held_out'])}"
        lines.append(
            f"| {k} | {sets} | {v['n_real'][0]} / {v['n_real'][1]} | {v['before']['cal']['mean']:.3f} | "
            f"{v['after']['cal']['mean']:.3f} | {v['before']['held_out']['mean']:.3f} | "
            f"{v['after']['held_out']['mean']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--n-clean", type=int, default=60)
    ap.add_argument("--montage", metavar="DIR", help="write real-vs-synthetic montages here (not committed)")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    args = ap.parse_args()
    data = Path(args.data)
    print("speed:")
    spd = speed()
    print("distance from real images (cal / held-out):")
    real = realism(data, args.n_clean)
    if args.montage:
        montage(data, Path(args.montage))
    res = {
        "command": f"python benchmarks/synthesis.py --data {args.data}",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "speed": spd,
        "realism": real,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "synthesis.json").write_text(json.dumps(res, indent=1) + "\n")
    (out / "synthesis.md").write_text(to_markdown(res))
    print(f"wrote {out / 'synthesis.json'} and {out / 'synthesis.md'}")


if __name__ == "__main__":
    main()
