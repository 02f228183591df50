"""Does UDAIR's test-time adaptation help, and at which learning rate? Measured on a validation split.

Usage::

    python benchmarks/udair_tta.py --data ../shared/data [--model udair.allinone] [--items 56]

Synthetic crops of ``clean/Kodak24`` (validation images, never trained on; not a benchmark set), every preset
the model knows, task-balanced; PSNR without TTA and with TTA (5 steps) at several learning rates. Writes
``benchmarks/results/udair_tta.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from clearsight.degrade.dataset import SynthesisDataset
from clearsight.metrics import psnr
from clearsight.models import weights_file
from clearsight.models._weights import load_weights


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--model", default="udair.allinone")
    ap.add_argument("--items", type=int, default=56)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    args = ap.parse_args()
    net, _ = load_weights(weights_file(args.model))
    tasks = list(net.config.tasks)
    ds = SynthesisDataset(Path(args.data) / "clean/Kodak24", {t: 1.0 for t in tasks}, crop=128, length=args.items,
                          seed=99, depth="mixed", balanced=True)  # fmt: skip
    items = [ds[i] for i in range(len(ds))]
    rows = {}
    for lr in (0.0, 1e-3, 1e-2, 3e-2):
        ps = []
        for it in items:
            x = it["degraded"][None]
            if lr:
                y = net.restore_tta(x, lr=lr)
            else:
                with torch.no_grad():
                    y = net(x)
            ps.append(float(psnr(y.clamp(0, 1), it["clean"][None])))
        rows["no TTA" if not lr else f"TTA lr {lr:g}"] = float(np.mean(ps))
        print(rows, flush=True)
    cmd = f"python benchmarks/udair_tta.py --data {args.data} --model {args.model} --items {args.items}"
    out = Path(args.out)
    (out / "udair_tta.json").write_text(json.dumps({"command": cmd, "psnr": rows}, indent=1) + "\n")
    md = [f"# UDAIR test-time adaptation on validation crops ({args.model})", "", f"Command: `{cmd}`", "",
          "| | PSNR (dB) |", "|---|---|", *[f"| {k} | {v:.3f} |" for k, v in rows.items()]]  # fmt: skip
    (out / "udair_tta.md").write_text("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
