"""Vectorised evaluation speed: lrkit schedules against hand-written numpy expressions.

Each case evaluates a composed schedule at every step of a long run (``s(np.arange(N))``,
N = 10,000,000 by default) and compares it with the fastest straightforward numpy expression
of the same formula (the "floor"), after checking that both give the same values (max
difference <= 1e-12 of the peak). Times are the best of several repeats (as ``timeit``
reports; lrkit and the floor run interleaved), in milliseconds. The target is lrkit within
2x of the floor. On a shared machine, rerun with more ``--repeat`` before trusting a ratio.

Run:  .venv/bin/python benchmarks/evaluate.py [--n 10000000] [--repeat 5] [--case NAME ...]

Timings are printed, never asserted (see STYLE.md).
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import lrkit

Array = np.ndarray


@dataclass(frozen=True)
class Case:
    """One benchmark: the lrkit schedule and its hand-written numpy floor."""

    name: str
    schedule: Callable[[int], lrkit.Schedule]
    floor: Callable[[Array, int], Array]


# ----------------------------------------------------------------------------- floors
def warmup_cosine_floor(t: Array, n: int) -> Array:
    """Linear warmup over W = n/10 steps, then a half-cosine from 1e-3 to 1e-5 over 9n/10."""
    peak, floor, w, d = 1e-3, 1e-5, n // 10, n - n // 10
    return np.where(
        t < w, peak * t / w, floor + (peak - floor) * 0.5 * (1 + np.cos(np.pi * (t - w) / d))
    )


def cosine_floor(t: Array, n: int) -> Array:
    """A half-cosine from 1e-3 to 1e-5 over n steps (no combinator)."""
    peak, floor = 1e-3, 1e-5
    return floor + (peak - floor) * 0.5 * (1 + np.cos(np.pi * np.minimum(t, n) / n))


def one_cycle_floor(t: Array, n: int) -> Array:
    """torch OneCycleLR (cos): initial -> peak until pct*T - 1, then -> low until T - 1."""
    peak = 1e-3
    initial = peak / 25.0
    low = initial / 1e4
    e1, e2 = 0.3 * n - 1.0, n - 1.0
    up = np.clip(t / e1, 0.0, 1.0)
    down = np.clip((t - e1) / (e2 - e1), 0.0, 1.0)
    return np.where(
        t <= e1,
        peak + (initial - peak) * 0.5 * (1 + np.cos(np.pi * up)),
        low + (peak - low) * 0.5 * (1 + np.cos(np.pi * down)),
    )


def restarts_floor(t: Array, n: int) -> Array:
    """SGDR with period_mult = 2: period i starts at T0 (2^i - 1) and lasts T0 2^i."""
    peak, floor, t0 = 1e-3, 1e-5, n // 100
    i = np.floor(np.log2(1.0 + t / t0))
    start = t0 * (2.0**i - 1.0)
    frac = (t - start) / (t0 * 2.0**i)
    return floor + (peak - floor) * 0.5 * (1 + np.cos(np.pi * frac))


def wsd_floor(t: Array, n: int) -> Array:
    """WSD: linear warmup W = n/100, plateau to 0.8n, 1-sqrt decay over the last n/5."""
    peak, floor = 1e-3, 1e-5
    w, d = n // 100, n // 5
    s = n - w - d
    f = np.clip((t - w - s) / d, 0.0, 1.0)
    decay = peak + (floor - peak) * np.sqrt(f)
    return np.where(t < w, peak * t / w, np.where(t < w + s, peak, decay))


CASES = [
    Case(
        "warmup(cosine)",
        lambda n: lrkit.warmup(lrkit.cosine(1e-3, 1e-5, steps=n - n // 10), steps=n // 10),
        warmup_cosine_floor,
    ),
    Case("cosine", lambda n: lrkit.cosine(1e-3, 1e-5, steps=n), cosine_floor),
    Case("one_cycle", lambda n: lrkit.one_cycle(1e-3, steps=n), one_cycle_floor),
    Case(
        "cosine_restarts(period_mult=2)",
        lambda n: lrkit.cosine_restarts(1e-3, 1e-5, steps=n // 100, period_mult=2.0),
        restarts_floor,
    ),
    Case(
        "wsd(1-sqrt)",
        lambda n: lrkit.wsd(
            1e-3,
            1e-5,
            warmup_steps=n // 100,
            stable_steps=n - n // 100 - n // 5,
            decay_steps=n // 5,
        ),
        wsd_floor,
    ),
]


def best_ms(fns: list[Callable[[], object]], repeat: int) -> list[float]:
    """The fastest of ``repeat`` single runs of each function, in milliseconds.

    The functions run in turn within each repeat (interleaved), so a busy machine slows
    them alike; the garbage collector is off while timing.
    """
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for fn, out in zip(fns, times, strict=True):
            gc.collect()
            gc.disable()
            try:
                start = time.perf_counter()
                fn()
                out.append(time.perf_counter() - start)
            finally:
                gc.enable()
    return [1e3 * min(out) for out in times]


def run_case(case: Case, n: int, repeat: int) -> tuple[float, float, float]:
    """(lrkit ms, floor ms, max difference relative to the peak) for one case."""
    s = case.schedule(n)
    t = np.arange(n)
    got, want = s(t), case.floor(t, n)
    error = float(np.max(np.abs(got - want)) / np.max(np.abs(want)))
    if not error <= 1e-12:
        raise SystemExit(f"{case.name}: lrkit and the floor differ by {error:.3g} of the peak")
    del got, want
    ours, floor = best_ms([lambda: s(t), lambda: case.floor(t, n)], repeat)
    return ours, floor, error


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000_000, help="steps evaluated per call")
    parser.add_argument("--repeat", type=int, default=5, help="runs per timing (best kept)")
    parser.add_argument("--case", action="append", help="only these cases (by name)")
    args = parser.parse_args()
    cases = [c for c in CASES if args.case is None or c.name in args.case]
    print(f"numpy {np.__version__}, N = {args.n:,} steps, best of {args.repeat}\n")
    print("| case | lrkit ms | floor ms | ratio | max diff / peak |")
    print("|---|---:|---:|---:|---:|")
    for case in cases:
        ours, floor, error = run_case(case, args.n, args.repeat)
        print(
            f"| {case.name} | {ours:.1f} | {floor:.1f} | {ours / floor:.2f}x | {error:.1e} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
