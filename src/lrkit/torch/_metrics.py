"""Named metrics: which controller receives which metric, and a warning for one left unfed.

A controller watches one metric, named by its ``metric`` attribute (``Plateau(metric="val_loss")``)
or, with ``metric=None``, the *unnamed* metric. ``Scheduler.observe(0.3)`` (or ``step(0.3)``)
shows the unnamed metric to the controllers that name none, as before named metrics existed;
``Scheduler.observe(val_loss=0.31, train_loss=1.2)`` shows each value only to the controllers
watching that name. Under ``torch.distributed`` every value is averaged over the ranks first
(one all-reduce for all of them).

**Unfed controllers.** A controller that uses metrics (``watches_metric``) and has received none
for more than ``wait`` optimizer steps of the clock (counted by ``step()``; ``step(to=k)`` and
loading a checkpoint do not count) warns once with a :class:`~lrkit.controllers.ControllerWarning`
saying how to feed it. ``wait`` is the scheduler's ``steps_per_epoch`` when given (a whole epoch
without a metric), else :data:`DEFAULT_WAIT` steps; ``Scheduler.metric_wait`` changes it (None:
never warn).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any

import torch
import torch.distributed as dist

from lrkit.controllers import ControllerWarning
from lrkit.torch._distributed import _all_reduce

#: Steps without a metric before a controller warns, when the run has no ``steps_per_epoch``.
DEFAULT_WAIT = 1000


def _name(controller: Any) -> str | None:
    return getattr(controller, "metric", None)


def _watches(controller: Any) -> bool:
    # duck-typed controllers (no Controller subclass) are assumed to use what they observe
    return bool(getattr(controller, "watches_metric", True))


def metric_names(controllers: Sequence[Any]) -> tuple[str, ...]:
    """The metric names the controllers watch, in controller order, each once."""
    out: list[str] = []
    for c in controllers:
        name = _name(c)
        if name is not None and _watches(c) and name not in out:
            out.append(name)
    return tuple(out)


def _number(owner: str, name: str, value: Any) -> float:
    if isinstance(value, torch.Tensor):
        value = value.detach().item()
    if isinstance(value, bool) or not isinstance(value, Real):
        label = "metric" if name == "" else name
        raise TypeError(f"{owner}: metric must be a number, got {label}={value!r}")
    return float(value)


class MetricRouter:
    """Routes metrics to controllers by name and counts the steps each went unfed."""

    def __init__(self, controllers: Sequence[Any], wait: int | None) -> None:
        self.controllers = list(controllers)
        self.wait = wait
        self.unfed = [0] * len(self.controllers)
        self.warned = [False] * len(self.controllers)
        #: Indices of the controllers that use metrics (the only ones :meth:`advance` counts).
        self.watching = [i for i, c in enumerate(self.controllers) if _watches(c)]
        self._names = [_name(c) for c in self.controllers]
        self._watched = metric_names(self.controllers)
        #: Whether some controller that uses metrics names none (it takes the unnamed one).
        self.takes_unnamed = any(
            n is None and _watches(c) for n, c in zip(self._names, self.controllers, strict=True)
        )

    def feed(
        self, owner: str, step: int, metric: Any, named: Mapping[str, Any]
    ) -> list[tuple[int, float]]:
        """Show ``metric`` (unnamed) and ``named`` to their controllers at ``step``.

        Returns the (controller index, value) pairs delivered, values averaged over ranks.

        Raises:
            TypeError: no controllers, a value that is not a number, an unnamed metric that no
                controller takes, or a name no controller watches.
        """
        named = {k: v for k, v in named.items() if v is not None}
        if not self.controllers:
            shown = metric if metric is not None else named
            raise TypeError(
                f"Scheduler: got metric={shown!r} but no controllers observe metrics; to set "
                f"the clock use step(to=k)"
            )
        watched = self._watched
        if metric is not None and not self.takes_unnamed:
            raise TypeError(
                f"{owner}: got an unnamed metric={metric!r} but every controller watches a "
                f"named one ({list(watched)}); pass it by name, e.g. "
                f"{owner.split('.')[-1]}({watched[0] if watched else 'val_loss'}=...)"
            )
        unknown = sorted(set(named) - set(watched))
        if unknown:
            raise TypeError(
                f"{owner}: no controller watches metric {unknown[0]!r} (watched: "
                f"{list(watched)}; name one with e.g. Plateau(metric={unknown[0]!r}))"
            )
        keys: list[str | None] = ([None] if metric is not None else []) + sorted(named)
        values = [
            _number(owner, "" if k is None else k, metric if k is None else named[k]) for k in keys
        ]
        total = _all_reduce(values, "SUM")
        if total is not None:
            values = [v / dist.get_world_size() for v in total]
        received = dict(zip(keys, values, strict=True))
        delivered = []
        for i, (c, name) in enumerate(zip(self.controllers, self._names, strict=True)):
            if name in received:
                c.observe(step, received[name])
                self.unfed[i] = 0
                delivered.append((i, received[name]))
        return delivered

    def advance(self, steps: int) -> None:
        """Count ``steps`` more clock steps without a metric; warn once per starved controller."""
        if steps <= 0:
            return
        for i in self.watching:
            c = self.controllers[i]
            self.unfed[i] += steps
            if self.wait is not None and self.unfed[i] > self.wait and not self.warned[i]:
                self.warned[i] = True
                warnings.warn(_starved_message(c, self.unfed[i]), ControllerWarning, stacklevel=4)


def _starved_message(c: Any, steps: int) -> str:
    name = _name(c)
    kind = type(c).__name__
    if name is None:
        how = (
            "pass it with scheduler.observe(value) (e.g. once per validation) or "
            "scheduler.step(value)"
        )
        what = f"{kind} (unnamed metric)"
    else:
        how = (
            f"pass it with scheduler.observe({name}=value) or scheduler.step({name}=value); in "
            f"Lightning log {name!r} and add lrkit.integrations.lightning.LrkitCallback(), in the "
            f"transformers Trainer add lrkit.integrations.transformers.LrkitTrainerCallback()"
        )
        what = f"{kind}(metric={name!r})"
    return (
        f"{what} has received no metric for {steps} steps, so it cannot act; {how} "
        f"(scheduler.metric_wait sets how long to wait; None: never warn)"
    )
