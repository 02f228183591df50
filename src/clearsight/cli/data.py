"""``clearsight synth`` and ``clearsight stats``: make training data; compare image folders."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _presets() -> list[str]:
    from ..degrade.pipeline import list_presets

    return list_presets()


def add_synth(sub) -> None:
    """The ``synth`` sub-command's parser."""
    sy = sub.add_parser(
        "synth",
        help="write synthetic degraded/clean pairs from clean images",
        description="Degrade clean images with a preset or a YAML pipeline and write degraded/, clean/, depth/, "
        "transmission/ and params/ (JSON) with matching names. Deterministic for a seed; re-running resumes.",
        epilog=lambda: (
            "examples:\n  clearsight synth --preset day_haze --clean photos/ --out synth/ --per-image 4\n"
            "  clearsight synth --preset my_pipeline.yaml --clean photos/ --out synth/ --depth scene --size 256\n\n"
            "presets: " + ", ".join(_presets()) + ", dynamic (bursts of 8 captures from 1 to 64 ms at constant "
            "brightness: degraded/NAME/fJJ_Tms.png, clean/NAME.png, params/NAME.json)"
        ),
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
    sy.set_defaults(_run=run_synth)


def add_stats(sub) -> None:
    """The ``stats`` sub-command's parser."""
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
    st.set_defaults(_run=run_stats)


def run_synth(args: argparse.Namespace) -> int:
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


def run_stats(args: argparse.Namespace) -> int:
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
