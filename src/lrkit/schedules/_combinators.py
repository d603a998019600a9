"""Composition: warmup, sequence (``>>``), products and multiples (``*``) and clip. Each returns a
new schedule value that prints, compares and serialises. The time operators (shift, advance,
stretch, repeat) are in :mod:`lrkit.schedules._time`."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence as Seq
from dataclasses import dataclass, field

import numpy as np

from lrkit.schedules import _check as check
from lrkit.schedules._anneal import cos_weight, mix
from lrkit.schedules._arrays import Namespace, empty, is_numpy, pieces, put
from lrkit.schedules._base import FloatArray, Schedule, register
from lrkit.schedules._errors import ScheduleTypeError, ScheduleValueError
from lrkit.schedules._units import Length, check_length, check_lengths


def _schedule(owner: str, name: str, value: object) -> Schedule:
    if not isinstance(value, Schedule):
        raise ScheduleTypeError(
            f"{owner}: {name} must be a Schedule, got {name}={value!r} of type "
            f"{type(value).__name__}"
        )
    return value


def _schedules(owner: str, name: str, values: object, min_len: int) -> tuple[Schedule, ...]:
    if isinstance(values, Schedule) or not isinstance(values, Seq):
        raise ScheduleTypeError(f"{owner}: {name} must be a list of schedules, got {values!r}")
    out = tuple(_schedule(owner, f"{name}[{i}]", v) for i, v in enumerate(values))
    if len(out) < min_len:
        raise ScheduleValueError(
            f"{owner}: {name} needs at least {min_len} schedules, got {len(out)}"
        )
    return out


def _head(s: Schedule) -> float:
    return float(s._eval(np.zeros(1), np)[0])


@register("warmup")
@dataclass(frozen=True, slots=True)
class Warmup(Schedule):
    """See :func:`warmup`."""

    _positional = 1
    _lengths = ("steps",)
    _children = ("schedule",)
    schedule: Schedule
    steps: Length = 1
    start: float = 0.0
    shape: str = "linear"
    #: The ramp's target, schedule(0), once the schedule is bound.
    _target: float = field(init=False, repr=False, compare=False, default=0.0)

    def _validate(self) -> None:
        owner = "warmup"
        _schedule(owner, "schedule", self.schedule)
        self._set("steps", check_length(owner, "steps", self.steps, allow_zero=True))
        self._set("start", check.real(owner, "start", self.start))
        self._set(
            "shape", check.choice(owner, "shape", self.shape, ("linear", "cosine", "exponential"))
        )
        if self.shape == "exponential":
            check.positive(owner, "start", self.start)
        if not self.schedule.is_bound:
            return
        self._set("_target", _head(self.schedule))
        if self.shape == "exponential" and self._target <= 0 and self.steps != 0:
            raise ScheduleValueError(
                f"{owner}: an exponential ramp needs a target > 0, got the schedule's first "
                f"value {self._target!r}"
            )

    def _eval(self, t: FloatArray, xp: Namespace) -> FloatArray:
        steps = float(self.steps)  # type: ignore[arg-type]
        target = self._target

        def ramp(t: FloatArray) -> FloatArray:
            frac = t / steps
            if self.shape == "linear":
                return mix(self.start, target, 1.0 - frac)
            if self.shape == "cosine":
                return mix(self.start, target, cos_weight(frac, xp))
            # start * (target / start) ** frac, without overflow in target / start
            return self.start ** (1.0 - frac) * target**frac

        def rest(t: FloatArray) -> FloatArray:
            return self.schedule._eval(_local(xp, t, steps), xp)

        out = empty(xp, t)
        for where, piece in zip(pieces(t, (0.0, steps), xp), (ramp, rest), strict=True):
            if where is not None:
                out = put(xp, out, where, piece, t)
        return out

    def _duration(self) -> float | None:
        inner = self.schedule._duration()
        return None if inner is None else self.steps + inner  # type: ignore[operator]


def warmup(
    schedule: Schedule, *, steps: Length, start: float = 0.0, shape: str = "linear"
) -> Warmup:
    """Ramp from ``start`` to ``schedule(0)`` over ``steps`` steps, then run ``schedule``.

    With ``f = t / steps`` and ``target = schedule(0)``, for ``t < steps``:
    ``v = start * (1 - f) + target * f`` (``linear``), the half-cosine
    ``w = (1 + cos(pi f)) / 2``, ``v = start * w + target * (1 - w)`` (``cosine``), or
    ``start * (target / start) ** f`` (``exponential``, ``start > 0``). From ``steps`` on:
    ``v = schedule(t - steps)``. The warmup adds to the schedule's length: the decay's length
    never includes the warmup (see the README's "Conventions").

    ``steps=0`` is no warmup: the schedule itself from step 0 (the mappings of transformers,
    optax and Keras with no warmup steps).

    Raises:
        ValueError: ``steps`` negative, unknown ``shape``, exponential with ``start <= 0``.

    Holds ``schedule``'s final value after ``steps + schedule.duration``.

    >>> s = warmup(cosine(1.0, 0.0, steps=100), steps=10)
    >>> s(5), s(10), s(60)
    (0.5, 1.0, 0.5)
    """
    return Warmup(schedule, steps, start, shape)


@register("sequence")
@dataclass(frozen=True, slots=True)
class Sequence(Schedule):
    """See :func:`sequence`."""

    _positional = 1
    _lengths = ("boundaries",)
    _children = ("schedules",)
    schedules: tuple[Schedule, ...]
    boundaries: tuple[Length, ...] | None = None
    _starts: tuple[float, ...] = field(init=False, repr=False, compare=False, default=())

    def _validate(self) -> None:
        owner = "sequence"
        schedules = _schedules(owner, "schedules", self.schedules, 1)
        self._set("schedules", schedules)
        if self.boundaries is not None:
            bounds = check_lengths(owner, "boundaries", self.boundaries)
            if len(bounds) != len(schedules) - 1:
                raise ScheduleValueError(
                    f"{owner}: needs one boundary fewer than schedules, got {len(schedules)} "
                    f"schedules and boundaries={list(bounds)!r}"
                )
            self._set("boundaries", bounds)
        if self._unresolved():  # (is_bound is only cached after validation)
            return
        if self.boundaries is None:
            starts: list[float] = [0]
            for i, s in enumerate(schedules[:-1]):
                d = s._duration()
                if d is None:
                    raise ScheduleValueError(
                        f"{owner}: schedules[{i}] = {s} never settles (no duration), so it "
                        f"cannot be followed; give boundaries=[...] explicitly"
                    )
                starts.append(starts[-1] + d)
        else:
            check.increasing(owner, "boundaries", self.boundaries)  # type: ignore[arg-type]
            starts = [0, *self.boundaries]  # type: ignore[list-item]
        self._set("_starts", tuple(starts))

    def _eval(self, t: FloatArray, xp: Namespace) -> FloatArray:
        starts = self._starts
        if len(starts) == 1:
            return self.schedules[0]._eval(t, xp)
        out = empty(xp, t)
        for k, where in enumerate(pieces(t, starts, xp)):
            if where is not None:
                out = put(xp, out, where, _from(xp, self.schedules[k], starts[k]), t)
        return out

    def _duration(self) -> float | None:
        last = self.schedules[-1]._duration()
        return None if last is None else self._starts[-1] + last

    def __str__(self) -> str:
        if self.boundaries is None and len(self.schedules) > 1:
            return " >> ".join(_wrap(s, Sequence) for s in self.schedules)
        if self.boundaries is None:  # one child: printed alone it would parse as the child
            return f"sequence([{self.schedules[0]}])"
        return Schedule.__str__(self)


def sequence(schedules: Seq[Schedule], *, boundaries: Seq[Length] | None = None) -> Sequence:
    """Run schedules one after another; each child's clock starts at 0 at its boundary.

    With start steps ``B_0 = 0 < B_1 < ...``, for ``B_k <= t < B_{k+1}``:
    ``v(t) = schedules[k](t - B_k)``. Without ``boundaries`` each child runs for its own
    duration (``B_{k+1} = B_k + schedules[k].duration``), which is what ``a >> b`` builds.
    optax ``join_schedules``; torch ``SequentialLR`` (whose children start their clocks at
    the milestone the same way).

    Raises:
        ValueError: boundaries not increasing or of the wrong count, a child without duration
            followed by another when no boundaries are given.

    Holds the last child's final value after it ends.

    >>> s = constant(1.0) >> linear(1.0, 0.0, steps=10)
    >>> s
    constant(1.0) >> linear(1.0, 0.0, steps=10)
    >>> sequence([constant(1.0), constant(0.5)], boundaries=[10])(10)
    0.5
    """
    flat: list[Schedule] = []
    for s in _schedules("sequence", "schedules", schedules, 0):
        if boundaries is None and isinstance(s, Sequence) and s.boundaries is None:
            flat.extend(s.schedules)
        else:
            flat.append(s)
    bounds = (
        None if boundaries is None else check.sequence_arg("sequence", "boundaries", boundaries)
    )
    return Sequence(tuple(flat), bounds)  # type: ignore[arg-type]


@register("product")
@dataclass(frozen=True, slots=True)
class Product(Schedule):
    """See :func:`product`."""

    _positional = 1
    _children = ("schedules",)
    schedules: tuple[Schedule, ...]

    def _validate(self) -> None:
        schedules = _schedules("product", "schedules", self.schedules, 2)
        self._set("schedules", schedules)
        check.bounded("product", "schedules", lambda: str(list(schedules)), self._magnitude())

    def _eval(self, t: FloatArray, xp: Namespace) -> FloatArray:
        out = self.schedules[0]._eval(t, xp)
        for s in self.schedules[1:]:
            out = out * s._eval(t, xp)
        return out

    def _magnitude(self) -> float:
        out = 1.0
        for s in self.schedules:
            out *= s._magnitude()
        return out

    def _duration(self) -> float | None:
        durations = [s._duration() for s in self.schedules]
        return None if any(d is None for d in durations) else max(durations)  # type: ignore[type-var]

    def __str__(self) -> str:
        return " * ".join(_wrap(s, Product) for s in self.schedules)


def product(schedules: Seq[Schedule]) -> Product:
    """Pointwise product ``v(t) = prod_k schedules[k](t)`` (what ``a * b`` builds).

    Settles when every factor has settled.

    Raises:
        ValueError: fewer than two schedules, or factors whose values could multiply beyond
            the largest float (``constant(1e200) * constant(1e200)``).

    >>> (constant(2.0) * linear(1.0, 0.0, steps=10))(5)
    1.0
    """
    flat: list[Schedule] = []
    for s in _schedules("product", "schedules", schedules, 0):
        flat.extend(s.schedules if isinstance(s, Product) else (s,))
    return Product(tuple(flat))


@register("scale")
@dataclass(frozen=True, slots=True)
class Scale(Schedule):
    """See :func:`scale`."""

    _positional = 2
    _children = ("schedule",)
    schedule: Schedule
    factor: float = 1.0

    def _validate(self) -> None:
        _schedule("scale", "schedule", self.schedule)
        self._set("factor", check.real("scale", "factor", self.factor))
        check.bounded("scale", "factor", lambda: repr(self.factor), self._magnitude())

    def _eval(self, t: FloatArray, xp: Namespace) -> FloatArray:
        return self.factor * self.schedule._eval(t, xp)

    def _magnitude(self) -> float:
        return abs(self.factor) * self.schedule._magnitude()

    def _duration(self) -> float | None:
        return self.schedule._duration()

    def __str__(self) -> str:
        return f"{self.factor!r} * {_wrap(self.schedule, Product)}"


def scale(schedule: Schedule, factor: float) -> Scale:
    """Scalar multiple ``v(t) = factor * schedule(t)`` (what ``0.5 * s`` builds).

    Raises:
        ValueError: ``factor`` not finite, or ``factor`` times the schedule's values could
            go beyond the largest float.

    >>> (0.5 * constant(2.0))(0)
    1.0
    """
    if isinstance(schedule, Scale):
        return Scale(schedule.schedule, schedule.factor * check.real("scale", "factor", factor))
    return Scale(schedule, factor)


@register("clip")
@dataclass(frozen=True, slots=True)
class Clip(Schedule):
    """See :func:`clip`."""

    _positional = 1
    _children = ("schedule",)
    schedule: Schedule
    low: float | None = None
    high: float | None = None

    def _validate(self) -> None:
        owner = "clip"
        _schedule(owner, "schedule", self.schedule)
        if self.low is None and self.high is None:
            raise ScheduleValueError(f"{owner}: give low, high or both, got low=None, high=None")
        if self.low is not None:
            self._set("low", check.real(owner, "low", self.low))
        if self.high is not None:
            self._set("high", check.real(owner, "high", self.high))
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ScheduleValueError(
                f"{owner}: low must be <= high, got low={self.low!r}, high={self.high!r}"
            )

    def _eval(self, t: FloatArray, xp: Namespace) -> FloatArray:
        return xp.clip(self.schedule._eval(t, xp), self.low, self.high)

    def _magnitude(self) -> float:
        inner = self.schedule._magnitude()
        if self.low is None or self.high is None:
            return inner
        return min(inner, max(abs(self.low), abs(self.high)))

    def _duration(self) -> float | None:
        return self.schedule._duration()


def clip(schedule: Schedule, low: float | None = None, high: float | None = None) -> Clip:
    """Values limited to ``[low, high]``: ``v(t) = min(max(schedule(t), low), high)``.

    Raises:
        ValueError: neither bound given, or ``low > high``.

    >>> clip(linear(0.0, 1.0, steps=10), 0.2, 0.8)(1)
    0.2
    """
    return Clip(schedule, low, high)


def _local(xp: Namespace, t: FloatArray, start: float) -> FloatArray:
    """A piece's own clock ``t - start``. numpy gets only the piece's steps; elsewhere every
    step comes (the piece is picked by ``where`` afterwards), so the clock stops at 0."""
    return t - start if is_numpy(xp) else xp.maximum(t - float(start), 0.0)


def _from(xp: Namespace, child: Schedule, start: float) -> Callable[[FloatArray], FloatArray]:
    """``child`` started at step ``start``: ``t -> child(t - start)``."""
    return lambda t: child._eval(_local(xp, t, start), xp)


def _wrap(s: Schedule, parent: type) -> str:
    """Parenthesise a child whose operator binds less tightly than the parent's."""
    text = str(s)
    loose = isinstance(s, Sequence) and s.boundaries is None and len(s.schedules) > 1
    # A Scale prints as ``k * child``: inside a product it needs parentheses, or
    # ``a * 0.5 * b`` would parse back as ``(a * 0.5) * b``, a different tree.
    if parent is Product and (loose or isinstance(s, (Product, Scale))):
        return f"({text})"
    if parent is Sequence and loose:
        return f"({text})"
    return text
