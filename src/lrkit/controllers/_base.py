"""The ``Controller`` base class: the contract between a reactive controller and the binding.

A controller modifies one hyperparameter's scheduled value at run time. It never replaces the
schedule; the binding computes, at optimizer step ``k`` and for the controllers whose
:attr:`~Controller.target` is the hyperparameter, in list order::

    c = k
    for ctl in controllers: c = ctl.clock(c)        # restarts rewind the schedule's clock
    v = schedule(c) * prod(ctl.scale(k))            # plateau reductions, bumps, guard back-off
    v = max(v, max(ctl.floor for ctl with a floor))

A controller's state is explicit and JSON-serialisable (:meth:`~Controller.state_dict`), so a run
resumed from a checkpoint makes the same decisions as an uninterrupted one.

Events: a controller that wants something done outside its own numbers (reset the optimizer's
moments after a restart) appends a small dict to its pending events; the binding (or
:func:`lrkit.torch.apply_controller_events`) drains them with :meth:`~Controller.pop_events`
after every :meth:`~Controller.observe` and acts on them. An event is
``{"kind": str, "step": int, "reset_optimizer": bool, "groups": list[int] | None}``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from numbers import Integral, Real
from typing import Any, ClassVar

from lrkit.schedules._check import non_negative
from lrkit.schedules._errors import ScheduleTypeError, ScheduleValueError

__all__ = ["Controller", "ControllerWarning"]


class ControllerWarning(UserWarning):
    """A controller skipped something it was given (a non-finite metric)."""


def integer(owner: str, name: str, value: object, *, low: int = 0) -> int:
    """An ``int`` (not a bool) greater than or equal to ``low``."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ScheduleTypeError(f"{owner}: {name} must be an integer, got {name}={value!r}")
    out = int(value)
    if out < low:
        raise ScheduleValueError(
            f"{owner}: {name} must be an integer >= {low}, got {name}={value!r}"
        )
    return out


def optional_floor(owner: str, value: object) -> float | None:
    """``None`` or a finite float >= 0."""
    return None if value is None else non_negative(owner, "floor", value)


def target_name(owner: str, value: object) -> str:
    """A non-empty hyperparameter name such as ``"lr"`` or ``"momentum"``."""
    if not isinstance(value, str) or not value.isidentifier():
        raise ScheduleValueError(
            f"{owner}: target must be a hyperparameter name such as 'lr', got target={value!r}"
        )
    return value


def metric_name(owner: str, value: object) -> str | None:
    """``None`` (the unnamed metric) or a non-empty metric name such as ``"val_loss"``."""
    if value is None:
        return None
    if not isinstance(value, str) or not value or value in _RESERVED_METRICS:
        raise ScheduleValueError(
            f"{owner}: metric must be None or a metric name such as 'val_loss' (not "
            f"{' or '.join(repr(r) for r in _RESERVED_METRICS)}), got metric={value!r}"
        )
    return value


#: Names that ``Scheduler.step(metric=None, *, to=None, **metrics)`` cannot take by keyword.
_RESERVED_METRICS = ("metric", "to")


def groups_list(owner: str, value: object) -> list[int] | None:
    """``None`` (every group) or a list of non-negative group indices."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ScheduleTypeError(
            f"{owner}: groups must be None or a list of group indices, got groups={value!r}"
        )
    return [integer(owner, "groups[i]", g) for g in value]  # type: ignore[union-attr]


class Controller:
    """Base class of the reactive controllers: identity clock, unit scale, no floor.

    Subclasses override :meth:`clock`, :meth:`scale` and :meth:`observe`, list the names of
    their mutable attributes in ``_state_fields`` (with a validator for each in
    ``_state_checks``) and of their settings in ``_settings_fields``; :meth:`state_dict` and
    :meth:`load_state_dict` then save and restore exactly those (plus pending events), the load
    validating everything before it changes anything.

    **Named metrics.** ``metric`` names the metric this controller watches (``"val_loss"``,
    ``"train_loss"``): the binding shows it only that metric
    (``scheduler.observe(val_loss=0.31, train_loss=1.2)``). ``metric=None`` takes the unnamed
    metric (``scheduler.observe(0.31)``, ``scheduler.step(loss)``). A controller *watches* a
    metric when its class overrides :meth:`observe` (:attr:`watches_metric`). The name is part
    of :meth:`state_dict`: a checkpoint made for another metric does not load.

    Args:
        target: the hyperparameter this controller modifies ("lr", "momentum", ...).
        floor: absolute minimum of the value after scaling (None: none).
        metric: the name of the metric observed (None: the unnamed metric).

    Example:
        >>> from lrkit.controllers import Controller
        >>> c = Controller()
        >>> c.clock(7), c.scale(7), c.floor, c.target, c.metric, c.watches_metric
        (7.0, 1.0, None, 'lr', None, False)
    """

    #: Attribute names saved by :meth:`state_dict` (mutable state only, no configuration).
    _state_fields: ClassVar[tuple[str, ...]] = ()
    #: The validator of each saved field (``owner, name, value -> value``; see
    #: :mod:`lrkit.controllers._state`); a field not listed gets a generic check (JSON data,
    #: finite numbers, the kind of its current value).
    _state_checks: ClassVar[Mapping[str, Callable[[str, str, object], Any]]] = {}
    #: Constructor arguments saved as ``settings`` and compared on load.
    _settings_fields: ClassVar[tuple[str, ...]] = ("target", "floor", "metric")

    def __init__(
        self, *, target: str = "lr", floor: float | None = None, metric: str | None = None
    ) -> None:
        name = type(self).__name__
        self.target: str = target_name(name, target)
        self.floor: float | None = optional_floor(name, floor)
        self.metric: str | None = metric_name(name, metric)
        self._events: list[dict[str, Any]] = []
        #: The largest step this controller has been shown (by clock, scale or observe); -1: none.
        self.last_step: int = -1

    @property
    def watches_metric(self) -> bool:
        """Whether this controller uses metrics (its class overrides :meth:`observe`)."""
        return type(self).observe is not Controller.observe

    # ------------------------------------------------------------------ protocol
    def clock(self, step: float) -> float:
        """The schedule time to evaluate at optimizer step ``step`` (identity here)."""
        self._seen(step)
        return float(step)

    def scale(self, step: int) -> float:
        """The multiplier on the schedule's value at ``step`` (1.0 here)."""
        self._seen(step)
        return 1.0

    def observe(self, step: int, metric: float) -> None:
        """Take a new metric value seen at ``step`` (ignored here)."""
        self._seen(step)

    def pop_events(self) -> list[dict[str, Any]]:
        """Return and clear the pending events (see the module docstring)."""
        out, self._events = self._events, []
        return out

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """The controller's state: small and JSON-serialisable.

        ``{"kind": class name, "version": schema version, "settings": {...}, "last_step": int,
        <each of _state_fields>: value, "events": [...]}``; ``settings`` (the arguments listed
        in ``_settings_fields``) lets :meth:`load_state_dict` refuse a checkpoint made with
        other settings.
        """
        from lrkit.controllers import _state

        out: dict[str, Any] = {
            "kind": type(self).__name__,
            "version": _state.VERSION,
            "settings": _state.settings_of(self),
            "last_step": self.last_step,
        }
        for field in self._state_fields:
            out[field] = _copy_json(getattr(self, field))
        out["events"] = _copy_json(self._events)
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (from this class), all or nothing.

        The whole state is checked first (kind, schema version, exact keys, each field's type,
        range and finiteness, and the settings it was saved with); a state that fails changes
        nothing. A checkpoint made with other settings (``factor``, ``patience``, ...) raises;
        :meth:`lrkit.torch.Scheduler.load_state_dict` with ``strict=False`` instead warns,
        keeps this controller's settings and loads the state.

        Raises:
            ValueError: another kind or version, missing or unknown keys, a value out of range
                or not finite, other settings; each names the key and the value.
            TypeError: a value of the wrong type.
        """
        self._apply_state(self._check_state(state), stacklevel=3)

    def _check_state(self, state: object, *, strict: bool = True) -> Any:
        """Validate ``state`` without applying it: a record for :meth:`_apply_state`."""
        from lrkit.controllers import _state

        return _state.check_state(self, state, strict=strict)

    def _apply_state(self, checked: Any, *, stacklevel: int = 2) -> None:
        """Apply a state returned by :meth:`_check_state` (cannot fail)."""
        if checked.warning is not None:
            warnings.warn(checked.warning, UserWarning, stacklevel=stacklevel + 1)
        for field, value in checked.fields.items():
            setattr(self, field, _copy_json(value))
        self._events = _copy_json(checked.events)
        self.last_step = checked.last_step

    def _state_check(self, field: str) -> Callable[[str, str, object], Any]:
        """The validator of saved field ``field`` (``_state_checks``, else a generic one)."""
        from lrkit.controllers import _state

        check = self._state_checks.get(field)
        return check if check is not None else _state.like(getattr(self, field, None))

    # ------------------------------------------------------------------ helpers
    def _seen(self, step: float) -> None:
        s = int(step)
        if s > self.last_step:
            self.last_step = s

    def _emit(
        self,
        kind: str,
        step: int,
        *,
        reset_optimizer: bool = False,
        groups: list[int] | None = None,
    ) -> None:
        self._events.append(
            {
                "kind": kind,
                "step": int(step),
                "reset_optimizer": bool(reset_optimizer),
                "groups": None if groups is None else list(groups),
            }
        )

    def _metric(self, step: int, metric: object) -> float | None:
        """``metric`` as a float, or None (with a :class:`ControllerWarning`) if not finite."""
        self._seen(step)
        if isinstance(metric, (str, bytes, bool)) or not hasattr(metric, "__float__"):
            raise ScheduleTypeError(
                f"{type(self).__name__}.observe: metric must be a real number, got metric={metric!r}"
            )
        value = float(metric)  # type: ignore[arg-type]
        if not math.isfinite(value):
            warnings.warn(
                f"{type(self).__name__}: skipped a non-finite metric {value!r} at step {step} "
                "(not counted as an improvement or as a bad evaluation)",
                ControllerWarning,
                stacklevel=3,
            )
            return None
        return value

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(target={self.target!r}, floor={self.floor!r}, "
            f"metric={self.metric!r})"
        )


def _copy_json(value: Any) -> Any:
    """A deep copy of a JSON-like value (dicts, lists, scalars)."""
    if isinstance(value, dict):
        return {str(k): _copy_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_copy_json(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        return float(value)
    raise TypeError(f"controller state must be JSON-like, got {value!r}")
