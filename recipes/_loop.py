"""What the single-network training scripts in ``recipes/`` share: options, set-up, the schedule, EMA, checkpoints.

Used by ``ffdnet_denoise.py`` and ``lowlight_enhance.py`` (run them from the repository root or from
``recipes/``; Python puts the script's folder on the path).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch


def add_training_options(
    ap: argparse.ArgumentParser, out: str, iters: int, batch: int, crop: int, val_every: int, lr: float = 1e-3
) -> None:
    """The options every such recipe takes, with its own defaults."""
    ap.add_argument("--out", default=out, help="run folder (checkpoint, logs, best weights)")
    ap.add_argument("--preset", default="cpu", choices=["cpu", "paper", "tiny", "fast"], help="fast: FFDNet only")
    ap.add_argument("--iters", type=int, default=iters)
    ap.add_argument("--batch", type=int, default=batch)
    ap.add_argument("--crop", type=int, default=crop)
    ap.add_argument("--lr", type=float, default=lr)
    ap.add_argument("--val-every", type=int, default=val_every)
    ap.add_argument("--ckpt-every", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (leave a core for other work)")
    ap.add_argument("--time-limit", type=float, default=None, metavar="SECONDS")
    ap.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    ap.add_argument("--seed", type=int, default=0)


def set_up(args: argparse.Namespace) -> tuple[Path, bool]:
    """Threads, the run folder and the seed; returns ``(run folder, whether to use bf16 autocast)``."""
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    return out, not args.fp32 and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def learning_rate(it: int, iters: int, peak: float, warmup: int, floor: float = 1e-5) -> float:
    """Cosine from ``peak`` to ``floor`` over ``iters``, with a linear warm-up of ``warmup`` iterations."""
    lr = floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * it / iters))
    return lr * min(1.0, (it + 1) / warmup)


@torch.no_grad()
def update_ema(ema: torch.nn.Module, net: torch.nn.Module, it: int, cap: float) -> None:
    """``ema <- decay * ema + (1 - decay) * net`` with ``decay = min(cap, (1 + it) / (10 + it))``."""
    decay = min(cap, (1 + it) / (10 + it))
    for pe, p in zip(ema.parameters(), net.parameters()):
        pe.lerp_(p.detach(), 1 - decay)


def save_checkpoint(out: Path, state: dict) -> None:
    """Write ``out/checkpoint.pt`` atomically (through a temporary file)."""
    torch.save(state, out / "checkpoint.tmp")
    (out / "checkpoint.tmp").replace(out / "checkpoint.pt")


def after_step(n: int, args: argparse.Namespace, out: Path, t0: float, best: float, validate, key: str, keep,
               state) -> tuple[float, bool]:  # fmt: skip
    """Validation, keeping the best weights, checkpoints and the time limit after iteration ``n`` (1-based).

    ``validate()`` returns a dict of scores; ``keep(n, scores)`` writes the best weights when ``scores[key]``
    beats ``best``; ``state(best)`` is the checkpoint. Returns ``(best, stop)``.
    """
    import json
    import time

    if n % args.val_every == 0 or n == args.iters:
        res = validate()
        print(f"val {n}: " + json.dumps({k: round(v, 3) for k, v in res.items()}), flush=True)
        with open(out / "val.jsonl", "a") as fh:
            fh.write(json.dumps({"iteration": n, **res}) + "\n")
        if res[key] > best:
            best = res[key]
            keep(n, res)
    stop = args.time_limit is not None and time.time() - t0 > args.time_limit
    if n % args.ckpt_every == 0 or n == args.iters or stop:
        save_checkpoint(out, state(best))
    if stop:
        print(f"time limit: stopped at iteration {n}; run again to resume")
    return best, stop
