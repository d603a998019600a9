"""Resetting optimizer state (Adam moments, momentum buffers) when a controller asks for it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from torch.optim import Optimizer

__all__ = ["apply_controller_events", "reset_optimizer_state"]


def reset_optimizer_state(optimizer: Optimizer, groups: Sequence[int] | None = None) -> int:
    """Forget the per-parameter state of ``optimizer`` for the given param groups.

    Adam's moments and step count, SGD's momentum buffers etc. are dropped; torch optimizers
    re-create them lazily at the next ``step()``, as for a fresh optimizer. Hyperparameters in
    the param groups (lr, betas, ...) are untouched.

    Args:
        optimizer: a torch optimizer.
        groups: indices of the param groups to reset (None: all).

    Returns:
        The number of parameters whose state was dropped.

    Raises:
        ValueError: a group index out of range, naming it.

    >>> import torch
    >>> p = torch.nn.Parameter(torch.ones(2))
    >>> opt = torch.optim.Adam([p], lr=0.1)
    >>> p.grad = torch.ones(2); opt.step()
    >>> from lrkit.torch.guard import reset_optimizer_state
    >>> reset_optimizer_state(opt), len(opt.state)
    (1, 0)
    """
    n = len(optimizer.param_groups)
    idx = list(range(n)) if groups is None else list(groups)
    for i in idx:
        if not isinstance(i, int) or not 0 <= i < n:
            raise ValueError(
                f"reset_optimizer_state: groups must hold indices in [0, {n}), got groups={groups!r}"
            )
    dropped = 0
    for i in idx:
        for p in optimizer.param_groups[i]["params"]:
            if p in optimizer.state:
                del optimizer.state[p]
                dropped += 1
    return dropped


def apply_controller_events(optimizer: Optimizer, controllers: Any) -> list[dict[str, Any]]:
    """Drain the controllers' pending events and reset optimizer state where one asks for it.

    Call after ``scheduler.step(metric=...)`` / ``scheduler.observe(...)`` or after a manual
    ``restart()`` / ``bump()``. ``controllers`` is a list of controllers or an
    :class:`lrkit.torch.Scheduler` (its controllers are used).

    Returns:
        The events drained, in order (each a dict with ``kind``, ``step``,
        ``reset_optimizer``, ``groups``).
    """
    ctls: Iterable[Any] = getattr(controllers, "_controllers", controllers)
    events: list[dict[str, Any]] = []
    for c in ctls:
        pop = getattr(c, "pop_events", None)
        if pop is None:
            continue
        for e in pop():
            if e.get("reset_optimizer"):
                reset_optimizer_state(optimizer, e.get("groups"))
            events.append(e)
    return events
