"""Choose ``dcp-dust``'s white balance on validation: the ``sand_dust`` synthesis of clean photos (training material).

    python benchmarks/dust.py --data ../shared/data

The ``sand_dust`` preset (a yellow-orange airlight over estimated depth, blue scattered and absorbed more than red)
on the first 12 ``clean/Kodak24`` photos and every 32nd ``clean/BSDS500`` photo from the second (24 in all; never a
benchmark folder), one draw each with a fixed seed. For each method: PSNR / SSIM against the clean photo, and how
often the judge (``clearsight.judging``) calls the output harmed against its dusty input. Rows: the input, ``dcp``
(its airlight, no balance), ``dcp-dust`` at several ``balance`` values (the shipped one marked), and the shipped one
guarded by ``auto`` itself, its recogniser replaced by "sand-dust found" (judged on the preview; a harmed result
left out, or retried at the milder strengths of ``Auto.milder``). Writes ``benchmarks/results/dust.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from clearsight.degrade.dataset import image_files
from clearsight.degrade.depth import estimate_depth
from clearsight.degrade.pipeline import Degrader
from clearsight.infer import restore_array
from clearsight.io import read_image
from clearsight.judging import harm_counts, judge_np
from clearsight.metrics import psnr, ssim
from clearsight.models.auto import Auto
from clearsight.priors.dcp import DCP
from clearsight.priors.dust import DustConfig, DustDCP
from clearsight.recognition import LABELS, Recognition

RESULTS = Path(__file__).resolve().parent / "results"
BALANCES = (0.0, 0.5, 0.7, 0.85, 1.0, 1.2)


def _pairs(root: Path, seed: int = 5) -> list[tuple[str, np.ndarray, np.ndarray]]:
    files = image_files(root / "clean/Kodak24")[:12] + image_files(root / "clean/BSDS500")[1::32]
    deg, g = Degrader.from_config("sand_dust"), torch.Generator().manual_seed(seed)
    out = []
    for f in files:
        x = read_image(f)[0][None]
        y, _ = deg(x, depth=estimate_depth(x), generator=g)
        dusty = np.round(y[0].permute(1, 2, 0).numpy().clip(0, 1) * 255) / 255  # as a file would hold it
        out.append((f.name, x[0].permute(1, 2, 0).numpy(), dusty.astype(np.float32)))
    return out


def _score(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    ta, tb = (torch.from_numpy(np.ascontiguousarray(v)).permute(2, 0, 1)[None] for v in (a, b))
    return float(psnr(ta, tb)), float(ssim(ta, tb))


class _DustFound(Auto):
    """``auto`` with its recogniser replaced by "sand-dust found": the guard, its milder strengths and the blend are
    ``auto``'s own."""

    def _recognise(self, arr: np.ndarray) -> Recognition:
        return Recognition({k: float(k == "sand_dust") for k in LABELS})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="the shared data folder")
    args = ap.parse_args()
    t0 = time.perf_counter()
    pairs = _pairs(Path(args.data))
    shipped = DustConfig().balance
    methods = {"input": None, "dcp": DCP()}
    for b in BALANCES:
        methods[f"dcp-dust, balance {b:g}" + (" (shipped)" if b == shipped else "")] = DustDCP(balance=b)
    milder = ", ".join(f"{s:g}" for s in Auto.milder["dcp-dust"])
    methods[f"dcp-dust, balance {shipped:g}, guarded: dropped when harmed"] = _DustFound(milder=False)
    methods[f"dcp-dust, balance {shipped:g}, guarded: milder when harmed ({milder})"] = _DustFound()
    rows = {}
    for name, restorer in methods.items():
        scores, harms, counts = [], 0, {}
        for _, clean, dusty in pairs:
            out = dusty if restorer is None else restore_array(dusty, restorer)[0]
            scores.append(_score(out, clean))
            v = judge_np(dusty, out)
            harms += not v.ok
            for h in v.harms:
                counts[h] = counts.get(h, 0) + 1
        rows[name] = {"psnr": float(np.mean([s[0] for s in scores])), "ssim": float(np.mean([s[1] for s in scores])),
                      "harm_rate": harms / len(pairs), "harms": counts}  # fmt: skip
        print(name, rows[name], flush=True)
    res = {"command": "python benchmarks/dust.py --data ../shared/data", "images": [p[0] for p in pairs],
           "rows": rows, "seconds": time.perf_counter() - t0}  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "dust.json").write_text(json.dumps(res, indent=1))
    lines = ["# `dcp-dust` on validation: the `sand_dust` synthesis of 24 clean photos", "",
             f"`{res['command']}` (12 Kodak24 and 12 BSDS500 photos, one draw each; PSNR / SSIM against the clean "
             "photo; judge: the share of outputs called harmed against their dusty input)", "",
             "| method | PSNR | SSIM | judge harm rate | harms named |", "|---|---|---|---|---|"]  # fmt: skip
    for name, r in rows.items():
        lines.append(f"| {name} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['harm_rate']:.0%} | "
                     f"{harm_counts(r['harms']) or '-'} |")  # fmt: skip
    (RESULTS / "dust.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
