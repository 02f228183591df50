"""Helpers shared by the sub-commands: argument types, input collection, the restore report table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def tile_arg(value: str) -> int | None:
    if value == "auto":
        return None
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--tile takes a number of pixels, 0 or 'auto', not {value!r}") from None
    if n < 0 or (0 < n < 64):
        raise argparse.ArgumentTypeError("--tile must be 0 (never tile) or at least 64 pixels")
    return n


class Parser(argparse.ArgumentParser):
    """An argument parser whose ``epilog`` may be a function, called only when the help is shown, so that
    building the parsers of every command imports nothing heavy (``clearsight --version`` stays fast)."""

    def format_help(self) -> str:
        if callable(self.epilog):
            self.epilog = self.epilog()
        return super().format_help()


class LazyChoices:
    """The choices of an option, computed on first use (membership test, listing), not when the parser is built.
    Give the option a ``metavar``: argparse lists choices it can see while the option is added."""

    def __init__(self, compute) -> None:
        self._compute, self._items = compute, None

    def _get(self) -> list[str]:
        if self._items is None:
            self._items = list(self._compute())
        return self._items

    def __iter__(self):
        return iter(self._get())

    def __contains__(self, item) -> bool:
        return item in self._get()

    def __len__(self) -> int:
        return len(self._get())


def _list_models() -> list[str]:
    from ..models import list_models

    return list_models()


def model_names() -> LazyChoices:
    """The registered restorers, listed when first needed (the registry imports torch)."""
    return LazyChoices(_list_models)


def add_irp_options(p: argparse.ArgumentParser) -> None:
    """The predictor options shared by rank, select and advise."""
    p.add_argument("--weights", metavar="FILE", help="IRP predictor weights (default: the shipped irp.dynamic)")
    p.add_argument(
        "--flip", action="store_true", help="average the scores of each image and its mirror image (2x time, steadier)"
    )


def input_files(inputs) -> tuple[list, int]:
    from ..batch import collect_inputs

    pairs, errors = collect_inputs(inputs)
    for e in errors:
        print(e.message, file=sys.stderr)  # the message starts with the path
    return [f for f, _ in pairs], len(errors)


def image_stats(path: str) -> dict[str, float]:
    from ..io import read_image
    from ..metrics.no_reference import colorfulness, haze_score, rms_contrast

    x = read_image(path)
    return {
        "haze": float(haze_score(x)[0]),
        "contrast": float(rms_contrast(x)[0]),
        "colour": float(colorfulness(x)[0]),
    }


def print_report(results) -> None:
    from ..video import is_video

    rows = [r for r in results if r.status == "done" and not is_video(r.source)]
    if not rows:
        return
    print()
    print("before -> after (haze: mean dark channel, lower is clearer; contrast: luma std; colour: colourfulness)")
    width = max(20, *(len(r.method) for r in rows))
    header = f"{'file':<28} {'method':<{width}} {'haze':>13} {'contrast':>13} {'colour':>13} {'sec':>6}"
    print(header)
    print("-" * len(header))
    for r in rows:
        a, b = image_stats(r.source), image_stats(r.output)
        cells = [f"{a[k]:.3f}->{b[k]:.3f}" for k in ("haze", "contrast", "colour")]
        name = Path(r.source).name[:28]
        print(f"{name:<28} {r.method:<{width}} {cells[0]:>13} {cells[1]:>13} {cells[2]:>13} {r.seconds:6.2f}")
    found = [r for r in rows if r.method.startswith("auto") and r.message]
    if found:
        print("\nwhat auto found and did:")
        for r in found:
            print(f"  {Path(r.source).name}: {r.message}")


def print_summary(summary, seconds: float) -> None:
    done, skipped, failed = summary.count("done"), summary.count("skipped"), summary.count("failed")
    print(f"\nrestored {done}, skipped {skipped}, failed {failed} in {seconds:.1f} s")
    for r in summary.results:
        if r.status == "skipped":
            print(f"  skipped: {r.message}")
    for r in summary.results:
        if r.status == "failed":
            print(f"  failed:  {r.message}")
