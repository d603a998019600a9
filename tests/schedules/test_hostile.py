"""Hostile input: every public constructor and combinator, and the torch Scheduler's arguments,
called with NaN, inf, -0.0, huge and tiny numbers, bools, strings, numpy scalars and 0-d
arrays. Each call either builds a schedule whose values are finite at every step (0, random
steps, up to 2**62) or raises lrkit's ValueError / TypeError naming an argument.

``rescale`` and ``scale_for_batch`` (lrkit.schedules._scaling) are covered by their own tests,
not here. The number of examples: ``HOSTILE_EXAMPLES`` per function in the ``ci`` profile
(more with ``HYPOTHESIS_PROFILE=dev``).
"""

from __future__ import annotations

import gc
import inspect
import math
import os
import re
import time
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.strategies import (
    CHILD_POOL,
    COMBINATOR_CALLS,
    HOSTILE_POOL,
    VALID_CALLS,
    hostile,
    hostile_call,
    hostile_schedules,
    seeded_hostile_calls,
)

import lrkit
from lrkit import Schedule, ScheduleTypeError, ScheduleValueError, SpecError

#: Hypothesis examples per function. Each makes one call drawn by Hypothesis (shrinkable) and
#: CALLS - 1 more from a drawn seed (see strategies.seeded_hostile_calls): 2,000 calls per
#: function in CI, ten times more with HYPOTHESIS_PROFILE=dev.
HOSTILE_EXAMPLES = 1_000 if os.environ.get("HYPOTHESIS_PROFILE") == "dev" else 100
CALLS = 20
seeds = st.integers(min_value=0, max_value=2**32 - 1)
hostile_settings = settings(
    max_examples=HOSTILE_EXAMPLES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

#: Steps every built schedule is evaluated at, besides drawn ones: the ends of the float-exact
#: range and beyond.
FIXED_STEPS = [0, 1, 2, 3, 10, 1_000, 2**31, 2**53 - 1, 2**53, 2**60, 2**62]


def names_of(fn: Any) -> list[str]:
    """The parameter names of a public constructor, in order."""
    return list(inspect.signature(fn).parameters)


def check_built_or_refused(
    fn_name: str, call: Any, names: list[str], extra_steps: list[float]
) -> None:
    """Run ``call()``: a refusal must be lrkit's own error naming the function and one of
    ``names``; a schedule must be finite at FIXED_STEPS and ``extra_steps`` (after binding
    any units), scalar and vectorised alike."""
    try:
        s = call()
    except (ScheduleValueError, ScheduleTypeError) as exc:
        message = str(exc)
        assert message.startswith(f"{fn_name}:") or message.split(":")[0] in {
            "warmup", "sequence", "product", "scale", "clip", "shift", "advance", "stretch",
            "repeat", *VALID_CALLS,
        }, message  # fmt: skip
        assert any(name in message for name in names), message
        return
    assert isinstance(s, Schedule)
    if not s.is_bound:
        try:
            s = s.bind(total_steps=1_000, steps_per_epoch=10)
        except ScheduleValueError as exc:  # e.g. '0.001%' rounds to 0 steps: said at bind
            # a refusal at bind names the function (or method) and one of its arguments
            message = str(exc)
            match = re.match(r"(\w+): (\w+)\W", message)
            assert match is not None, message
            owner, arg = match.groups()
            fn = getattr(lrkit, owner, None) or getattr(Schedule, owner, None)
            assert fn is not None and arg in names_of(fn), message
            return
    steps = np.asarray([*FIXED_STEPS, *extra_steps], dtype=np.float64)
    values = s(steps)
    assert np.all(np.isfinite(values)), (str(s), steps[~np.isfinite(values)])
    for t in (0, 2**62, *extra_steps[:2]):
        assert math.isfinite(s(t)), (str(s), t)
    d = s.duration
    if d is not None:
        assert math.isfinite(d)
        assert math.isfinite(s(d))


extra_steps = st.lists(
    st.integers(0, 2**62).map(float) | st.floats(0.0, 1e6), min_size=0, max_size=3
)


@pytest.mark.parametrize("fn_name", sorted(VALID_CALLS))
@hostile_settings
@given(data=st.data())
def test_family_constructors_build_finite_schedules_or_name_the_argument(
    fn_name: str, data: st.DataObject
) -> None:
    """Every family's constructor with one or two hostile arguments: finite values or a named refusal."""
    fn = getattr(lrkit, fn_name)
    valid_args, valid_kwargs = VALID_CALLS[fn_name]
    names = names_of(fn)
    steps = data.draw(extra_steps)
    calls = [data.draw(hostile_call(valid_args, valid_kwargs, names))]
    calls += seeded_hostile_calls(data.draw(seeds), valid_args, valid_kwargs, names, CALLS - 1)
    for args, kwargs, _ in calls:
        check_built_or_refused(fn_name, lambda: fn(*args, **kwargs), names, steps)  # noqa: B023


@pytest.mark.parametrize("fn_name", sorted(COMBINATOR_CALLS))
@hostile_settings
@given(data=st.data())
def test_combinators_build_finite_schedules_or_name_the_argument(
    fn_name: str, data: st.DataObject
) -> None:
    """Every combinator, on extreme or drawn children, with hostile arguments: finite or refused by name."""
    fn = getattr(lrkit, fn_name)
    names = names_of(fn)
    steps = data.draw(extra_steps)
    rng = np.random.default_rng(data.draw(seeds))
    for k in range(CALLS):
        if k == 0:  # drawn by Hypothesis
            s, t = data.draw(hostile_schedules()), data.draw(hostile_schedules())
        else:  # picked by the seed
            i, j = rng.integers(len(CHILD_POOL), size=2)
            s, t = CHILD_POOL[int(i)], CHILD_POOL[int(j)]
        args, kwargs = COMBINATOR_CALLS[fn_name](s, t)
        if rng.integers(4):  # hostile arguments; else only the extreme children
            seed = int(rng.integers(2**32))
            ((args, kwargs, _),) = seeded_hostile_calls(seed, args, kwargs, names, 1)
        check_built_or_refused(fn_name, lambda: fn(*args, **kwargs), names, steps)  # noqa: B023


@hostile_settings
@given(hostile_schedules(), hostile_schedules(), hostile, seeds)
def test_operators_build_finite_schedules_or_refuse(
    s0: Schedule, t0: Schedule, k0: Any, seed: int
) -> None:
    """``a * b``, ``k * a`` and ``a >> b`` on extreme schedules: finite values or a named refusal."""
    rng = np.random.default_rng(seed)
    calls = [(s0, t0, k0)]
    for _ in range(CALLS // 2 - 1):
        i, j = rng.integers(len(CHILD_POOL), size=2)
        k = HOSTILE_POOL[int(rng.integers(len(HOSTILE_POOL)))]
        calls.append((CHILD_POOL[int(i)], CHILD_POOL[int(j)], k))
    for s, t, k in calls:
        check_built_or_refused("product", lambda: s * t, ["schedules"], [])  # noqa: B023
        if isinstance(k, (int, float)) and not isinstance(k, bool):
            check_built_or_refused("scale", lambda: k * s, ["factor"], [])  # noqa: B023
        # (a cyclic or unbound first part is refused by name)
        check_built_or_refused("sequence", lambda: s >> t, ["schedules"], [])  # noqa: B023


def test_the_issue_examples() -> None:
    """The reported cases: an overflowing product, a huge stretch, an int boundaries argument."""
    with pytest.raises(ScheduleValueError, match=r"^product: the values could overflow"):
        lrkit.constant(1e200) * lrkit.constant(1e200)
    with pytest.raises(ScheduleValueError, match=r"^scale: the values could overflow.*factor"):
        1e200 * lrkit.constant(1e200)
    with pytest.raises(ScheduleValueError, match=r"^stretch: .*factor=1e\+308"):
        lrkit.stretch(lrkit.cosine(1e-3, steps=100), 1e308)
    with pytest.raises(ScheduleTypeError, match=r"^sequence: boundaries must be a list"):
        lrkit.sequence([lrkit.constant(1.0), lrkit.constant(0.5)], boundaries=5)  # type: ignore[arg-type]
    # The largest product that fits is accepted and stays finite.
    p = lrkit.constant(1e154) * lrkit.constant(1e154)
    assert p(2**62) == pytest.approx(1e308)


def test_show_prints_no_traceback_for_a_huge_stretch(capsys: pytest.CaptureFixture[str]) -> None:
    """``lrkit show`` on ``stretch(..., 1e308)`` prints the one-line error, exit status 2."""
    from lrkit.cli import main

    code = main(["show", "stretch(cosine(1e-3, steps=100), 1e308)"])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    assert "stretch: factor makes the schedule longer than 2**53 steps" in err


# ----------------------------------------------------------------------------- warmup(steps=0)
def test_warmup_of_zero_steps_is_the_schedule_itself() -> None:
    """``warmup(s, steps=0)`` equals ``s`` at every step, so mappings with no warmup work."""
    s = lrkit.cosine(1e-3, 1e-5, steps=100)
    w = lrkit.warmup(s, steps=0)
    t = np.arange(0, 150, dtype=np.float64)
    np.testing.assert_array_equal(w(t), s(t))
    assert w.duration == s.duration
    assert lrkit.parse(str(w)) == w
    # transformers' get_cosine_schedule_with_warmup(W=0, N=100) mapping, as documented.
    lr, n = 0.1, 100
    mapped = lrkit.warmup(lrkit.cosine(lr, 0.0, steps=n - 0), steps=0)
    ref = [lr * 0.5 * (1 + math.cos(math.pi * k / n)) for k in range(n + 1)]
    np.testing.assert_allclose(mapped(np.arange(n + 1)), ref, rtol=1e-12, atol=1e-15)


# ----------------------------------------------------------------------------- the spec parser
def _chain(n: int) -> str:
    return " * ".join(["constant(1.0)"] * n)


def test_a_40kb_chain_of_products_parses_in_linear_time() -> None:
    """A 40 KB ``*`` chain parses well under 2 s, and doubling it costs about double, not 4x."""
    text = _chain(2_500)
    assert len(text) >= 39_000
    p = lrkit.parse(text)
    assert len(p.schedules) == 2_500

    small_text, large_text = _chain(1_000), _chain(4_000)
    small, large = math.inf, math.inf
    gc.disable()  # (a collection of the test process's whole heap is not the parser's cost)
    try:
        for _ in range(3):  # interleaved, best of 3: timings on a loaded machine are noisy
            start = time.perf_counter()
            lrkit.parse(small_text)
            small = min(small, time.perf_counter() - start)
            start = time.perf_counter()
            lrkit.parse(large_text)
            large = min(large, time.perf_counter() - start)
    finally:
        gc.enable()
    assert small < 2.0
    # 4x the length: linear parsing costs about 4x, quadratic 16x (generous for noise).
    assert large / small < 8.0, (small, large)


def test_a_long_flat_chain_of_any_length_parses() -> None:
    """A chain of 20,000 factors (numbers and schedules) parses: no recursion limit on length."""
    assert lrkit.parse("*".join(["1"] * 20_000) + " * constant(0.5)") == lrkit.scale(
        lrkit.constant(0.5), 1.0
    )
    seq = lrkit.parse(" >> ".join(["linear(1.0, 0.0, steps=2)"] * 5_000))
    assert len(seq.schedules) == 5_000


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("nan", r"numbers must be finite; 'nan'"),
        ("cosine(inf, steps=3)", r"numbers must be finite; 'inf'"),
        ("cosine(-Infinity, steps=3)", r"numbers must be finite; 'Infinity'"),
        ("cosine(1e999, steps=3)", r"numbers must be finite, got '1e999'"),
        ("NaN * constant(1.0)", r"numbers must be finite; 'NaN'"),
        ("constant(\udcff)", r"must be UTF-8 text.*position 9"),
        (b"constant(\xff)", r"must be UTF-8 text, got byte 0xff at position 9"),
        ("constant(1.0)\x00", r"invalid syntax"),
        ("(" * 1_000 + "constant(1.0)" + ")" * 1_000, r"too deeply nested"),
    ],
)
def test_spec_numbers_and_bytes_get_a_spec_error(spec: str | bytes, match: str) -> None:
    """nan/inf and non-finite literals, non-UTF-8 bytes, NUL and deep nesting: one SpecError."""
    with pytest.raises(SpecError, match=match):
        lrkit.parse(spec)  # type: ignore[arg-type]


def test_parse_accepts_utf8_bytes() -> None:
    """A spec given as UTF-8 bytes parses like the text."""
    assert lrkit.parse(b"cosine(1.0, steps=3)") == lrkit.cosine(1.0, steps=3)  # type: ignore[arg-type]


SPEC_PIECES = ["cosine(", "constant(", "linear(", "warmup(", ")", "(", "[", "]", ",", " * ",
               " >> ", " / ", "-", "steps=", "1e308", "1e999", "nan", "inf", "0", "1.5", "2**62",
               "'3ep'", "'10%'", "\udcff", "\x00", "True", "None", "{", "}", ":", "**", "."]  # fmt: skip
spec_texts = st.lists(st.sampled_from(SPEC_PIECES), max_size=12).map("".join)


@hostile_settings
@given(st.text(max_size=40) | st.binary(max_size=40) | spec_texts, seeds)
def test_parse_of_any_text_is_a_schedule_or_a_spec_error(first: str | bytes, seed: int) -> None:
    """Any text or bytes: a schedule, or SpecError / lrkit's TypeError, never another exception."""
    rng = np.random.default_rng(seed)
    texts = [first]
    for _ in range(CALLS - 1):
        picks = rng.integers(len(SPEC_PIECES), size=int(rng.integers(1, 14)))
        texts.append("".join(SPEC_PIECES[int(i)] for i in picks))
    for text in texts:
        try:
            s = lrkit.parse(text)  # type: ignore[arg-type]
        except (SpecError, ScheduleTypeError):
            continue
        assert isinstance(s, Schedule)
        check_built_or_refused("parse", lambda: s, [], [])  # noqa: B023


# ----------------------------------------------------------------------------- torch Scheduler
SCHEDULER_ARGS = ["lr", "total_steps", "steps_per_epoch", "group_mult", "on_resize", "clock",
                  "momentum", "weight_decay"]  # fmt: skip


@hostile_settings
@given(st.data(), seeds)
def test_scheduler_arguments_are_checked_at_construction(data: st.DataObject, seed: int) -> None:
    """``lrkit.torch.Scheduler(opt, ...)`` with hostile arguments: finite rates or a named refusal."""
    torch = pytest.importorskip("torch")
    from lrkit.torch import Scheduler

    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [p], "name": "body"}], lr=0.1, momentum=0.9)
    extra = ["cosine(nan, steps=3)", "1e400", {"body": math.nan}, {"body": "x"}, "nan"]
    rng = np.random.default_rng(seed)
    calls = []
    for k in range(CALLS // 2):
        if k == 0:  # drawn by Hypothesis
            n = data.draw(st.integers(1, 2))
            chosen = data.draw(st.permutations(SCHEDULER_ARGS))[:n]
            values = [data.draw(hostile | st.sampled_from(extra)) for _ in chosen]
        else:  # from the seed
            picks = rng.choice(len(SCHEDULER_ARGS), size=int(rng.integers(1, 3)), replace=False)
            chosen = [SCHEDULER_ARGS[int(i)] for i in picks]
            pool = [*HOSTILE_POOL[:200], *extra]
            values = [pool[int(rng.integers(len(pool)))] for _ in chosen]
        calls.append(dict(zip(chosen, values, strict=True)))
    for hostile_kwargs in calls:
        kwargs: dict[str, Any] = {"lr": lrkit.cosine(0.1, steps=10), **hostile_kwargs}
        for group in opt.param_groups:  # (a refused call must not leave values behind)
            group.update(lr=0.1, momentum=0.9, weight_decay=0.0)
        try:
            sched = Scheduler(opt, **kwargs)
        except (ValueError, TypeError) as exc:
            message = str(exc)
            assert message.startswith("Scheduler:") or type(exc).__module__.startswith("lrkit"), (
                type(exc),
                message,
            )
            assert any(name in message for name in hostile_kwargs), message
            continue
        for _ in range(2):
            for group in opt.param_groups:
                for key in ("lr", "momentum", "weight_decay"):
                    assert math.isfinite(group[key]), (key, group[key], kwargs)
            sched.step(to=sched.last_epoch + 1)


@pytest.mark.parametrize(
    ("steps", "period_mult"), [(56, 5.300063765578448e307), (20, 6.84711436323298e18), (7, 1e308)]
)
def test_cosine_restarts_huge_period_mult_far_steps_are_not_nan(
    steps: int, period_mult: float
) -> None:
    """A huge period_mult at far steps: values in [floor, peak], no overflow warning (the capped
    clock times (m - 1) / steps once rounded to inf, and the restart index to inf: NaN)."""
    s = lrkit.cosine_restarts(1.0, 0.1, steps=steps, period_mult=period_mult)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v = s(np.array([0.0, 5.0, 1e6, 1e15, 1e300]))
    assert ((v >= 0.1) & (v <= 1.0)).all(), v
