"""``lrkit find [TASK]``: the learning-rate range test on a task; prints the suggestion and the
alternatives, writes the plot."""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_parser(sub: Any) -> None:
    """Register ``find`` on the sub-command parser ``sub``."""
    p = sub.add_parser(
        "find",
        help="run the learning-rate range test on a task and suggest a peak rate",
        description=(
            "Run the learning-rate range test on TASK (a built-in: digits, mnist1d, charlm; or "
            "'module:function' / 'file.py:function' returning your own task) and suggest a peak "
            "rate (its probes scored on the task's validation data, as compare does). The model, "
            "optimizer and RNG state are restored afterwards."
        ),
    )
    p.add_argument("task", nargs="?", default="digits", help="task (default: digits)")
    p.add_argument("--start", type=float, default=1e-7, help="first rate (default 1e-7)")
    p.add_argument("--end", type=float, default=10.0, help="last rate (default 10)")
    p.add_argument("--steps", type=int, default=100, help="updates in the test (default 100)")
    p.add_argument("--mode", choices=("exp", "linear"), default="exp", help="rate growth")
    p.add_argument(
        "--rule",
        choices=("probe", "minimum/10", "valley", "steepest"),
        default="probe",
        help="the rule whose rate is suggested: probe (default; short runs below the ramp's "
        "divergence point) or one of fastai's rules on the ramp",
    )
    p.add_argument("--probe-steps", type=int, default=80, help="updates per probe run (default 80)")
    p.add_argument("--seed", type=int, default=0, help="model initialisation seed")
    p.add_argument(
        "-o", "--output", default="lr_find.png", help="plot file (default lr_find.png; '' for none)"
    )
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the range test and print its outcome; returns the exit code."""
    import torch

    from lrkit.tune.finder import PROBE_STEPS, find_lr
    from lrkit.tune.tasks import load_task

    task = load_task(args.task)
    torch.manual_seed(args.seed)
    model = task.model()
    model.train()
    opt = task.optimizer(model.parameters(), 1e-3)
    res = find_lr(
        model,
        opt,
        task.loss,
        task.batches(args.seed),
        start=args.start,
        end=args.end,
        steps=args.steps,
        mode=args.mode,
        rule=args.rule,
        probe_steps=PROBE_STEPS if args.probe_steps is None else args.probe_steps,
        val_data=task.val_batches(),
        progress=True,
    )
    if args.output:
        import matplotlib.pyplot as plt

        plt.close(res.plot(args.output))
    if args.json:
        print(json.dumps({"task": task.name, **res.to_dict()}, indent=1))
        return 0
    print(
        f"task {task.name}: {len(res.rates)} updates, rates {res.rates[0]:.3g}..{res.rates[-1]:.3g}"
        + (" (stopped at divergence)" if res.diverged else "")
    )
    print(
        f"suggested peak rate: {res.suggestion:.3g}  ({res.method}; confidence "
        f"{res.confidence:.2f}, {res.confidence_label})"
    )
    for name, rate in res.alternatives.items():
        print(f"  {name:<11} {rate:.3g}")
    for rate, loss in zip(res.probe_rates, res.probe_losses, strict=True):
        print(f"  probe at {rate:<9.3g} held-out loss {loss:.4g}")
    for reason in res.reasons:
        print(f"  note: {reason}")
    print(f'e.g. lr="{res.warmup_cosine(steps=task.steps)}"')
    if args.output:
        print(f"plot: {args.output}")
    return 0
