"""Changing a run's length mid-run: the two policies as pure schedule transformations."""

from __future__ import annotations

from lrkit.schedules import Schedule, advance, sequence, stretch

POLICIES = ("keep", "rescale")


def resized(
    schedule: Schedule, *, at: int, old_total: int | None, new_total: int, policy: str
) -> Schedule:
    """The schedule to follow after changing the run's length at optimizer step ``at``.

    ``"keep"``: unchanged; absolute steps keep their values and past its end the schedule holds
    its final value. ``"rescale"``: steps before ``at`` are unchanged and the part still to run,
    ``[at, T_old)``, is stretched over ``[at, T_new)``:
    ``v(t) = s(at + (t - at) * (T_old - at) / (T_new - at))`` for ``t >= at``. The value is
    continuous at ``at``, and the fraction of the schedule already done stays done. ``T_old`` is
    the run's previous ``total_steps``, or the schedule's duration when none was given. When the
    old schedule already ended (``at >= T_old``) there is nothing left to stretch and the
    schedule is unchanged.

    Raises:
        ValueError: ``"rescale"`` of a schedule without an end (no total_steps and no duration).
    """
    if policy == "keep":
        return schedule
    end = old_total if old_total is not None else schedule.duration
    if end is None:
        raise ValueError(
            f"Scheduler.resize: policy='rescale' needs the old run length, but total_steps was "
            f"not given and {schedule} never settles; pass total_steps= to the Scheduler"
        )
    if at >= end:
        return schedule
    factor = (new_total - at) / (end - at)
    if at == 0:
        return stretch(schedule, factor)
    return sequence([schedule, stretch(advance(schedule, steps=at), factor)], boundaries=[at])
