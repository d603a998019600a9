"""The ``lrkit`` console command: one sub-command per module in this package."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import sysconfig
import traceback
from collections.abc import Sequence

import lrkit

#: Sub-command modules; each defines ``add_parser(subparsers)`` that sets ``func`` to a
#: callable taking the parsed namespace and returning an exit code.
_COMMANDS = ("lrkit.cli._plot", "lrkit.cli._find", "lrkit.cli._compare", "lrkit.cli._diagnose")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="lrkit", description="Learning-rate schedules: plot, inspect, find and compare."
    )
    parser.add_argument("--version", action="version", version=f"lrkit {lrkit.__version__}")
    parser.add_argument(
        "--traceback", action="store_true", help="on an error, print the full Python traceback"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in _COMMANDS:
        importlib.import_module(module).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code. Every error prints one line and exits 2
    (``--traceback``: the full trace); Ctrl-C exits 130 (a command may say more first)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # to print a --resume command
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"lrkit {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.traceback:
            traceback.print_exc()
        print(f"lrkit {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return 2


def one_line(exc: BaseException) -> str:
    """An error as one line. lrkit's own checks (a ValueError/TypeError raised inside lrkit)
    print their message as written (a spec error adds a caret line under the spec); anything else prints its type, message and place: the innermost frame
    of the user's own code when there is one (``task raised KeyError: 'x' (my_task.py:12)``),
    else the innermost frame, and how to see the whole trace."""
    tb = traceback.extract_tb(exc.__traceback__)
    if tb and _is_lrkit(tb[-1].filename) and isinstance(exc, (ValueError, TypeError)):
        return str(exc)  # as written (a spec error's caret line included)
    msg = " ".join(str(exc).split()) or type(exc).__name__
    user = [f for f in tb if not (_is_lrkit(f.filename) or _is_library(f.filename))]
    where = user[-1] if user else (tb[-1] if tb else None)
    place = f" ({os.path.basename(where.filename)}:{where.lineno})" if where else ""
    head = "task raised " if user else ""
    return f"{head}{type(exc).__name__}: {msg}{place}; lrkit --traceback ... for the full trace"


def _is_lrkit(filename: str) -> bool:
    return f"{os.sep}lrkit{os.sep}" in filename


def _is_library(filename: str) -> bool:
    """Python's own modules and installed packages (not the user's code)."""
    paths = sysconfig.get_paths()
    roots = {paths["stdlib"], paths["purelib"], paths["platlib"]}
    return "site-packages" in filename or any(filename.startswith(r) for r in roots if r)
