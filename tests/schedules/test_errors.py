"""Bad arguments fail at construction with a message naming the function, argument and value."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import lrkit as L

NAN, INF = float("nan"), float("inf")

# (id, call, exception type, regex the message must match)
VALUE_ERRORS: list[tuple[str, Callable[[], Any], str]] = [
    # lengths: zero, negative, fractional, bad unit strings
    ("cosine-steps-0", lambda: L.cosine(1.0, steps=0), r"^cosine: steps must be a positive integer, got steps=0$"),
    ("cosine-steps-neg", lambda: L.cosine(1.0, steps=-3), r"cosine: steps .*got steps=-3"),
    ("cosine-steps-frac", lambda: L.cosine(1.0, steps=1.5), r"cosine: steps .*integer.*got steps=1.5"),
    ("linear-steps-0", lambda: L.linear(1.0, 0.0, steps=0), r"linear: steps .*got steps=0"),
    ("step_decay-steps-0", lambda: L.step_decay(1.0, steps=0), r"step_decay: steps .*got steps=0"),
    ("polynomial-steps-neg", lambda: L.polynomial(1.0, steps=-1), r"polynomial: steps .*got steps=-1"),
    ("inverse_sqrt-steps-0", lambda: L.inverse_sqrt(1.0, steps=0), r"inverse_sqrt: steps .*got steps=0"),
    ("exponential-every-0", lambda: L.exponential(1.0, gamma=0.5, every=0), r"exponential: every .*got every=0"),
    ("cyclic-up-0", lambda: L.cyclic(0.1, 1.0, steps_up=0), r"cyclic: steps_up .*got steps_up=0"),
    ("cyclic-down-neg", lambda: L.cyclic(0.1, 1.0, steps_up=3, steps_down=-2), r"cyclic: steps_down .*got steps_down=-2"),
    ("restarts-steps-0", lambda: L.cosine_restarts(1.0, steps=0), r"cosine_restarts: steps .*got steps=0"),
    ("one_cycle-steps-0", lambda: L.one_cycle(1.0, steps=0), r"one_cycle: steps .*got steps=0"),
    ("wsd-stable-neg", lambda: L.wsd(1.0, stable_steps=-1, decay_steps=3), r"wsd: stable_steps must be a non-negative integer, got stable_steps=-1"),
    ("wsd-warmup-neg", lambda: L.wsd(1.0, warmup_steps=-5, stable_steps=1, decay_steps=3), r"wsd: warmup_steps .*got warmup_steps=-5"),
    ("wsd-decay-0", lambda: L.wsd(1.0, stable_steps=1, decay_steps=0), r"wsd: decay_steps must be a positive integer, got decay_steps=0"),
    ("warmup-steps-negative", lambda: L.warmup(L.constant(1.0), steps=-1), r"warmup: steps .*got steps=-1"),
    ("shift-steps-0", lambda: L.shift(L.constant(1.0), steps=0), r"shift: steps .*got steps=0"),
    ("advance-steps-neg", lambda: L.advance(L.constant(1.0), steps=-1), r"advance: steps .*got steps=-1"),
    ("unit-malformed", lambda: L.cosine(1.0, steps="3 epochs"), r"cosine: steps must be an integer or a unit string .*got steps='3 epochs'"),
    ("unit-unknown", lambda: L.cosine(1.0, steps="3min"), r"cosine: steps .*unit string.*got steps='3min'"),
    ("unit-zero-epochs", lambda: L.cosine(1.0, steps="0ep"), r"cosine: steps must be positive, got steps='0ep'"),
    ("unit-over-100pct", lambda: L.cosine(1.0, steps="150%"), r"cosine: steps .*at most 100%, got steps='150%'"),
    ("unit-fractional-st", lambda: L.cosine(1.0, steps="1.5st"), r"cosine: steps .*whole, got steps='1.5st'"),
    ("unit-negative", lambda: L.cosine(1.0, steps="-2ep"), r"cosine: steps .*got steps='-2ep'"),
    # gamma and factors out of range
    ("step_decay-gamma-0", lambda: L.step_decay(1.0, steps=3, gamma=0), r"^step_decay: gamma must be in \(0, 1\], got gamma=0$"),
    ("step_decay-gamma-big", lambda: L.step_decay(1.0, steps=3, gamma=1.5), r"step_decay: gamma must be in \(0, 1\], got gamma=1.5"),
    ("multistep-gamma-neg", lambda: L.multistep_decay(1.0, milestones=[3], gamma=-0.1), r"multistep_decay: gamma .*got gamma=-0.1"),
    ("exponential-gamma-0", lambda: L.exponential(1.0, gamma=0.0), r"exponential: gamma must be > 0, got gamma=0.0"),
    ("exponential-grow-no-end", lambda: L.exponential(1.0, gamma=1.1), r"exponential: .*gamma > 1.*end.*got gamma=1.1, end=None"),
    ("exponential-end-wrong-side", lambda: L.exponential(1.0, gamma=0.9, end=2.0), r"exponential: end .*got start=1.0, gamma=0.9, end=2.0"),
    ("exponential-start-0", lambda: L.exponential(0.0, gamma=0.9), r"exponential: start must be > 0, got start=0.0"),
    ("polynomial-power-0", lambda: L.polynomial(1.0, steps=3, power=0), r"polynomial: power must be > 0, got power=0"),
    ("cyclic-gamma-0", lambda: L.cyclic(0.1, 1.0, steps_up=3, gamma=0), r"cyclic: gamma must be in \(0, 1\], got gamma=0"),
    ("restarts-period_mult", lambda: L.cosine_restarts(1.0, steps=3, period_mult=0.5), r"cosine_restarts: period_mult must be >= 1, got period_mult=0.5"),
    ("restarts-peak_mult", lambda: L.cosine_restarts(1.0, steps=3, peak_mult=1.5), r"cosine_restarts: peak_mult must be in \(0, 1\], got peak_mult=1.5"),
    ("one_cycle-div_factor", lambda: L.one_cycle(1.0, steps=100, div_factor=0), r"one_cycle: div_factor must be > 0, got div_factor=0"),
    ("one_cycle-peak-0", lambda: L.one_cycle(0.0, steps=100), r"one_cycle: peak must be > 0, got peak=0.0"),
    ("stretch-factor-0", lambda: L.stretch(L.constant(1.0), 0), r"stretch: factor must be > 0, got factor=0"),
    # peak below floor, low above high
    ("restarts-peak-below-floor", lambda: L.cosine_restarts(0.1, 1.0, steps=3), r"cosine_restarts: peak must be >= floor, got peak=0.1, floor=1.0"),
    ("cyclic-peak-below-floor", lambda: L.cyclic(1.0, 0.1, steps_up=3), r"cyclic: peak must be >= floor, got peak=0.1, floor=1.0"),
    ("momentum-low-above-high", lambda: L.one_cycle_momentum(steps=100, low=0.95, high=0.85), r"one_cycle_momentum: low must be <= high, got low=0.95, high=0.85"),
    ("clip-low-above-high", lambda: L.clip(L.constant(1.0), 2.0, 1.0), r"clip: low must be <= high, got low=2.0, high=1.0"),
    ("clip-no-bounds", lambda: L.clip(L.constant(1.0)), r"clip: give low, high or both"),
    # pct_start outside (0, 1), phases too short
    ("pct_start-0", lambda: L.one_cycle(1.0, steps=100, pct_start=0), r"one_cycle: pct_start must be in \(0, 1\), got pct_start=0"),
    ("pct_start-1", lambda: L.one_cycle(1.0, steps=100, pct_start=1.0), r"one_cycle: pct_start must be in \(0, 1\), got pct_start=1.0"),
    ("pct_start-momentum", lambda: L.one_cycle_momentum(steps=100, pct_start=1.2), r"one_cycle_momentum: pct_start .*got pct_start=1.2"),
    ("one_cycle-short-phase", lambda: L.one_cycle(1.0, steps=3, pct_start=0.3), r"one_cycle: every phase must last at least one step, got steps=3, pct_start=0.3"),
    # unknown mode / shape / anneal / kind / decay / rule
    ("cyclic-mode", lambda: L.cyclic(0.1, 1.0, steps_up=3, mode="sine"), r"cyclic: mode must be one of .*got mode='sine'"),
    ("one_cycle-anneal", lambda: L.one_cycle(1.0, steps=100, anneal="cosine"), r"one_cycle: anneal must be one of 'cos', 'linear', got anneal='cosine'"),
    ("warmup-shape", lambda: L.warmup(L.constant(1.0), steps=3, shape="quad"), r"warmup: shape must be one of .*got shape='quad'"),
    ("interpolate-kind", lambda: L.interpolate([0, 1], [1.0, 2.0], kind="cubic"), r"interpolate: kind must be one of .*got kind='cubic'"),
    ("wsd-decay", lambda: L.wsd(1.0, stable_steps=3, decay_steps=3, decay="exp"), r"wsd: decay must be one of .*got decay='exp'"),
    ("scale_for_batch-rule", lambda: L.scale_for_batch(L.constant(1.0), base_batch=1, batch=2, rule="cube"), r"scale_for_batch: rule must be one of .*got rule='cube'"),
    # NaN and inf values
    ("cosine-nan-start", lambda: L.cosine(NAN, steps=3), r"^cosine: start must be finite, got start=nan$"),
    ("cosine-inf-end", lambda: L.cosine(1.0, INF, steps=3), r"cosine: end must be finite, got end=inf"),
    ("linear-nan", lambda: L.linear(1.0, NAN, steps=3), r"linear: end must be finite, got end=nan"),
    ("constant-inf", lambda: L.constant(-INF), r"constant: value must be finite, got value=-inf"),
    ("step_decay-nan-gamma", lambda: L.step_decay(1.0, steps=3, gamma=NAN), r"step_decay: gamma must be finite, got gamma=nan"),
    ("piecewise-nan-value", lambda: L.piecewise([1.0, NAN], boundaries=[3]), r"piecewise: values\[1\] must be finite, got values\[1\]=nan"),
    ("wsd-inf-peak", lambda: L.wsd(INF, stable_steps=3, decay_steps=3), r"wsd: peak must be finite, got peak=inf"),
    ("scale-nan", lambda: L.scale(L.constant(1.0), NAN), r"scale: factor must be finite, got factor=nan"),
    ("steps-nan", lambda: L.cosine(1.0, steps=NAN), r"cosine: steps .*got steps=nan"),
    ("steps-inf", lambda: L.cosine(1.0, steps=INF), r"cosine: steps .*got steps=inf"),
    # lists
    ("multistep-empty", lambda: L.multistep_decay(1.0, milestones=[]), r"multistep_decay: milestones must not be empty"),
    ("multistep-not-increasing", lambda: L.multistep_decay(1.0, milestones=[5, 3]), r"multistep_decay: milestones must be strictly increasing, got milestones=\[5, 3\]"),
    ("piecewise-count", lambda: L.piecewise([1.0, 2.0], boundaries=[1, 2]), r"piecewise: values must have one more entry than boundaries"),
    ("piecewise-repeated", lambda: L.piecewise([1.0, 2.0, 3.0], boundaries=[5, 5]), r"piecewise: boundaries must be strictly increasing"),
    ("interpolate-lengths", lambda: L.interpolate([0, 1], [1.0]), r"interpolate: steps and values must have the same length"),
    # combinators
    ("sequence-infinite-child", lambda: L.inverse_sqrt(1.0, steps=3) >> L.constant(1.0), r"sequence: schedules\[0\] = inverse_sqrt\(1.0, steps=3\) never settles"),
    ("sequence-boundary-count", lambda: L.sequence([L.constant(1.0), L.constant(2.0)], boundaries=[1, 2]), r"sequence: needs one boundary fewer than schedules"),
    ("sequence-boundary-order", lambda: L.sequence([L.constant(1.0)] * 3, boundaries=[5, 3]), r"sequence: boundaries must be strictly increasing, got boundaries=\[5, 3\]"),
    ("sequence-empty", lambda: L.sequence([]), r"sequence: schedules needs at least 1"),
    ("product-one", lambda: L.product([L.constant(1.0)]), r"product: schedules needs at least 2"),
    ("repeat-no-duration", lambda: L.repeat(L.inverse_sqrt(1.0, steps=3)), r"repeat: the schedule must have a positive duration"),
    ("repeat-zero-duration", lambda: L.repeat(L.constant(1.0)), r"repeat: .*positive duration.*duration 0"),
    ("repeat-times-0", lambda: L.repeat(L.linear(1.0, 0.0, steps=3), times=0), r"repeat: times must be a positive integer, got times=0"),
    ("warmup-exp-start-0", lambda: L.warmup(L.constant(1.0), steps=3, shape="exponential"), r"warmup: start must be > 0, got start=0.0"),
    ("warmup-exp-target-0", lambda: L.warmup(L.constant(0.0), steps=3, start=0.1, shape="exponential"), r"warmup: an exponential ramp needs a target > 0"),
    ("rescale-no-duration", lambda: L.rescale(L.inverse_sqrt(1.0, steps=3), total_steps=10), r"rescale: the schedule must have a positive duration"),
    ("rescale-total-0", lambda: L.rescale(L.linear(1.0, 0.0, steps=3), total_steps=0), r"rescale: total_steps must be a positive integer, got total_steps=0"),
    ("scale_for_batch-batch-0", lambda: L.scale_for_batch(L.constant(1.0), base_batch=0, batch=2), r"scale_for_batch: base_batch must be a positive integer, got base_batch=0"),
    ("scale_for_batch-warmup_factor", lambda: L.scale_for_batch(L.constant(1.0), base_batch=1, batch=2, warmup_factor=0), r"scale_for_batch: warmup_factor must be > 0, got warmup_factor=0"),
    # units left unresolved, and binding errors
    ("unbound-call", lambda: L.cosine(1.0, steps="10%")(3), r"cosine: schedule has lengths in units .*steps='10%'.*call \.bind\("),
    ("unbound-array-call", lambda: L.warmup(L.cosine(1.0, steps="2ep"), steps=5)(np.arange(3)), r"warmup: .*cosine: steps='2ep'.*\.bind\("),
    ("unbound-duration", lambda: L.cosine(1.0, steps="10%").duration, r"cosine: schedule has lengths in units"),
    ("bind-needs-total", lambda: L.cosine(1.0, steps="10%").bind(steps_per_epoch=3), r"cosine: steps='10%' is a fraction of the run; bind with total_steps="),
    ("bind-needs-epoch", lambda: L.cosine(1.0, steps="2ep").bind(total_steps=3), r"cosine: steps='2ep' is in epochs; bind with steps_per_epoch="),
    ("bind-total-0", lambda: L.cosine(1.0, steps="2ep").bind(total_steps=0), r"bind: total_steps must be a positive integer, got total_steps=0"),
    ("bind-to-zero-steps", lambda: L.cosine(1.0, steps="1%").bind(total_steps=10), r"cosine: steps='1%' rounds to 0 steps with total_steps=10; use a longer length"),
    # steps passed to s(t)
    ("call-negative", lambda: L.constant(1.0)(-1), r"^constant: step must be a finite number >= 0, got t=-1$"),
    ("call-nan", lambda: L.cosine(1.0, steps=3)(NAN), r"cosine: step must be a finite number >= 0, got t=nan"),
    ("call-inf", lambda: L.cosine(1.0, steps=3)(INF), r"cosine: step must be a finite number >= 0, got t=inf"),
    ("call-array-negative", lambda: L.constant(1.0)(np.array([1.0, -2.0])), r"constant: steps must be finite and >= 0, got a step of .*-2\.0"),
    ("call-array-nan", lambda: L.constant(1.0)([0.0, NAN]), r"constant: steps must be finite and >= 0, got a step of .*nan"),
    # dict form
    ("from_dict-unknown-type", lambda: L.from_dict({"type": "cosin", "start": 1.0, "steps": 3}), r"from_dict: unknown schedule type 'cosin' \(did you mean 'cosine'\?\)"),
    ("from_dict-no-type", lambda: L.from_dict({"start": 1.0}), r"from_dict: expected a dict with a 'type' key"),
    ("from_dict-unknown-key", lambda: L.from_dict({"type": "cosine", "start": 1.0, "steps": 3, "foo": 1}), r"from_dict: bad keys for 'cosine': .*'foo'"),
    ("from_dict-missing-key", lambda: L.from_dict({"type": "linear", "start": 1.0}), r"from_dict: bad keys for 'linear': .*'end'"),
    ("from_dict-nested-unknown", lambda: L.from_dict({"type": "warmup", "schedule": {"type": "nope"}, "steps": 3}), r"from_dict: unknown schedule type 'nope'"),
    ("from_dict-bad-value", lambda: L.from_dict({"type": "cosine", "start": 1.0, "steps": 0}), r"cosine: steps must be a positive integer, got steps=0"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("call", "match"), [c[1:] for c in VALUE_ERRORS], ids=[c[0] for c in VALUE_ERRORS]
)
def test_value_errors(call: Callable[[], Any], match: str) -> None:
    """Each bad value raises ValueError (lrkit.ScheduleValueError) with the message shape."""
    with pytest.raises(L.ScheduleValueError, match=match):
        call()


TYPE_ERRORS: list[tuple[str, Callable[[], Any], str]] = [
    ("bool-start", lambda: L.cosine(True, steps=3), r"^cosine: start must be a real number, got start=True of type bool$"),
    ("bool-gamma", lambda: L.step_decay(1.0, steps=3, gamma=True), r"step_decay: gamma must be a real number, got gamma=True"),
    ("bool-steps", lambda: L.cosine(1.0, steps=True), r"cosine: steps must be a positive integer or a unit string .*got steps=True"),
    ("bool-factor", lambda: L.stretch(L.constant(1.0), False), r"stretch: factor must be a real number, got factor=False"),
    ("str-start", lambda: L.linear("1", 0.0, steps=3), r"linear: start must be a real number, got start='1' of type str"),
    ("none-peak", lambda: L.wsd(None, stable_steps=3, decay_steps=3), r"wsd: peak must be a real number, got peak=None"),
    ("list-steps", lambda: L.cosine(1.0, steps=[3]), r"cosine: steps must be an integer or a unit string .*got steps=\[3\] of type list"),
    ("int-staircase", lambda: L.exponential(1.0, gamma=0.9, staircase=1), r"exponential: staircase must be True or False, got staircase=1"),
    ("int-cycle", lambda: L.polynomial(1.0, steps=3, cycle=0), r"polynomial: cycle must be True or False, got cycle=0"),
    ("warmup-not-schedule", lambda: L.warmup(0.1, steps=3), r"warmup: schedule must be a Schedule, got schedule=0.1 of type float"),
    ("sequence-not-schedule", lambda: L.sequence([L.constant(1.0), 2.0]), r"sequence: schedules\[1\] must be a Schedule, got schedules\[1\]=2.0"),
    ("sequence-not-list", lambda: L.sequence(L.constant(1.0)), r"sequence: schedules must be a list of schedules"),
    ("product-not-list", lambda: L.product(L.constant(1.0)), r"product: schedules must be a list of schedules"),
    ("call-bool", lambda: L.constant(1.0)(True), r"constant: step must be a number or array, got t=True"),
    ("call-str", lambda: L.constant(1.0)("3"), r"constant: step must be a number or array, got t='3'"),
    ("parse-not-str", lambda: L.parse(3), r"parse: spec must be a string, got 3"),
    ("as_schedule-list", lambda: L.as_schedule([1]), r"as_schedule: expected a Schedule, dict, spec string or number, got \[1\]"),
    ("from_dict-bool", lambda: L.from_dict({"type": "constant", "value": True}), r"constant: value must be a real number, got value=True"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("call", "match"), [c[1:] for c in TYPE_ERRORS], ids=[c[0] for c in TYPE_ERRORS]
)
def test_type_errors(call: Callable[[], Any], match: str) -> None:
    """A wrong type raises TypeError (lrkit.ScheduleTypeError), bools included."""
    with pytest.raises(L.ScheduleTypeError, match=match):
        call()


def test_error_classes_subclass_builtins() -> None:
    """``except ValueError`` / ``except TypeError`` catch lrkit's errors."""
    assert issubclass(L.ScheduleValueError, ValueError)
    assert issubclass(L.ScheduleTypeError, TypeError)
    assert issubclass(L.SpecError, ValueError)


# ----------------------------------------------------------------------------- text specs
def underlined(message: str) -> str:
    """The part of the spec line that the caret line underneath points at."""
    lines = message.splitlines()
    spec, carets = lines[-2], lines[-1]
    start = carets.index("^")
    end = len(carets.rstrip())
    return spec[start:end]


SPEC_ERRORS = [
    # (spec, message regex, the text the carets must underline)
    ("warmup(cosine(1.0, steps=0), steps=3)", r"cosine: steps must be a positive integer, got steps=0", "cosine(1.0, steps=0)"),
    ("cosin(1.0, steps=3)", r"unknown schedule 'cosin' \(did you mean 'cosine'\?\)", "cosin"),
    ("linear(0.0, 1.0, steps=5) >> cosine(1.0, steps=5, shape=2)", r"unexpected keyword argument 'shape'", "cosine(1.0, steps=5, shape=2)"),
    ("__import__('os').system('true')", r"only calls of schedule names are allowed", "__import__('os').system"),
    ("lrkit.cosine(1.0, steps=3)", r"only calls of schedule names are allowed", "lrkit.cosine"),
    ("cosine", r"'cosine' must be called", "cosine"),
    ("cosine(1.0, steps=3) >> 2", r"'>>' joins two schedules", "cosine(1.0, steps=3) >> 2"),
    ("cosine(**{'start': 1}, steps=3)", r"'\*\*' is not allowed", "**{'start': 1}"),
    ("cosine(1.0, steps=x)", r"unknown name 'x'", "x"),
    ("cosine(1.0, steps=3) + cosine(1.0, steps=3)", r"operator Add is not allowed", "cosine(1.0, steps=3) + cosine(1.0, steps=3)"),
    ("cosine(1.0, steps=[1, 2][0])", r"not allowed in a spec: Subscript", "[1, 2][0]"),
    ("warmup(cosine(1.0, steps=3), steps='3 epochs')", r"warmup: steps must be an integer or a unit string", "warmup(cosine(1.0, steps=3), steps='3 epochs')"),
    ("cyclic(0.1, 1.0, steps_up=3, mode='sin')", r"cyclic: mode must be one of", "cyclic(0.1, 1.0, steps_up=3, mode='sin')"),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "match", "pointed"), SPEC_ERRORS, ids=[s[0] for s in SPEC_ERRORS])
def test_parse_errors_point_at_the_offending_part(spec: str, match: str, pointed: str) -> None:
    """A bad spec raises SpecError whose caret line underlines exactly the offending part."""
    with pytest.raises(L.SpecError, match=match) as info:
        L.parse(spec)
    assert underlined(str(info.value)) == pointed


def test_parse_syntax_error_points_at_the_column() -> None:
    """A syntax error in a spec is reported with a caret at the column Python reports."""
    with pytest.raises(L.SpecError, match="invalid syntax") as info:
        L.parse("cosine(1.0, steps=)")
    lines = str(info.value).splitlines()
    assert lines[1].strip() == "cosine(1.0, steps=)"
    assert lines[2].index("^") - lines[1].index("c") == len("cosine(1.0, steps=")


def test_parse_rejects_a_non_schedule_value() -> None:
    """A spec that is a literal string, not a schedule, is a SpecError; a number is a constant."""
    with pytest.raises(L.SpecError, match=r"parse: the spec must describe a schedule, got 'abc'"):
        L.parse("'abc'")
    assert L.parse("0.5") == L.constant(0.5)


def test_errors_raise_at_construction_not_at_evaluation() -> None:
    """Validation happens when the object is built: a valid schedule never raises mid-run."""
    s = L.warmup(L.one_cycle(1.0, steps=100) >> L.constant(0.0), steps=10)
    v = s(np.arange(0, 10**6, 997))
    assert np.all(np.isfinite(v))


# ----------------------------------------------------------------------------- hostile input
HOSTILE_SPECS = [
    ("-" * 100_000 + "1", r"too deeply nested|too long"),
    ("(" * 1_000 + "constant(1.0)" + ")" * 1_000, r"too deeply nested"),
    ("9" * 400, r"finite"),
    ("9" * 400 + " * constant(1.0)", r"finite"),
    ("9" * 400 + " / 3 * constant(1.0)", r"finite"),
    ("constant(" + "9" * 400 + ")", r"constant: value must be finite"),
    ("linear(0.0, 1.0, steps=" + "9" * 400 + ")", r"linear: steps .*too large|linear: steps .*finite"),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "match"), HOSTILE_SPECS, ids=range(len(HOSTILE_SPECS)))
def test_hostile_specs_raise_spec_error(spec: str, match: str) -> None:
    """Huge nesting, huge numbers and huge chains give a SpecError, not Memory/Recursion/Overflow."""
    with pytest.raises(L.SpecError, match=match):
        L.parse(spec)


def test_an_error_in_a_long_spec_shows_a_window_around_it() -> None:
    """A bad part deep in a long spec is underlined in a short excerpt, not a 100 kB message."""
    spec = " >> ".join(["linear(1.0, 0.0, steps=2)"] * 1_500 + ["cosin(1.0, steps=3)"])
    with pytest.raises(L.SpecError, match=r"unknown schedule 'cosin'") as info:
        L.parse(spec)
    assert len(str(info.value)) < 500
    assert underlined(str(info.value)) == "cosin"


def test_a_long_sequence_round_trips_through_text() -> None:
    """A sequence of 1,000 pieces prints as a ``>>`` chain that parses back (no recursion limit)."""
    s = L.sequence([L.linear(1.0, 0.0, steps=2), L.constant(0.5)] * 500)
    assert L.parse(str(s)) == s
    p = L.product([L.constant(1.0), L.constant(2.0)] * 500)
    assert L.parse(str(p)) == p


def test_from_dict_hostile_input() -> None:
    """from_dict: an unhashable type, a huge number or deep nesting give lrkit errors."""
    with pytest.raises(L.SpecError, match=r"from_dict: unknown schedule type \[\]"):
        L.from_dict({"type": []})
    with pytest.raises(L.ScheduleValueError, match=r"constant: value must be finite"):
        L.from_dict({"type": "constant", "value": 10**400})
    d: dict = {"type": "constant", "value": 1.0}
    for _ in range(5_000):
        d = {"type": "shift", "schedule": d, "steps": 1}
    with pytest.raises(L.SpecError, match=r"from_dict: .*too deeply nested"):
        L.from_dict(d)


def test_as_schedule_of_a_huge_int_is_a_value_error() -> None:
    """as_schedule(10**400) names the value instead of raising OverflowError."""
    with pytest.raises(L.ScheduleValueError, match=r"constant: value must be finite"):
        L.as_schedule(10**400)
    assert L.as_schedule(np.float32(0.5)) == L.constant(0.5)


def test_from_dict_requires_what_the_constructor_requires() -> None:
    """A key the public constructor requires (``cosine``'s steps) cannot be left out of a dict."""
    with pytest.raises(L.SpecError, match=r"from_dict: bad keys for 'cosine': .*'steps'"):
        L.from_dict({"type": "cosine", "start": 1.0})
    with pytest.raises(L.SpecError, match=r"from_dict: bad keys for 'stretch': .*'factor'"):
        L.from_dict({"type": "stretch", "schedule": {"type": "constant", "value": 1.0}})
    # Optional keys may still be left out.
    assert L.from_dict({"type": "cosine", "start": 1.0, "steps": 5}) == L.cosine(1.0, steps=5)


def test_call_rejects_what_the_scalar_path_rejects() -> None:
    """Arrays of bools or strings, complex steps and huge ints are refused like their scalars."""
    s = L.constant(1.0)
    for bad in (np.array([True, False]), ["1", "2"], np.complex128(1.0), np.array([1j])):
        with pytest.raises(L.ScheduleTypeError, match=r"constant: step"):
            s(bad)
    with pytest.raises(L.ScheduleValueError, match=r"constant: step must be a finite number"):
        s(10**400)


@pytest.mark.parametrize(
    ("d", "match"),
    [
        ({"type": "piecewise", "values": [1.0], "boundaries": "abc"}, r"^piecewise: boundaries must be a list"),
        ({"type": "interpolate", "steps": 5, "values": [1.0]}, r"^interpolate: steps must be a list"),
        ({"type": "multistep_decay", "start": 1.0, "milestones": "10"}, r"^multistep_decay: milestones must be a list"),
        ({"type": "sequence", "schedules": [{"type": "constant", "value": 1.0}], "boundaries": 3}, r"^sequence: boundaries must be a list"),
    ],
)  # fmt: skip
def test_a_list_of_lengths_of_the_wrong_type_is_a_type_error(d: dict, match: str) -> None:
    """Every list-of-lengths field refuses a non-list with TypeError, as the style guide asks."""
    with pytest.raises(L.ScheduleTypeError, match=match):
        L.from_dict(d)
