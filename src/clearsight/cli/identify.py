"""``clearsight identify`` (what does each image need?) and ``clearsight judge`` (did a restoration harm it?)."""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path


def add_identify(sub) -> None:
    """The ``identify`` sub-command's parser."""
    idf = sub.add_parser(
        "identify",
        help="recognise the degradation(s) of images",
        description="Print what each image needs: the probability of haze, night haze, sand-dust, low light, noise, "
        "rain, blur and clean from the recogniser (calibrated; several can be high at once), and the degradations "
        "found. With --model, an all-in-one (udair) model's own identifier or degradation prototypes are used "
        "instead.",
    )
    idf.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    idf.add_argument(
        "--model", default=None, help="a udair model name or weights file: use its identifier instead of the recogniser"
    )
    idf.add_argument("--top", type=int, default=3, help="how many labels to print per image (default: 3)")
    idf.add_argument("--csv", metavar="FILE", help="also write every probability to this CSV file")
    idf.add_argument(
        "--method",
        choices=("auto", "classifier", "prototype"),
        default="auto",
        help="with --model: auto (default): the identifier if the model has one, else the nearest prototype",
    )
    idf.set_defaults(_run=run_identify)


def _write_csv(path: str, header: list[str], rows: list[list[str]]) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def run_identify(args: argparse.Namespace) -> int:
    if args.model is None and args.method != "auto":
        from .._errors import ClearsightError

        raise ClearsightError("--method applies to udair models: give --model")
    if args.model is not None:
        return _identify_udair(args)
    from .._errors import ClearsightError
    from ..models.auto import recognise
    from ..recognition import LABELS
    from ._common import input_files

    files, failed = input_files(args.inputs)
    rows = []
    for f in files:
        try:
            rec = recognise(f)
        except ClearsightError as e:
            print(str(e) if str(f) in str(e) else f"{f}: {e}", file=sys.stderr)
            failed += 1
            continue
        order = sorted(LABELS, key=rec.probabilities.get, reverse=True)[: max(1, args.top)]
        found = ", ".join(rec.found) or "nothing (clean)"
        print(f"{f}: {found}  [" + ", ".join(f"{k} {rec.probabilities[k]:.2f}" for k in order) + "]")
        rows.append([str(f), *[f"{rec.probabilities[k]:.4f}" for k in LABELS], "+".join(rec.found) or "clean"])
    if args.csv:
        _write_csv(args.csv, ["file", *LABELS, "found"], rows)
    return 1 if failed and not rows else 0  # as before: 1 only when nothing could be identified


def _identify_udair(args: argparse.Namespace) -> int:
    from .._errors import ClearsightError
    from ..io import load_image
    from ..models import weights_file
    from ..models._weights import load_weights
    from ..models.udair import identify_view
    from ._common import input_files

    net, _ = load_weights(weights_file(args.model))
    if not hasattr(net, "identify") or not net.config.tasks:
        raise ClearsightError(f"{args.model} is not an all-in-one model with a prototype bank (train a udair model)")
    if args.method == "classifier" and getattr(net, "identifier", None) is None:
        raise ClearsightError(f"{args.model} has no identifier; use --method prototype")
    tasks = list(net.config.tasks)
    files, failed = input_files(args.inputs)
    rows = []
    for f in files:
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
        _write_csv(args.csv, ["file", *tasks], rows)
    return 1 if failed and not rows else 0


def add_judge(sub) -> None:
    """The ``judge`` sub-command's parser."""
    jd = sub.add_parser(
        "judge",
        help="say whether a restoration harmed each image",
        description="Compare BEFORE with AFTER (two files, or two folders matched by file name) and print one line "
        "per pair: ok, or harmed with the harms found (colour_cast, noise, detail_lost, clipped, over_dehazed, "
        "haze_added, halo, blotches). Thresholds: docs/auto.md, 'The judge'. Exit code 0 when every pair was judged "
        "(harmed or not), 1 when a pair could not be read.",
    )
    jd.add_argument("before", metavar="BEFORE", help="the input image, or a folder of them")
    jd.add_argument("after", metavar="AFTER", help="the restored image, or a folder with the same file names")
    jd.add_argument("--csv", metavar="FILE", help="also write every measured statistic to this CSV file")
    jd.set_defaults(_run=run_judge)


def _pairs(before: Path, after: Path) -> tuple[list[tuple[Path, Path]], list[str]]:
    from .._errors import ClearsightError
    from ..batch import collect_inputs

    if before.is_dir() != after.is_dir():
        raise ClearsightError(f"{before} and {after}: give two files or two folders")
    if not before.is_dir():
        return [(before, after)], []
    pairs, errors = collect_inputs([before])
    out, missing = [], [e.message for e in errors]
    by_stem = {}
    for p in after.iterdir():
        by_stem.setdefault(p.stem, p)
    for src, rel in pairs:
        dst = after / rel
        if not dst.exists():
            dst = by_stem.get(src.stem)  # restore may write another format under the same stem
        if dst is None:
            missing.append(f"{src}: no file of that name in {after}")
        else:
            out.append((src, dst))
    return out, missing


def run_judge(args: argparse.Namespace) -> int:
    from .._errors import ClearsightError
    from ..io import load_image
    from ..judging import judge_np

    pairs, problems = _pairs(Path(args.before), Path(args.after))
    for m in problems:
        print(m, file=sys.stderr)
    failed, rows, header = len(problems), [], None
    harmed = 0
    for b, a in pairs:
        try:
            v = judge_np(load_image(b).rgb, load_image(a).rgb)
        except ClearsightError as e:
            print(str(e) if str(b) in str(e) or str(a) in str(e) else f"{b}: {e}", file=sys.stderr)
            failed += 1
            continue
        harmed += not v.ok
        print(f"{a}: {v}")
        header = header or sorted(v.scores)
        rows.append([str(b), str(a), "ok" if v.ok else "harmed", " ".join(v.harms), *[v.scores[k] for k in header]])
    if pairs and len(pairs) > 1:
        tail = f", {failed} failed" if failed else ""
        print(f"{len(rows)} judged: {len(rows) - harmed} ok, {harmed} harmed{tail}")
    if args.csv and header:
        _write_csv(args.csv, ["before", "after", "verdict", "harms", *header], rows)
    return 1 if failed else 0
