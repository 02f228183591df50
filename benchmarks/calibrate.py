"""Calibrate the synthesis presets against real images with ``clearsight.metrics.statistics``.

For each preset, candidate range settings are tried on a fixed sample of clean photos (one draw per
photo); each candidate's image statistics are compared with a *calibration* split of the matching real
set (normalised Wasserstein distance, mean over statistics). The best candidate is reported together
with its distance on the *held-out* split, so that the choice is not judged on the images it was fitted
to. The winning ranges are then written by hand into ``clearsight/degrade/pipeline.py`` (PRESETS) and
recorded in ``docs/synthesis.md``.

Usage::

    python benchmarks/calibrate.py --data ../shared/data [--presets day_haze,night_haze] [--n-clean 60]

Writes ``benchmarks/results/calibration.json``.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import time
from pathlib import Path

import numpy as np
import torch

from clearsight.degrade.dataset import image_files
from clearsight.degrade.depth import estimate_depth_np
from clearsight.degrade.pipeline import PRESETS, Degrader, PipelineConfig
from clearsight.io import load_image
from clearsight.metrics.statistics import STATISTICS, distance, folder_statistics, image_statistics
from clearsight.priors.base import make_preview

# real sets: (calibration split, held-out split), relative to --data
REAL = {
    "day_haze": (["haze/real_day/ridcp", "haze/real_day/toenet"], ["haze/real_day/aodnet_demo"]),
    "night_haze": (["haze/real_night"], ["haze/real_night"]),
    "sand_dust": (["haze/real_sand"], ["haze/real_sand"]),
    "low_light": (["lowlight/sci"], ["lowlight/dicm"]),
    "noise": (["noise/rni15"], ["noise/polyu/noisy"]),
    "rain": (["rain/real"], ["rain/real"]),
}

# the ranges suggested in ../shared/docs/methods.md (section 1.5, marked [I]) before any calibration
UNCALIBRATED = {
    "day_haze": PipelineConfig([{"op": "day_haze", "beta": (0.2, 2.8), "airlight": (0.25, 1.0)}]),
    "night_haze": PipelineConfig(
        [{"op": "night_haze", "gamma": (1.5, 3.0), "ambient": (0.1, 0.5)}, {"op": "noise", "p": 0.5}]
    ),
    "sand_dust": PipelineConfig([{"op": "sand_dust", "beta": (0.5, 3.0)}]),
    "low_light": PipelineConfig([{"op": "gamma", "gamma": (1.5, 3.0)}]),
    "noise": PipelineConfig([{"op": "noise", "sigma": (2 / 255, 25 / 255)}]),
    "rain": PipelineConfig([{"op": "rain"}]),
}

# candidate overrides: {stage index: {arg: [values]}} plus optional "near"
GRID = {
    "day_haze": {
        0: {
            "beta": [(0.3, 1.5), (0.5, 2.5), (1.0, 3.0), (1.5, 4.0)],
            "airlight": [(0.55, 0.9), (0.65, 0.98), (0.8, 1.0)],
        },
        "near": [(0.0, 0.1), (0.05, 0.3), (0.2, 0.5)],
    },
    "night_haze": {
        0: {
            "exposure": [(0.08, 0.35), (0.2, 0.6)],
            "ambient": [(0.03, 0.2), (0.1, 0.35)],
            "glow": [(0.3, 1.0)],
            "warmth": [(0.0, 0.4), (0.3, 1.0)],
        },
        1: {"p": [0.3, 1.0], "sigma": [(1 / 255, 5 / 255), (2 / 255, 15 / 255)]},
    },
    "sand_dust": {
        0: {
            "beta": [(0.6, 2.8), (1.5, 4.0)],
            "saturation": [(0.45, 0.75), (0.55, 0.9)],
            "value": [(0.7, 1.0), (0.85, 1.0)],
            "absorb_b": [(0.55, 0.95), (0.8, 1.0)],
        },
        1: {"p": [0.0, 0.3]},
        "near": [(0.05, 0.3), (0.2, 0.5)],
    },
    "low_light": {
        0: {
            "exposure": [(0.03, 0.3), (0.1, 0.6)],
            "shot": [(1e-5, 5e-4), (1e-4, 4e-3)],
            "read": [(1e-4, 1e-3), (5e-4, 4e-3)],
        }
    },
    "noise": {0: {"sigma": [(2 / 255, 25 / 255), (5 / 255, 50 / 255), (10 / 255, 60 / 255)]}},
    "rain": {0: {"density": [(0.002, 0.02), (0.01, 0.05)], "veil": [(0.0, 0.35), (0.1, 0.5)]}},
}


def load_clean(data: Path, n: int, size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    files = image_files([data / "clean/SunHays80", data / "clean/Urban100_x2HR", data / "clean/Kodak24"])
    rng = np.random.default_rng(0)
    files = [files[i] for i in sorted(rng.choice(len(files), size=min(n, len(files)), replace=False))]
    out = []
    for f in files:
        rec = load_image(f)
        x = make_preview(rec.rgb, size)
        out.append((x, estimate_depth_np(x)))
    return out


def synth_stats(config: PipelineConfig, clean: list[tuple[np.ndarray, np.ndarray]], seed: int = 0) -> dict:
    deg = Degrader(config)
    rows = []
    for i, (x, d) in enumerate(clean):
        xt = torch.from_numpy(x).permute(2, 0, 1)[None]
        dt = torch.from_numpy(d)[None, None]
        y, _ = deg(xt, depth=dt if deg.needs_depth else None, generator=torch.Generator().manual_seed(seed + i))
        rows.append(image_statistics(y[0].permute(1, 2, 0).numpy()))
    return {k: np.array([r[k] for r in rows]) for k in STATISTICS}


def candidates(preset: str):
    base = PRESETS[preset]
    grid = GRID[preset]
    stage_keys = [(s, k) for s, kv in grid.items() if s != "near" for k in kv]
    value_lists = [grid[s][k] for s, k in stage_keys]
    nears = grid.get("near", [base.near])
    for combo in itertools.product(*value_lists):
        for near in nears:
            cfg = copy.deepcopy(base)
            for (s, k), v in zip(stage_keys, combo):
                cfg.stages[s][k] = v
            cfg.near = near
            yield {f"{s}.{k}": v for (s, k), v in zip(stage_keys, combo)} | {"near": near}, cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--presets", default=",".join(GRID))
    ap.add_argument("--n-clean", type=int, default=60)
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results/calibration.json"))
    args = ap.parse_args()
    data = Path(args.data)
    clean = load_clean(data, args.n_clean, args.size)
    out_path = Path(args.out)
    results = json.loads(out_path.read_text()) if out_path.exists() else {}
    for preset in args.presets.split(","):
        t0 = time.time()
        cal_dirs, held_dirs = REAL[preset]
        real_cal = folder_statistics(image_files([data / d for d in cal_dirs]))
        real_held = folder_statistics(image_files([data / d for d in held_dirs]))
        before = synth_stats(UNCALIBRATED[preset], clean)
        current = synth_stats(PRESETS[preset], clean)
        best = None
        for desc, cfg in candidates(preset):
            st = synth_stats(cfg, clean)
            dcal = distance(real_cal, st)["mean"]
            if best is None or dcal < best[0]:
                best = (dcal, desc, st)
        dcal, desc, st = best
        results[preset] = {
            "calibration_sets": cal_dirs,
            "held_out_sets": held_dirs,
            "uncalibrated": {"cal": distance(real_cal, before), "held_out": distance(real_held, before)},
            "current_preset": {"cal": distance(real_cal, current), "held_out": distance(real_held, current)},
            "best_candidate": {
                "overrides": {k: list(v) if isinstance(v, tuple) else v for k, v in desc.items()},
                "cal": distance(real_cal, st),
                "held_out": distance(real_held, st),
            },
        }
        r = results[preset]
        print(
            f"{preset:<11} uncalibrated {r['uncalibrated']['cal']['mean']:.3f}/"
            f"{r['uncalibrated']['held_out']['mean']:.3f}"
            f"  current {r['current_preset']['cal']['mean']:.3f}/{r['current_preset']['held_out']['mean']:.3f}"
            f"  best {dcal:.3f}/{r['best_candidate']['held_out']['mean']:.3f} {desc}  ({time.time() - t0:.0f} s)",
            flush=True,
        )
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
