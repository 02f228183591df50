"""Validation of ``dcp-night``'s glow layer and of ``auto``'s milder fallback for it (session 32).

Usage::

    python benchmarks/night_glow.py --data ../shared/data

Validation material, not a benchmark: 36 ``clean/BSDS500`` photos (every 8th from the second) through the
``night_haze`` synthesis (seed 7, estimated depth), which lights them with lamps and their glow. Scores:

* PSNR against the day photo;
* PSNR against the haze-free night scene (the same synthesis with no haze and no glow: the same lamps and exposure),
  after the best affine map per colour channel, since the restorer's brightness is its own choice;
* the judge's halo and any-harm calls (``clearsight.judging``) of the output against its input.

Rows: the restorer without the glow layer (``glow_lamps=0``, sessions 5-31) and with it; then ``auto``'s guard on the
glow-layer restorer, judged on the preview as ``auto`` does: the step dropped when harmed (session 31) or retried at
0.6 and 0.35 first (session 32). Also the halo calls on the real photos of ``haze/real_night`` (looked at, never tuned
on). Writes ``benchmarks/results/night_glow.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from clearsight.degrade import create_degradation, estimate_depth
from clearsight.degrade.dataset import image_files
from clearsight.io import read_image
from clearsight.judging import first_unharmed, judge_np
from clearsight.priors.base import make_preview
from clearsight.priors.night import NightDCP

RESULTS = Path(__file__).resolve().parent / "results"


def _float(p: Path) -> np.ndarray:
    return np.ascontiguousarray(read_image(p)[0].permute(1, 2, 0).numpy())


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1 / max(float(np.mean((np.clip(a, 0, 1) - b) ** 2)), 1e-12)))


def _fit_psnr(y: np.ndarray, ref: np.ndarray) -> float:
    """PSNR of ``y`` against ``ref`` after the best affine map of each colour channel."""
    err = 0.0
    for k in range(3):
        design = np.stack([y[..., k].ravel(), np.ones(y[..., k].size)], 1)
        coef, *_ = np.linalg.lstsq(design, ref[..., k].ravel(), rcond=None)
        err += float(np.mean((design @ coef - ref[..., k].ravel()) ** 2))
    return float(10 * np.log10(1 / max(err / 3, 1e-12)))


def night_set(root: Path) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(hazy night, haze-free night, day photo)`` for the validation photos."""
    op = create_degradation("night_haze")
    g = torch.Generator().manual_seed(7)
    out = []
    for f in image_files(root / "clean/BSDS500")[1::8][:36]:
        x = _float(f)
        xt = torch.from_numpy(x).permute(2, 0, 1)[None]
        depth = estimate_depth(xt)
        params = op.sample(1, g)
        hazy = op.apply(xt, params, depth=depth)[0].permute(1, 2, 0).numpy().copy()
        clear = {**params, "beta": torch.zeros_like(params["beta"]), "glow": torch.zeros_like(params["glow"])}
        night = op.apply(xt, clear, depth=depth)[0].permute(1, 2, 0).numpy().copy()
        out.append((hazy, night, x))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data", help="the shared data folder")
    args = ap.parse_args()
    root = Path(args.data)
    data = night_set(root)
    rows: dict[str, dict[str, float | str]] = {
        "input": {
            "day_psnr": float(np.mean([_psnr(h, d) for h, _, d in data])),
            "night_fit_psnr": float(np.mean([_fit_psnr(h, n) for h, n, _ in data])),
        }
    }
    real = image_files(root / "haze/real_night")
    for name, restorer in (("glow_lamps=0 (sessions 5-31)", NightDCP(glow_lamps=0)), ("glow layer", NightDCP())):
        outs = [np.clip(restorer.restore_np(h)[0], 0, 1) for h, _, _ in data]
        verdicts = [judge_np(h, o) for (h, _, _), o in zip(data, outs)]
        real_v = [judge_np(x, np.clip(restorer.restore_np(x)[0], 0, 1)) for x in map(_float, real)]
        rows[name] = {
            "day_psnr": float(np.mean([_psnr(o, d) for o, (_, _, d) in zip(outs, data)])),
            "night_fit_psnr": float(np.mean([_fit_psnr(o, n) for o, (_, n, _) in zip(outs, data)])),
            "halo_called": f"{sum('halo' in v.harms for v in verdicts)}/{len(data)}",
            "harm_called": f"{sum(not v.ok for v in verdicts)}/{len(data)}",
            "real_night_halo": f"{sum('halo' in v.harms for v in real_v)}/{len(real)}",
        }
    night = NightDCP()
    strengths: dict[str, list[float]] = {"dropped when harmed": [], "milder fallback (0.6, 0.35)": []}
    for h, _, _ in data:
        preview = make_preview(h)
        state = night.prepare(preview)
        out = night.process(preview, state)
        strengths["dropped when harmed"].append(first_unharmed(preview, out, ())[0] or 0.0)
        strengths["milder fallback (0.6, 0.35)"].append(first_unharmed(preview, out, (0.6, 0.35))[0] or 0.0)
    full = [np.clip(night.restore_np(h)[0], 0, 1) for h, _, _ in data]
    for name, ss in strengths.items():
        outs = [h + s * (f - h) for (h, _, _), f, s in zip(data, full, ss)]
        rows[f"auto guard: {name}"] = {
            "day_psnr": float(np.mean([_psnr(o, d) for o, (_, _, d) in zip(outs, data)])),
            "night_fit_psnr": float(np.mean([_fit_psnr(o, n) for o, (_, n, _) in zip(outs, data)])),
            "strengths": ", ".join(f"{s:g}: {ss.count(s)}" for s in sorted(set(ss), reverse=True)),
        }
    cmd = "python benchmarks/night_glow.py --data ../shared/data"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "night_glow.json").write_text(json.dumps({"command": cmd, "rows": rows}, indent=1) + "\n")
    md = [
        "# dcp-night: the glow layer and auto's milder fallback (validation: 36 BSDS500 photos through night_haze)",
        "",
        f"`{cmd}`",
        "",
        "| | PSNR vs day photo | PSNR vs haze-free night (affine fit) | halo called | any harm | real night, halo "
        "| strengths (auto) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        md.append(
            f"| {name} | {r['day_psnr']:.2f} | {r['night_fit_psnr']:.2f} | {r.get('halo_called', '')} "
            f"| {r.get('harm_called', '')} | {r.get('real_night_halo', '')} | {r.get('strengths', '')} |"
        )
    (RESULTS / "night_glow.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
