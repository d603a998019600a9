"""``lrkit diagnose LOG``: read a training log (CSV, JSON lines or a TensorBoard folder), print
what its learning rate is doing wrong with the evidence and the fix, and write an HTML page
with the plots."""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_parser(sub: Any) -> None:
    """Register ``diagnose`` on the sub-command parser ``sub``."""
    p = sub.add_parser(
        "diagnose",
        help="say what a training run's learning rate is doing wrong, from its log",
        description=(
            "Read LOG (a .csv or .jsonl file with the columns of docs/diagnostics.md, e.g. "
            "written by lrkit.torch.Monitor, or a TensorBoard folder as Lightning, HF Trainer "
            "or SummaryWriter write it), print the findings (most severe first) with their "
            "evidence and advice, and write an HTML page with the plots."
        ),
    )
    p.add_argument("log", metavar="LOG", help="a .csv / .jsonl log or a TensorBoard folder")
    p.add_argument(
        "-o",
        "--output",
        default="diagnose.html",
        help="HTML report (default diagnose.html; '' for none)",
    )
    p.add_argument(
        "--min-severity",
        type=float,
        default=0.0,
        help="leave out findings below this severity (0-1)",
    )
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Diagnose the log and report; returns the exit code."""
    from lrkit.diagnostics import diagnose
    from lrkit.diagnostics.io import read_log

    if not 0.0 <= args.min_severity <= 1.0:
        raise ValueError(f"--min-severity must be in [0, 1], got {args.min_severity}")
    log = read_log(args.log)
    findings = diagnose(log, min_severity=args.min_severity)
    if args.json:
        print(json.dumps([f.to_dict() for f in findings], indent=1))
    else:
        print(f"{args.log}: {len(log)} steps ({int(log.steps[0])}-{int(log.steps[-1])})")
        for i, f in enumerate(findings):
            print(f"{i + 1}. {f}")
            if f.evidence:
                print("    evidence: " + ", ".join(f"{k}={v:.4g}" for k, v in f.evidence))
    if args.output:
        from lrkit.diagnostics.report import write_report

        path = write_report(log, findings, args.output, source=str(args.log))
        if not args.json:
            print(f"report: {path}")
    return 0
