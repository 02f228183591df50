"""``clearsight score`` and ``clearsight bench``: quality metrics of images; benchmarks of restorers."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _default_metrics(kind: str) -> tuple[str, ...]:
    from ..bench import DEFAULT_FR, DEFAULT_NR

    return DEFAULT_FR if kind == "fr" else DEFAULT_NR


def add_score(sub) -> None:
    """The ``score`` sub-command's parser."""
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
    sc.set_defaults(_run=run_score)


def add_bench(sub) -> None:
    """The ``bench`` sub-command's parser."""
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
    be.add_argument("--fr-metrics", help="full-reference metrics (default: the benchmark's standard set)")
    be.add_argument("--nr-metrics", help="no-reference metrics (default: the benchmark's standard set)")
    be.add_argument("--max-images", type=int, default=0, metavar="N", help="at most N images per set (0: all)")
    be.add_argument("--crops", action="store_true", help="embed before/after crops in the HTML report")
    be.add_argument(
        "--judge", action="store_true",
        help="on the unpaired sets, also report each method's harm rate (share of outputs the judge calls harmed)",
    )  # fmt: skip
    be.add_argument("-o", "--output", default="bench", metavar="OUT", help="output path without extension")
    be.set_defaults(_run=run_bench)


def run_score(args: argparse.Namespace) -> int:
    import csv
    import math

    from ..batch import collect_inputs
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


def run_bench(args: argparse.Namespace) -> int:
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
        fr_metrics=tuple(m for m in (args.fr_metrics or ",".join(_default_metrics("fr"))).split(",") if m),
        nr_metrics=tuple(m for m in (args.nr_metrics or ",".join(_default_metrics("nr"))).split(",") if m),
        max_images=args.max_images,
        crops=args.crops,
        judge=args.judge,
    )
    res = run_bench(cfg)
    paths = write_reports(res, args.output, "clearsight bench")
    print(Path(paths[1]).read_text())
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0
