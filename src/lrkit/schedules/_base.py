"""The ``Schedule`` base class: evaluation, binding of units, operators, dict form and printing.

A schedule is a frozen, slotted dataclass. A family writes only its fields, a vectorised
``_eval(t, xp)`` on an array of non-negative steps with its array namespace ``xp`` (numpy, or
torch / JAX through the array API: see :mod:`lrkit.schedules._arrays`), ``_duration()`` and
``_validate()``.
Everything else (scalar vs array calls, rejecting negative steps, binding units, the dict form,
``str``) lives here.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from numbers import Real
from typing import Any, ClassVar, TypeVar, overload

import numpy as np
import numpy.typing as npt

from lrkit.schedules._arrays import Namespace, default_float, namespace
from lrkit.schedules._errors import ScheduleTypeError, ScheduleValueError
from lrkit.schedules._units import Length, RunInfo, check_run, is_resolved, resolve_length

ArrayLike = npt.ArrayLike
FloatArray = npt.NDArray[np.float64]

_REGISTRY: dict[str, type[Schedule]] = {}

S = TypeVar("S", bound="Schedule")


def register(name: str) -> Callable[[type[S]], type[S]]:
    """Class decorator: make a schedule class loadable from its dict form under ``name``."""

    def deco(cls: type[S]) -> type[S]:
        if name in _REGISTRY:
            raise RuntimeError(f"schedule name {name!r} registered twice")
        cls._name = name
        cls.__repr__ = Schedule.__repr__  # type: ignore[method-assign]  # the dataclass one
        _REGISTRY[name] = cls
        return cls

    return deco


def registry() -> dict[str, type[Schedule]]:
    """The schedule classes by spec name (a copy)."""
    return dict(_REGISTRY)


@dataclasses.dataclass(frozen=True, slots=True)
class Schedule:
    """How one hyperparameter moves over training: a pure function of the step.

    ``s(t)`` with an int or float step returns a float; with a numpy array it returns an array of
    the same shape, evaluated vectorised. The clock counts updates already made, from 0: ``s(0)``
    is the value for the first update. Past :attr:`duration` a finite schedule holds its final
    value; cyclic families repeat by definition and have no duration (``None``).
    """

    _name: ClassVar[str] = "schedule"
    #: Leading fields printed positionally in the text form.
    _positional: ClassVar[int] = 0
    #: Fields holding a length, or a tuple of lengths (ints or unit strings).
    _lengths: ClassVar[tuple[str, ...]] = ()
    #: Fields holding a schedule or a tuple of schedules.
    _children: ClassVar[tuple[str, ...]] = ()
    #: Cached at construction: True when no length is left in units.
    _bound: bool = dataclasses.field(init=False, repr=False, compare=False, default=False)

    def __post_init__(self) -> None:
        self._validate()
        object.__setattr__(self, "_bound", not self._unresolved())

    # ----------------------------------------------------------------- family hooks
    def _validate(self) -> None:
        """Check and normalise fields (use :meth:`_set`); raise ValueError / TypeError."""

    def _eval(self, t: FloatArray, xp: Namespace) -> FloatArray:
        """Values at the non-negative steps ``t``, vectorised with the array namespace ``xp``.

        On numpy ``t`` is a 1-D float64 array; on another namespace an array of a real floating
        dtype, any shape, whose values must stay in that dtype and on that device.
        """
        raise NotImplementedError

    def _duration(self) -> float | None:
        """Steps until the final value is reached and held; None if it never settles."""
        return None

    def _magnitude(self) -> float:
        """An upper bound on ``|v(t)|`` over every step, used to refuse products and multiples
        that could overflow when they are built.

        The default is the largest ``|x|`` among the value fields (floats whose names are not
        those of multipliers: ``gamma``, ``power``, ``*_mult``, ``*_factor``, ``*_frac``, ...)
        and the children's magnitudes: right for every family whose values lie between its
        value fields (interpolations, decays, cycles). A family whose values can go beyond
        them overrides this.
        """
        out = 0.0
        for f in dataclasses.fields(self):
            if not f.init or f.name in self._lengths or _is_multiplier(f.name):
                continue
            value = getattr(self, f.name)
            for v in value if isinstance(value, tuple) else (value,):
                if isinstance(v, Schedule):
                    out = max(out, v._magnitude())
                elif isinstance(v, float):
                    out = max(out, abs(v))
        return out

    # ----------------------------------------------------------------- evaluation
    @overload
    def __call__(self, t: float) -> float: ...

    @overload
    def __call__(self, t: np.ndarray) -> FloatArray: ...

    @overload
    def __call__(self, t: Any) -> Any: ...  # a torch tensor, a JAX array: the same kind back

    def __call__(self, t: Any) -> Any:
        """The value at step ``t`` (a number) or at every step of an array, same shape.

        A number gives a float and a numpy array (or list) a float64 numpy array; both reject
        negative or non-finite steps. A torch tensor or a JAX array gives an array of the same
        kind, device and floating dtype (integer steps: the framework's default float dtype),
        computed there without a host sync (so it traces under ``jax.jit`` and
        ``torch.compile``); as checking would need a sync, a negative or non-finite step gives
        NaN there instead of an error.
        """
        if not self._bound:
            self._require_bound()
        if isinstance(t, (Real, np.integer, np.floating)) and not isinstance(t, (bool, np.bool_)):
            try:
                tf = float(t)
            except OverflowError:  # an int beyond the float range
                tf = math.inf
            if not tf >= 0 or math.isinf(tf):
                raise ScheduleValueError(
                    f"{self._name}: step must be a finite number >= 0, got t={t!r}"
                )
            return float(self._eval(np.array([tf]), np)[0])
        if isinstance(t, (bool, np.bool_, str, bytes, complex, np.complexfloating)):
            raise ScheduleTypeError(f"{self._name}: step must be a number or array, got t={t!r}")
        xp = namespace(t)
        if xp is not None:
            return self._on_namespace(t, xp)
        arr = np.asarray(t)
        if arr.dtype.kind not in "iuf":
            arr = _real_steps(self._name, arr)
        # min >= 0 and max < inf also reject NaN (comparisons with NaN are False).
        if arr.size and not (arr.min() >= 0 and (arr.dtype.kind in "iu" or arr.max() < np.inf)):
            arr = arr.astype(np.float64)
            bad = arr[~((arr >= 0) & np.isfinite(arr))].ravel()[0]
            raise ScheduleValueError(
                f"{self._name}: steps must be finite and >= 0, got a step of {bad!r}"
            )
        flat = arr.reshape(-1).astype(np.float64, copy=False)
        return self._eval(flat, np).reshape(arr.shape)

    def _on_namespace(self, t: Any, xp: Namespace) -> Any:
        """``__call__`` for a torch / JAX / array API array: same array kind, no host sync."""
        if not xp.isdtype(t.dtype, "real floating"):
            if not xp.isdtype(t.dtype, "integral"):
                raise ScheduleTypeError(
                    f"{self._name}: steps must be an array of real numbers, got an array of "
                    f"dtype {t.dtype}"
                )
            t = xp.astype(t, default_float(xp))
        ok = (t >= 0) & xp.isfinite(t)
        return xp.where(ok, self._eval(xp.where(ok, t, 0.0), xp), math.nan)

    @property
    def duration(self) -> float | None:
        """Steps until the schedule reaches and holds its final value (None: never settles)."""
        self._require_bound()
        return self._duration()

    @property
    def final_value(self) -> float | None:
        """The value held after :attr:`duration` (None for a schedule that never settles)."""
        d = self.duration
        return None if d is None else self(d)

    # ----------------------------------------------------------------- units
    @property
    def is_bound(self) -> bool:
        """True when every length is a number of steps (no '3ep' or '10%' left)."""
        return self._bound

    def _unresolved(self) -> list[str]:
        out: list[str] = []
        for name in self._lengths:
            value = getattr(self, name)
            values = value if isinstance(value, tuple) else (value,)
            out.extend(f"{self._name}: {name}={v!r}" for v in values if not is_resolved(v))
        for child in self._child_schedules():
            out.extend(child._unresolved())
        return out

    def _require_bound(self) -> None:
        missing = self._unresolved()
        if missing:
            raise ScheduleValueError(
                f"{self._name}: schedule has lengths in units that need a run to resolve "
                f"({'; '.join(missing)}); call .bind(total_steps=..., steps_per_epoch=...) first"
            )

    def bind(self: S, total_steps: int | None = None, *, steps_per_epoch: int | None = None) -> S:
        """Resolve lengths in epochs ('3ep') and fractions ('10%') to steps for one run.

        Args:
            total_steps: the run's length in optimizer steps (needed by '%' lengths).
            steps_per_epoch: optimizer steps per epoch (needed by 'ep' lengths).

        Returns a schedule whose lengths are all integers (rounded to nearest); a schedule
        without units is returned unchanged.
        """
        return self._bind(check_run(total_steps, steps_per_epoch))

    def _bind(self: S, run: RunInfo) -> S:
        if self.is_bound:
            return self
        changes: dict[str, Any] = {}
        for name in self._lengths:
            value = getattr(self, name)
            if isinstance(value, tuple):
                changes[name] = tuple(resolve_length(self._name, name, v, run) for v in value)
            else:
                changes[name] = resolve_length(self._name, name, value, run)
        for name in self._children:
            value = getattr(self, name)
            if isinstance(value, tuple):
                changes[name] = tuple(c._bind(run) for c in value)
            else:
                changes[name] = value._bind(run)
        return dataclasses.replace(self, **changes)

    def _child_schedules(self) -> list[Schedule]:
        out: list[Schedule] = []
        for name in self._children:
            value = getattr(self, name)
            out.extend(value if isinstance(value, tuple) else (value,))
        return out

    # ----------------------------------------------------------------- helpers for families
    def _set(self, name: str, value: object) -> None:
        """Normalise a field during ``_validate`` (the dataclass is frozen)."""
        object.__setattr__(self, name, value)

    def _lengths_resolved(self, *names: str) -> bool:
        """True when every named length field (or tuple of lengths) is a number of steps."""
        for name in names:
            value = getattr(self, name)
            values = value if isinstance(value, tuple) else (value,)
            if not all(is_resolved(v) for v in values):
                return False
        return True

    # ----------------------------------------------------------------- operators
    def __rshift__(self, other: Schedule) -> Schedule:
        """``a >> b``: ``a`` for its duration, then ``b`` with its own clock from 0."""
        from lrkit.schedules._combinators import sequence

        if not isinstance(other, Schedule):
            return NotImplemented
        return sequence([self, other])

    def __mul__(self, other: object) -> Schedule:
        """``a * b`` (pointwise product) or ``a * 0.5`` (scalar multiple)."""
        from lrkit.schedules._combinators import product, scale

        if isinstance(other, Schedule):
            return product([self, other])
        if isinstance(other, Real) and not isinstance(other, bool):
            return scale(self, other)  # type: ignore[arg-type]  # (scale checks it is finite)
        return NotImplemented

    def __rmul__(self, other: object) -> Schedule:
        return self.__mul__(other)

    def clip(self, low: float | None = None, high: float | None = None) -> Schedule:
        """Values limited to ``[low, high]`` (either bound may be None)."""
        from lrkit.schedules._combinators import clip

        return clip(self, low, high)

    def shift(self, steps: Length) -> Schedule:
        """Delay by ``steps`` (hold ``s(0)`` meanwhile); see :func:`lrkit.shift`."""
        from lrkit.schedules._time import shift

        return shift(self, steps=steps)

    def advance(self, steps: Length) -> Schedule:
        """Start ``steps`` into the schedule: ``new(t) = s(t + steps)``."""
        from lrkit.schedules._time import advance

        return advance(self, steps=steps)

    def stretch(self, factor: float) -> Schedule:
        """Slow time down by ``factor``: ``new(t) = s(t / factor)``."""
        from lrkit.schedules._time import stretch

        return stretch(self, factor)

    def repeat(self, times: int | None = None) -> Schedule:
        """Run the schedule ``times`` times back to back (forever if None)."""
        from lrkit.schedules._time import repeat

        return repeat(self, times=times)

    # ----------------------------------------------------------------- spec forms
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``{"type": name, <every field>}``; see :func:`lrkit.from_dict`."""
        out: dict[str, Any] = {"type": self._name}
        for f in dataclasses.fields(self):
            if not f.init:
                continue
            out[f.name] = _to_plain(getattr(self, f.name))
        return out

    def _spec_args(self) -> list[str]:
        parts: list[str] = []
        init_fields = [f for f in dataclasses.fields(self) if f.init]
        for i, f in enumerate(init_fields):
            value = getattr(self, f.name)
            if i < self._positional:
                parts.append(_spec_value(value))
            elif (
                f.name not in self._lengths
                and f.default is not dataclasses.MISSING
                and _same(value, f.default)
            ):
                continue
            else:
                parts.append(f"{f.name}={_spec_value(value)}")
        return parts

    def __str__(self) -> str:
        return f"{self._name}({', '.join(self._spec_args())})"

    def __repr__(self) -> str:
        return str(self)

    def __reduce__(self) -> tuple[Any, ...]:
        from lrkit.schedules._spec import from_dict

        return (from_dict, (self.to_dict(),))


def _real_steps(owner: str, arr: np.ndarray) -> FloatArray:
    """An array of steps of another dtype as float64: objects holding numbers are converted;
    bools, strings, complex numbers and dates are refused, as they are for a scalar step."""
    if arr.dtype.kind == "O":
        try:
            return arr.astype(np.float64)
        except (TypeError, ValueError, OverflowError):
            pass
    raise ScheduleTypeError(
        f"{owner}: steps must be an array of real numbers, got an array of dtype {arr.dtype}"
    )


#: Names of float fields that multiply or shape values rather than being values themselves.
_MULTIPLIERS = ("gamma", "power", "factor", "pct_start")


def _is_multiplier(name: str) -> bool:
    return name in _MULTIPLIERS or name.endswith(("_mult", "_factor", "_frac"))


def _same(a: object, b: object) -> bool:
    return (type(a) is type(b) and a == b) or (
        isinstance(a, (int, float)) and isinstance(b, (int, float)) and a == b
    )


def _to_plain(value: object) -> Any:
    if isinstance(value, Schedule):
        return value.to_dict()
    if isinstance(value, tuple):
        return [_to_plain(v) for v in value]
    return value


def _spec_value(value: object) -> str:
    if isinstance(value, Schedule):
        return str(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(_spec_value(v) for v in value) + "]"
    return repr(value)
