"""The ``lrkit`` console command: one sub-command per module in this package."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

#: Sub-command modules; each defines ``add_parser(subparsers)`` that sets ``func`` to a
#: callable taking the parsed namespace and returning an exit code.
_COMMANDS = ("lrkit.cli._plot", "lrkit.cli._find", "lrkit.cli._compare", "lrkit.cli._diagnose")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="lrkit", description="Learning-rate schedules: plot, inspect, find and compare."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in _COMMANDS:
        importlib.import_module(module).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (errors print one line, exit code 2)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError) as exc:
        print(f"lrkit {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
