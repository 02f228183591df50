"""``clearsight identify``: the degradations an all-in-one model recognises in each image."""

from __future__ import annotations

import argparse
import sys


def add_identify(sub) -> None:
    """The ``identify`` sub-command's parser."""
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
    idf.set_defaults(_run=run_identify)


def run_identify(args: argparse.Namespace) -> int:
    import csv

    from .._errors import ClearsightError
    from ..batch import collect_inputs
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
