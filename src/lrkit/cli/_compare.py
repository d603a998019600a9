"""``lrkit compare [TASK]``: which schedule should I use? Trains the task under several
schedules at an equal budget over several seeds; prints a table and a recommendation and writes a
report folder."""

from __future__ import annotations

import argparse
import shlex
import sys
import warnings
from pathlib import Path
from typing import Any

from lrkit.tune import recipes
from lrkit.tune.builtin_tasks import DESCRIPTIONS
from lrkit.tune.halving import DEFAULT_BUDGET, SEARCHES


def add_parser(sub: Any) -> None:
    """Register ``compare`` on the sub-command parser ``sub``."""
    p = sub.add_parser(
        "compare",
        help="compare schedules on a task and recommend one",
        description=(
            "Find the peak rate with the range test, train TASK's model from the same "
            "initialisation under several schedules and rates around that peak (successive "
            "halving: short runs on one seed, the best at full length on several seeds), print "
            "a table and a recommendation, and write a report folder (PNG plots, JSON, CSV, "
            "HTML, markdown). "
            "Built-in tasks: "
            + "; ".join(f"{k}: {v}" for k, v in DESCRIPTIONS.items())
            + ". Your own: 'module:function' or 'file.py:function' (that file's code runs here "
            "and in every worker)."
        ),
    )
    p.add_argument(
        "task",
        nargs="?",
        default="digits",
        help=f"{', '.join(DESCRIPTIONS)}, or module:function (default: digits)",
    )
    p.add_argument(
        "--schedules",
        nargs="+",
        metavar="NAME_OR_SPEC",
        help=(
            f"built-in recipes ({' '.join(recipes.names())}; commas also separate them) or spec "
            "texts where 'peak' is the peak rate, optionally with a short label, e.g. "
            "\"mine=cosine(peak, 0.1 * peak, steps='100%%')\""
        ),
    )
    p.add_argument("--seeds", default="3", help="a count (3) or a list (0,1,2); default 3")
    p.add_argument("--steps", type=int, help="steps per run (default: the task's)")
    p.add_argument("--peak", type=float, help="peak rate (default: from the range test)")
    p.add_argument("--target", type=float, help="target loss for 'steps to target'")
    p.add_argument("-j", "--jobs", type=int, default=1, help="worker processes (default 1)")
    p.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="what runs the trials: local (this process, or --jobs processes; default) or ray "
        "(one Ray task per trial; pip install 'lrkit[ray]')",
    )
    p.add_argument(
        "--address",
        help="with --executor ray: the cluster to join, auto (started here with 'ray start') or "
        "HOST:PORT (default: start Ray on this machine)",
    )
    p.add_argument(
        "--device",
        help="where trials train, e.g. cpu, cuda, cuda:1 (default: the task's, else cuda when "
        "available, else cpu)",
    )
    p.add_argument(
        "-o", "--out", default="lrkit-compare", help="report folder (default lrkit-compare)"
    )
    p.add_argument(
        "--search",
        choices=SEARCHES,
        default="halving",
        help=(
            "halving (default): successive halving over schedule x rate within --budget; grid: "
            "every schedule at the common peak on every seed, then the peak refinement "
            "(--no-refine, --refine-*)"
        ),
    )
    p.add_argument(
        "--budget",
        type=float,
        help=(
            "halving: the most training, in full-length runs (range test included; default "
            f"{DEFAULT_BUDGET:g}); sets how many rates per schedule are tried (3, 5, 7 or 9)"
        ),
    )
    p.add_argument(
        "--n-rates",
        type=int,
        help="halving: rates per schedule (odd; default: the most the budget allows)",
    )
    p.add_argument(
        "--no-refine",
        action="store_true",
        help=(
            "grid: skip the peak refinement (by default the --refine-top best schedules at the "
            "common peak are also trained at peak/2 and peak*2, and one more step where that "
            "helps, and the best of them at its own peak is recommended: 2-3 extra runs per "
            "schedule and seed)"
        ),
    )
    p.add_argument("--refine-factor", type=float, help="grid: refinement step factor (default 2)")
    p.add_argument(
        "--refine-steps",
        type=int,
        help="grid: most refinement steps from the peak in either direction (default 2)",
    )
    p.add_argument(
        "--refine-top",
        type=int,
        help="grid: how many of the best schedules at the common peak to refine (default 3)",
    )
    p.add_argument("--resume", action="store_true", help="reuse finished runs in the folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def _schedules(items: list[str] | None) -> list[str] | None:
    if not items:
        return None
    out: list[str] = []
    for item in items:
        out += [item] if "(" in item else [s.strip() for s in item.split(",") if s.strip()]
    return out


def _seeds(text: str) -> int | list[int]:
    try:
        if "," in text:
            return [int(s) for s in text.split(",") if s.strip()]
        return int(text)
    except ValueError:
        raise ValueError(
            f"compare: --seeds must be a count or a list like 0,1,2, got {text!r}"
        ) from None


def _compare(compare: Any, args: argparse.Namespace) -> Any:
    """``compare`` called with the command line's settings (on Ray with ``--executor ray``)."""
    if args.executor == "ray":
        from lrkit.tune.ray_executor import RayExecutor

        with RayExecutor(args.task, address=args.address) as ray_executor:
            return _call(compare, args, executor=ray_executor)
    if args.address is not None:
        raise ValueError(f"compare: --address needs --executor ray, got --address {args.address}")
    return _call(compare, args)


def _call(compare: Any, args: argparse.Namespace, **executor: Any) -> Any:
    given = {
        "refine": False if args.no_refine else None,
        "refine_factor": args.refine_factor,
        "refine_steps": args.refine_steps,
        "refine_top": args.refine_top,
        "budget": args.budget,
        "n_rates": args.n_rates,
    }
    return compare(
        args.task,
        schedules=_schedules(args.schedules),
        seeds=_seeds(args.seeds),
        steps=args.steps,
        peak=args.peak,
        target=args.target,
        jobs=args.jobs,
        device=args.device,
        out=args.out,
        resume=args.resume,
        progress=not args.no_progress,
        search=args.search,
        **{k: v for k, v in given.items() if v is not None},
        **executor,
    )


def _interrupted(args: argparse.Namespace) -> None:
    """Say how many runs are saved and how to continue."""
    runs = Path(args.out) / "runs"
    n = len(list(runs.rglob("*.json"))) if runs.is_dir() else 0
    argv = getattr(args, "argv", None) or ["compare"]
    again = " ".join(shlex.quote(a) for a in argv if a != "--resume")
    print(
        f"\ninterrupted: {n} finished run(s) saved in {runs}; continue with:\n"
        f"  lrkit {again} --resume",
        file=sys.stderr,
    )


def run(args: argparse.Namespace) -> int:
    """Run the comparison, print the table and recommendation, write the report."""
    from lrkit.tune.search import compare

    with warnings.catch_warnings(record=True) as caught:  # printed below, one line each
        warnings.simplefilter("always", UserWarning)
        try:
            comp = _compare(compare, args)
        except KeyboardInterrupt:
            _interrupted(args)
            return 130
    lines = []
    for w in caught:
        if issubclass(w.category, UserWarning):
            lines.append(f"warning: {w.message}")
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if comp.finder is not None:
        f = comp.finder
        print(f"range test: peak rate {comp.peak:.3g} ({f.method}, confidence {f.confidence:.2f})")
    else:
        print(f"peak rate {comp.peak:.3g} (given)")
    on = f", on {comp.device}" if comp.device != "cpu" else ""
    print(f"task {comp.task}: {comp.steps} steps per run, seeds {list(comp.seeds)}{on}\n")
    for line in dict.fromkeys(lines):
        print(line)
    print(comp.table())

    line = f"\nrecommendation: {comp.recommendation or 'none'}"
    best = comp.search_path.recommended if comp.search_path is not None else None
    if best is not None and not best.fixed:  # the halving search's choice, at its own rate
        line += f" at peak {comp.refined_peak:.3g}"
    if comp.recommendation and comp.refinements:
        line += f" at peak {comp.refined_peak:.3g}"
        if comp.common_recommendation != comp.recommendation:
            line += f" (at the common peak {comp.peak:.3g}: {comp.common_recommendation})"
    print(line)
    print(comp.reasoning)
    if comp.search_path is not None:
        from lrkit.tune.summary import path_lines

        print("\n" + "\n".join(path_lines(comp.search_path)))
    if comp.recommendation:
        from lrkit.tools.tables import text_table
        from lrkit.tune.report import REFINEMENT_HEADER, refinement_rows, rounded

        if comp.refinements:
            rows = refinement_rows(comp.refinements, comp.recommendation)
            print("\n" + text_table(REFINEMENT_HEADER, rows))
        print(f"\n{comp.refinement_note()}")
        print(f"use: {rounded(comp.recommended_spec)}")
    print(comp.compute_note())
    from lrkit.tune.findings import findings_lines

    print("\n".join(findings_lines(comp.findings)))
    html = comp.write(args.out)
    print(
        f"\nreport: {html} (plots, report.md, results.json, runs.csv, summary.csv in {args.out}/)"
    )
    print(f"total {comp.wall_s:.1f} s")
    return 0
