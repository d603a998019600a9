"""Combinators and helpers: sequence, product, scale, clip, shift, advance, stretch, repeat,
rescale, scale_for_batch, and the binding of unit lengths. Expected values are worked out by
hand from each combinator's formula."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lrkit as L

TS = np.arange(0, 400, 1.0)


# ----------------------------------------------------------------------------- conventions
def test_warmup_adds_to_the_decay_length() -> None:
    """A decay's length never includes its warmup: warmup 1000 + cosine 9000 = 10,000 steps."""
    s = L.warmup(L.cosine(1e-3, 1e-5, steps=9000), steps=1000)
    assert s.duration == 10_000
    assert s(0) == 0.0
    assert s(1000) == 1e-3  # the decay's first value, right after the ramp
    assert s(10_000) == 1e-5
    assert s(5500) == pytest.approx((1e-3 + 1e-5) / 2, rel=1e-12)  # the cosine's midpoint


def test_clock_starts_at_zero() -> None:
    """``s(0)`` is the value for the first update: no -1, no step taken at construction."""
    assert L.linear(1.0, 0.0, steps=10)(0) == 1.0
    assert L.step_decay(1.0, steps=3, gamma=0.5)(np.array([0, 2, 3])).tolist() == [1.0, 1.0, 0.5]


def test_values_hold_past_the_end() -> None:
    """After its duration a finite schedule keeps its final value for ever."""
    s = L.warmup(L.cosine(1.0, 0.1, steps=90), steps=10)
    assert s.final_value == 0.1
    assert np.all(s(np.array([100, 101, 10**6, 10**12])) == 0.1)


# ----------------------------------------------------------------------------- sequence
def test_sequence_with_explicit_boundaries_cuts_and_holds() -> None:
    """With boundaries, child k runs on its own clock from B_k, cut off at B_{k+1}."""
    a = L.linear(0.0, 1.0, steps=100)  # would run for 100 steps
    b = L.constant(0.5)
    c = L.linear(0.4, 0.0, steps=10)
    s = L.sequence([a, b, c], boundaries=[20, 50])
    assert s(19) == pytest.approx(0.19)  # a, cut at 20 before it finishes
    assert s(20) == 0.5
    assert s(49) == 0.5
    assert s(50) == 0.4  # c starts at its own t = 0
    assert s(55) == pytest.approx(0.2)
    assert s.duration == 60
    assert s(1000) == 0.0


def test_sequence_boundaries_may_leave_a_child_holding() -> None:
    """A boundary later than a child's duration holds that child's final value meanwhile."""
    s = L.sequence([L.linear(1.0, 0.5, steps=10), L.constant(0.1)], boundaries=[30])
    assert s(10) == s(29) == 0.5
    assert s(30) == 0.1


def test_rshift_flattens_and_prints() -> None:
    """``a >> b >> c`` is one flat sequence and prints as it is written."""
    a, b, c = L.constant(1.0), L.linear(1.0, 0.0, steps=5), L.cosine(0.0, 1.0, steps=5)
    s = a >> b >> c
    assert s == L.sequence([a, b, c]) == (a >> (b >> c))
    assert str(s) == "constant(1.0) >> linear(1.0, 0.0, steps=5) >> cosine(0.0, 1.0, steps=5)"
    # constant has duration 0: it is skipped
    assert s(0) == 1.0 and s(5) == 0.0 and s(10) == 1.0


def test_sequence_allows_an_infinite_last_child() -> None:
    """Only the last child may never settle; then the sequence never settles either."""
    s = L.linear(0.0, 1.0, steps=10) >> L.inverse_sqrt(1.0, steps=10)
    assert s.duration is None
    assert s(40) == pytest.approx(0.5)  # inverse_sqrt at its t = 30: sqrt(10 / 40)


# ----------------------------------------------------------------------------- arithmetic
def test_product_multiplies_pointwise_and_settles_last() -> None:
    """``a * b`` is the pointwise product; it settles when both factors have."""
    a = L.linear(1.0, 0.0, steps=10)
    b = L.constant(2.0) >> L.linear(2.0, 4.0, steps=20)
    s = a * b
    assert s(5) == pytest.approx(0.5 * 2.5)  # b: the constant lasts 0 steps, then 2 + 2 * 5/20
    assert s(0) == 2.0
    assert s.duration == 20
    assert (a * b * a) == L.product([a, b, a])  # flattened


def test_scale_multiplies_by_a_number() -> None:
    """``k * s`` and ``s * k`` scale every value by k; nested scales merge."""
    s = L.cosine(1.0, 0.0, steps=10)
    assert np.array_equal((0.5 * s)(TS), 0.5 * s(TS))
    assert (s * 0.5) == (0.5 * s)
    assert 2.0 * (0.5 * s) == L.scale(s, 1.0)
    assert str(0.5 * s) == "0.5 * cosine(1.0, 0.0, steps=10)"


def test_scale_inside_a_product_round_trips_through_text() -> None:
    """``a * (0.5 * b)`` prints with parentheses so that parse gives back the same tree."""
    a, b = L.constant(1.0), L.linear(1.0, 0.0, steps=4)
    s = a * (0.5 * b)
    assert str(s) == "constant(1.0) * (0.5 * linear(1.0, 0.0, steps=4))"
    assert L.parse(str(s)) == s


def test_clip_limits_values() -> None:
    """clip(s, low, high) is min(max(s, low), high); one bound may be left out."""
    s = L.linear(0.0, 1.0, steps=10)
    assert s.clip(0.2, 0.8)(np.array([0, 5, 10])).tolist() == [0.2, 0.5, 0.8]
    assert s.clip(low=0.3)(0) == 0.3 and s.clip(low=0.3)(10) == 1.0
    assert s.clip(high=0.3)(10) == 0.3
    assert s.clip(0.2, 0.8).duration == 10


# ----------------------------------------------------------------------------- time
def test_shift_delays_and_holds_the_first_value() -> None:
    """shift(s, n)(t) = s(max(t - n, 0)): the first value is held for n steps."""
    s = L.linear(1.0, 0.0, steps=10)
    sh = s.shift(5)
    assert sh(0) == sh(5) == 1.0
    assert sh(10) == 0.5
    assert sh.duration == 15


def test_advance_skips_the_start() -> None:
    """advance(s, n)(t) = s(t + n): resumes mid-schedule, and shortens the duration."""
    s = L.linear(1.0, 0.0, steps=10)
    adv = s.advance(4)
    assert adv(0) == pytest.approx(0.6)
    assert adv.duration == 6
    assert s.advance(40).duration == 0  # past the end: it is already settled
    assert np.array_equal(adv(TS), s(TS + 4))


def test_stretch_slows_time() -> None:
    """stretch(s, k)(t) = s(t / k); duration times k; k < 1 speeds up."""
    s = L.linear(1.0, 0.0, steps=10)
    assert s.stretch(3.0)(15) == 0.5
    assert s.stretch(3.0).duration == 30
    assert s.stretch(0.5)(2.5) == 0.5
    assert s.stretch(0.5).duration == 5


def test_repeat_times_then_hold() -> None:
    """repeat(s, times=n) runs s n times back to back then holds its final value."""
    s = L.linear(1.0, 0.0, steps=10)
    r = s.repeat(3)
    assert r.duration == 30
    assert r(np.array([0, 5, 10, 15, 20, 25, 29])).tolist() == pytest.approx(
        [1.0, 0.5, 1.0, 0.5, 1.0, 0.5, 0.1]
    )
    assert r(30) == 0.0 and r(1000) == 0.0


def test_repeat_forever() -> None:
    """repeat(s) without times restarts s every duration and never settles."""
    s = L.cosine(1.0, 0.0, steps=8)
    r = s.repeat()
    assert r.duration is None
    ts = np.arange(0, 8.0)
    for k in (0, 1, 7, 1000):
        assert np.array_equal(r(ts + 8 * k), s(ts))


# ----------------------------------------------------------------------------- rescale
def test_rescale_keeps_every_phase_share() -> None:
    """rescale(s, total_steps=T) stretches a finite schedule to end at T."""
    s = L.warmup(L.cosine(1.0, 0.0, steps=90), steps=10)
    r = L.rescale(s, total_steps=1000)
    assert r.duration == pytest.approx(1000)
    assert r(100) == pytest.approx(1.0)  # end of warmup, 10% of the run
    assert r(550) == pytest.approx(0.5)  # cosine midpoint
    assert r(50) == pytest.approx(0.5)  # warmup midpoint
    assert r(1000) == 0.0


def test_rescale_equals_percent_units() -> None:
    """rescale of a step schedule equals the same schedule written in '%' and bound."""
    in_pct = L.warmup(L.cosine(1.0, 0.0, steps="90%"), steps="10%").bind(total_steps=1000)
    r = L.rescale(L.warmup(L.cosine(1.0, 0.0, steps=90), steps=10), total_steps=1000)
    ts = np.arange(0, 1100, 10.0)
    np.testing.assert_allclose(r(ts), in_pct(ts), rtol=1e-12, atol=1e-15)


# ----------------------------------------------------------------------------- batch scaling
def test_scale_for_batch_linear_rule() -> None:
    """Linear rule (Goyal et al.): values x k = batch/base; warmups last k times longer."""
    s = L.warmup(L.cosine(0.1, 0.0, steps=900), steps=100)
    b = L.scale_for_batch(s, base_batch=256, batch=1024)
    assert b.duration == 400 + 900  # only the warmup is stretched
    assert b(400) == pytest.approx(0.4)
    assert b(200) == pytest.approx(0.2)  # halfway up the longer ramp
    assert b(400 + 450) == pytest.approx(0.2)  # cosine midpoint, scaled


def test_scale_for_batch_sqrt_rule() -> None:
    """Square-root rule: values x sqrt(batch/base); warmup stretched by the same factor."""
    s = L.warmup(L.constant(0.1), steps=100)
    b = L.scale_for_batch(s, base_batch=100, batch=400, rule="sqrt")
    assert b(10**6) == pytest.approx(0.2)
    assert b.duration == 200


def test_scale_for_batch_shrinking_and_explicit_factor() -> None:
    """A smaller batch scales values down without shortening warmups; warmup_factor overrides."""
    s = L.warmup(L.constant(0.1), steps=100)
    small = L.scale_for_batch(s, base_batch=512, batch=128)
    assert small.duration == 100 and small(100) == pytest.approx(0.025)
    fixed = L.scale_for_batch(s, base_batch=128, batch=512, warmup_factor=1.0)
    assert fixed.duration == 100 and fixed(100) == pytest.approx(0.4)


def test_scale_for_batch_stretches_nested_warmups_and_unit_warmups() -> None:
    """Every warmup in the tree is stretched, also one written in epochs."""
    s = L.warmup(L.constant(1.0), steps=10) >> L.warmup(L.constant(2.0), steps="2ep")
    b = L.scale_for_batch(s, base_batch=1, batch=2).bind(steps_per_epoch=10)
    assert b.duration == 20 + 40
    assert b(10) == pytest.approx(1.0)  # halfway up the first ramp, 0 -> 2 over 20 steps
    assert b(20) == 0.0  # the second ramp starts from its start, 0
    assert b(40) == pytest.approx(2.0)  # halfway up the second, 0 -> 4 over 40 steps
    assert b(60) == pytest.approx(4.0)


# ----------------------------------------------------------------------------- units
def test_bind_resolves_epochs_and_percent() -> None:
    """'ep' lengths use steps_per_epoch, '%' lengths total_steps, rounded to nearest."""
    s = L.warmup(L.cosine(1.0, steps="3ep"), steps="10%")
    assert not s.is_bound
    b = s.bind(total_steps=1000, steps_per_epoch=250)
    assert b.is_bound
    assert b == L.warmup(L.cosine(1.0, steps=750), steps=100)
    assert L.cosine(1.0, steps="0.5ep").bind(steps_per_epoch=7) == L.cosine(1.0, steps=4)
    assert L.cosine(1.0, steps="500st") == L.cosine(1.0, steps=500)


def test_bind_resolves_units_in_lists_and_children() -> None:
    """Milestones, boundaries and every nested child are bound together."""
    s = L.sequence(
        [L.multistep_decay(1.0, milestones=["1ep", "50%"]), L.constant(0.1)],
        boundaries=["2ep"],
    )
    b = s.bind(total_steps=100, steps_per_epoch=10)
    assert b == L.sequence(
        [L.multistep_decay(1.0, milestones=[10, 50]), L.constant(0.1)], boundaries=[20]
    )


def test_bind_leaves_a_bound_schedule_unchanged() -> None:
    """Binding a schedule without units returns it as it is."""
    s = L.cosine(1.0, steps=10)
    assert s.bind(total_steps=5) is s


def test_units_validate_order_after_binding() -> None:
    """Order checks on lengths with units run when they are bound."""
    s = L.multistep_decay(1.0, milestones=["50%", "1ep"])
    with pytest.raises(ValueError, match="milestones must be strictly increasing"):
        s.bind(total_steps=100, steps_per_epoch=10)


def test_one_cycle_in_epochs_matches_steps() -> None:
    """A one-cycle written in epochs equals the one in steps once bound."""
    s = L.one_cycle(1.0, steps="4ep", pct_start=0.25).bind(steps_per_epoch=25)
    assert s == L.one_cycle(1.0, steps=100, pct_start=0.25)
    assert s(24) == pytest.approx(1.0)
    assert math.isclose(s(99), 1.0 / 25 / 1e4)


# ----------------------------------------------------------------------------- regressions
def test_one_child_sequence_round_trips_through_text() -> None:
    """``sequence([a])`` prints as a sequence, not as ``a`` (which parsed back as another value)."""
    s = L.sequence([L.linear(1.0, 0.0, steps=5)])
    assert L.parse(str(s)) == s


def test_rescale_ends_exactly_at_the_new_length() -> None:
    """rescale(s, total_steps=T) has duration T exactly and its final value at step T."""
    for d in (3, 7, 9, 13, 999, 1001, 12345):
        s = L.linear(1.0, 0.0, steps=d)
        for total in (1000, 777, 10**6):
            r = L.rescale(s, total_steps=total)
            assert r.duration == total, (d, total)
            assert r(total) == 0.0, (d, total)


def test_scale_for_batch_stretches_the_warmup_of_wsd() -> None:
    """WSD's own warmup phase is stretched like a warmup() (the stable and decay phases are not)."""
    s = L.wsd(0.1, warmup_steps=100, stable_steps=800, decay_steps=100, decay="linear")
    b = L.scale_for_batch(s, base_batch=256, batch=1024)
    assert b.duration == 400 + 800 + 100
    assert b(200) == pytest.approx(0.2)  # halfway up the longer ramp, 0 -> 0.4
    assert b(400) == pytest.approx(0.4)
    unit = L.scale_for_batch(
        L.wsd(0.1, warmup_steps="1ep", stable_steps=8, decay_steps=2), base_batch=1, batch=3
    )
    assert unit.bind(steps_per_epoch=10).duration == 30 + 8 + 2


def test_scale_for_batch_keeps_unit_lengths_exact() -> None:
    """A warmup in epochs is multiplied without rounding to 6 digits ('0.1234567ep' x 2)."""
    s = L.warmup(L.constant(1.0), steps="0.1234567ep")
    b = L.scale_for_batch(s, base_batch=256, batch=512).bind(steps_per_epoch=10**7)
    assert b.duration == round(0.1234567 * 2 * 10**7)


def test_scale_for_batch_rejects_non_integer_batches_by_name() -> None:
    """A unit string or a float batch size is refused with a message that does not offer units."""
    with pytest.raises(
        L.ScheduleTypeError,
        match=r"^scale_for_batch: base_batch must be a positive integer, got base_batch='3ep'$",
    ):
        L.scale_for_batch(L.constant(1.0), base_batch="3ep", batch=512)
    with pytest.raises(
        L.ScheduleTypeError,
        match=r"^scale_for_batch: batch must be a positive integer, got batch=True$",
    ):
        L.scale_for_batch(L.constant(1.0), base_batch=1, batch=True)
    with pytest.raises(
        L.ScheduleValueError,
        match=r"^scale_for_batch: batch must be a positive integer, got batch=2.5$",
    ):
        L.scale_for_batch(L.constant(1.0), base_batch=1, batch=2.5)
