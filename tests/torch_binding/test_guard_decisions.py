"""The guard decides as before its per-step cost was cut: the incremental spike window, the
judgement of rows in order and the one-number rank reduction are compared with the old
algorithm, kept here as plain reference functions (sorted windows and statistics.median per
value, a flag matrix per judgement OR-ed over the ranks), on random loss/norm sequences with
spikes, signed zeros, overflowing sums and non-finite values."""

from __future__ import annotations

import math
import statistics
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.strategies import guard_readings, guard_values, spike_rules

import lrkit.torch.guard as guard_module
from lrkit.torch import _guard_probe as probe
from lrkit.torch._guard_spike import SpikeWindow
from lrkit.torch.guard import DivergenceError, DivergenceGuard

pytestmark = pytest.mark.usefixtures("one_thread")

REASONS = guard_module._REASONS
norm_readings = guard_readings.map(abs)  # a norm is never negative (abs(-inf) is inf)


# ----------------------------------------------------------------------------- the old algorithm
def old_is_spike(
    value: float,
    history: list[float],
    *,
    factor: float | None,
    floor_frac: float,
    min_delta: float,
    min_history: int,
) -> bool:
    """The spike rule as the guard computed it before: sort the window for every value."""
    if factor is None or len(history) < min_history or not math.isfinite(value):
        return False
    ordered = sorted(history)
    n = len(ordered)
    m = ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2
    mad = statistics.median([abs(x - m) for x in ordered])
    typical = m if ordered[0] >= 0 else statistics.median([abs(x) for x in ordered])
    scale = max(1.4826 * mad, floor_frac * typical)
    return value - m > max(factor * scale, min_delta)


def old_flags(rows: list[tuple[Any, ...]], windows: dict[str, list[float]], cfg: dict) -> list:
    """The old judgement's flag matrix: one row of six flags (REASONS order) per reading
    ``(loss, norm, buffers, params)``, each judged against windows grown by the rows before."""
    w = cfg["window"]
    rule = {k: cfg[k] for k in ("floor_frac", "min_delta", "min_history")}
    losses, norms = list(windows["losses"]), list(windows["norms"])
    flags = []
    for loss, raw_norm, buffers, params in rows:
        norm = 0.0 if raw_norm is None else raw_norm
        flags.append(
            [
                not math.isfinite(loss),
                cfg["check_grads"] and not math.isfinite(norm),
                buffers is not None and not math.isfinite(buffers),
                params is not None and not math.isfinite(params),
                old_is_spike(loss, losses[-w:], factor=cfg["factor"], **rule),
                old_is_spike(norm, norms[-w:], factor=cfg["grad_factor"], **rule),
            ]
        )
        losses.append(loss)
        if cfg["grad_factor"] is not None and math.isfinite(norm):
            norms.append(norm)
    return flags


def old_decision(flag_sets: list[list[list[bool]]]) -> tuple[int, int] | None:
    """(row, reason) of the first flag of the flags OR-ed over the ranks (None: all good)."""
    for i in range(len(flag_sets[0])):
        row = [any(f[i][j] for f in flag_sets) for j in range(len(REASONS))]
        if any(row):
            return i, row.index(True)
    return None


def old_commit(rows: list[tuple[Any, ...]], windows: dict[str, list[float]], cfg: dict) -> None:
    """The old windows after an all-good judgement."""
    w = cfg["window"]
    for loss, norm, *_ in rows:
        windows["losses"] = (windows["losses"] + [loss])[-w:]
        if cfg["grad_factor"] is not None and norm is not None and math.isfinite(norm):
            windows["norms"] = (windows["norms"] + [norm])[-w:]


def shown(row: tuple[Any, ...], reason: str) -> float:
    """The value a recovery records for ``reason`` (the old rule)."""
    loss, norm, buffers, params = row
    value = norm if "gradient" in reason else loss
    if "buffer" in reason or "parameter" in reason:
        value = buffers if "buffer" in reason else params
    return math.nan if value is None else value


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def _guard(cfg: dict, **kw: Any) -> DivergenceGuard:
    model = torch.nn.Linear(1, 1, bias=False)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    return DivergenceGuard(
        model,
        opt,
        window=cfg["window"],
        min_history=cfg["min_history"],
        spike_factor=cfg["factor"],
        spike_floor_frac=cfg["floor_frac"],
        spike_min_delta=cfg["min_delta"],
        grad_spike_factor=cfg["grad_factor"],
        check_grads=cfg["check_grads"],
        **kw,
    )


@st.composite
def guard_rules(draw: Any) -> dict[str, Any]:
    """spike_rules plus the guard's gradient settings; the loss rule off now and then."""
    cfg = draw(spike_rules())
    cfg["grad_factor"] = draw(st.one_of(st.none(), st.sampled_from([1.0, 4.0, 21.0])))
    cfg["check_grads"] = draw(st.booleans())
    if draw(st.integers(0, 9)) == 0:
        cfg["factor"] = None
    return cfg


# ----------------------------------------------------------------------------- the tests
@given(spike_rules(), st.lists(guard_readings, max_size=80))
def test_spike_window_decides_as_sorting_the_window_each_time(rule, values):
    """SpikeWindow.is_spike equals the old rule on the window's values at every step, through
    pushes that evict (ties, signed zeros, sums that overflow to inf, non-finite values)."""
    window = SpikeWindow(rule["window"])
    kw = {k: rule[k] for k in ("factor", "floor_frac", "min_delta", "min_history")}
    for v in values:
        assert window.is_spike(v, **kw) == old_is_spike(v, list(window.values), **kw)
        if math.isfinite(v):
            window.push(v)
        assert sorted(window.values) == window._sorted
    assert window.copy()._sorted == window._sorted


@given(spike_rules(), st.lists(guard_values, min_size=1, max_size=12))
def test_spike_window_at_the_thresholds(rule, history):
    """At and one float either side of each threshold (the rule's, min_delta and the floor
    bound that lets the MAD be skipped) the window decides as the old rule."""
    window = SpikeWindow(len(history), history)
    kw = {k: rule[k] for k in ("factor", "floor_frac", "min_delta")}
    ordered = sorted(history)
    n = len(ordered)
    m = ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2
    typical = m if ordered[0] >= 0 else statistics.median([abs(x) for x in ordered])
    mad = statistics.median([abs(x - m) for x in ordered])
    scale = max(1.4826 * mad, kw["floor_frac"] * typical)
    for edge in (
        max(kw["factor"] * scale, kw["min_delta"]),
        kw["min_delta"],
        kw["factor"] * (kw["floor_frac"] * typical),
    ):
        for v in (
            m + edge,
            math.nextafter(m + edge, math.inf),
            math.nextafter(m + edge, -math.inf),
        ):
            got = window.is_spike(v, min_history=1, **kw)
            assert got == old_is_spike(v, history, min_history=1, **kw), (v, edge)


@st.composite
def judgements(draw: Any) -> list[list[tuple[Any, ...]]]:
    """Judgements of 1-5 readings ``(loss, norm, buffers, params)``; a norm is None (no
    gradient) only in a judgement of one reading, as the guard measures it."""
    out = []
    for _ in range(draw(st.integers(1, 25))):
        n = draw(st.sampled_from([1, 1, 2, 5]))
        checks = st.one_of(st.none(), st.sampled_from([1.0, math.nan, math.inf]))
        rows = []
        for _ in range(n):
            norm = draw(st.one_of(norm_readings, st.none()) if n == 1 else norm_readings)
            rows.append((draw(guard_readings), norm, draw(checks), draw(checks)))
        out.append(rows)
    return out


@given(guard_rules(), judgements(), st.data())
def test_judgements_match_the_old_flag_matrix_over_two_ranks(cfg, batches, data):
    """The guard's judgement of pending readings (one, or several with every=k) takes the old
    decision: the same bad row, reason and recorded value, and the same windows afterwards;
    with a second rank whose flags are arbitrary, the one-number MIN reduction picks what the
    old flag OR picked."""
    guard = _guard(cfg, max_retries=10**6, snapshot_every=10**9)
    guard._take_snapshot()
    windows: dict[str, list[float]] = {"losses": [], "norms": []}
    for j, rows in enumerate(batches):
        other = data.draw(
            st.lists(
                st.lists(st.integers(0, 30).map(lambda x: x == 0), min_size=6, max_size=6),
                min_size=len(rows),
                max_size=len(rows),
            )
        )
        flags = [old_flags(rows, windows, cfg), other]
        expected = old_decision(flags)
        code = min(
            [i * len(REASONS) + f.index(True) for i, f in enumerate(other) if any(f)],
            default=len(rows) * len(REASONS),
        )
        guard._pending = [probe.Probe(100 * j + i, *row) for i, row in enumerate(rows)]
        before = len(guard.recoveries)
        original = guard_module.min_over_ranks
        guard_module.min_over_ranks = lambda mine, theirs=code: float(min(mine, theirs))
        try:
            ok = guard._judge()
        finally:
            guard_module.min_over_ranks = original
        assert ok == (expected is None)
        if expected is None:
            old_commit(rows, windows, cfg)
            assert len(guard.recoveries) == before
        else:
            i, reason = expected
            rec = guard.recoveries[-1]
            assert (rec["step"], rec["reason"]) == (100 * j + i, REASONS[reason])
            assert same(rec["value"], shown(rows[i], REASONS[reason]))
        assert list(guard._losses.values) == windows["losses"]
        assert list(guard._norms.values) == windows["norms"]


def old_guard_run(
    losses: list[float],
    norms: list[float | None],
    cfg: dict,
    *,
    every: int,
    snap: int,
    retries: int,
) -> tuple[list[Any], list[tuple[Any, ...]]]:
    """The old guard without a scheduler, call by call: each check()'s answer ("raise" for
    DivergenceError) and the recoveries ``(step, reason, value, snapshot_step)``."""
    good = calls = next_snap = 0
    snap_step = None
    pending: list[tuple[Any, ...]] = []
    windows: dict[str, list[float]] = {"losses": [], "norms": []}
    answers: list[Any] = []
    recoveries: list[tuple[Any, ...]] = []
    for loss, norm in zip(losses, norms, strict=True):
        calls += 1
        if snap_step is None:
            snap_step, next_snap = good, (good // snap + 1) * snap
        pending.append((good, (loss, norm, None, None)))
        if calls % every:
            good += 1
            answers.append(True)
            continue
        steps, rows = [s for s, _ in pending], [r for _, r in pending]
        pending = []
        bad = old_decision([old_flags(rows, windows, cfg)])
        if bad is not None:
            i, reason = bad
            if len(recoveries) >= retries:
                answers.append("raise")
                break
            recoveries.append(
                (steps[i], REASONS[reason], shown(rows[i], REASONS[reason]), snap_step)
            )
            good, next_snap = snap_step, (snap_step // snap + 1) * snap
            answers.append(False)
            continue
        old_commit(rows, windows, cfg)
        if good >= next_snap:
            snap_step, next_snap = good, (good // snap + 1) * snap
        good += 1
        answers.append(True)
    return answers, recoveries


@settings(max_examples=100)
@given(
    guard_rules(),
    st.lists(st.tuples(guard_readings, guard_readings), min_size=20, max_size=60),
    st.sampled_from([1, 1, 2, 3, 5]),
    st.integers(1, 7),
    st.integers(0, 3),
)
def test_check_answers_as_the_old_guard(cfg, calls, every, snap, retries):
    """Call by call, check() answers as the old guard did (True, False after a rollback, or
    DivergenceError) with the same recoveries; with every=1 the gradient norm is measured and
    judged at every call, with every=k the losses of all calls are judged at every k-th."""
    if every > 1:  # the norm is measured at judged calls only now: compare the loss rule
        cfg = dict(cfg, grad_factor=None, check_grads=False)
    measured = every == 1 and (cfg["check_grads"] or cfg["grad_factor"] is not None)
    guard = _guard(cfg, every=every, snapshot_every=snap, max_retries=retries)
    (p,) = guard.model.parameters()
    norms: list[float | None] = []
    for _, g in calls:
        grad = torch.tensor([[g]], dtype=torch.float32)
        norms.append(float(torch.linalg.vector_norm(torch.stack(torch._foreach_norm([grad])))))
    answers, recoveries = old_guard_run(
        [loss for loss, _ in calls],
        norms if measured else [None] * len(calls),
        cfg,
        every=every,
        snap=snap,
        retries=retries,
    )
    got: list[Any] = []
    for (loss, g), _ in zip(calls, answers, strict=False):
        p.grad = torch.tensor([[g]], dtype=torch.float32)
        try:
            got.append(guard.check(loss))
        except DivergenceError:
            got.append("raise")
    assert got == answers
    assert len(guard.recoveries) == len(recoveries)
    for r, (step, reason, value, snap_step) in zip(guard.recoveries, recoveries, strict=True):
        assert (r["step"], r["reason"], r["snapshot_step"]) == (step, reason, snap_step)
        assert same(r["value"], value)


def test_every_k_measures_the_gradient_norm_at_judged_calls_only(monkeypatch):
    """With every=3 the fused gradient norm runs at calls 3 and 6 of 6, not at every call, and
    the losses of the calls in between are still judged (a spike at call 5 is found at 6)."""
    model = torch.nn.Linear(1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    guard = DivergenceGuard(model, opt, every=3, min_history=2, snapshot_every=1000)
    calls = []
    original = probe.grad_norm
    monkeypatch.setattr(probe, "grad_norm", lambda ps: calls.append(1) or original(ps))
    answers = []
    for k, loss in enumerate([1.0, 1.1, 0.9, 1.0, 1e6, 1.0]):
        for q in model.parameters():
            q.grad = torch.ones_like(q)
        answers.append(guard.check(loss))
        if k == 3:
            assert [row.norm for row in guard._pending] == [None]
    assert len(calls) == 2
    assert answers == [True] * 5 + [False]
    assert (guard.recoveries[0]["reason"], guard.recoveries[0]["step"]) == ("loss spike", 4)


@given(st.lists(guard_values, min_size=1, max_size=30), st.integers(1, 10))
def test_spike_window_copy_is_independent(values, size):
    """A copy of a window does not change when the original is pushed, nor the other way."""
    a = SpikeWindow(size, values)
    b = a.copy()
    a.push(0.5)
    assert list(b.values) == values[-size:]
    assert b._sorted == sorted(values[-size:])
