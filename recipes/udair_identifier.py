"""Train the degradation identifier of ``udair.allinone`` and store it in the UDAIR weights file.

Usage (the shipped identifier: 45 minutes on a 2-core CPU, bf16)::

    python recipes/udair_identifier.py --data ../shared/data --minutes 45

Why: UDAIR identifies the degradation by the nearest source prototype of its codebook embedding (methods §5.4),
and on our CPU-sized model that embedding separates the eight tasks poorly (47 % on held-out synthetic crops;
a linear probe on the embedding reaches about 53 %, on the degradation-aware encoder's features about 57 %).
Retraining the whole network with a stronger identification loss needs a GPU, so a small convolutional
classifier (:class:`clearsight.models.degclass.DegradationClassifier`, widths ``--widths``) learns the same
task list from the same synthesis and is stored inside the UDAIR file as its ``identifier``: ``identify``,
``clearsight identify`` and test-time adaptation's prototype choice then use it; the restoration weights and the
prototype bank are copied unchanged.

Data: 128-px crops of ``clean/SunHays80``, ``clean/Urban100_x2HR`` and ``clean/Set14`` (UDAIR's training images),
task-balanced batches over UDAIR's presets with mixed depth, random flips; AdamW (lr 2e-3, weight decay 1e-4),
cosine decay over the wall-time budget, bf16 autocast, channels-last. Kodak24 (where ``benchmarks/allinone.py``
measures identification, with its own seed) and CBSD68 (a noise benchmark) are never trained on. The accuracy
printed and stored in the metadata is on Kodak24 crops drawn with another seed than the benchmark's; no model
selection is made on it (the last weights are kept).

Peak memory, measured (maximum resident size, ``/usr/bin/time -f %M``, a 0.5-minute run, batch 64, 128-px crops):
1.1 GB in bf16, 1.3 GB in float32 (``--fp32``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from clearsight.degrade.dataset import SynthesisDataset
from clearsight.models._weights import load_weights, read_metadata, save_weights
from clearsight.models.degclass import DegradationClassifier
from clearsight.models.learned import WEIGHTS_DIR

TRAIN = ("SunHays80", "Urban100_x2HR", "Set14")


def _accuracy(net, ds: SynthesisDataset, tasks: list[str]) -> tuple[float, list[list[int]]]:
    conf = np.zeros((len(tasks), len(tasks)), dtype=int)
    net.eval()
    with torch.no_grad():
        for k in range(0, len(ds), 64):
            items = [ds[i] for i in range(k, min(k + 64, len(ds)))]
            pred = net(torch.stack([i["degraded"] for i in items])).argmax(1)
            for it, p in zip(items, pred.tolist()):
                conf[int(it["task"]), p] += 1
    net.train()
    return float(np.trace(conf) / conf.sum()), conf.tolist()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--weights", default=str(WEIGHTS_DIR / "udair_allinone.safetensors"),
                    help="UDAIR weights file whose task list the identifier learns")  # fmt: skip
    ap.add_argument("--out", default=None, help="UDAIR file to write with the identifier (default: --weights)")
    ap.add_argument("--minutes", type=float, default=45)
    ap.add_argument("--widths", default="24,48,96,128")
    ap.add_argument("--batch", type=int, default=64, help="a multiple of the task count keeps batches balanced")
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--val-items", type=int, default=400)
    ap.add_argument("--fp32", action="store_true", help="no bf16 autocast (a CPU without native bf16)")
    args = ap.parse_args()

    udair, meta = load_weights(args.weights)
    tasks = list(udair.config.tasks)
    if not tasks:
        raise SystemExit(f"{args.weights}: a UDAIR model without a task list")
    widths = tuple(int(w) for w in args.widths.split(","))
    root = Path(args.data) / "clean"
    presets = {t: 1.0 for t in tasks}
    train = SynthesisDataset([root / d for d in TRAIN], presets, crop=args.crop, length=10**9, seed=args.seed + 11,
                             depth="mixed", balanced=True, cache=10**9)  # fmt: skip
    val = SynthesisDataset(root / "Kodak24", presets, crop=args.crop, length=args.val_items, seed=999,
                           depth="mixed", balanced=True)  # fmt: skip
    torch.manual_seed(args.seed)
    net = DegradationClassifier(widths, classes=len(tasks)).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    loader = DataLoader(train, batch_size=args.batch, num_workers=args.workers, persistent_workers=args.workers > 0)
    budget, t0, it, losses = args.minutes * 60, time.time(), 0, []
    for batch in loader:
        frac = (time.time() - t0) / budget
        if frac >= 1:
            break
        for g in opt.param_groups:
            g["lr"] = args.lr * 0.5 * (1 + np.cos(np.pi * frac))
        x = batch["degraded"]
        if torch.rand(()) < 0.5:
            x = x.flip(-1)
        if torch.rand(()) < 0.5:
            x = x.flip(-2)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=not args.fp32):
            loss = F.cross_entropy(net(x.contiguous(memory_format=torch.channels_last)).float(), batch["task"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        it += 1
        if it % 100 == 0:
            print(f"it {it} loss {np.mean(losses[-100:]):.3f} ({time.time() - t0:.0f} s)", flush=True)
    net = net.float().to(memory_format=torch.contiguous_format).eval()
    acc, conf = _accuracy(net, val, tasks)
    print(f"held-out accuracy (Kodak24, {len(val)} crops): {acc:.4f}")
    for t, row in zip(tasks, conf):
        print(f"  {t:>10}: {row}")

    # the UDAIR file with the identifier: same restoration weights and prototypes, the classifier added
    uargs = json.loads(meta["args"])
    uargs["identifier"] = list(widths)
    from clearsight.models import build_arch

    full = build_arch(meta["arch"], **uargs)
    state = {k: v for k, v in udair.state_dict().items() if not k.startswith("identifier.")}
    state.update({f"identifier.{k}": v for k, v in net.state_dict().items()})
    full.load_state_dict(state, strict=True)
    keep = {k: v for k, v in read_metadata(args.weights).items() if k not in ("arch", "args")}
    keep.update(
        identifier_recipe="recipes/udair_identifier.py",
        identifier_iterations=str(it),
        identifier_minutes=f"{(time.time() - t0) / 60:.1f}",
        identifier_heldout_accuracy=f"{acc:.4f}",
        identifier_confusion=json.dumps(conf),
    )
    path = save_weights(full, args.out or args.weights, meta["arch"], uargs, **keep)
    print("wrote", path)


if __name__ == "__main__":
    main()
