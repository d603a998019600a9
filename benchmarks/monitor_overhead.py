"""Per-step cost of ``lrkit.torch.Monitor``: the same training loop with and without it.

A small CPU model (an MLP 64-256-256-10 on random data, batch 64, SGD with momentum, one
thread) is trained for ``--steps`` steps in each configuration; the configurations are run in
turn, ``--repeat`` rounds (interleaved, so load on a shared machine hits them alike), and each
keeps the median and the minimum of its rounds' per-step times. The overhead is relative to
the loop without a monitor measured in the same rounds. Target (issue 11): <= 3% per step at the
default settings.

Run: ``python benchmarks/monitor_overhead.py`` (about a minute).
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


def _loop(steps: int, make_monitor: Callable[[Any, Any], Monitor | None]) -> float:
    """Seconds per step of ``steps`` training steps (after 20 warm-up steps)."""
    model, opt, (x, y) = _setup()
    mon = make_monitor(model, opt)
    for i in range(steps + 20):
        if i == 20:
            t0 = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if mon is not None:
            mon.log(loss)
        opt.zero_grad()
    dt = (time.perf_counter() - t0) / steps
    if mon is not None:
        mon.close()
    return dt


def main(argv: list[str] | None = None) -> int:
    """Time every configuration, interleaved, and print the markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--repeat", type=int, default=9)
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
    times: dict[str, list[float]] = {k: [] for k in configs}
    for _ in range(args.repeat):
        for name, make in configs.items():
            times[name].append(_loop(args.steps, make))
            (folder / "run.csv").unlink(missing_ok=True)
    ref_med = statistics.median(times["no monitor (reference)"])
    ref_min = min(times["no monitor (reference)"])
    print(
        f"torch {torch.__version__}, 1 thread, {args.steps} steps x {args.repeat} interleaved "
        "rounds; MLP 64-256-256-10, batch 64, SGD+momentum\n"
    )
    print("| configuration | median µs/step | overhead (median) | min µs/step | overhead (min) |")
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
