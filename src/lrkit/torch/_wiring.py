"""From the Scheduler's schedules to what each param group gets.

:func:`bind_specs` binds lengths in units (``'%'``, ``'ep'``) for the run and replays its
resizes; :func:`build_drives` turns the bound schedules into the :class:`Drive` objects that
write the groups at each step; :func:`preview_values` computes what they would write at one step
without writing (``Scheduler.values_at``). The last two walk the groups the same way (schedule
per group, controllers per hyperparameter, multiplier per group), so a preview matches the
values a step writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lrkit.torch._groups import Drive, GroupSpec, multiplier, writer_for
from lrkit.torch._resize import resized


def bind_specs(
    specs: Mapping[str, GroupSpec],
    total_steps: int | None,
    steps_per_epoch: int | None,
    resizes: Sequence[Sequence[Any]],
) -> dict[str, GroupSpec]:
    """Bind unit lengths for the run, then replay ``resizes`` (``[at, new_total, policy]`` each).

    ``total_steps`` is the run's length before any resize.

    Raises:
        ValueError: lengths in units with neither ``total_steps`` nor ``steps_per_epoch``, a
            schedule that does not bind, or a resize that cannot be replayed.
    """
    bound: dict[str, GroupSpec] = {}
    for name, spec in specs.items():
        for _, s in spec.labelled():
            if not s.is_bound and total_steps is None and steps_per_epoch is None:
                raise ValueError(
                    f"Scheduler: {name}={s} has lengths in units ('%' or 'ep'); pass "
                    f"total_steps= (for '%') or steps_per_epoch= (for 'ep')"
                )
        try:
            b = spec.map(lambda s: s.bind(total_steps, steps_per_epoch=steps_per_epoch))
        except ValueError as exc:
            raise ValueError(f"Scheduler: cannot bind {name}: {exc}") from None
        total = total_steps
        for at, new_total, policy in resizes:
            old = total
            b = b.map(
                lambda s, a=at, o=old, t=new_total, p=policy: resized(
                    s, at=a, old_total=o, new_total=t, policy=p
                )
            )
            total = new_total
        bound[name] = b
    return bound


def build_drives(
    bound: Mapping[str, GroupSpec],
    controllers: Sequence[Any],
    groups: Sequence[dict[str, Any]],
    group_mult: Mapping[str, Any],
) -> list[Drive]:
    """The drives writing ``bound`` into ``groups``: one per hyperparameter and distinct
    schedule (equal schedules share one), each with its groups and their multipliers."""
    drives: dict[tuple[str, Any], Drive] = {}
    for name, spec in bound.items():
        ctls = [c for c in controllers if c.target == name]
        for i, g in enumerate(groups):
            sched = spec.for_group(g, i)
            if sched is None:
                continue
            key, pos = writer_for(name, g, i)
            mult = multiplier(name, g, i, group_mult)
            ident: Any = sched  # equal schedules share one drive
            try:
                hash(sched)
            except TypeError:
                ident = id(sched)
            d = drives.get((name, ident))
            if d is None:
                d = drives[(name, ident)] = Drive(name, sched, ctls)
            d.add(g, key, pos, mult)
    return list(drives.values())


def preview_values(
    bound: Mapping[str, GroupSpec],
    controllers: Sequence[Any],
    groups: Sequence[Mapping[str, Any]],
    group_mult: Mapping[str, Any],
    step: int,
) -> dict[str, list[float | None]]:
    """Each hyperparameter's value per group at ``step`` (None: group not driven), written
    nowhere; the controllers' ``last_step`` is left as it was."""
    # a preview must not tell the controllers that `step` was reached (restart() and
    # bump() without `at` act one step after the last step they were shown)
    seen = [getattr(c, "last_step", None) for c in controllers]
    out: dict[str, list[float | None]] = {}
    try:
        for name, spec in bound.items():
            ctls = [c for c in controllers if c.target == name]
            vals: list[float | None] = []
            for i, g in enumerate(groups):
                sched = spec.for_group(g, i)
                if sched is None:
                    vals.append(None)
                    continue
                v = Drive(name, sched, ctls).value(step)
                vals.append(v * multiplier(name, g, i, group_mult))
            out[name] = vals
    finally:
        for c, last in zip(controllers, seen, strict=True):
            if last is not None:
                c.last_step = last
    return out
