"""Calibrate and check the judge (``clearsight.judging``): detection of synthetic harms, false alarms on harmless pairs.

    python benchmarks/judge.py --data ../shared/data

Harms of a documented size applied to real clean photos (every 16th of ``clean/BSDS500``, ``clean/SunHays80``,
``clean/Urban100_x2HR``): each should be found. Harmless pairs, where nothing harmful was done: a JPEG
re-encoded copy (quality 90), a correctly brightened dark photo (``lowlight/lol_train`` low -> its long exposure),
a correctly denoised noisy photo (clean photo + Gaussian noise sigma 15, and sigma 50 since session 33 -> the clean
photo), a correctly dehazed
photo (clean photo + uniform haze t = 0.6 -> the clean photo), a correctly dehazed photo under haze that thickens
with distance (estimated depth, grey airlight 0.75-0.95, far transmission exp(-0.7) to exp(-2.3) -> the clean
photo), a correctly removed dust veil (uniform yellow-brown veil, t = 0.35-0.55 -> the clean photo): each should
be ``ok``. One harm is applied to a dehazed output: the clean photo with the cast of ``cast`` judged against its
depth-hazed version (a restorer that removes haze and tints the result); one to a denoised output: a sigma-25 noisy
photo against the clean photo blurred by 2.5 px (a denoiser that also blurs, session 33); one is a blocky dehazing:
the depth-hazed photo against the textbook DCP's output without its refinement (15-px blocks of transmission:
``blotches``, session 34). Writes
``benchmarks/results/judge.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from clearsight.degrade.dataset import image_files
from clearsight.degrade.depth import estimate_depth
from clearsight.io import read_image
from clearsight.judging import THRESHOLDS, judge_np
from clearsight.priors.dcp import dcp_transmission_np, recover_np

RESULTS = Path(__file__).resolve().parent / "results"


def _files(folder: Path) -> list[Path]:
    return image_files(folder)


def _float(p: Path) -> np.ndarray:
    """RGB float32 ``(H, W, 3)`` in [0, 1] (grayscale repeated)."""
    return np.ascontiguousarray(read_image(p)[0].permute(1, 2, 0).numpy())


def _u8(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, 0, 1) * 255) / 255


def _lab_rotate(x: np.ndarray, degrees: float) -> np.ndarray:
    lab = cv2.cvtColor(x.astype(np.float32), cv2.COLOR_RGB2Lab)
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    a, b = lab[..., 1].copy(), lab[..., 2].copy()
    lab[..., 1], lab[..., 2] = c * a - s * b, s * a + c * b
    return cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)


def _lamps(x: np.ndarray, r: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Three lamps (discs of radius 4 px at white) and the same with a ring around each, as night dehazing
    leaves: luminance -0.25 from 6 to 16 px out (a dark collar), blurred by 1.5 px."""
    h, w = x.shape[:2]
    before, ring = x.copy(), np.zeros((h, w), np.float32)
    for _ in range(3):
        cy, cx = int(r.integers(20, h - 20)), int(r.integers(20, w - 20))
        cv2.circle(before, (cx, cy), 4, (1.0, 1.0, 1.0), -1)
        cv2.circle(ring, (cx, cy), 11, 1.0, 10)
    ring = cv2.GaussianBlur(ring, (0, 0), 1.5)
    return before, before - 0.25 * ring[..., None]


#: Synthetic harms: name -> (expected harm, function, documented size).
HARMS = {
    "cast": ("colour_cast", lambda x, r: x * CAST, "R x1.12, B x0.85"),
    "hue": ("colour_cast", lambda x, r: _lab_rotate(x, 40), "hue turned 40 degrees"),
    "noise": ("noise", lambda x, r: x + r.normal(0, 10 / 255, x.shape).astype(np.float32), "Gaussian sigma 10"),
    "blur": ("detail_lost", lambda x, r: cv2.GaussianBlur(x, (0, 0), 2.5), "Gaussian blur sigma 2.5 px"),
    "clip": ("clipped", lambda x, r: x * 1.6, "gain 1.6 (highlights clip)"),
    "over_dehaze": ("over_dehazed", lambda x, r: (x - 0.2) / 0.8, "black point lifted to 0.2"),
    "haze": ("haze_added", lambda x, r: 0.6 * x + 0.4 * 0.85, "uniform haze t = 0.6, A = 0.85"),
    "halo": ("halo", None, "dark ring 6-16 px around 3 lamps, -0.25"),
    "cast_dehazed": ("colour_cast", None, "R x1.12, B x0.85 on a dehazed output"),
    "oversmoothed": ("detail_lost", None, "Gaussian blur 2.5 px on a denoised sigma-25 photo"),
    "blocky_dehazed": ("blotches", None, "depth haze removed with unrefined 15-px DCP transmission blocks"),
}
CAST = np.array([1.12, 1.0, 0.85], np.float32)


def _depth_haze(x: np.ndarray, r: np.random.Generator) -> np.ndarray:
    """``x`` under grey haze that thickens with its estimated depth (normalised to [0, 1])."""
    import torch

    d = estimate_depth(torch.from_numpy(x).permute(2, 0, 1)[None].float())[0, 0].numpy()
    d = (d - d.min()) / (d.max() - d.min() + 1e-6)
    t = np.exp(-r.uniform(0.7, 2.3) * d)[..., None].astype(np.float32)
    return t * x + (1 - t) * np.float32(r.uniform(0.75, 0.95))


def _blocky_dehaze(hazy: np.ndarray) -> np.ndarray:
    """``hazy`` dehazed as the textbook DCP without its refinement (session 34): the transmission is the dark
    channel's 15-px minimum, in blocks, so the output has bands and blocks at depth edges and around bright
    fragments (the artefact the blotch test is for)."""
    a = np.percentile(hazy.reshape(-1, 3), 99.9, axis=0).astype(np.float32)
    return recover_np(hazy, dcp_transmission_np(hazy, a, 15, 0.95, 0, 0.0), a, 0.1)  # radius 0: no refinement


def _dust(x: np.ndarray, r: np.random.Generator) -> np.ndarray:
    t = r.uniform(0.35, 0.55)
    return t * x + (1 - t) * np.array([0.78, 0.62, 0.38], np.float32) * r.uniform(0.85, 1.1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="the shared data folder")
    ap.add_argument("--limit", type=int, default=0, help="at most this many photos per source (0: all)")
    args = ap.parse_args()
    root = Path(args.data)
    photos = _files(root / "clean/BSDS500")[::16] + _files(root / "clean/SunHays80")
    photos += _files(root / "clean/Urban100_x2HR")
    if args.limit:
        photos = photos[: args.limit]
    rng = np.random.default_rng(0)
    extra = np.random.default_rng(1)  # the rows added in session 33 draw apart, so the others keep their draws
    found: dict[str, list[bool]] = {k: [] for k in HARMS}
    any_found: dict[str, list[bool]] = {k: [] for k in HARMS}
    harmless: dict[str, list[bool]] = {
        k: []
        for k in ("reencoded", "brightened", "denoised", "denoised_heavy", "dehazed", "dehazed_depth", "dust_removed")
    }
    false_harms: dict[str, dict[str, int]] = {k: {} for k in harmless}
    t0 = time.perf_counter()
    n = 0

    def record(kind: str, v) -> None:
        harmless[kind].append(not v.ok)
        for h in v.harms:
            false_harms[kind][h] = false_harms[kind].get(h, 0) + 1

    for p in photos:
        x = _float(p)
        hazy = _depth_haze(x, rng)
        for name, (harm, fn, _) in HARMS.items():
            if name == "cast_dehazed":
                before, after = hazy, x * CAST
            elif name == "blocky_dehazed":  # textbook DCP without its refinement (no random draw)
                before = _u8(hazy)
                after = _blocky_dehaze(before.astype(np.float32))
            elif name == "oversmoothed":  # a denoiser that also blurs
                before, after = x + extra.normal(0, 25 / 255, x.shape), cv2.GaussianBlur(x, (0, 0), 2.5)
            else:
                before, after = _lamps(x, rng) if fn is None else (x, fn(x, rng))
            v = judge_np(_u8(before), _u8(after))
            found[name].append(harm in v.harms)
            any_found[name].append(not v.ok)
            n += 1
        u8 = (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)
        ok, buf = cv2.imencode(".jpg", u8[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
        record("reencoded", judge_np(u8, cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]))
        record("denoised", judge_np(_u8(x + rng.normal(0, 15 / 255, x.shape)), _u8(x)))
        record("denoised_heavy", judge_np(_u8(x + extra.normal(0, 50 / 255, x.shape)), _u8(x)))
        record("dehazed", judge_np(_u8(0.6 * x + 0.4 * 0.85), _u8(x)))
        record("dehazed_depth", judge_np(_u8(hazy), _u8(x)))
        record("dust_removed", judge_np(_u8(_dust(x, rng)), _u8(x)))
        n += 6
    for p in _files(root / "lowlight/lol_train/low"):
        record("brightened", judge_np(_float(p), _float(p.parent.parent / "high" / p.name)))
        n += 1
    secs = (time.perf_counter() - t0) / max(n, 1)
    res = {
        "photos": len(photos),
        "thresholds": THRESHOLDS,
        "detection": {k: float(np.mean(v)) for k, v in found.items()},
        "detection_any_harm": {k: float(np.mean(v)) for k, v in any_found.items()},
        "false_alarms": {k: float(np.mean(v)) for k, v in harmless.items()},
        "false_alarm_harms": false_harms,
        "seconds_per_pair": secs,
    }
    res["detection_mean"] = float(np.mean(list(res["detection"].values())))
    res["false_alarm_mean"] = float(np.mean([x for v in harmless.values() for x in v]))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "judge.json").write_text(json.dumps(res, indent=1))
    lines = ["# Judge: synthetic harms found, harmless pairs passed", "",
             f"`python benchmarks/judge.py --data ../shared/data` ({len(photos)} real clean photos; "
             f"{secs * 1000:.0f} ms per pair)", "",
             "| harm applied | size | expected verdict | found | any harm found |",
             "|---|---|---|---|---|"]  # fmt: skip
    for k, (harm, _, size) in HARMS.items():
        lines.append(f"| {k} | {size} | {harm} | {res['detection'][k]:.0%} | {res['detection_any_harm'][k]:.0%} |")
    lines += ["", "| harmless pair | pairs | false alarms | harms wrongly found |", "|---|---|---|---|"]
    for k, v in harmless.items():
        fh = ", ".join(f"{h} {c}" for h, c in sorted(false_harms[k].items())) or "-"
        lines.append(f"| {k} | {len(v)} | {np.mean(v):.0%} | {fh} |")
    lines += ["", f"Mean detection {res['detection_mean']:.1%}; mean false-alarm rate {res['false_alarm_mean']:.1%}."]
    (RESULTS / "judge.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
