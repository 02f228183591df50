"""The ``clearsight`` command: one entry point; each sub-command lives in its own module of this package.

``build_parser`` asks each module to add its sub-commands (in the order ``--help`` lists them); every
sub-parser records the function that runs it, and ``main`` dispatches to it. A new command is one
``add_NAME(sub)`` / ``run_NAME(args)`` pair in a module here and one line in :data:`_SUBCOMMANDS`.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

from .. import __version__
from . import data, demo, deploy, evaluate, identify, irp, restore, train
from ._common import Parser

#: The sub-commands' parser builders, in the order of ``clearsight --help``.
_SUBCOMMANDS = (
    restore.add_restore,
    restore.add_models,
    data.add_synth,
    data.add_stats,
    evaluate.add_score,
    evaluate.add_bench,
    demo.add_demo,
    train.add_train,
    identify.add_identify,
    identify.add_judge,
    irp.add_rank,
    irp.add_select,
    irp.add_advise,
    train.add_adapt,
    deploy.add_export,
    deploy.add_view,
)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="clearsight",
        description="Restore photos degraded by haze, night haze, sand and dust, low light and noise (and, with "
        "the experimental all-in-one model udair.allinone, rain and blur), on the CPU, offline; the default, "
        "auto, restores only what it finds and leaves a clean photo unchanged; pick the frames worth restoring; "
        "adapt a model to your own camera.",
        epilog="run 'clearsight COMMAND --help' for the options of each command",
    )
    parser.add_argument("--version", action="version", version=f"clearsight {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in _SUBCOMMANDS:
        add(sub)
    return parser


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


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
    from ..runtime import is_out_of_memory, limit_memory, tune_allocator

    tune_allocator()  # network passes reuse freed memory instead of page-faulting it in again (about 1.8x faster)
    limit = limit_memory(None)  # past 90% of the machine an allocation fails here, not by the kernel's kill
    warnings.formatwarning = _one_line_warning

    try:
        return args._run(args)
    except ClearsightError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (MemoryError, RuntimeError) as e:
        if not is_out_of_memory(e):
            raise
        cap = f" (this process may use at most {limit / 2**30:.1f} GB)" if limit else ""
        print(f"error: out of memory{cap}: lower the batch, crop, --size or --tile, or free memory", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; finished outputs are kept, re-run to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
