"""Per-step cost of ``lrkit.torch.Monitor``: the same training loop with and without it.

A small CPU model (an MLP 64-256-256-10 on one random batch of 64, SGD with momentum, one
thread) is trained by every configuration in turn, all in one process: the configurations
share the model and the batch (each has its own optimizer and monitor), so the forward and
backward passes, most of a step, run on the same tensors and no configuration is faster by the
luck of where its tensors lie in memory. Each configuration first trains ``25 * every`` updates
(the Monitor's denser start, measured apart below), then they take turns in blocks of
``--steps`` steps, ``--repeat`` blocks each (interleaved, so load on a shared machine hits them
alike); each keeps the median and the minimum of its blocks' per-step CPU time
(``time.process_time``: on a machine shared with other jobs, wall time mostly measures their
load). The overhead is relative to the loop without a monitor measured in the same rounds; a
second optimizer without a monitor shows the noise. Target (issue 11): <= 3% per step at the
default settings.

The one-off cost of the denser start (every update of the first 50 sampled, then every
``k // 25``-th) is the CPU time of the first 500 updates of a fresh optimizer with a fresh
``Monitor()``, against a fresh optimizer alone (``--first-repeat`` pairs, medians).

Run: ``python benchmarks/monitor_overhead.py`` (a minute or two).
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

_MakeMonitor = Callable[[torch.nn.Module, torch.optim.Optimizer], Monitor | None]


def _model(seed: int = 0) -> tuple[torch.nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 10),
    )
    return model, (torch.randn(64, 64), torch.randint(0, 10, (64,)))


class _Run:
    """One configuration: its own optimizer (and monitor) on the shared model and batch."""

    def __init__(self, model: torch.nn.Module, batch: Any, make_monitor: _MakeMonitor) -> None:
        self.model, (self.x, self.y) = model, batch
        self.opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        self.mon = make_monitor(model, self.opt)

    def block(self, steps: int) -> float:
        """Train ``steps`` steps; CPU seconds per step."""
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


def _steady(
    configs: dict[str, tuple[_MakeMonitor, int]], steps: int, repeat: int
) -> dict[str, list[float]]:
    """Seconds per step of each configuration's blocks, past its warm-up, interleaved."""
    model, batch = _model()
    runs = {name: _Run(model, batch, make) for name, (make, _) in configs.items()}
    for name, run in runs.items():
        run.block(configs[name][1])
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            times[name].append(run.block(steps))
    for run in runs.values():
        if run.mon is not None:
            run.mon.close()
    return times


def _first_updates(updates: int, repeat: int) -> tuple[list[float], list[float]]:
    """CPU seconds of the first ``updates`` updates of a fresh optimizer, alone and with a
    fresh ``Monitor()``, in ``repeat`` interleaved pairs (on one model)."""
    model, batch = _model(1)
    alone: list[float] = []
    monitored: list[float] = []
    for _ in range(repeat):
        for make, out in ((lambda m, o: None, alone), (lambda m, o: Monitor(m, o), monitored)):
            run = _Run(model, batch, make)
            out.append(run.block(updates) * updates)
            if run.mon is not None:
                run.mon.close()
    return alone, monitored


def main(argv: list[str] | None = None) -> int:
    """Time every configuration, interleaved, and print the markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=100, help="steps per block (a multiple of 20)")
    ap.add_argument("--repeat", type=int, default=60, help="blocks per configuration")
    ap.add_argument("--first-repeat", type=int, default=10, help="pairs timing the start")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    folder = Path(tempfile.mkdtemp(prefix="lrkit-overhead-"))
    ref, noise = "no monitor (reference)", "no monitor (second optimizer: noise)"
    configs: dict[str, tuple[_MakeMonitor, int]] = {  # (monitor, warm-up updates)
        ref: (lambda m, o: None, 500),
        noise: (lambda m, o: None, 500),
        "Monitor() default (every=20)": (lambda m, o: Monitor(m, o), 500),
        "Monitor(path='run.csv')": (lambda m, o: Monitor(m, o, path=folder / "run.csv"), 500),
        "Monitor(every=100)": (lambda m, o: Monitor(m, o, every=100), 2500),
        "Monitor(every=1)": (lambda m, o: Monitor(m, o, every=1), 100),
    }
    times = _steady(configs, args.steps, args.repeat)
    ref_med, ref_min = statistics.median(times[ref]), min(times[ref])
    print(
        f"torch {torch.__version__}, 1 thread, {args.repeat} interleaved blocks of {args.steps} "
        "steps per configuration after 25 * every updates; MLP 64-256-256-10, batch 64, "
        "SGD+momentum\n"
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
    n = 500
    alone, monitored = _first_updates(n, args.first_repeat)
    a, m = statistics.median(alone), statistics.median(monitored)
    default = statistics.median(times["Monitor() default (every=20)"])
    steady = n * (default - ref_med)
    print(
        f"\nfirst {n} updates of a fresh optimizer (median of {args.first_repeat} pairs): "
        f"{1e3 * a:.1f} ms alone, {1e3 * m:.1f} ms with Monitor(): {1e3 * (m - a):+.1f} ms "
        f"({100 * (m / a - 1):+.1f}%); at the default's steady-state overhead {n} updates cost "
        f"{1e3 * steady:+.1f} ms, so the denser start costs about {1e3 * (m - a - steady):.1f} ms "
        "once"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
