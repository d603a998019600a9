"""optax / JAX: an lrkit schedule as an optax schedule (``step -> value``).

The values are the schedule's own formula evaluated on JAX arrays through the array API (see
:mod:`lrkit.schedules._arrays`): no callback to the host, so the schedule traces under
``jax.jit`` and lives inside the optimizer's compiled update. ``jax`` and ``optax`` are imported
only when this module is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lrkit.schedules import Schedule, as_schedule


@dataclass(frozen=True)
class OptaxSchedule:
    """An optax-compatible schedule: ``sched(count)`` is ``schedule(count)`` as a JAX array.

    ``count`` is optax's step count (an int32 array, or any number): integer steps are
    evaluated in JAX's default float dtype (float32, float64 with ``jax_enable_x64``); float
    steps keep their dtype. Steps past the end hold the final value, as lrkit schedules do.
    """

    schedule: Schedule

    def __call__(self, count: Any) -> Any:
        import jax.numpy as jnp

        return self.schedule(jnp.asarray(count))

    def __str__(self) -> str:
        return f"lrkit.optax.schedule({self.schedule})"


def schedule(
    s: Schedule | Mapping[str, Any] | str | float,
    *,
    total_steps: int | None = None,
    steps_per_epoch: int | None = None,
) -> OptaxSchedule:
    """An optax schedule from an lrkit schedule, spec text, spec dict or number.

    Pass it as ``learning_rate=`` of any optax optimizer, or to ``optax.inject_hyperparams``.
    Lengths in units (``"10%"``, ``"3ep"``) are bound with ``total_steps`` /
    ``steps_per_epoch``.

    Raises:
        ValueError: lengths in units left unbound, or a bad spec.

    >>> import optax, lrkit
    >>> opt = optax.adamw(schedule("warmup(cosine(1e-3, steps=900), steps=100)"))
    """
    sched = as_schedule(s)
    if total_steps is not None or steps_per_epoch is not None:
        sched = sched.bind(total_steps, steps_per_epoch=steps_per_epoch)
    sched._require_bound()
    return OptaxSchedule(sched)
