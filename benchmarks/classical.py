"""Benchmark the classical restorers: fidelity on SOTS-indoor, speed and memory at 1080p, real-image statistics.

Usage::

    python benchmarks/classical.py --data ../shared/data [--repeats 5] [--out benchmarks/results]

Writes ``classical.json`` and ``classical.md`` to the output folder:

* PSNR / SSIM (standard 11x11 Gaussian SSIM, data range 1) of each method on ``haze/sots_indoor``
  (hazy vs clean pairs matched by file name), beside the hazy input and the textbook DCP configuration
  (He et al.: omega 0.95, no sky tolerance, guided-filter eps 1e-4, brightest-candidate airlight);
* seconds per 1920x1080 image (median of ``--repeats`` runs after one warm-up, end to end on an 8-bit
  array: conversion, preview, restoration, quantisation) and peak memory (the process's peak RSS
  over the warm-up and the timed runs, and how far it rose above the RSS before them: the working memory of the
  method), each method in a fresh process so that one method's allocations do not hide another's;
* on the real hazy sets (no reference), the mean change of simple statistics with ``auto``: haze score
  (mean dark channel), RMS contrast and which method ``auto`` picked.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

import clearsight as cs
from clearsight.bench import reset_peak_rss, status_kb
from clearsight.infer import restore_array
from clearsight.io import load_image, to_tensor
from clearsight.metrics import psnr, ssim
from clearsight.metrics.no_reference import haze_score, rms_contrast
from clearsight.priors import DCP

METHODS = ["dcp", "dcp-night", "dcp-dust", "auto"]
TEXTBOOK = {"omega": 0.95, "tolerance": 0.0, "eps": 1e-4, "airlight": "he"}


def make_restorer(name: str):
    if name == "dcp-textbook":
        return DCP(**TEXTBOOK)
    return cs.create_model(name)


def sots_pairs(data: Path) -> list[tuple[Path, Path]]:
    hazy_dir, clean_dir = data / "haze/sots_indoor/hazy", data / "haze/sots_indoor/clean"
    pairs = []
    for h in sorted(hazy_dir.iterdir()):
        c = clean_dir / h.name
        if not c.exists():
            c = next((p for p in clean_dir.iterdir() if p.stem.split("_")[0] == h.stem.split("_")[0]), None)
        if c is not None:
            pairs.append((h, c))
    return pairs


def fidelity(data: Path) -> dict:
    pairs = sots_pairs(data)
    if not pairs:
        raise SystemExit(f"no SOTS-indoor pairs under {data}/haze/sots_indoor")
    loaded = [(load_image(h).rgb, to_tensor(load_image(c).rgb)) for h, c in pairs]
    rows = {}
    for name in ["input", "dcp-textbook", *METHODS]:
        ps, ss = [], []
        for hazy, clean in loaded:
            if name == "input":
                out = to_tensor(hazy)
            else:
                out = to_tensor(restore_array(hazy, make_restorer(name))[0])
            ps.append(psnr(out, clean).item())
            ss.append(ssim(out, clean).item())
        rows[name] = {"psnr": float(np.mean(ps)), "ssim": float(np.mean(ss)), "n": len(ps)}
        print(f"  {name:<13} PSNR {rows[name]['psnr']:.2f} dB  SSIM {rows[name]['ssim']:.4f}", flush=True)
    return rows


def _speed_child(name: str, repeats: int, image: str) -> None:
    """Runs in a fresh process: time one method at 1080p and report peak memory."""
    import cv2

    cs.tune_allocator()  # as the clearsight command does
    torch.set_num_threads(os.cpu_count() or 1)
    arr = cv2.resize(load_image(image).rgb, (1920, 1080), interpolation=cv2.INTER_AREA)
    r = make_restorer(name)
    # the baseline before the first run: the tuned allocator keeps what a run freed, so after the warm-up the RSS
    # already holds the working memory (session 35: the column read 0 for every method)
    base_kb = reset_peak_rss()
    restore_array(arr, r)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        restore_array(arr, r)
        times.append(time.perf_counter() - t0)
    peak_kb = status_kb("VmHWM") if base_kb is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    base_kb = base_kb or 0
    print(
        json.dumps(
            {
                "seconds": float(np.median(times)),
                "seconds_all": times,
                "peak_rss_mb": peak_kb / 1024,
                "peak_over_baseline_mb": (peak_kb - base_kb) / 1024,
            }
        )
    )


def speed(data: Path, repeats: int) -> dict:
    image = next(iter(sorted((data / "haze/real_day/ridcp").glob("*"))), None)
    if image is None:
        raise SystemExit(f"no image under {data}/haze/real_day/ridcp to time on")
    rows = {}
    for name in ["dcp-textbook", *METHODS]:
        out = subprocess.run(
            [sys.executable, __file__, "--_speed-child", name, "--repeats", str(repeats), "--_image", str(image)],
            capture_output=True,
            text=True,
            check=True,
        )
        rows[name] = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"  {name:<13} {rows[name]['seconds']:.3f} s/1080p  peak {rows[name]['peak_rss_mb']:.0f} MB "
            f"(+{rows[name]['peak_over_baseline_mb']:.0f} MB working)",
            flush=True,
        )
    return {"image": str(image.relative_to(data)), "size": "1920x1080", "repeats": repeats, "methods": rows}


def real_sets(data: Path) -> dict:
    sets = {
        "haze/real_day": sorted(p for p in (data / "haze/real_day").rglob("*") if p.is_file()),
        "haze/real_sand": sorted(p for p in (data / "haze/real_sand").glob("*") if p.is_file()),
        "haze/real_night": sorted(p for p in (data / "haze/real_night").glob("*") if p.is_file()),
    }
    rows = {}
    auto = cs.create_model("auto")
    for key, files in sets.items():
        hz_b, hz_a, ct_b, ct_a, picks = [], [], [], [], {}
        for f in files:
            rgb = load_image(f).rgb
            out, state = restore_array(rgb, auto)
            x, y = to_tensor(rgb), to_tensor(out)
            hz_b.append(haze_score(x).item())
            hz_a.append(haze_score(y).item())
            ct_b.append(rms_contrast(x).item())
            ct_a.append(rms_contrast(y).item())
            picks[state.method] = picks.get(state.method, 0) + 1
        rows[key] = {
            "n": len(files),
            "haze_before": float(np.mean(hz_b)),
            "haze_after": float(np.mean(hz_a)),
            "contrast_before": float(np.mean(ct_b)),
            "contrast_after": float(np.mean(ct_a)),
            "auto_picks": picks,
        }
        print(
            f"  {key:<16} n={len(files):<3} haze {rows[key]['haze_before']:.3f}->{rows[key]['haze_after']:.3f} "
            f"contrast {rows[key]['contrast_before']:.3f}->{rows[key]['contrast_after']:.3f} picks {picks}",
            flush=True,
        )
    return rows


def to_markdown(res: dict) -> str:
    lines = [
        "# Classical restorers",
        "",
        f"Command: `{res['command']}`  ",
        f"Machine: {res['machine']}; clearsight {res['version']}, torch {res['torch']}",
        "",
        "## Fidelity on SOTS-indoor (25 pairs; PSNR in dB, SSIM 11x11 Gaussian, data range 1)",
        "",
        "| method | PSNR | SSIM |",
        "|---|---|---|",
    ]
    for name, r in res["fidelity"].items():
        lines.append(f"| {name} | {r['psnr']:.2f} | {r['ssim']:.4f} |")
    sp = res["speed"]
    lines += [
        "",
        f"`dcp-textbook` is He et al.'s configuration ({', '.join(f'{k}={v}' for k, v in TEXTBOOK.items())}); "
        "`input` is the hazy image itself.",
        "",
        f"## Speed and memory at {sp['size']} (median of {sp['repeats']} runs, one fresh process per method)",
        "",
        "| method | seconds / image | peak RSS (MB) | working memory: peak over RSS before the first run (MB) |",
        "|---|---|---|---|",
    ]
    for name, r in sp["methods"].items():
        lines.append(f"| {name} | {r['seconds']:.3f} | {r['peak_rss_mb']:.0f} | {r['peak_over_baseline_mb']:.0f} |")
    lines += [
        "",
        "## Real hazy photos with `auto` (no reference: descriptive statistics, not quality)",
        "",
        "| set | n | haze score before → after | RMS contrast before → after | auto picked |",
        "|---|---|---|---|---|",
    ]
    for key, r in res["real"].items():
        picks = ", ".join(f"{k}: {v}" for k, v in sorted(r["auto_picks"].items()))
        lines.append(
            f"| {key} | {r['n']} | {r['haze_before']:.3f} → {r['haze_after']:.3f} | "
            f"{r['contrast_before']:.3f} → {r['contrast_after']:.3f} | {picks} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=os.environ.get("CLEARSIGHT_DATA", "../shared/data"), help="data folder")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"), help="results folder")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per method")
    parser.add_argument("--_speed-child", dest="speed_child", help=argparse.SUPPRESS)
    parser.add_argument("--_image", dest="image", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.speed_child:
        _speed_child(args.speed_child, args.repeats, args.image)
        return
    data = Path(args.data)
    if not data.is_dir():
        raise SystemExit(f"data folder {data} not found; pass --data PATH")
    print("fidelity on SOTS-indoor:")
    fid = fidelity(data)
    print("speed at 1080p:")
    spd = speed(data, args.repeats)
    print("real hazy photos:")
    real = real_sets(data)
    res = {
        "command": f"python benchmarks/classical.py --data {args.data}",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "version": cs.__version__,
        "torch": torch.__version__,
        "fidelity": fid,
        "speed": spd,
        "real": real,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "classical.json").write_text(json.dumps(res, indent=2) + "\n")
    (out / "classical.md").write_text(to_markdown(res))
    print(f"wrote {out / 'classical.json'} and {out / 'classical.md'}")


if __name__ == "__main__":
    main()
