"""Per-step cost of ``lrkit.torch.Scheduler.step()`` vs torch's own schedulers and the floor.

For each case torch's scheduler is configured to produce the same values as the lrkit schedule
(checked below, the largest relative difference is printed), and each is timed over ``--steps``
calls of ``step()`` on an optimizer with 1, 16 and 256 param groups. The floor is a loop writing
precomputed floats into each group's ``lr`` (and ``momentum`` for one-cycle), the same float
into every group, with nothing else per step. The best of ``--repeat`` runs is kept, the four
timed loops interleaved in each round.

lrkit is timed twice: ``clock="calls"`` (``step()`` alone, as torch's), and ``clock="updates"``
(the default) where each step also runs the optimizer step hook that counts the update.

Run: ``python benchmarks/overhead.py`` (about a minute on a laptop CPU).
"""

from __future__ import annotations

import argparse
import math
import platform
import time
from collections.abc import Callable

import torch
from torch.optim.lr_scheduler import (
    CosineAnnealingLR,
    LambdaLR,
    LinearLR,
    OneCycleLR,
    SequentialLR,
)

import lrkit
from lrkit.torch import Scheduler

BASE = 0.1


def _optimizer(groups: int) -> torch.optim.SGD:
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in range(groups)]
    return torch.optim.SGD([{"params": [p]} for p in params], lr=BASE, momentum=0.9)


def _torch_scheduler(make: Callable, opt: torch.optim.SGD):
    sched = make(opt)
    opt.step()  # no grads: a no-op that keeps torch from warning about the call order
    return sched


def _hf_cosine_lambda(warmup: int, total: int) -> Callable[[int], float]:
    """transformers.get_cosine_schedule_with_warmup's lambda (num_cycles=0.5), as it builds it."""

    def lr_lambda(step: int) -> float:
        if step < warmup:
            return float(step) / float(max(1, warmup))
        progress = float(step - warmup) / float(max(1, total - warmup))
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress)))

    return lr_lambda


def cases(n: int) -> dict[str, tuple[Callable, dict]]:
    """name -> (torch scheduler factory, lrkit Scheduler kwargs) producing the same values."""
    w = max(1, n // 10)
    return {
        "CosineAnnealingLR": (
            lambda o: CosineAnnealingLR(o, T_max=n, eta_min=1e-4),
            {"lr": lrkit.cosine(BASE, 1e-4, steps=n)},
        ),
        "OneCycleLR (lr+momentum)": (
            lambda o: OneCycleLR(o, max_lr=BASE, total_steps=n + 1),
            {
                "lr": lrkit.one_cycle(BASE, steps=n + 1),
                "momentum": lrkit.one_cycle_momentum(steps=n + 1),
            },
        ),
        "LambdaLR (HF warmup-cosine)": (
            lambda o: LambdaLR(o, _hf_cosine_lambda(w, n)),
            {"lr": lrkit.warmup(lrkit.cosine(BASE, 0.0, steps=n - w), steps=w)},
        ),
        "SequentialLR (Linear, Cosine)": (
            lambda o: SequentialLR(
                o,
                [LinearLR(o, start_factor=0.01, total_iters=w), CosineAnnealingLR(o, T_max=n - w)],
                milestones=[w],
            ),
            {"lr": lrkit.linear(BASE * 0.01, BASE, steps=w) >> lrkit.cosine(BASE, steps=n - w)},
        ),
    }


def _best(fns: list[Callable[[], float]], repeat: int) -> list[float]:
    """The best time of each of ``fns`` over ``repeat`` rounds, the functions interleaved
    within each round (a burst of load on a shared machine then hits all of them alike)."""
    best = [math.inf] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            best[i] = min(best[i], fn())
    return best


def measure(
    groups: int, n: int, repeat: int
) -> list[tuple[str, float, float, float, float, float]]:
    rows = []
    for name, (make_torch, kw) in cases(n).items():
        # values check: same lr (and momentum, where scheduled) sequence from both
        o1, o2 = _optimizer(groups), _optimizer(groups)
        t, s = _torch_scheduler(make_torch, o1), Scheduler(o2, clock="calls", **kw)
        worst = 0.0
        lrs, moms = [], []
        keys = ["lr"] + (["momentum"] if "momentum" in kw else [])
        for _ in range(n):
            lrs.append(o1.param_groups[-1]["lr"])
            moms.append(o1.param_groups[-1]["momentum"])
            for key in keys:
                a, b = o1.param_groups[-1][key], o2.param_groups[-1][key]
                worst = max(worst, abs(a - b) / max(abs(a), 1e-300))
            t.step()
            s.step()

        def run_torch(make_torch: Callable = make_torch) -> float:
            o = _optimizer(groups)
            sch = _torch_scheduler(make_torch, o)
            t0 = time.perf_counter()
            for _ in range(n):
                sch.step()
            return (time.perf_counter() - t0) / n

        def run_calls(kw: dict = kw) -> float:
            o = _optimizer(groups)
            sch = Scheduler(o, clock="calls", **kw)
            t0 = time.perf_counter()
            for _ in range(n):
                sch.step()
            return (time.perf_counter() - t0) / n

        def run_updates(kw: dict = kw) -> float:
            o = _optimizer(groups)
            sch = Scheduler(o, **kw)
            hooks = list(o._optimizer_step_post_hooks.values())
            t0 = time.perf_counter()
            for _ in range(n):
                for h in hooks:  # what optimizer.step() runs after the update
                    h(o, (), {})
                sch.step()
            return (time.perf_counter() - t0) / n

        def run_floor(kw: dict = kw, lrs: list = lrs, moms: list = moms) -> float:
            o = _optimizer(groups)
            gs = o.param_groups
            t0 = time.perf_counter()
            if len(kw) == 1:
                for v in lrs:
                    for g in gs:
                        g["lr"] = v
            else:
                for v, m in zip(lrs, moms, strict=True):
                    for g in gs:
                        g["lr"] = v
                        g["momentum"] = m
            return (time.perf_counter() - t0) / n

        t, c, u, f = _best([run_torch, run_calls, run_updates, run_floor], repeat)
        rows.append((name, t, c, u, f, worst))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--groups", type=int, nargs="+", default=[1, 16, 256])
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(
        f"lrkit {lrkit.__version__}, torch {torch.__version__}, Python "
        f"{platform.python_version()}, {platform.processor() or platform.machine()}; "
        f"{args.steps} steps, best of {args.repeat}\n"
    )
    print(
        "| schedule | groups | torch µs/step | lrkit µs/step | lrkit (updates) µs/step "
        "| floor µs/step | lrkit / torch | lrkit / floor | max rel. diff |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for groups in args.groups:
        for name, t, c, u, f, worst in measure(groups, args.steps, args.repeat):
            print(
                f"| {name} | {groups} | {t * 1e6:.2f} | {c * 1e6:.2f} | {u * 1e6:.2f} | "
                f"{f * 1e6:.2f} | {c / t:.3f} | {c / f:.2f} | {worst:.1e} |"
            )


if __name__ == "__main__":
    main()
