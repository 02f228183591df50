"""Train the IRP predictor shipped as ``src/clearsight/models/weights/irp_dynamic.safetensors``.

Usage (the shipped file, three stages: 8000 iterations from scratch on a lent H100, about 4.5 minutes of labelling
on 16 cores and 5 of training; then two fine-tunes on the 2-core CPU: about 10 minutes of labelling and 0.43 s per
iteration, then 18 minutes of labelling (dead leaves, 40 more photos) and 0.85 s per iteration on whole scenes)::

    python recipes/irp_dynamic.py --data ../shared/data --cache runs/irp7 --scenes 7 --iters 8000 --device cuda \
        --out stage1.safetensors
    python recipes/irp_dynamic.py --data ../shared/data --cache runs/irp --scenes 7 --iters 1500 --lr 5e-4 \
        --global-rank 0.5 --val-every 250 --init stage1.safetensors --out stage2.safetensors
    python recipes/irp_dynamic.py --data ../shared/data --cache runs/irp --scenes 7 --iters 1500 --lr 5e-4 \
        --global-rank 0.5 --val-every 500 --dead-leaves 80 --keep last --init stage2.safetensors --crop 192 \
        --extra-clean ../shared/data/rain/synthetic_pairs/clean ../shared/data/haze/sots_indoor/clean

1. Bursts (``clearsight.irp.data.make_bursts``): 192-px crops of ``clean/SunHays80`` and ``clean/Urban100_x2HR``
   (``--scenes`` per image, seed 0) for training and of ``clean/Set14`` (2 per image, seed 1) for model selection,
   each captured at 8 settings from 1 to 64 ms at constant brightness and labelled with the best SSIM over the
   classical restorer pool. Kodak24 and CBSD68 are never touched: ``benchmarks/irp.py`` tests on them.
   Bursts are cached as ``.npz`` in ``--cache``; a second run reuses them (rebuilt if the simulator changed).
   ``--dead-leaves N`` adds N procedural dead-leaves images (``clearsight.degrade.dead_leaves``, image ``i`` from
   seed ``i``, written once to ``CACHE/dead_leaves/``; scenes drawn with seed 2) as more training scenes.
   ``--photo-leaves N`` adds N collages of leaves cut from the training photos (``photo_leaves``, written to
   ``CACHE/photo_leaves/``; 2 scenes each, seed 3); tried in session 19, it did not help (``docs/irp.md`` section 5).
   ``--extra-clean PATH...`` adds more clean photos (``--scenes`` each, seed 4); copies of Kodak24, CBSD68 or Set14
   images among them (some public sets reuse BSD photos) are found by ``near_duplicates`` and skipped.
2. ``IRPNet`` trained from scratch: each batch holds 2 whole bursts (16 frames, one random ``--crop``-px crop per
   burst; 160 by default, 192 = the whole scene, whose label it is) and 16 single frames of other scenes, with flips
   and 90-degree turns; AdamW (lr 2e-3, weight decay 1e-4), cosine schedule, bf16 autocast; loss = L1 to the label +
   0.5 x a pairwise logistic ranking loss between the frames of the same burst (so it learns to order degradations,
   not scenes, while batch-norm statistics and the absolute level still see many scenes); ``--global-rank W`` adds W
   x the same ranking loss over every pair of the batch, across scenes too (the overall SRCC is mostly a ranking of
   scenes). The weights with the best mean of the validation SRCC and within-burst SRCC are kept (with ``--init``,
   the starting weights compete too), or with ``--keep last`` those of the last iteration.

``--fp32`` trains and evaluates without bf16 autocast (a CPU without native bf16). Peak memory, measured (maximum
resident size, ``/usr/bin/time -f %M``, 30 iterations of the third command above with ``--iters 30``, 2-core CPU):
2.7 GB in bf16, labelling included (560 training scenes simulated and labelled in the same run: 30 minutes while
the CPU was shared with other work), 2.5 GB in float32 (bursts read from the cache).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from clearsight.degrade.dataset import image_files, near_duplicates
from clearsight.degrade.dead_leaves import dead_leaves, photo_leaves
from clearsight.io import save_image
from clearsight.irp.data import Bursts, cached_bursts, load_clean, make_bursts
from clearsight.metrics.ranking import plcc, srcc
from clearsight.models._weights import save_weights
from clearsight.models.irp import IRPConfig, IRPNet
from clearsight.models.learned import WEIGHTS_DIR


def bursts(
    cache: Path, name: str, files, scenes: int, seed: int, workers: int | None = None, longest: int = 512
) -> Bursts:
    return cached_bursts(
        cache / f"{name}.npz",
        lambda: make_bursts(files, scenes, crop=192, seed=seed, workers=workers, longest=longest),
    )


def generated_files(folder: Path, stem: str, n: int, make) -> list[Path]:
    """``n`` generated images ``folder/{stem}_{i:04d}.png``, image ``i`` made once by ``make(rng)`` with a generator
    seeded ``i`` (later runs reuse the files)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(n):
        path = folder / f"{stem}_{i:04d}.png"
        if not path.is_file():
            img = make(np.random.default_rng(i))
            save_image(path, (img * 255 + 0.5).astype(np.uint8))  # atomic: a killed run leaves no half-written file
        files.append(path)
    return files


def dead_leaves_files(folder: Path, n: int) -> list[Path]:
    """``n`` dead-leaves images written once to ``folder`` (image ``i`` drawn from seed ``i``)."""
    return generated_files(folder, "dead_leaves", n, lambda rng: dead_leaves(512, rng))


def photo_leaves_files(folder: Path, n: int, photos: list[Path]) -> list[Path]:
    """``n`` photo-leaves collages of the training photos written once to ``folder`` (image ``i`` from seed ``i``)."""
    textures: list[np.ndarray] = []  # the photos are loaded only if a collage has to be made

    def make(rng: np.random.Generator) -> np.ndarray:
        if not textures:
            textures.extend(load_clean(f, 1024) for f in photos)
        return photo_leaves(512, textures, rng)

    return generated_files(folder, "photo_leaves", n, make)


def concat(parts: list[Bursts]) -> Bursts:
    """The scenes of several sets as one set."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    arrays = {k: np.concatenate([getattr(b, k) for b in parts]) for k, v in vars(first).items()
              if isinstance(v, np.ndarray)}  # fmt: skip
    sources = [f for b in parts for f in b.source]
    return Bursts(**arrays, source=sources, restorers=first.restorers, version=first.version)


def evaluate(net: IRPNet, b: Bursts, amp: bool = True) -> dict:
    net.eval()
    dev = next(net.parameters()).device
    x = torch.from_numpy(b.frames.reshape(-1, *b.frames.shape[2:])).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
        pred = torch.cat([net(x[i : i + 64].to(dev)).float().cpu() for i in range(0, len(x), 64)]).numpy()
    y = b.irp.reshape(-1)
    per_scene = [srcc(p, t) for p, t in zip(pred.reshape(b.irp.shape), b.irp) if np.ptp(t) > 0]
    pick = pred.reshape(b.irp.shape).argmax(1)  # the frame `select` would keep from each burst
    gap = b.best_psnr.max(1) - b.best_psnr[np.arange(len(pick)), pick]
    net.train()
    return {"srcc": srcc(pred, y), "plcc": plcc(pred, y), "srcc_within_burst": float(np.mean(per_scene)),
            "selection_gap_db": float(gap.mean())}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--cache", default="runs/irp")
    ap.add_argument("--iters", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--crop", type=int, default=160)
    ap.add_argument("--bursts", type=int, default=2, help="whole bursts per batch (0: random frames only)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scenes", type=int, default=4, help="training scenes per clean image")
    ap.add_argument("--workers", type=int, default=None, help="processes that simulate bursts (default: all cores)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--init", help="start from these IRP weights (fine-tuning) instead of from scratch")
    ap.add_argument(
        "--global-rank",
        type=float,
        default=0.0,
        help="weight of a ranking loss over every pair of the batch, across scenes too (default: 0)",
    )
    ap.add_argument("--val-every", type=int, default=200)
    ap.add_argument(
        "--longest",
        type=int,
        nargs="+",
        default=[512],
        help="training images are downscaled to this longest side before the 192-px scenes are cut; several values "
        "give one set of scenes per scale (a smaller side puts more of each photo, at a denser texture, into a scene)",
    )
    ap.add_argument(
        "--dead-leaves",
        type=int,
        default=0,
        help="add N procedural dead-leaves images (512 px, clearsight.degrade.dead_leaves) to the training photos, "
        "--scenes scenes each: content from smooth to dense fine texture that the photo corpus lacks",
    )
    ap.add_argument(
        "--photo-leaves",
        type=int,
        default=0,
        help="add N photo-leaves collages (clearsight.degrade.dead_leaves.photo_leaves: leaves cut from the training "
        "photos), 2 scenes each: new arrangements of natural texture, so a scene's level cannot be learnt by "
        "recognising the photo (an experiment that did not help; docs/irp.md section 5)",
    )
    ap.add_argument(
        "--extra-clean",
        nargs="+",
        default=[],
        metavar="PATH",
        help="more clean photos (files or folders) as training scenes, --scenes each; copies of the held-out "
        "(Kodak24, CBSD68) and validation (Set14) images are found and skipped",
    )
    ap.add_argument(
        "--keep",
        choices=("best", "last"),
        default="best",
        help="save the weights with the best validation score (default) or those of the last iteration",
    )
    ap.add_argument("--out", default=str(WEIGHTS_DIR / "irp_dynamic.safetensors"))
    ap.add_argument("--fp32", action="store_true", help="no bf16 autocast (a CPU without native bf16)")
    args = ap.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():  # before the long burst labelling
        raise SystemExit("error: --device cuda, but this torch sees no CUDA GPU (use --device cpu)")
    data, cache = Path(args.data), Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    train_files = image_files([data / "clean/SunHays80", data / "clean/Urban100_x2HR"])
    parts = []
    for longest in args.longest:  # 512: the original set (seed 0); other scales draw other scenes (seed = scale)
        name = "train" if args.scenes == 4 else f"train{args.scenes}"
        if longest != 512:
            name += f"_l{longest}"
        seed = 0 if longest == 512 else longest
        parts.append(bursts(cache, name, train_files, args.scenes, seed, args.workers, longest))
    if args.dead_leaves:
        leaves = dead_leaves_files(cache / "dead_leaves", args.dead_leaves)
        name = f"dead_leaves{args.dead_leaves}_s{args.scenes}"
        parts.append(bursts(cache, name, leaves, args.scenes, 2, args.workers))
    if args.photo_leaves:
        leaves = photo_leaves_files(cache / "photo_leaves", args.photo_leaves, train_files)
        parts.append(bursts(cache, f"photo_leaves{args.photo_leaves}", leaves, 2, 3, args.workers))
    if args.extra_clean:
        extra = image_files(args.extra_clean)
        held = image_files([data / "clean/Kodak24", data / "clean/CBSD68", data / "clean/Set14"])
        copies = near_duplicates(extra, held)
        for c, r in copies.items():
            print(f"--extra-clean: skipping {c}, a copy of {r}")
        extra = [f for f in extra if f not in copies]
        if not extra:
            raise SystemExit("error: --extra-clean: no images left")
        key = hashlib.sha1("\n".join(str(f.resolve()) for f in extra).encode()).hexdigest()[:8]
        parts.append(bursts(cache, f"extra{len(extra)}_{key}_s{args.scenes}", extra, args.scenes, 4, args.workers))
    train = concat(parts)
    val = bursts(cache, "val", image_files([data / "clean/Set14"]), 2, 1, args.workers)
    lo, hi = train.irp.min(), train.irp.max()
    print(f"train {train.frames.shape[:2]} val {val.frames.shape[:2]}; label range {lo:.3f}..{hi:.3f}")

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    dev = torch.device(args.device)
    if args.init:
        from clearsight.models._weights import load_weights

        net = load_weights(args.init)[0].to(dev, memory_format=torch.channels_last).train()
    else:
        net = IRPNet(IRPConfig()).to(dev, memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 0.5 * (1 + math.cos(math.pi * min(i / args.iters, 1))))
    frames = torch.from_numpy(train.frames)  # (S, N, H, W, 3) uint8
    labels = torch.from_numpy(train.irp).float()  # (S, N)
    n_frames, size = frames.shape[1], frames.shape[2]
    if not 32 <= args.crop <= size:
        raise SystemExit(f"error: --crop {args.crop}: must be between 32 and the scene size ({size} px)")
    # half of each batch is whole bursts (the ranking loss compares frames of one scene), half single frames of
    # other scenes (so batch-norm statistics and the absolute level see many scenes)
    per = min(args.bursts, args.batch // n_frames)
    singles = args.batch - per * n_frames
    if per == 0:  # plain random frames: the ranking loss compares every pair of the batch
        same = torch.ones(args.batch, args.batch, dtype=torch.bool)
    else:
        same = torch.zeros(args.batch, args.batch, dtype=torch.bool)
        same[: per * n_frames, : per * n_frames] = torch.block_diag(*[torch.ones(n_frames, n_frames)] * per).bool()
    same = same.to(dev)
    best, best_state, log = -1.0, None, []

    def keep_if_best(m: dict) -> None:
        nonlocal best, best_state
        score = (m["srcc"] + m["srcc_within_burst"]) / 2
        if score > best:
            best, best_state = score, {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}

    if args.init:  # the starting weights compete for "best" too
        m = evaluate(net, val, not args.fp32)
        print(f"start: val SRCC {m['srcc']:.4f} within-burst {m['srcc_within_burst']:.4f}", flush=True)
        keep_if_best(m)
    t0 = time.time()
    for it in range(1, args.iters + 1):
        scenes = rng.choice(len(frames), per + singles, replace=False)
        which = np.concatenate([np.repeat(scenes[:per], n_frames), scenes[per:]])
        frame_idx = np.concatenate([np.tile(np.arange(n_frames), per), rng.integers(0, n_frames, singles)])
        crops = []
        for k, sc in enumerate(scenes):
            y0, x0 = rng.integers(0, size - args.crop + 1, 2)
            if k < per:
                crops.append(frames[sc, :, y0 : y0 + args.crop, x0 : x0 + args.crop])
            else:
                crops.append(
                    frames[sc, frame_idx[per * n_frames + k - per], y0 : y0 + args.crop, x0 : x0 + args.crop][None]
                )
        x = torch.cat(crops).permute(0, 3, 1, 2).float() / 255
        if rng.random() < 0.5:
            x = x.flip(-1)
        x = torch.rot90(x, int(rng.integers(4)), (2, 3)).to(dev).contiguous(memory_format=torch.channels_last)
        t = labels[torch.from_numpy(which), torch.from_numpy(frame_idx)].to(dev)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=not args.fp32):
            p = net(x).float()
        diff_p = p[:, None] - p[None]
        diff_t = t[:, None] - t[None]
        pair = F.softplus(-torch.sign(diff_t) * diff_p * 20)  # logistic ranking loss of every pair
        every = diff_t.abs() > 0.005
        mask = every & same
        rank = pair[mask].mean() if mask.any() else p.sum() * 0
        loss = (p - t).abs().mean() + 0.5 * rank
        if args.global_rank > 0:
            loss = loss + args.global_rank * pair[every].mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        if it % args.val_every == 0 or it == args.iters:
            m = evaluate(net, val, not args.fp32)
            log.append({"iter": it, "loss": loss.item(), **m})
            print(f"it {it} loss {loss.item():.4f} val SRCC {m['srcc']:.4f} PLCC {m['plcc']:.4f} "
                  f"within-burst {m['srcc_within_burst']:.4f} selection gap {m['selection_gap_db']:.2f} dB "
                  f"({time.time() - t0:.0f} s)", flush=True)  # fmt: skip
            keep_if_best(m)
    net = net.cpu()
    if args.keep == "best":
        net.load_state_dict(best_state)
    final = evaluate(net, val, not args.fp32)
    path = save_weights(
        net, args.out, "irp", {"config": None, **net.config.to_dict()},
        name="irp.dynamic",
        description="IRP predictor: restoration potential (best pool SSIM) of a frame, trained on simulated bursts",
        recipe=f"recipes/irp_dynamic.py --iters {args.iters} --bursts {args.bursts} --scenes {args.scenes} "
        f"--crop {args.crop} --seed {args.seed} "
        f"--lr {args.lr} --global-rank {args.global_rank} "
        f"--longest {' '.join(map(str, args.longest))}"
        + (f" --dead-leaves {args.dead_leaves}" if args.dead_leaves else "")
        + (f" --photo-leaves {args.photo_leaves}" if args.photo_leaves else "")
        + (f" --extra-clean {' '.join(args.extra_clean)}" if args.extra_clean else "")
        + (f" --init {args.init}" if args.init else "")
        + (" --keep last" if args.keep == "last" else ""),
        iterations=args.iters,
        val=final, log=log,
        label="best SSIM over the classical pool (none, NLM, Wiener with the true kernel, both orders)",
    )  # fmt: skip
    print(json.dumps(final), "->", path)


if __name__ == "__main__":
    main()
