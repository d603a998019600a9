"""Per-step cost of ``lrkit.torch.Monitor``: the same training loop with and without it.

A small CPU model (an MLP 64-256-256-10 on random data, batch 64, SGD with momentum, one
thread) is trained in each configuration, all in one process; the configurations take turns
in blocks of ``--steps`` steps, ``--repeat`` blocks each (interleaved, so load on a shared
machine hits them alike), and each keeps the median and the minimum of its blocks' per-step
CPU time (``time.process_time``: on a machine shared with other jobs, wall time mostly measures
their load). The overhead is relative to
the loop without a monitor measured in the same rounds. Target (issue 11): <= 3% per step at the
default settings.

Run: ``python benchmarks/monitor_overhead.py`` (a few minutes on a busy machine).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from lrkit.torch import Monitor


def _setup(seed: int = 0) -> tuple[torch.nn.Module, torch.optim.Optimizer, Any]:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 10),
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x, y = torch.randn(64, 64), torch.randint(0, 10, (64,))
    return model, opt, (x, y)


class _Run:
    """One configuration's model, optimizer and monitor, trained block by block."""

    def __init__(self, make_monitor: Callable[[Any, Any], Monitor | None]) -> None:
        self.model, self.opt, (self.x, self.y) = _setup()
        self.mon = make_monitor(self.model, self.opt)
        self.block(20)  # warm-up

    def block(self, steps: int) -> float:
        """Train ``steps`` steps; seconds per step."""
        model, opt, mon, x, y = self.model, self.opt, self.mon, self.x, self.y
        t0 = time.process_time()
        for _ in range(steps):
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            if mon is not None:
                mon.log(loss)
            opt.zero_grad()
        return (time.process_time() - t0) / steps


def main(argv: list[str] | None = None) -> int:
    """Time every configuration, interleaved, and print the markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=100, help="steps per block (a multiple of 20)")
    ap.add_argument("--repeat", type=int, default=60, help="blocks per configuration")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    folder = Path(tempfile.mkdtemp(prefix="lrkit-overhead-"))
    configs: dict[str, Callable[[Any, Any], Monitor | None]] = {
        "no monitor (reference)": lambda m, o: None,
        "Monitor() default (every=20)": lambda m, o: Monitor(m, o),
        "Monitor(path='run.csv')": lambda m, o: Monitor(m, o, path=folder / "run.csv"),
        "Monitor(every=100)": lambda m, o: Monitor(m, o, every=100),
        "Monitor(every=1)": lambda m, o: Monitor(m, o, every=1),
    }
    runs = {name: _Run(make) for name, make in configs.items()}
    times: dict[str, list[float]] = {k: [] for k in configs}
    for _ in range(args.repeat):  # blocks of `--steps` steps, the configurations in turn
        for name, run in runs.items():
            times[name].append(run.block(args.steps))
    for run in runs.values():
        if run.mon is not None:
            run.mon.close()
    ref_med = statistics.median(times["no monitor (reference)"])
    ref_min = min(times["no monitor (reference)"])
    print(
        f"torch {torch.__version__}, 1 thread, {args.repeat} interleaved blocks of {args.steps} "
        "steps per configuration; MLP 64-256-256-10, batch 64, SGD+momentum\n"
    )
    print(
        "| configuration | median CPU µs/step | overhead (median) | min CPU µs/step "
        "| overhead (min) |"
    )
    print("|---|---:|---:|---:|---:|")
    for name, ts in times.items():
        med, lo = statistics.median(ts), min(ts)
        print(
            f"| {name} | {1e6 * med:.1f} | {100 * (med / ref_med - 1):+.1f}% | {1e6 * lo:.1f} "
            f"| {100 * (lo / ref_min - 1):+.1f}% |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
