"""``clearsight rank``, ``select`` and ``advise``: restoration potential (IRP) of frames."""

from __future__ import annotations

import argparse
import sys

from ._common import add_irp_options, input_files


def add_rank(sub) -> None:
    """The ``rank`` sub-command's parser."""
    rk = sub.add_parser(
        "rank",
        help="sort images by predicted restoration potential (IRP)",
        description="Predict each image's restoration potential (IRP: how well it can be restored, 0-1; see "
        "docs/irp.md) from the image alone, and print them best first.",
    )
    rk.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    add_irp_options(rk)
    rk.add_argument("--csv", metavar="FILE", help="also write the ranking to this CSV file")
    rk.set_defaults(_run=run_rank)


def add_select(sub) -> None:
    """The ``select`` sub-command's parser."""
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
    add_irp_options(se)
    se.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    se.set_defaults(_run=run_select)


def add_advise(sub) -> None:
    """The ``advise`` sub-command's parser."""
    av = sub.add_parser(
        "advise",
        help="recommend the exposure/gain setting of a bracket with the highest predicted IRP",
        description="Given a short bracket of captures of one scene at different exposure times (read from EXIF, "
        "from a 'clearsight synth --preset dynamic' sidecar, or from '<number>ms' in the file name), print the "
        "predicted IRP of each and recommend the setting to use.",
    )
    av.add_argument("inputs", nargs="+", metavar="INPUT", help="the captures (files, folders or glob patterns)")
    add_irp_options(av)
    av.set_defaults(_run=run_advise)


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


def run_rank(args: argparse.Namespace) -> int:
    import csv

    from ..irp.apps import load_predictor

    pred = load_predictor(args.weights, flip=args.flip)
    files, failed = input_files(args.inputs)
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


def run_select(args: argparse.Namespace) -> int:
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


def run_advise(args: argparse.Namespace) -> int:
    from ..irp.apps import advise, load_predictor

    pred = load_predictor(args.weights, flip=args.flip)
    files, failed = input_files(args.inputs)
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
