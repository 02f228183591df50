"""Copy the EMA weights of a training run into the package, with their metadata.

Usage::

    python scripts/ship_weights.py runs/corun_haze corun_haze --description "CORUN, multi-domain haze"

Reads ``RUN/ema.safetensors`` when the run finished, else the EMA of ``RUN/checkpoint.pt`` (a run stopped by
its time limit; the metadata then records the iteration it reached). For UDAIR networks, ``--prototypes`` refits
the source prototype bank from the recipe's own training synthesis (as a finished run does; a checkpoint's bank is
the one it started with), and ``--identifier-from FILE`` copies the separately trained identifier of another UDAIR
file with the same task list (``recipes/udair_identifier.py``: it does not depend on the restoration weights).
Writes
``src/clearsight/models/weights/NAME.safetensors``; the model card (``NAME.md``) is written by hand from the
benchmark's numbers.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch
import yaml

from clearsight.models import build_arch
from clearsight.models._weights import load_weights, save_weights
from clearsight.models.learned import WEIGHTS_DIR


@torch.no_grad()
def _refit_prototypes(net, cfg: dict, root: str | None, batches: int = 16) -> None:
    """The prototype bank from fresh training crops of every task (the trainer's own refit, ``Trainer._finish``)."""
    import tempfile

    from clearsight.train.config import load_config
    from clearsight.train.data import build_train_dataset

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "run.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        tc = load_config(Path(tmp) / "run.yaml")
    data = dataclasses.replace(tc.data, crop=net.config.proto_size, root=root or tc.data.root)
    ds = build_train_dataset(data, tc.seed + 104_729)

    def gen():
        for b in range(batches):
            items = [ds[b * data.batch + k] for k in range(data.batch)]
            yield {
                "degraded": torch.stack([i["degraded"] for i in items]),
                "task": torch.stack([i["task"] for i in items]),
            }

    net.eval().fit_prototypes(gen())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", help="run folder (holds checkpoint.pt or ema.safetensors)")
    ap.add_argument("name", help="file stem: ARCH_TAG, registered as ARCH.TAG")
    ap.add_argument("--description", required=True, help="one line for 'clearsight models'")
    ap.add_argument("--recipe", default="", help="recipe YAML that reproduces the weights")
    ap.add_argument("--prototypes", action="store_true", help="UDAIR: refit the prototype bank (16 batches)")
    ap.add_argument("--identifier-from", default=None, help="UDAIR: copy the identifier of this weights file")
    ap.add_argument("--data", default=None, help="data root for --prototypes (default: the run's data.root)")
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
    model_args = dict(cfg["model"]["args"])
    if args.prototypes:
        _refit_prototypes(net, cfg, args.data)
    if args.identifier_from:
        donor, meta_d = load_weights(args.identifier_from)
        if getattr(donor, "identifier", None) is None or tuple(donor.config.tasks) != tuple(net.config.tasks):
            raise SystemExit(f"{args.identifier_from}: no identifier for the task list {list(net.config.tasks)}")
        net.config.identifier = donor.config.identifier
        net.identifier = donor.identifier
        model_args["identifier"] = list(donor.config.identifier)
        extra = {k: v for k, v in meta_d.items() if k.startswith("identifier_")}  # how it was trained and scored
    else:
        extra = {}
    out = save_weights(
        net, WEIGHTS_DIR / f"{args.name}.safetensors", cfg["model"]["name"], model_args,
        description=args.description, iterations=str(reached), scheduled_iterations=str(cfg["optim"]["iterations"]),
        recipe=args.recipe, config=yaml.safe_dump(cfg, sort_keys=False), **extra,
    )  # fmt: skip
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB), EMA weights at iteration {reached}")


if __name__ == "__main__":
    main()
