"""``clearsight restore`` and ``clearsight models``: restore files into a folder; list the restorers."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

from ._common import model_names, print_report, print_summary, tile_arg

RESTORE_EPILOG = """\
examples:
  clearsight restore foggy.jpg -o out/                 one file, method picked automatically
  clearsight restore photos/ -o out/ -r                a folder and its sub-folders
  clearsight restore 'cam*/2026-*.jpg' -o out/ --model dcp-night --format png
  clearsight restore huge.tif -o out/ --tile 1024      tile a large image (memory stays flat)
  clearsight restore dashcam.mp4 -o out/ -m dcp        a video, frame by frame, without flicker
  clearsight restore archive/ -o out/ -r --workers 4   a large batch on 4 local worker processes (Dask)

Existing outputs are skipped, so re-running an interrupted batch resumes it; --overwrite redoes them.
A result is never written onto an input file. Each file that fails is reported on one line and the
others go on; the exit code is 1 if any file failed.
"""


def add_restore(sub) -> None:
    """The ``restore`` sub-command's parser."""
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
        "-m",
        "--model",
        default="auto",
        choices=model_names(),
        metavar="MODEL",
        help="restorer (default: auto; 'clearsight models' lists them)",
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
        "--backend",
        choices=["torch", "onnx"],
        default="torch",
        help="learned models: run the network in torch or in onnxruntime (exported once and cached, or --onnx "
        "FILE; needs clearsight[onnx]) (default: torch)",
    )
    r.add_argument(
        "--onnx",
        metavar="FILE",
        help="learned models: run this file from 'clearsight export' in onnxruntime (implies --backend onnx)",
    )
    r.add_argument(
        "--tta",
        action="store_true",
        help="udair models: adapt the network to each image before restoring it (test-time adaptation; slower)",
    )
    r.add_argument(
        "--max-pixels",
        type=int,
        default=None,
        metavar="N",
        help="learned models: restore at most N pixels at once, larger images through guided upsampling; "
        "0 for full resolution (slower) (default: 300000, corun 80000; denoisers always run at full resolution)",
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
        "--no-gate",
        action="store_true",
        help="learned udair models: run the network on every image as it is (by default an image it identifies as "
        "clean, identifies unsurely, or calls low light or night haze while it is bright, is left unchanged, and "
        "for noise and blur the input's tone is kept: only finer detail changes; a call of noise or blur, or a dark "
        "photo called clean, is acted on only when auto's recogniser finds something in it)",
    )
    r.add_argument(
        "--affine-mode",
        choices=("channel", "shared"),
        default=None,
        help="learned models with --affine: 'channel' fits a gain and an offset per colour channel (it can shift "
        "colours), 'shared' one for all three (keeps the input's hues) (default: shared for corun, channel for rsr)",
    )
    r.add_argument(
        "--tile",
        type=tile_arg,
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
    r.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="restore the files on a local Dask cluster of N worker processes (needs clearsight[dask])",
    )
    r.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="restore the files on a running Dask cluster, e.g. tcp://HOST:8786; inputs and output folder must be "
        "on a file system that every worker sees at the same paths (needs clearsight[dask])",
    )
    r.add_argument("--report", action="store_true", help="print a before/after table of image statistics")
    r.add_argument("--json", metavar="FILE", help="also write the per-file summary as JSON")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar; print only failures and the summary")
    r.set_defaults(_run=run_restore)


def add_models(sub) -> None:
    """The ``models`` sub-command's parser."""
    m = sub.add_parser("models", help="list the restorers", description="List the restorers with one line each.")
    m.add_argument("pattern", nargs="?", help="shell-style filter, e.g. 'dcp*'")
    m.set_defaults(_run=run_models)


def _restorer(args: argparse.Namespace):
    """The restorer of ``restore``: a weights file, a learned model with its options, or a name."""
    from .._errors import ClearsightError
    from ..models import create_model, load_restorer, model_info

    opts = {"precision": args.precision}
    if args.max_pixels is not None:  # else the model's default (MAX_PIXELS_DEFAULTS)
        opts["max_pixels"] = args.max_pixels or None
    affine = getattr(args, "affine", None)
    if affine is not None:
        opts["affine"] = affine or None
    affine_mode = getattr(args, "affine_mode", None)
    if affine_mode:
        opts["affine_mode"] = affine_mode
    no_gate = getattr(args, "no_gate", False)
    if no_gate:
        opts["gate"] = False
    tta = getattr(args, "tta", False)
    if tta:
        opts["tta"] = True
    backend, onnx_file = getattr(args, "backend", "torch"), getattr(args, "onnx", None)
    onnx = backend == "onnx" or onnx_file
    if onnx:
        opts["backend"], opts["onnx_file"] = "onnx", onnx_file
        if tta:
            raise ClearsightError("--tta runs with the torch backend only")
    try:
        if args.weights:
            return load_restorer(args.weights, **opts)
        if model_info(args.model).kind == "learned":
            return create_model(args.model, **opts)
    except ValueError as e:
        raise ClearsightError(str(e)) from None
    if tta:
        raise ClearsightError(f"--tta needs a learned udair model, not {args.model}")
    if onnx:
        raise ClearsightError(f"--backend onnx applies to learned models, not {args.model}")
    if affine or affine_mode or no_gate:
        raise ClearsightError(f"--affine, --affine-mode and --no-gate apply to learned models, not {args.model}")
    return args.model


def run_restore(args: argparse.Namespace) -> int:
    from .._errors import ClearsightError

    smooth = getattr(args, "smooth", 0.9)  # 'demo' builds its own arguments
    if not 0 <= smooth < 1:
        raise ClearsightError(f"--smooth must be in [0, 1), got {smooth}")

    def on_result(r) -> None:
        if r.status == "failed":
            print(f"error: {r.message}", file=sys.stderr, flush=True)

    workers, scheduler = getattr(args, "workers", None), getattr(args, "scheduler", None)
    if workers is not None and scheduler is not None:
        raise ClearsightError("give --workers N or --scheduler ADDRESS, not both")
    t0 = time.perf_counter()
    restorer = _restorer(args)
    with contextlib.ExitStack() as stack:
        client = None
        if workers is not None or scheduler is not None:
            from .._dask import dask_client

            client = stack.enter_context(dask_client(workers, scheduler))
        summary = _restore(args, restorer, on_result, smooth, client)
    if args.report:
        print_report(summary.results)
    print_summary(summary, time.perf_counter() - t0)
    if args.json:
        Path(args.json).write_text(json.dumps([r.__dict__ for r in summary.results], indent=2))
    return 0 if summary.ok else 1


def _restore(args: argparse.Namespace, restorer, on_result, smooth: float, client):
    from ..batch import restore_files

    return restore_files(
        args.inputs,
        args.output,
        model=restorer,
        tile=args.tile,
        overlap=args.overlap,
        fmt=args.fmt,
        overwrite=args.overwrite,
        recursive=args.recursive,
        quality=args.quality,
        progress=not args.quiet,
        on_result=on_result,
        smooth=smooth,
        client=client,
    )


def run_models(args: argparse.Namespace) -> int:
    from ..models import list_models, model_info

    names = list_models(args.pattern)
    width = max((len(n) for n in names), default=4)
    for n in names:
        info = model_info(n)
        print(f"{n:<{width}}  {info.kind:<9}  {info.description}")
    return 0
