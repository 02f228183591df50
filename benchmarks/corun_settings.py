"""Choose ``corun.haze``'s inference settings on validation, not on a benchmark: the size of the reduced pass
(``max_pixels``), the radius of the locally affine projection (``affine``) and its freedom (``affine_mode``:
a gain and offset per channel, or one shared by the three channels).

    python benchmarks/corun_settings.py --data ../shared/data [--threads 1] [--modes channel shared]
    python benchmarks/corun_settings.py --data ../shared/data --weights runs/NAME/ema.safetensors --no-speed

``--weights`` scores a candidate weights file (a fine-tune's EMA) with the shipped inference settings instead of
the shipped ``corun.haze``: how a retrained model is chosen on validation before it ships.

Validation: the 24 ``clean/Kodak24`` photos (held out of corun.haze's training: its card's validation set),
each through the ``day_haze`` and ``dense_haze`` presets with estimated depth (fixed seed), 48 pairs at their full
768x512 size; PSNR and SSIM against the clean photo, and the judge's harm rate (``clearsight.judging``) of the
output against its hazy input. Speed: seconds per 1920x1080 image through the whole restorer (median of 3; run
it alone on the machine for the timings). No benchmark folder is read. Writes
``benchmarks/results/corun_settings.{json,md}``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
PIXELS = (65_000, 80_000, 100_000, 120_000, 200_000, 300_000)
AFFINE = (0.05, 0.07, 0.1)


def _pairs(data: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    from clearsight.degrade.dataset import image_files
    from clearsight.degrade.depth import estimate_depth
    from clearsight.degrade.pipeline import Degrader
    from clearsight.io import read_image

    g = torch.Generator().manual_seed(0)
    degraders = [Degrader.from_config(p) for p in ("day_haze", "dense_haze")]
    out = []
    for f in image_files(data / "clean" / "Kodak24"):
        x = read_image(f)[0][None].float()
        depth = estimate_depth(x)
        for deg in degraders:
            y, _ = deg(x, depth=depth if deg.needs_depth else None, generator=g)
            to = lambda t: np.ascontiguousarray(t[0].clamp(0, 1).permute(1, 2, 0).numpy())  # noqa: E731
            out.append((to(y), to(x)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    ap.add_argument("--no-speed", action="store_true", help="skip the 1080p timings")
    ap.add_argument("--pixels", type=int, nargs="+", default=list(PIXELS), help="max_pixels values to try")
    ap.add_argument("--affine", type=float, nargs="+", default=list(AFFINE), help="affine radii to try")
    ap.add_argument("--modes", nargs="+", default=["shared"], choices=["channel", "shared"], help="affine modes to try")
    ap.add_argument("--weights", help="a corun weights file to score instead of the shipped corun.haze")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "corun_settings"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from clearsight.bench import cpu_name
    from clearsight.infer import restore_array
    from clearsight.judging import harm_counts, judge_np
    from clearsight.metrics import psnr, ssim
    from clearsight.models import create_model, load_restorer
    from clearsight.runtime import tune_allocator

    tune_allocator()
    pairs = _pairs(Path(args.data))
    hd = cv2.resize(pairs[0][0], (1920, 1080), interpolation=cv2.INTER_CUBIC)
    rows = []
    t = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None]  # noqa: E731
    for mp in args.pixels:
        for af, mode in [(af, mode) for af in args.affine for mode in args.modes]:
            opts = {"max_pixels": mp, "affine": af, "affine_mode": mode}
            r = load_restorer(args.weights, **opts) if args.weights else create_model("corun.haze", **opts)
            ps, ss, harmed, named = [], [], 0, collections.Counter()
            for hazy, clean in pairs:
                y, _ = restore_array(hazy, r)
                ps.append(float(psnr(t(y), t(clean))))
                ss.append(float(ssim(t(y), t(clean))))
                verdict = judge_np(hazy, y)
                harmed += not verdict.ok
                named.update(verdict.harms)
            row = {"max_pixels": mp, "affine": af, "affine_mode": mode, "psnr": round(float(np.mean(ps)), 3),
                   "ssim": round(float(np.mean(ss)), 4), "harm_rate": round(harmed / len(pairs), 3),
                   "harms": dict(named)}  # fmt: skip
            if not args.no_speed:
                restore_array(hd, r)
                times = []
                for _ in range(3):
                    t0 = time.perf_counter()
                    restore_array(hd, r)
                    times.append(time.perf_counter() - t0)
                row["seconds_1080p"] = round(statistics.median(times), 3)
            rows.append(row)
            print(row, flush=True)
    inp = [float(psnr(t(h), t(c))) for h, c in pairs]
    ref = [judge_np(h, c) for h, c in pairs]  # the judge on perfect outputs
    ref_harm = sum(not v.ok for v in ref) / len(pairs)
    ref_named = collections.Counter(h for v in ref for h in v.harms)
    meta = {"weights": args.weights or "corun.haze (shipped)", "cpu": cpu_name(), "cores": os.cpu_count(),
            "threads": torch.get_num_threads(), "pairs": len(pairs),
            "input_psnr": round(float(np.mean(inp)), 3), "clean_reference_harm_rate": round(ref_harm, 3),
            "clean_reference_harms": dict(ref_named)}  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    lines = ["# corun.haze inference settings on validation (Kodak24 through day and dense haze)", "",
             f"`python benchmarks/corun_settings.py --data {args.data}"
             + (f" --weights {args.weights}" if args.weights else "")
             + f" --pixels {' '.join(map(str, args.pixels))} "
             f"--affine {' '.join(map(str, args.affine))} --modes {' '.join(args.modes)}` on {meta['cpu']}; "
             f"{len(pairs)} pairs, input "
             f"PSNR {meta['input_psnr']:.2f} dB; harm: the judge's verdict of output against input (the clean photo "
             f"itself, judged against its hazy input, is called harmed in {ref_harm:.0%}: on synthetic haze with a "
             "tinted airlight the judge's rate does not separate settings).", "",
             "| max_pixels | affine | mode | PSNR | SSIM | harm rate | harms named | s per 1080p |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        lines.append(f"| {r['max_pixels']} | {r['affine']} | {r['affine_mode']} "
                     f"| {r['psnr']:.2f} | {r['ssim']:.3f} | {r['harm_rate']:.0%} | {harm_counts(r['harms']) or '-'} "
                     f"| {r.get('seconds_1080p', '-')} |")  # fmt: skip
    lines += ["", f"The clean photo judged against its hazy input: {harm_counts(ref_named) or 'no harm'}."]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
