"""``clearsight demo``: restore the bundled sample images and print a before/after table."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import model_names
from .restore import run_restore


def add_demo(sub) -> None:
    """The ``demo`` sub-command's parser."""
    d = sub.add_parser(
        "demo",
        help="restore the sample images shipped with clearsight and print a before/after table",
        description="Restore the bundled sample images (self-made scenes with synthetic haze, dust and night "
        "haze) with 'auto' and print what changed.",
    )
    d.add_argument("-o", "--output", default="clearsight-demo", metavar="OUTDIR", help="output folder")
    d.add_argument(
        "-m", "--model", default="auto", choices=model_names(), metavar="MODEL", help="restorer (default: auto)"
    )
    d.set_defaults(_run=run_demo)


def run_demo(args: argparse.Namespace) -> int:
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
        max_pixels=None,
        tta=False,
    )
    code = run_restore(ns)
    print(f"results in {Path(args.output).resolve()}")
    return code
