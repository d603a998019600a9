"""Reference values from ``torch.optim.lr_scheduler``, run in the test, step for step.

torch's clock: right after construction the optimizer holds the value for the first update
(lrkit's ``t = 0``); after ``k`` calls of ``scheduler.step()`` it holds lrkit's ``t = k``.
Every row below builds the torch scheduler on a dummy parameter, reads ``param_groups[0]``
before each ``step()`` and compares with the lrkit schedule at every step, ``rtol=1e-9``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import lrkit

torch = pytest.importorskip("torch")
sched = torch.optim.lr_scheduler

RTOL = 1e-9

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def run_torch(
    make: Callable[[Any], Any],
    n: int,
    *,
    lr: float = 0.1,
    optimizer: str = "sgd",
    momentum: float = 0.0,
    read: str = "lr",
) -> np.ndarray:
    """Values of ``param_groups[0][read]`` for the first ``n`` updates (t = 0 .. n-1)."""
    param = torch.nn.Parameter(torch.zeros(1))
    if optimizer == "sgd":
        opt = torch.optim.SGD([param], lr=lr, momentum=momentum)
    else:
        opt = torch.optim.Adam([param], lr=lr)
    scheduler = make(opt)
    out = []
    for k in range(n):
        group = opt.param_groups[0]
        value = group["betas"][0] if read == "beta1" else group[read]
        out.append(float(value))
        if k < n - 1:
            opt.step()
            scheduler.step()
    return np.array(out)


def lrkit_values(s: lrkit.Schedule, n: int) -> np.ndarray:
    """The lrkit schedule at t = 0 .. n-1, one scalar call per step."""
    return np.array([s(t) for t in range(n)])


def check(make: Callable[[Any], Any], s: lrkit.Schedule, n: int, **kw: Any) -> None:
    expected = run_torch(make, n, **kw)
    np.testing.assert_allclose(lrkit_values(s, n), expected, rtol=RTOL, atol=0)
    # The vectorised path gives the same answer.
    np.testing.assert_allclose(s(np.arange(n)), expected, rtol=RTOL, atol=0)


# ----------------------------------------------------------------------------- decays
@pytest.mark.parametrize(
    ("lr", "step_size", "gamma", "n"),
    [(0.1, 7, 0.5, 50), (1.0, 1, 0.9, 30), (0.3, 10, 1.0, 25), (2.0, 3, 0.1, 20)],
)
def test_step_decay_matches_steplr(lr: float, step_size: int, gamma: float, n: int) -> None:
    """step_decay(start, steps, gamma) is torch StepLR(step_size=steps, gamma) step for step."""
    check(
        lambda o: sched.StepLR(o, step_size=step_size, gamma=gamma),
        lrkit.step_decay(lr, steps=step_size, gamma=gamma),
        n,
        lr=lr,
    )


@pytest.mark.parametrize(
    ("milestones", "gamma", "n"),
    [([5, 12, 30], 0.3, 45), ([1], 0.1, 10), ([3, 4, 5], 0.5, 12), ([10, 20], 1.0, 25)],
)
def test_multistep_decay_matches_multisteplr(milestones: list[int], gamma: float, n: int) -> None:
    """multistep_decay drops at the milestone step itself, like torch MultiStepLR."""
    check(
        lambda o: sched.MultiStepLR(o, milestones=milestones, gamma=gamma),
        lrkit.multistep_decay(0.1, milestones=milestones, gamma=gamma),
        n,
    )


@pytest.mark.parametrize(("gamma", "n"), [(0.95, 80), (0.5, 40), (0.999, 30), (1.0, 10)])
def test_exponential_matches_exponentiallr(gamma: float, n: int) -> None:
    """exponential(start, gamma) (every=1) is torch ExponentialLR(gamma)."""
    check(lambda o: sched.ExponentialLR(o, gamma=gamma), lrkit.exponential(0.1, gamma=gamma), n)


@pytest.mark.parametrize(("total", "power"), [(20, 1.0), (17, 2.5), (10, 0.5), (1, 1.0)])
def test_polynomial_matches_polynomiallr(total: int, power: float) -> None:
    """polynomial(start, 0, steps=T, power) is torch PolynomialLR(total_iters=T), also past T."""
    check(
        lambda o: sched.PolynomialLR(o, total_iters=total, power=power),
        lrkit.polynomial(0.1, 0.0, steps=total, power=power),
        total + 10,
    )


@pytest.mark.parametrize(
    ("start_factor", "end_factor", "total"),
    [(1 / 3, 1.0, 5), (1.0, 0.1, 20), (0.5, 0.25, 8), (0.01, 1.0, 1)],
)
def test_linear_matches_linearlr(start_factor: float, end_factor: float, total: int) -> None:
    """linear(base*start_factor, base*end_factor, steps=T) is torch LinearLR, also past T."""
    base = 0.2
    check(
        lambda o: sched.LinearLR(
            o, start_factor=start_factor, end_factor=end_factor, total_iters=total
        ),
        lrkit.linear(base * start_factor, base * end_factor, steps=total),
        total + 10,
        lr=base,
    )


@pytest.mark.parametrize(("t_max", "eta_min"), [(20, 0.001), (50, 0.0), (1, 0.01), (7, 0.05)])
def test_cosine_matches_cosineannealinglr(t_max: int, eta_min: float) -> None:
    """cosine(base, eta_min, steps=T_max) is torch CosineAnnealingLR for t <= T_max."""
    check(
        lambda o: sched.CosineAnnealingLR(o, T_max=t_max, eta_min=eta_min),
        lrkit.cosine(0.1, eta_min, steps=t_max),
        t_max + 1,
    )


def test_cosine_past_t_max_differs_from_torch_by_design() -> None:
    """Past T_max torch's CosineAnnealingLR climbs back up; lrkit holds the end value."""
    t_max, n = 10, 25
    expected = run_torch(lambda o: sched.CosineAnnealingLR(o, T_max=t_max, eta_min=0.0), n)
    ours = lrkit_values(lrkit.cosine(0.1, 0.0, steps=t_max), n)
    assert expected[2 * t_max] == pytest.approx(0.1, rel=1e-9)  # torch: back at the peak
    assert np.all(ours[t_max:] == 0.0)  # lrkit: holds the floor


# ----------------------------------------------------------------------------- periodic
@pytest.mark.parametrize(
    ("t0", "t_mult", "eta_min", "n"),
    [(10, 1, 0.01, 45), (5, 2, 0.0, 80), (3, 3, 0.001, 120), (1, 2, 0.0, 20)],
)
def test_cosine_restarts_matches_warm_restarts(
    t0: int, t_mult: int, eta_min: float, n: int
) -> None:
    """cosine_restarts(base, eta_min, steps=T_0, period_mult=T_mult) is torch
    CosineAnnealingWarmRestarts for integer T_mult."""
    check(
        lambda o: sched.CosineAnnealingWarmRestarts(o, T_0=t0, T_mult=t_mult, eta_min=eta_min),
        lrkit.cosine_restarts(0.1, eta_min, steps=t0, period_mult=float(t_mult)),
        n,
    )


@pytest.mark.parametrize(
    ("up", "down", "mode", "gamma"),
    [
        (4, None, "triangular", 1.0),
        (5, 3, "triangular2", 1.0),
        (6, None, "exp_range", 0.99),
        (2, 7, "triangular", 1.0),
        (7, 2, "exp_range", 0.95),
        (1, 1, "triangular2", 1.0),
    ],
)
def test_cyclic_matches_cycliclr(up: int, down: int | None, mode: str, gamma: float) -> None:
    """cyclic(floor, peak, steps_up, steps_down, mode, gamma) is torch CyclicLR."""
    floor, peak = 0.01, 0.5
    check(
        lambda o: sched.CyclicLR(
            o,
            base_lr=floor,
            max_lr=peak,
            step_size_up=up,
            step_size_down=down,
            mode=mode,
            gamma=gamma,
            cycle_momentum=False,
        ),
        lrkit.cyclic(floor, peak, steps_up=up, steps_down=down, mode=mode, gamma=gamma),
        90,
        lr=floor,
    )


# ----------------------------------------------------------------------------- one-cycle
ONE_CYCLE_ROWS = [
    dict(total=100, pct_start=0.3, anneal="cos", three_phase=False, div=25.0, final_div=1e4),
    dict(total=100, pct_start=0.25, anneal="linear", three_phase=True, div=25.0, final_div=1e4),
    dict(total=57, pct_start=0.4, anneal="cos", three_phase=True, div=10.0, final_div=100.0),
    dict(total=33, pct_start=0.5, anneal="linear", three_phase=False, div=4.0, final_div=1e3),
    dict(total=10, pct_start=0.3, anneal="cos", three_phase=False, div=25.0, final_div=1e4),
]


def _torch_one_cycle(row: dict[str, Any], peak: float) -> Callable[[Any], Any]:
    return lambda o: sched.OneCycleLR(
        o,
        max_lr=peak,
        total_steps=row["total"],
        pct_start=row["pct_start"],
        anneal_strategy=row["anneal"],
        three_phase=row["three_phase"],
        div_factor=row["div"],
        final_div_factor=row["final_div"],
        cycle_momentum=True,
        base_momentum=0.8,
        max_momentum=0.93,
    )


@pytest.mark.parametrize("row", ONE_CYCLE_ROWS)
def test_one_cycle_matches_onecyclelr(row: dict[str, Any]) -> None:
    """one_cycle(peak, steps, pct_start, ...) is torch OneCycleLR over all total_steps."""
    peak = 0.8
    s = lrkit.one_cycle(
        peak,
        steps=row["total"],
        pct_start=row["pct_start"],
        div_factor=row["div"],
        final_div_factor=row["final_div"],
        anneal=row["anneal"],
        three_phase=row["three_phase"],
    )
    check(_torch_one_cycle(row, peak), s, row["total"], momentum=0.9)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("row", ONE_CYCLE_ROWS)
def test_one_cycle_momentum_matches_onecyclelr(row: dict[str, Any], optimizer: str) -> None:
    """one_cycle_momentum(low, high) is the momentum (SGD) / beta1 (Adam) OneCycleLR cycles."""
    s = lrkit.one_cycle_momentum(
        steps=row["total"],
        low=0.8,
        high=0.93,
        pct_start=row["pct_start"],
        anneal=row["anneal"],
        three_phase=row["three_phase"],
    )
    read = "momentum" if optimizer == "sgd" else "beta1"
    check(
        _torch_one_cycle(row, 0.8),
        s,
        row["total"],
        optimizer=optimizer,
        momentum=0.9,
        read=read,
    )


# ----------------------------------------------------------------------------- sequences
@pytest.mark.parametrize(
    ("start_factor", "warm", "t_max", "eta_min"),
    [(0.1, 5, 20, 1e-4), (1e-3, 10, 30, 0.0), (0.5, 1, 8, 0.01)],
)
def test_sequential_linear_cosine_matches_sequentiallr(
    start_factor: float, warm: int, t_max: int, eta_min: float
) -> None:
    """SequentialLR(LinearLR -> CosineAnnealingLR, milestones=[W]) is both
    ``linear(...) >> cosine(...)`` and ``warmup(cosine(...), steps=W, start=...)``."""
    base = 0.3

    def make(o: Any) -> Any:
        first = sched.LinearLR(o, start_factor=start_factor, end_factor=1.0, total_iters=warm)
        second = sched.CosineAnnealingLR(o, T_max=t_max, eta_min=eta_min)
        return sched.SequentialLR(o, schedulers=[first, second], milestones=[warm])

    n = warm + t_max + 1
    joined = lrkit.linear(base * start_factor, base, steps=warm) >> lrkit.cosine(
        base, eta_min, steps=t_max
    )
    warmed = lrkit.warmup(
        lrkit.cosine(base, eta_min, steps=t_max), steps=warm, start=base * start_factor
    )
    check(make, joined, n, lr=base)
    check(make, warmed, n, lr=base)


def test_one_cycle_past_total_steps_torch_raises_lrkit_holds() -> None:
    """Past total_steps torch's OneCycleLR first climbs back (t = total_steps) then raises;
    lrkit holds the low value from t = steps - 1 on."""
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.1, momentum=0.9)
    scheduler = sched.OneCycleLR(opt, max_lr=1.0, total_steps=10)
    for _ in range(10):
        opt.step()
        scheduler.step()
    low = 1.0 / 25.0 / 1e4
    assert opt.param_groups[0]["lr"] > 100 * low  # t = 10: the cosine continues upwards
    with pytest.raises(ValueError, match="Tried to step"):
        opt.step()
        scheduler.step()
    s = lrkit.one_cycle(1.0, steps=10)
    assert s(9) == pytest.approx(low, rel=1e-12)
    assert s(10) == s(1000) == s(9)


def test_warm_restarts_float_period_mult_only_in_lrkit() -> None:
    """torch's CosineAnnealingWarmRestarts accepts integer T_mult only; lrkit any float >= 1."""
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.1)
    with pytest.raises(ValueError):
        sched.CosineAnnealingWarmRestarts(opt, T_0=10, T_mult=1.5)
    s = lrkit.cosine_restarts(0.1, steps=10, period_mult=1.5)
    assert s(10) == 0.1 and s(25) == 0.1  # periods of 10, then 15 steps
