"""The ``clearsight`` command: one entry point, one sub-command per job."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .. import __version__

RESTORE_EPILOG = """\
examples:
  clearsight restore foggy.jpg -o out/                 one file, method picked automatically
  clearsight restore photos/ -o out/ -r                a folder and its sub-folders
  clearsight restore 'cam*/2026-*.jpg' -o out/ --model dcp-night --format png
  clearsight restore huge.tif -o out/ --tile 1024      tile a large image (memory stays flat)
  clearsight restore dashcam.mp4 -o out/ -m dcp        a video, frame by frame, without flicker

Existing outputs are skipped, so re-running an interrupted batch resumes it; --overwrite redoes them.
A result is never written onto an input file. Each file that fails is reported on one line and the
others go on; the exit code is 1 if any file failed.
"""


def _tile(value: str) -> int | None:
    if value == "auto":
        return None
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--tile takes a number of pixels, 0 or 'auto', not {value!r}") from None
    if n < 0 or (0 < n < 64):
        raise argparse.ArgumentTypeError("--tile must be 0 (never tile) or at least 64 pixels")
    return n


def _models() -> list[str]:
    from ..models import list_models

    return list_models()


def _irp_options(p: argparse.ArgumentParser) -> None:
    """The predictor options shared by rank, select and advise."""
    p.add_argument("--weights", metavar="FILE", help="IRP predictor weights (default: the shipped irp.dynamic)")
    p.add_argument(
        "--flip", action="store_true", help="average the scores of each image and its mirror image (2x time, steadier)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clearsight",
        description="Restore photos degraded by haze, night haze, sand and dust (and, with the experimental "
        "all-in-one model udair.allinone, low light, noise, rain and blur), on the CPU, offline; pick the "
        "frames worth restoring; adapt a model to your own camera.",
        epilog="run 'clearsight COMMAND --help' for the options of each command",
    )
    parser.add_argument("--version", action="version", version=f"clearsight {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    r = sub.add_parser(
        "restore",
        help="restore images, videos, folders or glob patterns into an output folder",
        description="Restore images into an output folder, keeping alpha, bit depth, colour profile and "
        "EXIF (orientation applied). Videos (.mp4 .avi .mov .mkv .m4v .webm .mpg) are restored frame by frame "
        "into a video of the same name, frame rate and size (no audio), with the restorer's global estimates "
        "carried from frame to frame (--smooth) so that the result does not flicker.",
        epilog=RESTORE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("inputs", nargs="+", metavar="INPUT", help="image or video files, folders or glob patterns")
    r.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder (created if missing)")
    r.add_argument(
        "-m", "--model", default="auto", choices=_models(), help="restorer (default: auto; see 'clearsight models')"
    )
    r.add_argument(
        "--weights",
        metavar="FILE",
        help="run the network in this .safetensors file (from 'clearsight train' or 'adapt') instead of --model",
    )
    r.add_argument(
        "--precision",
        choices=["auto", "bf16", "fp32"],
        default="auto",
        help="learned models: bf16 autocast where the CPU has it (auto), always, or never (default: auto)",
    )
    r.add_argument(
        "--tta",
        action="store_true",
        help="udair models: adapt the network to each image before restoring it (test-time adaptation; slower)",
    )
    r.add_argument(
        "--max-pixels",
        type=int,
        default=300_000,
        metavar="N",
        help="learned models: restore at most N pixels at once, larger images through guided upsampling; "
        "0 for full resolution (slower) (default: 300000)",
    )
    r.add_argument(
        "--affine",
        type=float,
        default=None,
        metavar="F",
        help="learned models: replace the output by its best locally affine function of the input in windows of "
        "radius F x the shorter side, which removes blotches in flat regions but keeps the input's noise; "
        "0 turns it off (default: 0.07 for the dehazing networks corun and rsr, off for udair)",
    )
    r.add_argument(
        "--tile",
        type=_tile,
        default=None,
        metavar="N",
        help="tile size in pixels, 0 to never tile, or 'auto' (default: tile images above 12 MP in 1024-px tiles)",
    )
    r.add_argument("--overlap", type=int, default=32, metavar="PX", help="overlap blended between tiles (default: 32)")
    r.add_argument(
        "--format",
        dest="fmt",
        default="same",
        choices=["same", "png", "jpg", "tif", "bmp", "webp"],
        help="output format (default: same as the input's content)",
    )
    r.add_argument("--quality", type=int, default=95, metavar="Q", help="JPEG/WebP quality 1-100 (default: 95)")
    r.add_argument(
        "--smooth",
        type=float,
        default=0.9,
        metavar="W",
        help="videos: weight of the past in the frame-to-frame average of the airlight and other global "
        "estimates, in [0, 1); 0 restores each frame on its own (default: 0.9); 'auto' keeps the method it "
        "picks on the first frame",
    )
    r.add_argument("--overwrite", action="store_true", help="replace existing outputs instead of skipping them")
    r.add_argument("-r", "--recursive", action="store_true", help="descend into sub-folders of folder inputs")
    r.add_argument("--report", action="store_true", help="print a before/after table of image statistics")
    r.add_argument("--json", metavar="FILE", help="also write the per-file summary as JSON")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar; print only failures and the summary")

    m = sub.add_parser("models", help="list the restorers", description="List the restorers with one line each.")
    m.add_argument("pattern", nargs="?", help="shell-style filter, e.g. 'dcp*'")

    sy = sub.add_parser(
        "synth",
        help="write synthetic degraded/clean pairs from clean images",
        description="Degrade clean images with a preset or a YAML pipeline and write degraded/, clean/, depth/, "
        "transmission/ and params/ (JSON) with matching names. Deterministic for a seed; re-running resumes.",
        epilog="examples:\n  clearsight synth --preset day_haze --clean photos/ --out synth/ --per-image 4\n"
        "  clearsight synth --preset my_pipeline.yaml --clean photos/ --out synth/ --depth scene --size 256\n\n"
        "presets: " + ", ".join(_presets()) + ", dynamic (bursts of 8 captures from 1 to 64 ms at constant "
        "brightness: degraded/NAME/fJJ_Tms.png, clean/NAME.png, params/NAME.json)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sy.add_argument("--preset", required=True, help="preset name or YAML pipeline file")
    sy.add_argument("--clean", required=True, nargs="+", metavar="DIR", help="clean image folders or files")
    sy.add_argument("--out", required=True, metavar="DIR", help="output folder")
    sy.add_argument(
        "--per-image", type=int, default=1, metavar="K", help="degraded versions per clean image (default 1)"
    )
    sy.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    sy.add_argument("--size", type=int, default=512, metavar="N", help="longest side of the outputs (default 512)")
    sy.add_argument(
        "--depth",
        choices=["geometry", "random", "scene"],
        default=None,
        help="depth source (default: the preset's; scene renders procedural 3D scenes textured with the photos)",
    )
    sy.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    st = sub.add_parser(
        "stats",
        help="image statistics of folders (haze, airlight colour, contrast, noise, ...) as a table and a plot",
        description="Distributions of dark channel, haze density, airlight chromaticity, brightness, contrast, "
        "saturation, colourfulness and noise level for each folder; with --reference, each folder's distance "
        "from the reference folder (normalised Wasserstein, lower is closer).",
        epilog="example:\n  clearsight stats real_fog/ synth/degraded/ --reference real_fog/ --plot stats.png",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    st.add_argument("folders", nargs="+", metavar="DIR", help="folders (or files) of images")
    st.add_argument("--reference", metavar="DIR", help="folder the others are compared with")
    st.add_argument("--plot", metavar="PNG", help="write box plots of every statistic")
    st.add_argument("--json", metavar="FILE", help="write the summaries and distances as JSON")
    st.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    sc = sub.add_parser(
        "score",
        help="score images with quality metrics (no-reference, or full-reference with --reference)",
        description="Score images with metrics from the registry; a table on screen, CSV/JSON on request. "
        "Full-reference metrics (psnr, ssim) need --reference, a folder holding images with the same names.",
        epilog="examples:\n  clearsight score out/ --metrics niqe,haze_score,entropy\n"
        "  clearsight score restored/ --reference clean/ --metrics psnr,ssim --csv scores.csv",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sc.add_argument("inputs", nargs="+", metavar="PATH", help="image files, folders or glob patterns")
    sc.add_argument("--metrics", default=None, help="comma-separated metric names (see clearsight.list_metrics())")
    sc.add_argument("--reference", metavar="DIR", help="folder of reference images with matching names")
    sc.add_argument("--csv", metavar="FILE", help="write the scores as CSV")
    sc.add_argument("--json", metavar="FILE", help="write the scores as JSON")
    sc.add_argument("-r", "--recursive", action="store_true", help="descend into sub-folders")

    be = sub.add_parser(
        "bench",
        help="benchmark restorers on paired and unpaired image sets; JSON, Markdown and HTML report",
        description="Restore paired sets (degraded and clean folders, matched by name) and unpaired sets with "
        "each method, score them (full-reference on paired, no-reference on unpaired), time them (seconds per "
        "megapixel) and record peak memory; write OUT.json, OUT.md and a self-contained OUT.html.",
        epilog="example:\n  clearsight bench --methods dcp,auto --paired hazy/ clean/ --unpaired real_fog/ -o report",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    be.add_argument("--methods", default="auto", help="comma-separated restorer names (default: auto)")
    be.add_argument("--paired", nargs=2, action="append", default=[], metavar=("DEGRADED", "CLEAN"))
    be.add_argument("--unpaired", nargs="+", default=[], metavar="DIR")
    be.add_argument("--fr-metrics", default=",".join(_default_metrics("fr")), help="full-reference metrics")
    be.add_argument("--nr-metrics", default=",".join(_default_metrics("nr")), help="no-reference metrics")
    be.add_argument("--max-images", type=int, default=0, metavar="N", help="at most N images per set (0: all)")
    be.add_argument("--crops", action="store_true", help="embed before/after crops in the HTML report")
    be.add_argument("-o", "--output", default="bench", metavar="OUT", help="output path without extension")

    d = sub.add_parser(
        "demo",
        help="restore the sample images shipped with clearsight and print a before/after table",
        description="Restore the bundled sample images (self-made scenes with synthetic haze, dust and night "
        "haze) with 'auto' and print what changed.",
    )
    d.add_argument("-o", "--output", default="clearsight-demo", metavar="OUTDIR", help="output folder")
    d.add_argument("-m", "--model", default="auto", choices=_models(), help="restorer (default: auto)")

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

    idf = sub.add_parser(
        "identify",
        help="recognise the degradation(s) of images",
        description="Print the degradations an all-in-one (udair) model recognises in each image, with their "
        "probabilities: by the model's identifier (a degradation classifier stored with it) when it has one, "
        "else by the nearest prototype of its degradation codebook embedding (--method prototype forces that).",
    )
    idf.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    idf.add_argument("--model", default=None, help="udair model name or weights file (default: the shipped one)")
    idf.add_argument("--top", type=int, default=3, help="how many degradations to print per image (default: 3)")
    idf.add_argument("--csv", metavar="FILE", help="also write every probability to this CSV file")
    idf.add_argument(
        "--method",
        choices=("auto", "classifier", "prototype"),
        default="auto",
        help="auto (default): the identifier if the model has one, else the nearest prototype",
    )

    rk = sub.add_parser(
        "rank",
        help="sort images by predicted restoration potential (IRP)",
        description="Predict each image's restoration potential (IRP: how well it can be restored, 0-1; see "
        "docs/irp.md) from the image alone, and print them best first.",
    )
    rk.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    _irp_options(rk)
    rk.add_argument("--csv", metavar="FILE", help="also write the ranking to this CSV file")

    se = sub.add_parser(
        "select",
        help="pick the best frames of bursts or of a video by predicted IRP",
        description="Score every frame of INPUT (a video file, a folder of images = one burst, or a folder of "
        "folders = one burst each) and write the TOP best of each burst to OUTDIR/<burst>/, optionally restored; "
        "OUTDIR/selection.csv lists every frame's score.",
        epilog="examples:\n  clearsight select bursts/ --top 1 -o best/\n"
        "  clearsight select dashcam.mp4 --top 5 --every 3 --min-gap 10 -o picks/ --restore udair.allinone",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    se.add_argument("input", metavar="INPUT", help="video file, folder of frames, or folder of burst folders")
    se.add_argument("--top", type=int, default=1, metavar="K", help="frames to keep per burst (default 1)")
    se.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder (outside INPUT)")
    se.add_argument("--restore", metavar="MODEL", help="restore the chosen frames with this model (e.g. auto)")
    se.add_argument("--every", type=int, default=1, metavar="N", help="score every N-th frame only (default 1)")
    se.add_argument("--min-gap", type=int, default=0, metavar="N", help="video: chosen frames at least N apart")
    _irp_options(se)
    se.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    av = sub.add_parser(
        "advise",
        help="recommend the exposure/gain setting of a bracket with the highest predicted IRP",
        description="Given a short bracket of captures of one scene at different exposure times (read from EXIF, "
        "from a 'clearsight synth --preset dynamic' sidecar, or from '<number>ms' in the file name), print the "
        "predicted IRP of each and recommend the setting to use.",
    )
    av.add_argument("inputs", nargs="+", metavar="INPUT", help="the captures (files, folders or glob patterns)")
    _irp_options(av)

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
    ad.add_argument("--seed", type=int, default=0)
    ad.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    ad.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return parser


def _cmd_adapt(args: argparse.Namespace) -> int:
    from ..train.adapt import AdaptConfig, adapt

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
        quality=args.quality, views=args.views, strengths=strengths, keep=args.keep,
    )  # fmt: skip
    res = adapt(cfg, progress=not args.quiet)
    first, last = res["history"][0], res["history"][-1]
    trend = ", ".join(f"{k} {first[k]:.3f} -> {last[k]:.3f}" for k in first if k != "iteration")
    print(f"adapted on {res['train_images']} images; held-out ({res['held_out']}): {trend}")
    if args.keep == "best":
        print(f"kept the teacher of iteration {res['kept_iteration']} of {args.iters} (0: the unadapted model)")
    print(f"weights: {res['weights']}  (use: clearsight restore --weights {res['weights']} ...)")
    return 0


def _cmd_identify(args: argparse.Namespace) -> int:
    import csv

    from .._errors import ClearsightError
    from ..infer import collect_inputs
    from ..io import load_image
    from ..models import list_models, weights_file
    from ..models._weights import load_weights
    from ..models.udair import identify_view

    model = args.model or next(iter(list_models("udair.*")), None)
    if model is None:
        raise ClearsightError("no udair model is installed; give --model FILE.safetensors")
    net, _ = load_weights(weights_file(model))
    if not hasattr(net, "identify") or not net.config.tasks:
        raise ClearsightError(f"{model} is not an all-in-one model with a prototype bank (train a udair model)")
    if args.method == "classifier" and getattr(net, "identifier", None) is None:
        raise ClearsightError(f"{model} has no identifier; use --method prototype")
    tasks = list(net.config.tasks)
    pairs, errors = collect_inputs(args.inputs)
    for e in errors:
        print(e.message, file=sys.stderr)  # the message starts with the path
    rows, failed = [], len(errors)
    for f, _ in pairs:
        try:
            view = identify_view(load_image(f).to_tensor())
        except ClearsightError as e:
            print(str(e) if str(f) in str(e) else f"{f}: {e}", file=sys.stderr)
            failed += 1
            continue
        p = net.identify(view, method=args.method)[0]
        order = p.argsort(descending=True)[: max(1, args.top)].tolist()
        print(f"{f}: " + ", ".join(f"{tasks[i]} {float(p[i]):.2f}" for i in order))
        rows.append([str(f), *[f"{float(v):.4f}" for v in p]])
    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["file", *tasks])
            w.writerows(rows)
    return 1 if failed and not rows else 0


def _irp_inputs(inputs) -> tuple[list, int]:
    from ..infer import collect_inputs

    pairs, errors = collect_inputs(inputs)
    for e in errors:
        print(e.message, file=sys.stderr)  # the message starts with the path
    return [f for f, _ in pairs], len(errors)


def _score_all(pred, files) -> tuple[list[tuple[str, float]], int]:
    from .._errors import ClearsightError

    rows, failed = [], 0
    for f in files:
        try:
            rows.append((str(f), pred.score_file(f)))
        except ClearsightError as e:
            print(str(e) if str(f) in str(e) else f"{f}: {e}", file=sys.stderr)
            failed += 1
    return rows, failed


def _cmd_rank(args: argparse.Namespace) -> int:
    import csv

    from ..irp.apps import load_predictor

    pred = load_predictor(args.weights, flip=args.flip)
    files, failed = _irp_inputs(args.inputs)
    rows, bad = _score_all(pred, files)
    rows.sort(key=lambda r: -r[1])
    width = max([len(f) for f, _ in rows] + [4])
    if rows:
        print(f"{'rank':>4}  {'IRP':>6}  file")
    for i, (f, s) in enumerate(rows, 1):
        print(f"{i:>4}  {s:6.3f}  {f:<{width}}")
    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["rank", "file", "irp"])
            w.writerows([[i, f, f"{s:.4f}"] for i, (f, s) in enumerate(rows, 1)])
    return 1 if (failed or bad) and not rows else 0


def _cmd_select(args: argparse.Namespace) -> int:
    from ..irp.apps import load_predictor, select_frames

    pred = load_predictor(args.weights, flip=args.flip)
    restorer = None
    if args.restore:
        from ..models import create_model

        restorer = create_model(args.restore)
    rows = select_frames(pred, args.input, args.top, args.output, restorer, args.every, args.min_gap, not args.quiet)
    chosen = [r for r in rows if r.chosen]
    for r in sorted(chosen, key=lambda r: (r.burst, -r.score)):
        print(f"{r.burst}/{r.frame}: IRP {r.score:.3f} -> {r.output}")
    print(f"kept {len(chosen)} of {len(rows)} frames; scores: {args.output}/selection.csv")
    return 0


def _cmd_advise(args: argparse.Namespace) -> int:
    from ..irp.apps import advise, load_predictor

    pred = load_predictor(args.weights, flip=args.flip)
    files, failed = _irp_inputs(args.inputs)
    if not files:
        return 1
    a = advise(pred, files)
    order = sorted(range(len(a.files)), key=lambda i: (a.exposure_ms[i] is None, a.exposure_ms[i] or 0, a.files[i]))
    print(f"{'exposure':>10}  {'gain':>6}  {'IRP':>6}  file")
    for i in order:
        t = f"{a.exposure_ms[i]:.2f} ms" if a.exposure_ms[i] else "?"
        g = f"{a.gain[i]:.2f}" if a.gain[i] else "?"
        mark = "  <- best" if i == a.best else ""
        print(f"{t:>10}  {g:>6}  {a.scores[i]:6.3f}  {a.files[i]}{mark}")
    best = a.files[a.best]
    msg = f"recommended: the setting of {best}"
    if a.exposure_ms[a.best]:
        msg += f" ({a.exposure_ms[a.best]:.2f} ms)"
    if a.peak_exposure_ms:
        msg += f"; predicted peak near {a.peak_exposure_ms:.2f} ms at the same brightness"
    print(msg)
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from .._errors import ClearsightError
    from ..train import load_config, train

    cfg = load_config(args.config, args.overrides)
    try:
        res = train(cfg, progress=not args.no_progress, stop_after=args.stop_after, time_limit=args.time_limit)
    except (ValueError, FileNotFoundError) as e:  # bad data settings: one line, not a traceback
        raise ClearsightError(f"{args.config}: {e}") from None
    if int(os.environ.get("RANK", "0")) == 0:
        state = "finished" if res["finished"] else "stopped (run the same command to resume)"
        print(f"{cfg.name}: {state} at iteration {res['iterations']}; run folder {cfg.out}")
        if res.get("weights"):
            print(f"weights: {res['weights']}")
    return 0


def _default_metrics(kind: str) -> tuple[str, ...]:
    from ..bench import DEFAULT_FR, DEFAULT_NR

    return DEFAULT_FR if kind == "fr" else DEFAULT_NR


def _cmd_bench(args: argparse.Namespace) -> int:
    from ..bench import BenchConfig, run_bench, write_reports

    if not args.paired and not args.unpaired:
        print("error: give at least one --paired DEGRADED CLEAN or --unpaired DIR", file=sys.stderr)
        return 2
    from ..degrade.dataset import image_files

    for d in [p for pair in args.paired for p in pair] + list(args.unpaired):
        if not Path(d).is_dir():
            print(f"error: {d}: no such folder", file=sys.stderr)
            return 1
        if not image_files(d):
            print(f"error: {d}: folder holds no images", file=sys.stderr)
            return 1
    cfg = BenchConfig(
        methods=[m.strip() for m in args.methods.split(",") if m.strip()],
        paired=[(Path(a).name or a, a, b) for a, b in args.paired],
        unpaired=[(Path(d).name or d, d) for d in args.unpaired],
        fr_metrics=tuple(m for m in args.fr_metrics.split(",") if m),
        nr_metrics=tuple(m for m in args.nr_metrics.split(",") if m),
        max_images=args.max_images,
        crops=args.crops,
    )
    res = run_bench(cfg)
    paths = write_reports(res, args.output, "clearsight bench")
    print(Path(paths[1]).read_text())
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def _presets() -> list[str]:
    from ..degrade.pipeline import list_presets

    return list_presets()


def _cmd_synth(args: argparse.Namespace) -> int:
    from ..degrade.writer import synthesize

    if args.per_image < 1 or args.size < 1:
        print("error: --per-image and --size must be positive", file=sys.stderr)
        return 2
    if args.preset == "dynamic":
        from ..degrade.writer import synthesize_dynamic

        s = synthesize_dynamic(args.clean, args.out, args.per_image, args.seed, args.size, progress=not args.quiet)
    else:
        s = synthesize(args.preset, args.clean, args.out, args.per_image, args.seed, args.size, args.depth,
                       not args.quiet)  # fmt: skip
    print(f"wrote {s.written}, skipped {s.skipped} (already there), failed {s.failed} -> {args.out}")
    return 0 if s.failed == 0 else 1


def _cmd_stats(args: argparse.Namespace) -> int:
    from ..degrade.dataset import image_files
    from ..metrics.statistics import STATISTICS, distance, folder_statistics, plot_statistics, summarise

    groups = {}
    for folder in dict.fromkeys([*args.folders, *([args.reference] if args.reference else [])]):
        try:
            files = image_files(folder)
        except FileNotFoundError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        groups[folder] = folder_statistics(files, progress=not args.quiet)
        if len(groups[folder]["files"]) == 0:
            print(f"error: {folder}: no readable images", file=sys.stderr)
            return 1
    summaries = {k: summarise(v) for k, v in groups.items()}
    width = max(len(Path(k).name or k) for k in groups) + 2
    print(f"{'statistic':<14}" + "".join(f"{(Path(k).name or k)[:width]:>{width}}" for k in groups))
    print(f"{'images':<14}" + "".join(f"{len(v['files']):>{width}}" for v in groups.values()))
    for stat in STATISTICS:
        print(f"{stat:<14}" + "".join(f"{summaries[k][stat]['median']:>{width}.3f}" for k in groups))
    result: dict = {"summaries": summaries}
    if args.reference:
        ref = groups[args.reference]
        dists = {k: distance(ref, v) for k, v in groups.items() if k != args.reference}
        result["distances"] = {"reference": args.reference, **dists}
        print(f"\ndistance from {args.reference} (normalised Wasserstein, mean over statistics; lower is closer)")
        for k, dd in dists.items():
            worst = max(STATISTICS, key=lambda s: dd[s])
            print(f"  {k}: {dd['mean']:.3f} (largest: {worst} {dd[worst]:.2f})")
    if args.plot:
        plot_statistics({Path(k).name or k: v for k, v in groups.items()}, args.plot)
        print(f"plot: {args.plot}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    import csv
    import math

    from ..infer import collect_inputs
    from ..io import read_image
    from ..metrics import create_metric

    default = ["niqe", "haze_score", "rms_contrast", "colorfulness", "entropy", "noise_level"]
    if args.reference:
        default = ["psnr", "ssim"]
    names = [m.strip() for m in args.metrics.split(",")] if args.metrics else default
    metrics = {n: create_metric(n) for n in names}  # unknown names raise with suggestions
    if any(m.mode == "FR" for m in metrics.values()) and not args.reference:
        print(
            f"error: {', '.join(n for n, m in metrics.items() if m.mode == 'FR')} need --reference DIR", file=sys.stderr
        )
        return 2
    pairs, errors = collect_inputs(args.inputs, args.recursive)
    failed = False
    for e in errors:
        print(f"error: {e.message}", file=sys.stderr)
        failed = True
    rows = []
    for src, rel in pairs:
        row: dict[str, object] = {"file": str(src)}
        try:
            x = read_image(src)
            ref = None
            if args.reference:
                cand = [p for p in Path(args.reference).glob(rel.stem + ".*")] if Path(args.reference).is_dir() else []
                if not cand:
                    raise FileNotFoundError(f"{src}: no reference named {rel.stem}.* in {args.reference}")
                ref = read_image(cand[0])
                if ref.shape != x.shape:
                    raise ValueError(
                        f"{src}: size {tuple(x.shape[-2:])} differs from its reference {tuple(ref.shape[-2:])}"
                    )
        except Exception as e:  # noqa: BLE001 - reported per file
            print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
            failed = True
            continue
        for n, m in metrics.items():
            try:
                row[n] = float(m(x, ref)[0]) if m.mode == "FR" else float(m(x)[0])
            except Exception as e:  # noqa: BLE001
                row[n] = float("nan")
                print(f"warning: {src}: {n}: {' '.join(str(e).split())}", file=sys.stderr)
        rows.append(row)
    if rows:
        width = max(12, max(len(Path(str(r["file"])).name) for r in rows[:200]) + 2)
        print(f"{'file':<{width}}" + "".join(f"{n:>14}" for n in names))
        for r in rows:
            print(f"{Path(str(r['file'])).name:<{width}}" + "".join(f"{r[n]:>14.4f}" for n in names))
        means = {n: [r[n] for r in rows if not math.isnan(r[n])] for n in names}
        print(
            f"{'mean':<{width}}" + "".join(f"{(sum(v) / len(v) if v else float('nan')):>14.4f}" for v in means.values())
        )
        arrows = ", ".join(f"{n} {'lower' if metrics[n].lower_better else 'higher'} is better" for n in names)
        print(f"({arrows})")
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["file", *names])
            w.writeheader()
            w.writerows(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 1 if failed else 0


def _stats(path: str) -> dict[str, float]:
    from ..io import read_image
    from ..metrics.no_reference import colorfulness, haze_score, rms_contrast

    x = read_image(path)
    return {
        "haze": float(haze_score(x)[0]),
        "contrast": float(rms_contrast(x)[0]),
        "colour": float(colorfulness(x)[0]),
    }


def _print_report(results) -> None:
    from ..video import is_video

    rows = [r for r in results if r.status == "done" and not is_video(r.source)]
    if not rows:
        return
    print()
    print("before -> after (haze: mean dark channel, lower is clearer; contrast: luma std; colour: colourfulness)")
    header = f"{'file':<28} {'method':<20} {'haze':>13} {'contrast':>13} {'colour':>13} {'sec':>6}"
    print(header)
    print("-" * len(header))
    for r in rows:
        a, b = _stats(r.source), _stats(r.output)
        cells = [f"{a[k]:.3f}->{b[k]:.3f}" for k in ("haze", "contrast", "colour")]
        name = Path(r.source).name[:28]
        print(f"{name:<28} {r.method[:20]:<20} {cells[0]:>13} {cells[1]:>13} {cells[2]:>13} {r.seconds:6.2f}")


def _summarise(summary, seconds: float) -> None:
    done, skipped, failed = summary.count("done"), summary.count("skipped"), summary.count("failed")
    print(f"\nrestored {done}, skipped {skipped}, failed {failed} in {seconds:.1f} s")
    for r in summary.results:
        if r.status == "skipped":
            print(f"  skipped: {r.message}")
    for r in summary.results:
        if r.status == "failed":
            print(f"  failed:  {r.message}")


def _restorer(args: argparse.Namespace):
    """The restorer of ``restore``: a weights file, a learned model with its options, or a name."""
    from .._errors import ClearsightError
    from ..models import create_model, load_restorer, model_info

    opts = {"precision": args.precision, "max_pixels": args.max_pixels or None}
    affine = getattr(args, "affine", None)
    if affine is not None:
        opts["affine"] = affine or None
    tta = getattr(args, "tta", False)
    if tta:
        opts["tta"] = True
    try:
        if args.weights:
            return load_restorer(args.weights, **opts)
        if model_info(args.model).kind == "learned":
            return create_model(args.model, **opts)
    except ValueError as e:
        raise ClearsightError(str(e)) from None
    if tta:
        raise ClearsightError(f"--tta needs a learned udair model, not {args.model}")
    if affine:
        raise ClearsightError(f"--affine applies to learned models, not {args.model}")
    return args.model


def _cmd_restore(args: argparse.Namespace) -> int:
    from .._errors import ClearsightError
    from ..infer import restore_files

    smooth = getattr(args, "smooth", 0.9)  # 'demo' builds its own arguments
    if not 0 <= smooth < 1:
        raise ClearsightError(f"--smooth must be in [0, 1), got {smooth}")

    def on_result(r) -> None:
        if r.status == "failed":
            print(f"error: {r.message}", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    summary = restore_files(
        args.inputs,
        args.output,
        model=_restorer(args),
        tile=args.tile,
        overlap=args.overlap,
        fmt=args.fmt,
        overwrite=args.overwrite,
        recursive=args.recursive,
        quality=args.quality,
        progress=not args.quiet,
        on_result=on_result,
        smooth=smooth,
    )
    if args.report:
        _print_report(summary.results)
    _summarise(summary, time.perf_counter() - t0)
    if args.json:
        Path(args.json).write_text(json.dumps([r.__dict__ for r in summary.results], indent=2))
    return 0 if summary.ok else 1


def _cmd_models(args: argparse.Namespace) -> int:
    from ..models import list_models, model_info

    names = list_models(args.pattern)
    width = max((len(n) for n in names), default=4)
    for n in names:
        info = model_info(n)
        print(f"{n:<{width}}  {info.kind:<9}  {info.description}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from ..samples import sample_paths

    paths = [str(p) for p in sample_paths()]
    ns = argparse.Namespace(
        inputs=paths,
        output=args.output,
        model=args.model,
        tile=None,
        overlap=32,
        fmt="same",
        quality=95,
        overwrite=True,
        recursive=False,
        report=True,
        json=None,
        quiet=True,
        weights=None,
        precision="auto",
        max_pixels=300_000,
        tta=False,
    )
    code = _cmd_restore(ns)
    print(f"results in {Path(args.output).resolve()}")
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 a file failed, 2 bad usage)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # overrides of 'train' may come after its options; anything else is an error
        if args.command == "train" and all("=" in e and not e.startswith("-") for e in extra):
            args.overrides += extra
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command is None:
        parser.print_help()
        return 2
    from .._errors import ClearsightError
    from ..runtime import tune_allocator

    tune_allocator()  # network passes reuse freed memory instead of page-faulting it in again (about 1.8x faster)

    try:
        commands = {
            "restore": _cmd_restore,
            "models": _cmd_models,
            "demo": _cmd_demo,
            "synth": _cmd_synth,
            "stats": _cmd_stats,
            "score": _cmd_score,
            "bench": _cmd_bench,
            "train": _cmd_train,
            "adapt": _cmd_adapt,
            "identify": _cmd_identify,
            "rank": _cmd_rank,
            "select": _cmd_select,
            "advise": _cmd_advise,
        }
        return commands[args.command](args)
    except ClearsightError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; finished outputs are kept, re-run to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
