"""``clearsight export`` (a learned restorer as an ONNX file) and ``clearsight view`` (the browser viewer)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import model_names

EXPORT_EPILOG = """\
examples:
  clearsight export corun.haze -o corun_haze.onnx
  clearsight export runs/mine/ema.safetensors -o mine.onnx
  clearsight restore photos/ -o out/ -m corun.haze --backend onnx --onnx corun_haze.onnx

The graph has dynamic height and width (multiples of the network's size divisor, stored in the file's
metadata as 'divisor', the padding mode as 'pad'); CORUN also takes the airlight (1, 3, 1, 1) and the
low-light network its whole-image exposure (1, 5) as inputs, which clearsight estimates on a preview.
Needs: pip install 'clearsight[onnx]'.
"""


def add_export(sub) -> None:
    e = sub.add_parser(
        "export",
        help="export a learned restorer to an ONNX file (dynamic height and width)",
        description="Export the network of a learned restorer to ONNX, run the file in onnxruntime on a test "
        "image and print how far it is from torch.",
        epilog=EXPORT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    e.add_argument("model", metavar="MODEL", help="a learned restorer (e.g. corun.haze) or a .safetensors file")
    e.add_argument("-o", "--output", required=True, metavar="FILE", help="the .onnx file to write")
    e.add_argument("--no-check", action="store_true", help="do not compare onnxruntime with torch after export")
    e.set_defaults(_run=run_export)


def run_export(args: argparse.Namespace) -> int:
    from .._errors import ClearsightError
    from ..models import model_info, weights_file
    from ..models.onnx import export_onnx

    if not args.model.endswith(".safetensors"):
        if args.model not in model_names():
            raise ClearsightError(f"unknown model {args.model!r}; 'clearsight models' lists them")
        if model_info(args.model).kind != "learned":
            raise ClearsightError(f"{args.model} is not a learned restorer; only networks export to ONNX")
    out = Path(args.output)
    if out.suffix.lower() != ".onnx":
        raise ClearsightError(f"{out}: the output file should end in .onnx")
    print(f"exporting {args.model} (this takes up to a minute) ...", flush=True)
    res = export_onnx(weights_file(args.model), out, check=not args.no_check)
    extra = ", ".join(res["inputs"][1:])
    print(f"wrote {res['path']}: {res['arch']} network, sides multiples of {res['divisor']}"
          + (f", extra inputs: {extra}" if extra else "") + f" ({res['seconds']} s)")  # fmt: skip
    if res["max_abs_diff"] is not None:
        print(f"onnxruntime vs torch on a test image: max abs difference {res['max_abs_diff']:.2e}")
    return 0


VIEW_EPILOG = """\
examples:
  clearsight view                                   open http://127.0.0.1:8765/, drop a photo, restore it
  clearsight view out/ --inputs photos/             also a gallery of what 'restore photos/ -o out/' wrote
  clearsight view out/                              the same, from a summary written by restore --json out/run.json

The server listens on 127.0.0.1 only (use --host to change that), loads nothing from the internet and sends
nothing anywhere. Large images are shown downscaled and restored and downloaded in full. Needs:
pip install 'clearsight[app]'.
"""


def add_view(sub) -> None:
    v = sub.add_parser(
        "view",
        help="a local web app: restore a photo and compare before/after, or browse a restored folder",
        description="Serve a local web page: open or drop an image, pick a restorer, see before and after with "
        "a slider, the judge's verdict and the time taken, and download the result; given a folder written by "
        "'clearsight restore', a gallery of its before/after pairs.",
        epilog=VIEW_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    v.add_argument("folder", nargs="?", metavar="FOLDER", help="an output folder of 'clearsight restore'")
    v.add_argument("--inputs", metavar="DIR", help="the input folder that FOLDER was restored from")
    v.add_argument("--port", type=int, default=8765, metavar="P", help="port (default: 8765)")
    v.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine)")
    v.set_defaults(_run=run_view)


def run_view(args: argparse.Namespace) -> int:
    from .._errors import ClearsightError
    from ..viewer import gallery_pairs, serve

    if args.inputs and not args.folder:
        raise ClearsightError("--inputs goes with a FOLDER of restored images")
    if not 0 < args.port < 65536:
        raise ClearsightError(f"--port must be in 1-65535, got {args.port}")
    if args.folder:
        n = len(gallery_pairs(args.folder, args.inputs))
        hint = "" if n or args.inputs else " (give --inputs DIR, or write a summary with restore --json)"
        print(f"gallery: {n} before/after pairs from {args.folder}{hint}")
    serve(args.folder, args.inputs, args.host, args.port)
    return 0
