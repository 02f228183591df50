"""Copy the EMA weights of a training run into the package, with their metadata.

Usage::

    python scripts/ship_weights.py runs/corun_haze corun_haze --description "CORUN, multi-domain haze"

Reads ``RUN/ema.safetensors`` when the run finished, else the EMA of ``RUN/checkpoint.pt`` (a run stopped by
its time limit; the metadata then records the iteration it reached). Writes
``src/clearsight/models/weights/NAME.safetensors``; the model card (``NAME.md``) is written by hand from the
benchmark's numbers.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import yaml

from clearsight.models import build_arch
from clearsight.models._weights import load_weights, save_weights
from clearsight.models.learned import WEIGHTS_DIR


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", help="run folder (holds checkpoint.pt or ema.safetensors)")
    ap.add_argument("name", help="file stem: ARCH_TAG, registered as ARCH.TAG")
    ap.add_argument("--description", required=True, help="one line for 'clearsight models'")
    ap.add_argument("--recipe", default="", help="recipe YAML that reproduces the weights")
    args = ap.parse_args()
    run = Path(args.run)
    if (run / "ema.safetensors").is_file():
        net, meta = load_weights(run / "ema.safetensors")
        cfg = yaml.safe_load(meta["config"])
        reached = int(meta["iterations"])
    else:
        state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)
        cfg = state["config"]
        net = build_arch(cfg["model"]["name"], **cfg["model"]["args"])
        net.load_state_dict(state["ema"])
        reached = int(state["iteration"])
    out = save_weights(
        net, WEIGHTS_DIR / f"{args.name}.safetensors", cfg["model"]["name"], cfg["model"]["args"],
        description=args.description, iterations=str(reached), scheduled_iterations=str(cfg["optim"]["iterations"]),
        recipe=args.recipe, config=yaml.safe_dump(cfg, sort_keys=False),
    )  # fmt: skip
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB), EMA weights at iteration {reached}")


if __name__ == "__main__":
    main()
