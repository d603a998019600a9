"""Keras 3: an lrkit schedule as a ``keras.optimizers.schedules.LearningRateSchedule``, and a
callback that applies lrkit controllers (plateau, restarts) on top of it.

Keras itself refuses ``ReduceLROnPlateau`` on an optimizer whose learning rate is a schedule
(TypeError); :class:`Controllers` does what lrkit's binding does for torch: the rate at update
``k`` is ``schedule(c) * prod(ctl.scale(k))`` with ``c`` the controllers' clock (restarts rewind
it), at least the largest controller floor.

Keras is imported when a function here is first called, not when lrkit is imported; the
classes are registered for serialisation then (``package="lrkit"``), so call
:func:`register` (or any function here) before ``keras.saving.load_model`` in a new process.
Backends: torch, jax and numpy (the values are the schedule's formula on the backend's arrays,
through the array API); tensorflow is not supported.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

from lrkit.controllers import Controller
from lrkit.schedules import Schedule, as_schedule
from lrkit.schedules._errors import ScheduleTypeError, ScheduleValueError

_SUPPORTED_BACKENDS = ("torch", "jax", "numpy")


def schedule(
    s: Schedule | Mapping[str, Any] | str | float,
    *,
    total_steps: int | None = None,
    steps_per_epoch: int | None = None,
) -> Any:
    """A Keras ``LearningRateSchedule`` from an lrkit schedule, spec text, spec dict or number.

    ``keras.optimizers.Adam(learning_rate=lrkit.keras.schedule(s))``: at update ``k`` (the
    optimizer's ``iterations``, from 0) the rate is ``s(k)``. It saves with the model
    (``get_config()`` holds the spec's dict form) and loads back equal. Lengths in units are
    bound with ``total_steps`` / ``steps_per_epoch``.

    Raises:
        ValueError: lengths in units left unbound, or the tensorflow backend.
    """
    sched = as_schedule(s)
    if total_steps is not None or steps_per_epoch is not None:
        sched = sched.bind(total_steps, steps_per_epoch=steps_per_epoch)
    sched._require_bound()
    return _classes()[0](sched.to_dict())


def controllers(lr: Any, controllers: Sequence[Controller], *, monitor: str = "val_loss") -> Any:
    """A Keras callback applying lrkit ``controllers`` on top of ``lr`` (from :func:`schedule`).

    At the end of every epoch the monitored metric (``logs[monitor]``) goes to each
    controller's ``observe``; from then on the rate is ``schedule(clock) * scale`` as in
    :mod:`lrkit.controllers`. The rate of each update is computed on the host while a callback
    is attached, and logged as ``logs["lr"]`` at the end of each epoch.

    Raises:
        TypeError: ``lr`` is not an lrkit Keras schedule, or a controller is not a Controller.
        ValueError: a controller targets another hyperparameter than ``lr``.
    """
    cls = _classes()
    if not isinstance(lr, cls[0]):
        raise ScheduleTypeError(
            f"lrkit.keras.controllers: lr must come from lrkit.keras.schedule(...), got {lr!r}"
        )
    ctls = list(controllers)
    for i, c in enumerate(ctls):
        if not isinstance(c, Controller):
            raise ScheduleTypeError(
                f"lrkit.keras.controllers: controllers[{i}] must be an lrkit Controller, got {c!r}"
            )
        if c.target != "lr":
            raise ScheduleValueError(
                f"lrkit.keras.controllers: controllers[{i}] targets {c.target!r}; only 'lr' "
                "is driven in Keras"
            )
    return cls[1](lr, ctls, monitor)


def register() -> None:
    """Import Keras and register lrkit's classes for ``keras.saving.load_model``."""
    _classes()


def controlled_value(schedule: Schedule, ctls: Sequence[Controller], step: int) -> float:
    """``schedule(c) * prod(ctl.scale(step))`` with ``c`` the controllers' clock, at least the
    largest floor: the rule of :mod:`lrkit.controllers._base`."""
    c: float = step
    for ctl in ctls:
        c = ctl.clock(c)
    v = float(schedule(c)) * math.prod(ctl.scale(step) for ctl in ctls)
    floors = [ctl.floor for ctl in ctls if ctl.floor is not None]
    return max(v, *floors) if floors else v


@functools.cache
def _classes() -> tuple[type, type]:
    """Define (once) and register the Keras classes: they subclass Keras' own."""
    import keras

    backend = keras.backend.backend()
    if backend not in _SUPPORTED_BACKENDS:
        raise ScheduleValueError(
            f"lrkit.keras: the {backend} backend is not supported; use one of "
            f"{', '.join(_SUPPORTED_BACKENDS)} (KERAS_BACKEND=torch)"
        )

    @keras.saving.register_keras_serializable(package="lrkit")
    class LrkitSchedule(keras.optimizers.schedules.LearningRateSchedule):  # type: ignore[misc]
        """An lrkit schedule as a Keras ``LearningRateSchedule``; see :func:`schedule`."""

        def __init__(self, spec: Mapping[str, Any]) -> None:
            self.schedule = as_schedule(spec)
            #: Set by a :func:`controllers` callback while it is attached.
            self.driver: Any = None

        def __call__(self, step: Any) -> Any:
            if self.driver is not None:
                return self.driver.value(step)
            return self.schedule(keras.ops.convert_to_tensor(step))

        def get_config(self) -> dict[str, Any]:
            return {"spec": self.schedule.to_dict()}

        def __repr__(self) -> str:
            return f"lrkit.keras.schedule({self.schedule})"

    class Controllers(keras.callbacks.Callback):  # type: ignore[misc]
        """lrkit controllers on top of an lrkit Keras schedule; see :func:`controllers`."""

        def __init__(self, lr: Any, ctls: list[Controller], monitor: str) -> None:
            super().__init__()
            self.lr = lr
            self.controllers = ctls
            self.monitor = monitor

        def value(self, step: Any) -> float:
            return controlled_value(self.lr.schedule, self.controllers, _step(step))

        def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
            self.lr.driver = self

        def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
            self.lr.driver = None

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            logs = logs if logs is not None else {}
            step = _step(self.model.optimizer.iterations)
            metric = logs.get(self.monitor)
            if metric is None:
                raise ScheduleValueError(
                    f"lrkit.keras.controllers: monitor={self.monitor!r} is not in the logs "
                    f"(have {sorted(logs)})"
                )
            for ctl in self.controllers:
                ctl.observe(step, float(metric))
                ctl.pop_events()
            logs["lr"] = self.value(step)

    return LrkitSchedule, Controllers


def _step(step: Any) -> int:
    """An optimizer's iteration count (a Keras variable or backend tensor) as an int."""
    import keras

    return int(keras.ops.convert_to_numpy(step))
