"""Private schedules the torch compat layer needs and lrkit's spec language does not offer.

- :class:`Affine` ``v(t) = offset + factor * s(t)``: CyclicLR's momentum falls while the rate
  rises (``max_m - (max_m - base_m) * h(t)``), which ``lrkit.cyclic`` (``peak >= floor``) and
  the combinators (no sum) cannot express.
- :class:`Call` ``v(t) = scale * fn(t)``: LambdaLR's Python callable, evaluated only at the
  steps asked for, one call per step.
- :class:`CumulativeProduct` ``v(t) = scale * prod_{k=1..t} fn(k)``: MultiplicativeLR in
  closed form, with the running products cached (each ``fn(k)`` called once).

They are real :class:`lrkit.Schedule` values (they evaluate, compose and print) but they are not
registered in the spec language: a callable cannot be written into a spec, and the affine form is
an implementation detail of the compat classes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lrkit.schedules import Schedule
from lrkit.schedules._base import FloatArray


def _host_only(owner: str, t: FloatArray, xp: Any) -> None:
    """Refuse device arrays: a Python callable runs on the host."""
    if xp is not np:
        raise TypeError(
            f"{owner}: a Python callable runs on the host, so it cannot be evaluated on a "
            f"{type(t).__name__}; call it with a number or a numpy array"
        )


def _integer_steps(owner: str, t: FloatArray, xp: Any) -> list[int]:
    _host_only(owner, t, xp)
    out = [int(x) for x in t]
    if any(o != x for o, x in zip(out, t, strict=True)):
        raise ValueError(f"{owner}: a Python callable is evaluated at whole steps only, got {t!r}")
    return out


def _steps(t: FloatArray) -> list[int | float]:
    """The steps as ints where whole (what a user's callable expects), else floats (torch's
    ``step(1.5)`` passes ``last_epoch = 1.5`` to ``lr_lambda``)."""
    return [int(x) if x == int(x) else float(x) for x in t]


@dataclass(frozen=True, slots=True)
class Affine(Schedule):
    """``v(t) = offset + factor * schedule(t)``."""

    _name = "compat_affine"
    _children = ("schedule",)
    schedule: Schedule
    factor: float = 1.0
    offset: float = 0.0

    def _eval(self, t: FloatArray, xp: Any) -> FloatArray:
        return self.offset + self.factor * self.schedule._eval(t, xp)

    def _duration(self) -> float | None:
        return self.schedule._duration()

    def __str__(self) -> str:
        return f"{self.offset!r} + {self.factor!r} * ({self.schedule})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Affine, (self.schedule, self.factor, self.offset))


@dataclass(frozen=True, slots=True)
class Call(Schedule):
    """``v(t) = scale * fn(int(t))`` for a Python callable ``fn`` (LambdaLR's ``lr_lambda``)."""

    _name = "compat_call"
    fn: Callable[[int], float]
    scale: float = 1.0

    def __call__(self, t: Any) -> Any:
        """As :meth:`Schedule.__call__`; a whole step ``t >= 0`` (what the Scheduler asks for
        once per step) calls ``fn`` directly, without the one-element array round trip."""
        if type(t) is float and t >= 0.0 and t.is_integer():
            return float(self.scale * self.fn(int(t)))
        if type(t) is int and t >= 0:
            return float(self.scale * self.fn(t))
        return Schedule.__call__(self, t)

    def _eval(self, t: FloatArray, xp: Any) -> FloatArray:
        _host_only("LambdaLR", t, xp)
        return np.array(
            [self.scale * self.fn(k) for k in _steps(t)],  # type: ignore[arg-type]
            dtype=np.float64,
        )

    def __str__(self) -> str:
        return f"{self.scale!r} * {_fn_name(self.fn)}(t)"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (the callable by name only: it cannot be rebuilt from it)."""
        return {"type": self._name, "fn": _fn_name(self.fn), "scale": self.scale}


@dataclass(frozen=True, slots=True)
class CumulativeProduct(Schedule):
    """``v(t) = scale * fn(1) * fn(2) * ... * fn(t)`` (``v(0) = scale``), products cached.

    ``fn`` is called once per step, in order, as torch's ``MultiplicativeLR`` calls it. With
    ``origin`` (a later child of SequentialLR, which torch steps with ``epoch=0`` at its
    milestone) it continues from the rate there instead of the base:
    ``v(t) = origin(origin_step) * fn(0) * fn(1) * ... * fn(t)``.
    """

    _name = "compat_cumprod"
    fn: Callable[[int], float]
    scale: float = 1.0
    origin: Schedule | None = None
    origin_step: float = 0.0
    _cache: list[float] = field(default_factory=list, init=False, repr=False, compare=False)

    def _eval(self, t: FloatArray, xp: Any) -> FloatArray:
        steps = _integer_steps("MultiplicativeLR", t, xp)
        cache = self._cache
        if not cache:
            if self.origin is None:
                cache.append(self.scale)
            else:
                cache.append(float(self.origin(self.origin_step)) * self.fn(0))
        top = max(steps, default=0)
        while len(cache) <= top:
            k = len(cache)
            cache.append(cache[-1] * self.fn(k))
        return np.array([cache[k] for k in steps], dtype=np.float64)

    def reset(self) -> None:
        """Forget the cached products (after the callable's state was changed by a load)."""
        self._cache.clear()

    def __str__(self) -> str:
        if self.origin is not None:
            return f"v({self.origin_step!r}) * prod({_fn_name(self.fn)}(k) for k in 0..t)"
        return f"{self.scale!r} * prod({_fn_name(self.fn)}(k) for k in 1..t)"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (the callable by name only: it cannot be rebuilt from it)."""
        out = {"type": self._name, "fn": _fn_name(self.fn), "scale": self.scale}
        if self.origin is not None:
            out["origin"] = self.origin.to_dict()
            out["origin_step"] = self.origin_step
        return out


def _fn_name(fn: object) -> str:
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return name if name.isidentifier() else "fn"


def nonneg_int(owner: str, name: str, value: object, *, low: int = 0) -> int:
    """An int >= ``low`` (integral floats accepted, as torch accepts them); else ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{owner}: {name} must be an integer, got {name}={value!r}")
    if not math.isfinite(float(value)) or float(value) != int(value) or int(value) < low:
        raise ValueError(f"{owner}: {name} must be an integer >= {low}, got {name}={value!r}")
    return int(value)
