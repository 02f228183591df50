"""``clearsight train`` and ``clearsight adapt``: train a network from a recipe; adapt one to a camera."""

from __future__ import annotations

import argparse
import os


def add_train(sub) -> None:
    """The ``train`` sub-command's parser."""
    tr = sub.add_parser(
        "train",
        help="train a network from a YAML config (resumes if its run folder holds a checkpoint)",
        description="Train a network as a YAML config says (see recipes/). Fields can be overridden with "
        "dotted key=value pairs, e.g. 'optim.iterations=2000 data.root=../shared/data'. Starting a run whose "
        "'out' folder holds a checkpoint resumes it exactly. Under torchrun (e.g. 'torchrun --nproc_per_node 2 "
        "-m clearsight train CONFIG') the same command trains data-parallel (gloo on CPU, NCCL on GPU).",
    )
    tr.add_argument("config", help="YAML config (recipes/*.yaml)")
    tr.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    tr.add_argument("--time-limit", type=float, metavar="SECONDS", help="stop cleanly with a checkpoint after this")
    tr.add_argument("--stop-after", type=int, metavar="N", help="stop after N iterations in total (resumable)")
    tr.add_argument("--no-progress", action="store_true", help="no progress bar (logs still written)")
    tr.add_argument(
        "--max-memory",
        metavar="SIZE",
        help="memory budget of the training process, e.g. 8G; a batch that would not fit runs as micro-batches with "
        "the same gradient ('off': never split; default: the config's max_memory, auto = 60%% of available memory)",
    )
    tr.set_defaults(_run=run_train)


def add_adapt(sub) -> None:
    """The ``adapt`` sub-command's parser."""
    ad = sub.add_parser(
        "adapt",
        help="adapt a learned model to a folder of your own unlabeled images",
        description="Adapt a learned restorer to your camera: point it at a folder of unlabeled degraded images "
        "(every fifth is held out to show progress) and get a weights file for 'clearsight restore --weights'. "
        "Re-running the same command resumes an interrupted run (OUT.ckpt).",
    )
    ad.add_argument("--model", default="corun.haze", help="learned model name or weights file (default: corun.haze)")
    ad.add_argument("--target", required=True, metavar="DIR", help="folder of your unlabeled images")
    ad.add_argument("--out", required=True, metavar="FILE.safetensors", help="adapted weights to write")
    ad.add_argument(
        "--method",
        default="colabator",
        choices=["colabator", "coral", "rsr"],
        help="colabator (default): EMA-teacher pseudo-labels; coral: covariance alignment of synthetic and real "
        "features; rsr: RSR/CID's two phases (RSR networks only; frozen encoder)",
    )
    ad.add_argument(
        "--phases",
        default="invariant,align",
        help="rsr: phase order, 'invariant,align' (RSR, default) or 'align,invariant' (CID), or one of them",
    )
    ad.add_argument("--no-reweight", action="store_true", help="rsr: uniform sample weights (ablation)")
    ad.add_argument("--align-weight", type=float, default=10.0, help="weight of the CORAL term (default 10)")
    ad.add_argument(
        "--quality",
        default="sharpness",
        choices=["sharpness", "brisque", "naturalness"],
        help="colabator: the label pool's global quality score (default: sharpness); naturalness = -(NIQE + "
        "BRISQUE/10) on whole images, for --views crop",
    )
    ad.add_argument(
        "--strengths",
        metavar="S,S,...",
        help="colabator: offer the pool the best (by --quality) of the teacher's label at these dehazing strengths, "
        "e.g. 0.85,1,1.15 (1 = as the teacher restores; never past clean photos' haze level)",
    )
    ad.add_argument("--iters", type=int, default=500, help="adaptation iterations (default: 500)")
    ad.add_argument("--clean", metavar="DIR", help="clean photos for synthetic pairs that anchor the model")
    ad.add_argument("--size", type=int, default=128, help="training resolution of the target images (default 128)")
    ad.add_argument(
        "--views",
        default="resize",
        choices=["resize", "crop"],
        help="training views of your images: resize (default) squeezes each to SIZE x SIZE; crop keeps them at the "
        "scale restore runs at and trains on SIZE-px crops of the teacher's whole-image labels",
    )
    ad.add_argument("--batch", type=int, default=2, help="images per iteration (default: 2)")
    ad.add_argument("--lr", type=float, default=5e-5, help="learning rate (default: 5e-5)")
    ad.add_argument(
        "--ema",
        type=float,
        help="teacher EMA decay (default: 1 - 10/iters, at most 0.999, as Colabator's 0.999 suits 5000-iteration runs)",
    )
    ad.add_argument("--eval-every", type=int, default=100, metavar="N", help="held-out report every N iterations")
    ad.add_argument(
        "--keep",
        default="last",
        choices=["last", "best"],
        help="which weights to write: last (default) or best: every --eval-every iterations, and before adapting, "
        "8 of your training images are restored as 'restore' runs them and the teacher with the lowest mean "
        "NIQE + BRISQUE/10 is kept (the unadapted model if adapting never helped; about 1.5 s per image and check)",
    )
    ad.add_argument(
        "--ckpt-every", type=int, default=50, metavar="N", help="write the resume checkpoint every N iterations (50)"
    )
    ad.add_argument("--seed", type=int, default=0)
    ad.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    ad.add_argument(
        "--max-memory",
        default="auto",
        metavar="SIZE",
        help="memory budget, e.g. 4G; a batch that would not fit runs as micro-batches with the same gradient "
        "('off': never split; default auto = 60%% of the available memory); the plan goes to OUT.memory.json",
    )
    ad.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    ad.set_defaults(_run=run_adapt)


def run_train(args: argparse.Namespace) -> int:
    from .._errors import ClearsightError
    from ..train import load_config, train

    cfg = load_config(args.config, args.overrides)
    try:
        res = train(cfg, not args.no_progress, args.stop_after, args.time_limit, max_memory=args.max_memory)
    except (ValueError, FileNotFoundError) as e:  # bad data settings: one line, not a traceback
        raise ClearsightError(f"{args.config}: {e}") from None
    if int(os.environ.get("RANK", "0")) == 0:
        state = "finished" if res["finished"] else "stopped (run the same command to resume)"
        print(f"{cfg.name}: {state} at iteration {res['iterations']}; run folder {cfg.out}")
        if res.get("weights"):
            print(f"weights: {res['weights']}")
        if res.get("peak_memory"):
            from ..train.memory import format_size

            print(f"peak resident memory of the training process: {format_size(res['peak_memory'])}")
    return 0


def run_adapt(args: argparse.Namespace) -> int:
    from ..adapt.runner import AdaptConfig, adapt

    if not str(args.out).endswith(".safetensors"):
        from .._errors import ClearsightError

        raise ClearsightError(f"--out {args.out}: the weights file must end in .safetensors")
    strengths = None
    if args.strengths:
        try:
            strengths = tuple(float(v) for v in args.strengths.split(","))
        except ValueError:
            from .._errors import ClearsightError

            msg = f"--strengths {args.strengths!r}: comma-separated numbers, e.g. 0.85,1,1.15"
            raise ClearsightError(msg) from None
    cfg = AdaptConfig(
        model=args.model, target=args.target, out=args.out, method=args.method, iters=args.iters, clean=args.clean,
        size=args.size, batch=args.batch, lr=args.lr, ema=args.ema, eval_every=args.eval_every, seed=args.seed,
        amp=not args.fp32, phases=args.phases, reweight=not args.no_reweight, align_weight=args.align_weight,
        quality=args.quality, views=args.views, strengths=strengths, keep=args.keep, ckpt_every=args.ckpt_every,
    )  # fmt: skip
    res = adapt(cfg, progress=not args.quiet, max_memory=args.max_memory)
    first, last = res["history"][0], res["history"][-1]
    trend = ", ".join(f"{k} {first[k]:.3f} -> {last[k]:.3f}" for k in first if k != "iteration")
    print(f"adapted on {res['train_images']} images; held-out ({res['held_out']}): {trend}")
    if args.keep == "best":
        print(f"kept the teacher of iteration {res['kept_iteration']} of {args.iters} (0: the unadapted model)")
    print(f"weights: {res['weights']}  (use: clearsight restore --weights {res['weights']} ...)")
    return 0
