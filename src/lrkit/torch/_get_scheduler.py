"""``get_scheduler``: Hugging Face transformers' scheduler names and arguments, as lrkit schedules.

``get_scheduler(name, optimizer, num_warmup_steps=, num_training_steps=,
scheduler_specific_kwargs=)`` takes transformers' names (``"linear"``, ``"cosine"``,
``"cosine_with_restarts"``, ``"polynomial"``, ``"constant"``, ``"constant_with_warmup"``,
``"inverse_sqrt"``, ``"reduce_lr_on_plateau"``, ``"cosine_with_min_lr"``,
``"cosine_warmup_with_min_lr"``, ``"warmup_stable_decay"``) with their arguments, and returns an
:class:`lrkit.torch.Scheduler` whose values are transformers' own at every step, past
``num_training_steps`` included (the cosine families keep oscillating there, as transformers'
formulas do). Any other ``name`` is read as an lrkit spec (``"warmup(cosine(1e-3, steps='90%'),
steps='10%')"``), bound with ``total_steps=num_training_steps``. transformers is not imported.

With ``W = num_warmup_steps``, ``N = num_training_steps``, ``D = max(1, N - W)``, the base rate
``b`` of each group (its ``initial_lr``, else ``lr``) and ``r`` the min-lr ratio, for ``t >= W``
(``p = (t - W) / D``):

- linear: ``b * max(0, (N - t) / D)``; cosine: ``b * (1 + cos(2 pi c p)) / 2``;
- cosine_with_restarts: ``b * (1 + cos(pi * ((c p) mod 1))) / 2`` for ``p < 1``, then 0;
- cosine_with_min_lr: ``b * (r + (1 - r) (1 + cos(2 pi c p)) / 2)``; the ``warmup`` variant
  uses ``p = (t - W + 1) / D`` and its own ramp;
- polynomial: ``b * ((l0 - e) (1 - p)^power + e) / l0`` (``l0``: the optimizer's default lr);
- inverse_sqrt: ``b * sqrt(s / (t - W + s))`` with ``s = timescale``;
- warmup_stable_decay: ramp, ``S`` stable steps, ``num_decay_steps`` of decay, then ``r * b``;

and for ``t < W`` the ramp ``b * t / W``. ``"greedy"`` (transformers' adaptive GreedyLR) has no
lrkit equivalent and raises.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from fractions import Fraction
from numbers import Integral, Real
from typing import Any

from torch.optim import Optimizer

from lrkit.schedules import (
    Schedule,
    constant,
    cosine,
    inverse_sqrt,
    linear,
    parse,
    polynomial,
    sequence,
    warmup,
    wsd,
)
from lrkit.torch._scheduler import Scheduler

__all__ = ["TRANSFORMERS_NAMES", "get_scheduler", "transformers_schedule"]

OWNER = "get_scheduler"


def _steps(name: str, value: object, *, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
        raise ValueError(f"{OWNER}: {name} must be an integer >= {low}, got {name}={value!r}")
    return int(value)


def _real(name: str, value: object, *, low: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{OWNER}: {name} must be a number, got {name}={value!r}")
    out = float(value)
    if out != out or (low is not None and out < low):
        raise ValueError(f"{OWNER}: {name} must be a number >= {low}, got {name}={value!r}")
    return out


def _ramp(lr: float, w: int, rest: Schedule) -> Schedule:
    """``lr * t / w`` for ``t < w``, then ``rest`` on its own clock."""
    if w == 0:
        return rest
    if rest(0) == lr:
        return warmup(rest, steps=w)
    return sequence([linear(0.0, lr, steps=w), rest], boundaries=[w])


def _wave(hi: float, lo: float, d: int, cycles: float) -> Schedule:
    """``lo + (hi - lo) * (1 + cos(2 pi cycles t / d)) / 2`` for every ``t >= 0``."""
    c = _real("num_cycles", cycles, low=0.0)
    if c == 0.0:
        return constant(hi)
    half = Fraction(d) / (2 * Fraction(c))
    if half.denominator == 1:
        h = int(half)
        return (cosine(hi, lo, steps=h) >> cosine(lo, hi, steps=h)).repeat()
    return (cosine(hi, lo, steps=1) >> cosine(lo, hi, steps=1)).repeat().stretch(float(half))


def _constant(lr: float, w: int, n: int | None, l0: float) -> Schedule:
    return constant(lr)


def _constant_with_warmup(lr: float, w: int, n: int | None, l0: float) -> Schedule:
    return _ramp(lr, w, constant(lr))


def _linear(lr: float, w: int, n: int | None, l0: float) -> Schedule:
    n = _need_n(n, "linear")
    return _ramp(lr, w, linear(lr, 0.0, steps=n - w) if n > w else constant(0.0))


def _cosine(lr: float, w: int, n: int | None, l0: float, *, num_cycles: float = 0.5) -> Schedule:
    n = _need_n(n, "cosine")
    return _ramp(lr, w, _wave(lr, 0.0, max(1, n - w), num_cycles))


def _cosine_with_restarts(
    lr: float, w: int, n: int | None, l0: float, *, num_cycles: int = 1
) -> Schedule:
    n = _need_n(n, "cosine_with_restarts")
    c = _steps("num_cycles", num_cycles, low=1)
    d = max(1, n - w)
    if d % c == 0:
        rest: Schedule = cosine(lr, 0.0, steps=d // c).repeat(c)
    else:
        rest = cosine(lr, 0.0, steps=d).repeat(c).stretch(1.0 / c)
    return _ramp(lr, w, rest)


def _polynomial(
    lr: float, w: int, n: int | None, l0: float, *, lr_end: float = 1e-7, power: float = 1.0
) -> Schedule:
    n = _need_n(n, "polynomial")
    end = _real("lr_end", lr_end)
    p = _real("power", power)
    if not l0 > end:
        raise ValueError(
            f"{OWNER}: polynomial needs lr_end below the optimizer's lr, got lr_end={lr_end!r}, "
            f"lr={l0!r}"
        )
    if n <= w:
        raise ValueError(
            f"{OWNER}: polynomial needs num_training_steps > num_warmup_steps, got "
            f"num_training_steps={n}, num_warmup_steps={w}"
        )
    return _ramp(lr, w, polynomial(lr, lr * end / l0, steps=n - w, power=p))


def _inverse_sqrt(
    lr: float, w: int, n: int | None, l0: float, *, timescale: int | None = None
) -> Schedule:
    ts = (w or 10_000) if timescale is None else _steps("timescale", timescale, low=1)
    return _ramp(lr, w, inverse_sqrt(lr, steps=ts))


def _min_rate(l0: float, min_lr: float | None, min_lr_rate: float | None) -> float:
    if min_lr is not None and min_lr_rate is not None:
        raise ValueError(
            f"{OWNER}: give one of min_lr or min_lr_rate, got min_lr={min_lr!r}, "
            f"min_lr_rate={min_lr_rate!r}"
        )
    if min_lr is not None:
        return _real("min_lr", min_lr, low=0.0) / l0
    if min_lr_rate is None:
        raise ValueError(f"{OWNER}: give min_lr or min_lr_rate in scheduler_specific_kwargs")
    return _real("min_lr_rate", min_lr_rate, low=0.0)


def _cosine_with_min_lr(
    lr: float,
    w: int,
    n: int | None,
    l0: float,
    *,
    num_cycles: float = 0.5,
    min_lr: float | None = None,
    min_lr_rate: float | None = None,
) -> Schedule:
    n = _need_n(n, "cosine_with_min_lr")
    r = _min_rate(l0, min_lr, min_lr_rate)
    return _ramp(lr, w, _wave(lr, r * lr, max(1, n - w), num_cycles))


def _cosine_warmup_with_min_lr(
    lr: float,
    w: int,
    n: int | None,
    l0: float,
    *,
    num_cycles: float = 0.5,
    min_lr: float | None = None,
    min_lr_rate: float | None = None,
    warmup_lr_rate: float | None = None,
) -> Schedule:
    n = _need_n(n, "cosine_warmup_with_min_lr")
    r = _min_rate(l0, min_lr, min_lr_rate)
    rest = _wave(lr, r * lr, max(1, n - w), num_cycles).advance(1)
    if w == 0:
        return rest
    first = lr / w if warmup_lr_rate is None else _real("warmup_lr_rate", warmup_lr_rate) * lr
    ramp = constant(first) if w == 1 else linear(first, lr, steps=w - 1)
    return sequence([ramp, rest], boundaries=[w])


def _warmup_stable_decay(
    lr: float,
    w: int,
    n: int | None,
    l0: float,
    *,
    num_decay_steps: int,
    num_stable_steps: int | None = None,
    warmup_type: str = "linear",
    decay_type: str = "cosine",
    min_lr_ratio: float = 0.0,
    num_cycles: float = 0.5,
) -> Schedule:
    dd = _steps("num_decay_steps", num_decay_steps)
    r = _real("min_lr_ratio", min_lr_ratio)
    if num_stable_steps is None:
        if n is None:
            raise ValueError(
                f"{OWNER}: warmup_stable_decay needs num_training_steps or num_stable_steps"
            )
        num_stable_steps = n - w - dd
    s = _steps("num_stable_steps", num_stable_steps)
    floor = r * lr
    ramps = {
        "linear": lambda: linear(floor, lr, steps=w),
        "cosine": lambda: cosine(floor, lr, steps=w),
        "1-sqrt": lambda: polynomial(floor, lr, steps=w, power=0.5),
    }
    decays = {
        "linear": lambda: linear(lr, floor, steps=dd),
        "cosine": lambda: _wave(lr, floor, dd, num_cycles),
        "1-sqrt": lambda: wsd(lr, floor, stable_steps=0, decay_steps=dd, decay="1-sqrt"),
    }
    for arg, value, table in (
        ("warmup_type", warmup_type, ramps),
        ("decay_type", decay_type, decays),
    ):
        if value not in table:
            raise ValueError(
                f"{OWNER}: {arg} must be 'linear', 'cosine' or '1-sqrt', got {arg}={value!r}"
            )
    parts: list[tuple[int, Schedule]] = []
    if w:
        parts.append((w, ramps[warmup_type]()))
    if s:
        parts.append((s, constant(lr)))
    if dd:
        parts.append((dd, decays[decay_type]()))
    parts.append((1, constant(floor)))
    starts, at = [], 0
    for length, _ in parts[:-1]:
        at += length
        starts.append(at)
    return sequence([p for _, p in parts], boundaries=starts) if starts else parts[0][1]


def _need_n(n: int | None, name: str) -> int:
    if n is None:
        raise ValueError(f"{OWNER}: {name} needs num_training_steps, got num_training_steps=None")
    return n


_Builder = Callable[..., Schedule]

#: transformers' names and the lrkit schedule each maps to (greedy and reduce_lr_on_plateau
#: are handled apart).
_BUILDERS: dict[str, _Builder] = {
    "linear": _linear,
    "cosine": _cosine,
    "cosine_with_restarts": _cosine_with_restarts,
    "polynomial": _polynomial,
    "constant": _constant,
    "constant_with_warmup": _constant_with_warmup,
    "inverse_sqrt": _inverse_sqrt,
    "cosine_with_min_lr": _cosine_with_min_lr,
    "cosine_warmup_with_min_lr": _cosine_warmup_with_min_lr,
    "warmup_stable_decay": _warmup_stable_decay,
}
#: transformers passes no scheduler_specific_kwargs to these (it ignores them).
_IGNORES_KWARGS = ("constant", "constant_with_warmup")
TRANSFORMERS_NAMES = (*_BUILDERS, "reduce_lr_on_plateau", "greedy")


def transformers_schedule(
    name: str,
    lr: float,
    *,
    num_warmup_steps: int | None = None,
    num_training_steps: int | None = None,
    lr_init: float | None = None,
    **kwargs: Any,
) -> Schedule:
    """The lrkit schedule of transformers' scheduler ``name`` for a group with base rate ``lr``.

    ``lr_init`` is the optimizer's default lr (transformers' polynomial and ``min_lr`` read it;
    None: ``lr``). See the module docstring for the formulas.

    Raises:
        ValueError: an unknown name, a missing or bad argument (naming it).
        TypeError: an argument the schedule does not take.

    >>> transformers_schedule("cosine", 1e-3, num_warmup_steps=10, num_training_steps=100)
    warmup(repeat(cosine(0.001, 0.0, steps=90) >> cosine(0.0, 0.001, steps=90)), steps=10)
    """
    key = getattr(name, "value", name)
    if key not in _BUILDERS:
        raise ValueError(
            f"{OWNER}: name must be one of {sorted(_BUILDERS)} here, got name={name!r}"
        )
    builder = _BUILDERS[key]
    if key in _IGNORES_KWARGS:
        kwargs = {}
    else:
        params = inspect.signature(builder).parameters
        unknown = sorted(k for k in kwargs if k not in params or k in ("lr", "w", "n", "l0"))
        if unknown:
            takes = [k for k, p in params.items() if p.kind is p.KEYWORD_ONLY]
            raise TypeError(
                f"{OWNER}: {key} does not take {unknown[0]!r} in scheduler_specific_kwargs "
                f"(it takes {takes})"
            )
        missing = [
            k
            for k, p in params.items()
            if p.kind is p.KEYWORD_ONLY and p.default is p.empty and k not in kwargs
        ]
        if missing:
            raise TypeError(f"{OWNER}: {key} needs {missing[0]!r} in scheduler_specific_kwargs")
    if key == "constant":
        w, n = 0, None
    else:
        if num_warmup_steps is None:
            raise ValueError(f"{OWNER}: {key} needs num_warmup_steps, got num_warmup_steps=None")
        w = _steps("num_warmup_steps", num_warmup_steps)
        n = None if num_training_steps is None else _steps("num_training_steps", num_training_steps)
    base = _real("lr", lr, low=0.0)
    l0 = base if lr_init is None else _real("lr_init", lr_init)
    return builder(base, w, n, l0, **kwargs)


def get_scheduler(
    name: str,
    optimizer: Optimizer,
    num_warmup_steps: int | None = None,
    num_training_steps: int | None = None,
    scheduler_specific_kwargs: Mapping[str, Any] | None = None,
    *,
    controllers: Iterable[Any] = (),
    clock: str = "updates",
) -> Scheduler:
    """A :class:`~lrkit.torch.Scheduler` from transformers' scheduler name and arguments, or
    from an lrkit spec text.

    Args:
        name: one of transformers' names (a ``SchedulerType`` works too) or an lrkit spec.
        optimizer: the optimizer; each group's base rate is its ``initial_lr`` (else ``lr``),
            as transformers' ``LambdaLR`` takes it.
        num_warmup_steps: transformers' warmup length.
        num_training_steps: transformers' run length (warmup included); binds ``'%'`` lengths of
            a spec.
        scheduler_specific_kwargs: the extra arguments (``num_cycles``, ``lr_end``, ``power``,
            ``timescale``, ``min_lr``, ``min_lr_rate``, ``warmup_lr_rate``, ``num_decay_steps``,
            ``num_stable_steps``, ``warmup_type``, ``decay_type``, ``min_lr_ratio``) or, for
            ``"reduce_lr_on_plateau"``, torch's ``ReduceLROnPlateau`` arguments.
        controllers: lrkit controllers on top (see :mod:`lrkit.controllers`).
        clock: the Scheduler's clock (``"updates"``: optimizer updates really applied).

    Returns:
        A Scheduler (for ``"reduce_lr_on_plateau"``, :class:`lrkit.torch.compat.ReduceLROnPlateau`).

    Raises:
        ValueError: ``"greedy"``, a missing or bad argument, an unreadable spec.
        TypeError: an argument the schedule does not take.

    >>> import torch
    >>> opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    >>> sched = get_scheduler("linear", opt, num_warmup_steps=10, num_training_steps=100)
    >>> sched.schedules["lr"]
    warmup(linear(0.001, 0.0, steps=90), steps=10)
    """
    key = getattr(name, "value", name)
    if not isinstance(key, str):
        raise TypeError(f"{OWNER}: name must be a string, got name={name!r}")
    kwargs = dict(scheduler_specific_kwargs or {})
    if key == "greedy":
        raise ValueError(
            f"{OWNER}: name='greedy' is transformers' adaptive GreedyLR, which has no lrkit "
            f"equivalent; use a schedule with lrkit.controllers.Plateau instead"
        )
    if key == "reduce_lr_on_plateau":
        from lrkit.torch.compat import ReduceLROnPlateau

        return ReduceLROnPlateau(optimizer, **kwargs)
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{OWNER}: optimizer must be a torch.optim.Optimizer, got {optimizer!r}")
    ctl = list(controllers)
    if key not in _BUILDERS:
        total = (
            None
            if num_training_steps is None
            else _steps("num_training_steps", num_training_steps, low=1)
        )
        return Scheduler(optimizer, lr=parse(key), total_steps=total, controllers=ctl, clock=clock)
    l0 = float(optimizer.defaults["lr"])
    schedules = [
        transformers_schedule(
            key,
            float(g.get("initial_lr", g["lr"])),
            num_warmup_steps=num_warmup_steps,
            num_training_steps=num_training_steps,
            lr_init=l0,
            **kwargs,
        )
        for g in optimizer.param_groups
    ]
    lr: Any = schedules[0] if len(schedules) == 1 else schedules
    total = num_training_steps if num_training_steps else None
    return Scheduler(optimizer, lr=lr, total_steps=total, controllers=ctl, clock=clock)
