"""Choosing the guard's default ``spike_factor`` from data: on development runs, checked on
held-out runs it never saw.

Clean runs (no fault) are trained and their mini-batch losses recorded. For every step with at
least ``min_history`` earlier losses the robust score ``z = (loss - median) / scale`` of the spike
rule (:mod:`lrkit.torch._guard_spike`, window 50, ``spike_floor_frac=0.1``) is computed against
the 50 losses before it. The default is chosen on the **development** runs only: 1.5 times the
largest ``z`` seen there (no false alarm there, with a margin), rounded up to an integer. It is
then reported on the **evaluation** runs: the false alarms per 1,000 clean steps, and the share of
steps at which a loss raised by x10 or x100 (``loss + (F - 1) * |loss|``, which is ``F * loss``
for a positive loss) is caught. The old rule (``loss > 10 * median``) is shown beside it.

Development: synthetic regression (MSE, Adam), heteroscedastic regression (Gaussian NLL, Adam;
negative losses), digits (cross-entropy, SGD+momentum); seeds 0-2; peaks 1x and 3x the task's rate.
Evaluation: the same three on seeds 10-12 at 2x, and mnist1d (AdamW), a task not in development.

Run: ``python benchmarks/guard_spike_threshold.py`` (a few minutes on a laptop CPU).
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import torch
from lrkit.torch.tasks import load_task

import lrkit
from lrkit.torch._guard_spike import is_spike, robust_z

WINDOW, MIN_HISTORY, FLOOR, MIN_DELTA = 50, 10, 0.1, 1e-8


@dataclass(frozen=True)
class Trace:
    """One clean run's mini-batch losses."""

    task: str
    seed: int
    lr: float
    losses: list[float]


def _synthetic(kind: str) -> tuple[Callable, Callable, Callable, float]:
    """(data(seed), model(), loss, peak lr) of a synthetic regression task."""

    def data(seed: int):
        g = torch.Generator().manual_seed(seed)
        x = torch.rand(2048, 4, generator=g) * 4 - 2
        w = torch.randn(4, 1, generator=g)
        noise = 0.05 + 0.3 * (x[:, :1].abs() / 2)  # heteroscedastic
        y = torch.sin(x @ w) + noise * torch.randn(2048, 1, generator=g)
        return x, y

    out = 2 if kind == "nll" else 1

    def model():
        return torch.nn.Sequential(
            torch.nn.Linear(4, 64), torch.nn.Tanh(), torch.nn.Linear(64, out)
        )

    def loss(o, y):
        if kind == "nll":
            return torch.nn.functional.gaussian_nll_loss(o[:, :1], y, o[:, 1:].exp())
        return torch.nn.functional.mse_loss(o, y)

    return data, model, loss, 3e-3


def run(task: str, seed: int, lr_mult: float, steps: int) -> Trace:
    """Train one clean run (warmup-cosine) and record its losses."""
    torch.manual_seed(seed)
    if task in ("mse", "nll"):
        data, make, loss_fn, lr = _synthetic(task)
        x, y = data(seed)
        model = make()
        opt: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        gen = torch.Generator().manual_seed(100 + seed)

        def batches():
            while True:
                idx = torch.randint(0, len(x), (64,), generator=gen)
                yield x[idx], y[idx]

        it = batches()
    else:
        t = load_task(task)
        lr = {"digits": 0.1, "mnist1d": 3e-3}[task]
        model = t.model()
        opt = t.optimizer(model.parameters(), lr)
        loss_fn = t.loss
        it = t.batches(seed)
    peak = lr * lr_mult
    sched = lrkit.warmup(
        lrkit.cosine(peak, peak / 100, steps=steps - steps // 10), steps=steps // 10
    )
    losses = []
    for k in range(steps):
        for g in opt.param_groups:
            g["lr"] = sched(k)
        xb, yb = next(it)
        loss = loss_fn(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return Trace(task, seed, peak, losses)


def scores(trace: Trace) -> list[float]:
    """The robust z of every step with enough history."""
    out = []
    for t in range(MIN_HISTORY, len(trace.losses)):
        out.append(robust_z(trace.losses[t], trace.losses[max(0, t - WINDOW) : t], FLOOR))
    return out


def rates(traces: list[Trace], k: float) -> dict[str, float]:
    """False alarms per 1,000 clean steps and the share of x10 / x100 spikes caught, for the new
    rule at ``k`` and for the old ``loss > 10 * median``."""
    n = fa = fa_old = 0
    caught = {10: 0, 100: 0}
    for tr in traces:
        h = tr.losses
        for t in range(MIN_HISTORY, len(h)):
            hist = h[max(0, t - WINDOW) : t]
            rule = dict(factor=k, floor_frac=FLOOR, min_delta=MIN_DELTA, min_history=MIN_HISTORY)
            n += 1
            fa += is_spike(h[t], hist, **rule)
            fa_old += h[t] > 10 * statistics.median(hist)
            for f in caught:
                caught[f] += is_spike(h[t] + (f - 1) * abs(h[t]), hist, **rule)
    return {
        "steps": n,
        "false alarms / 1k": 1000 * fa / n,
        "old rule false alarms / 1k": 1000 * fa_old / n,
        "x10 caught": caught[10] / n,
        "x100 caught": caught[100] / n,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    args = ap.parse_args()
    torch.set_num_threads(1)
    dev = [
        run(task, seed, mult, args.steps)
        for task in ("mse", "nll", "digits")
        for seed in (0, 1, 2)
        for mult in (1.0, 3.0)
    ]
    evaluation = [
        run(task, seed, 2.0, args.steps)
        for task in ("mse", "nll", "digits", "mnist1d")
        for seed in (10, 11, 12)
    ]
    worst = max(max(scores(tr)) for tr in dev)
    k = float(math.ceil(1.5 * worst))
    print(
        f"development: {len(dev)} runs; largest clean z = {worst:.2f}; chosen spike_factor = {k:g}"
    )
    print(
        "| set | runs | steps judged | false alarms / 1k (new) | false alarms / 1k (old: 10x median) "
        "| x10 caught | x100 caught |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, traces in (("development", dev), ("evaluation", evaluation)):
        r = rates(traces, k)
        print(
            f"| {name} | {len(traces)} | {r['steps']} | {r['false alarms / 1k']:.2f} "
            f"| {r['old rule false alarms / 1k']:.1f} | {100 * r['x10 caught']:.1f}% "
            f"| {100 * r['x100 caught']:.1f}% |"
        )
    per_task = {}
    for tr in evaluation:
        per_task.setdefault(tr.task, []).append(max(scores(tr)))
    print(
        "largest clean z per evaluation task: "
        + ", ".join(f"{t} {max(v):.2f}" for t, v in per_task.items())
    )


if __name__ == "__main__":
    main()
