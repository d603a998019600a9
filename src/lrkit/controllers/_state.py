"""Checking a controller's saved state before any of it is applied.

:meth:`lrkit.controllers.Controller.load_state_dict` runs :func:`check_state` first: the whole
state is validated (schema version, kind, exact keys, each field's type, range and finiteness,
and the controller's settings against the checkpoint's), and only a state that passes is
applied, so a refused load changes nothing.

The validators here are one per *kind of value* found in a state (a count, a step, a finite
number, a list of restarts, ...); each has the signature of the argument validators in
:mod:`lrkit.schedules._check` (``owner, name, value``), raises the same errors with the same
message shape, and returns the value normalised to plain JSON types.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any

from lrkit.controllers._base import groups_list, integer
from lrkit.schedules._check import boolean, choice, non_negative, positive, real, reals
from lrkit.schedules._errors import ScheduleTypeError, ScheduleValueError

if TYPE_CHECKING:
    from lrkit.controllers._base import Controller

#: The schema version written into every controller state (``"version"``).
VERSION = 1

#: A validator of one saved value: ``check(owner, name, value) -> normalised value``.
Check = Callable[[str, str, object], Any]


@dataclass(frozen=True, slots=True)
class CheckedState:
    """A controller state that passed :func:`check_state`, ready to be applied.

    Attributes:
        fields: the normalised value of each mutable attribute (``_state_fields``).
        last_step: the largest step shown to the controller (-1: none).
        events: the pending events.
        warning: a message to warn with when applied (settings differ, ``strict=False``).
    """

    fields: Mapping[str, Any]
    last_step: int
    events: list[dict[str, Any]]
    warning: str | None = None


# --------------------------------------------------------------------------- kinds of value
def count(owner: str, name: str, value: object) -> int:
    """An integer >= 0 (a number of evaluations, reductions, restarts, ...)."""
    return integer(owner, name, value)


def optional_step(owner: str, name: str, value: object) -> int | None:
    """None or an optimizer step (an integer >= 0)."""
    return None if value is None else integer(owner, name, value)


def finite(owner: str, name: str, value: object) -> float:
    """A finite float."""
    return real(owner, name, value)


def optional_finite(owner: str, name: str, value: object) -> float | None:
    """None or a finite float."""
    return None if value is None else real(owner, name, value)


def finite_list(owner: str, name: str, value: object) -> list[float]:
    """A list (possibly empty) of finite floats."""
    _list(owner, name, value)
    return list(reals(owner, name, value, min_len=0))


def step_list(owner: str, name: str, value: object) -> list[int]:
    """A list of optimizer steps."""
    items = _list(owner, name, value)
    return [integer(owner, f"{name}[{i}]", v) for i, v in enumerate(items)]


def restart_list(owner: str, name: str, value: object) -> list[list[float]]:
    """Restarts ``[at, to, stretch, peak]``: at a step, to a clock >= 0, stretch and peak > 0."""
    out: list[list[float]] = []
    for i, r in enumerate(_list(owner, name, value)):
        at, to, st, peak = _row(owner, f"{name}[{i}]", r, 4, "[at, to, stretch, peak]")
        out.append(
            [
                integer(owner, f"{name}[{i}][0] (at)", at),
                non_negative(owner, f"{name}[{i}][1] (to)", to),
                positive(owner, f"{name}[{i}][2] (stretch)", st),
                positive(owner, f"{name}[{i}][3] (peak)", peak),
            ]
        )
    return out


def bump_list(owner: str, name: str, value: object) -> list[list[Any]]:
    """Bumps ``[at, factor, steps, shape]``: a step, a factor > 0, steps >= 1, a shape."""
    out: list[list[Any]] = []
    for i, b in enumerate(_list(owner, name, value)):
        at, factor, steps, shape = _row(owner, f"{name}[{i}]", b, 4, "[at, factor, steps, shape]")
        out.append(
            [
                integer(owner, f"{name}[{i}][0] (at)", at),
                positive(owner, f"{name}[{i}][1] (factor)", factor),
                integer(owner, f"{name}[{i}][2] (steps)", steps, low=1),
                choice(owner, f"{name}[{i}][3] (shape)", shape, ("cosine", "linear")),
            ]
        )
    return out


def event_list(owner: str, name: str, value: object) -> list[dict[str, Any]]:
    """Pending events ``{"kind", "step", "reset_optimizer", "groups"}`` (see ``_base``)."""
    out = []
    for i, e in enumerate(_list(owner, name, value)):
        where = f"{name}[{i}]"
        e = exact_keys(owner, where, e, ("kind", "step", "reset_optimizer", "groups"))
        if not isinstance(e["kind"], str):
            raise ScheduleTypeError(
                f"{owner}: {where}['kind'] must be a string, got {where}['kind']={e['kind']!r}"
            )
        out.append(
            {
                "kind": e["kind"],
                "step": integer(owner, f"{where}['step']", e["step"]),
                "reset_optimizer": boolean(
                    owner, f"{where}['reset_optimizer']", e["reset_optimizer"]
                ),
                "groups": groups_list(
                    owner,
                    e["groups"]
                    if e["groups"] is None
                    else _list(owner, f"{where}['groups']", e["groups"]),
                ),
            }
        )
    return out


def json_value(owner: str, name: str, value: object) -> Any:
    """Any JSON-like value (dicts with string keys, lists, strings, bools, None, finite numbers).

    The check of a field that its controller does not describe more precisely.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        return real(owner, name, value)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ScheduleTypeError(
                    f"{owner}: {name} must have string keys, got key {k!r} in {name}={value!r}"
                )
            out[k] = json_value(owner, f"{name}[{k!r}]", v)
        return out
    if isinstance(value, (list, tuple)):
        return [json_value(owner, f"{name}[{i}]", v) for i, v in enumerate(value)]
    raise ScheduleTypeError(
        f"{owner}: {name} must be JSON data (numbers, strings, lists, dicts), got {name}={value!r}"
    )


def like(current: object) -> Check:
    """The check of a field its controller does not describe: :func:`json_value`, and of the
    same kind as the field's ``current`` value (an int stays an int, a list a list) unless that
    is None."""

    def check(owner: str, name: str, value: object) -> Any:
        out = json_value(owner, name, value)
        if current is None or out is None:
            return out
        kinds: tuple[Any, ...] = (bool, Integral, Real, str, (list, tuple), Mapping)
        want = next((k for k in kinds if isinstance(current, k)), object)
        if not isinstance(out, want) or (want is not bool and isinstance(out, bool)):
            raise ScheduleTypeError(
                f"{owner}: {name} must be of the same kind as {current!r}, got {name}={value!r}"
            )
        return float(out) if want is Real and isinstance(out, Real) else out

    return check


def exact_keys(owner: str, name: str, value: object, keys: tuple[str, ...]) -> Mapping[str, Any]:
    """``value`` if it is a dict with exactly ``keys``; else raise, naming what is missing or
    extra."""
    if not isinstance(value, Mapping):
        raise ScheduleTypeError(f"{owner}: {name} must be a dict, got {name}={value!r}")
    missing = [k for k in keys if k not in value]
    extra = sorted(str(k) for k in value if k not in keys)
    if missing or extra:
        parts = ([f"lacks {missing}"] if missing else []) + (
            [f"has unknown keys {extra}"] if extra else []
        )
        raise ScheduleValueError(
            f"{owner}: {name} {' and '.join(parts)}, got keys={sorted(map(str, value))}"
        )
    return value


# --------------------------------------------------------------------------- the whole state
def check_state(ctl: Controller, state: object, *, strict: bool) -> CheckedState:
    """Validate ``state`` for ``ctl`` without changing ``ctl`` (see the module docstring).

    Raises:
        ValueError: not a state of this class, another schema version, missing or unknown keys,
            a value out of range or not finite, settings that differ (``strict=True``).
        TypeError: a value of the wrong type.
    """
    cls = type(ctl).__name__
    owner = f"{cls}.load_state_dict"
    if not isinstance(state, Mapping) or state.get("kind") != cls:
        got = state.get("kind") if isinstance(state, Mapping) else type(state).__name__
        raise ScheduleValueError(f"{owner}: state is not a {cls} state, got kind={got!r}")
    if state.get("version") != VERSION:
        raise ScheduleValueError(
            f"{owner}: unknown state version, got version={state.get('version')!r} (this lrkit "
            f"reads version={VERSION})"
        )
    fields = tuple(ctl._state_fields)
    exact_keys(
        owner, "state", state, ("kind", "version", "settings", "last_step", *fields, "events")
    )
    warning = _compare_settings(ctl, owner, state["settings"], strict=strict)
    values = {f: ctl._state_check(f)(owner, f, state[f]) for f in fields}
    return CheckedState(
        fields=values,
        last_step=integer(owner, "last_step", state["last_step"], low=-1),
        events=event_list(owner, "events", state["events"]),
        warning=warning,
    )


def settings_of(ctl: Controller) -> dict[str, Any]:
    """The controller's settings (constructor arguments that shape its decisions), as JSON."""
    return {f: json_value(type(ctl).__name__, f, getattr(ctl, f)) for f in ctl._settings_fields}


def _compare_settings(ctl: Controller, owner: str, theirs: object, *, strict: bool) -> str | None:
    if not isinstance(theirs, Mapping):
        raise ScheduleTypeError(f"{owner}: settings must be a dict, got settings={theirs!r}")
    mine = settings_of(ctl)
    keys = set(mine) | set(map(str, theirs))
    diff = sorted(
        k for k in keys if k not in mine or k not in theirs or not _same(mine[k], theirs[k])
    )
    if not diff:
        return None
    detail = "; ".join(f"{k}: checkpoint {_shown(theirs, k)}, here {_shown(mine, k)}" for k in diff)
    if strict:
        raise ScheduleValueError(
            f"{owner}: the checkpoint was made with other settings ({detail}); build the "
            f"controller with the checkpoint's settings, or load it with "
            f"Scheduler.load_state_dict(..., strict=False) to keep these and take only the state"
        )
    return (
        f"{owner}: settings differ from the checkpoint's ({detail}); keeping this "
        f"controller's settings (strict=False)"
    )


def _shown(settings: Mapping[str, Any], key: str) -> str:
    return repr(settings[key]) if key in settings else "absent"


def _same(a: object, b: object) -> bool:
    """Equal as JSON values (``1 == 1.0``, but ``True`` is not ``1`` and NaN equals nothing)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return set(a) == set(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, Real) and isinstance(b, Real):
        try:
            return bool(math.isfinite(float(a)) and float(a) == float(b))
        except OverflowError:  # an int beyond the float range
            return a == b
    return type(a) is type(b) and a == b


def _list(owner: str, name: str, value: object) -> list[Any]:
    if not isinstance(value, (list, tuple)):
        raise ScheduleTypeError(f"{owner}: {name} must be a list, got {name}={value!r}")
    return list(value)


def _row(owner: str, name: str, value: object, n: int, shape: str) -> list[Any]:
    if not isinstance(value, (list, tuple)) or len(value) != n:
        raise ScheduleValueError(f"{owner}: {name} must be a list {shape}, got {name}={value!r}")
    return list(value)
