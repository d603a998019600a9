"""Where to evaluate a schedule for a plot or a table: step grids and known phase boundaries.

Pure numpy. :func:`sample_steps` picks the integer steps to evaluate over ``[0, steps]``;
:func:`breakpoints` lists the steps where a schedule's phases end (warmup end, sequence joins,
WSD phases, one-cycle phase ends, milestones, restarts), read from the schedule's fields.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from lrkit.schedules import Schedule, as_schedule

#: Up to this many steps a plot evaluates every step; beyond, a strided sample.
DENSE_LIMIT = 20_000
#: At most this many periodic boundaries (restarts, staircase drops) are listed.
_MAX_PERIODIC = 64


def check_steps(owner: str, steps: object) -> int:
    """Validate a plotting horizon: a positive integer number of steps.

    Raises:
        TypeError: ``steps`` is not an integer.
        ValueError: ``steps`` is not positive.
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)):
        raise TypeError(f"{owner}: steps must be a positive integer, got steps={steps!r}")
    if steps <= 0:
        raise ValueError(f"{owner}: steps must be a positive integer, got steps={steps!r}")
    return int(steps)


SchedulesArg = Mapping[str, Schedule | str] | Sequence[Schedule | str] | Schedule | str


def named_schedules(owner: str, schedules: SchedulesArg) -> dict[str, Schedule]:
    """``{label: schedule}`` from one schedule/spec, a list (labelled by spec) or a dict.

    Raises:
        ValueError: no schedule given, or two list entries with the same spec.
        TypeError: an entry that is not a schedule, a spec dict or a spec string.
    """
    if isinstance(schedules, (Schedule, str)):
        schedules = [schedules]
    if isinstance(schedules, Mapping):
        pairs = [(str(k), as_schedule(v)) for k, v in schedules.items()]
    elif isinstance(schedules, Sequence):
        pairs = [(str(as_schedule(s)), as_schedule(s)) for s in schedules]
    else:
        raise TypeError(
            f"{owner}: schedules must be a schedule, a list or a dict of schedules, got "
            f"schedules={schedules!r}"
        )
    if not pairs:
        raise ValueError(f"{owner}: schedules must hold at least one schedule, got none")
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError(
            f"{owner}: two schedules have the same label; pass a dict {{label: schedule}}, got "
            f"labels {[k for k, _ in pairs]!r}"
        )
    return out


def sample_steps(
    steps: int, schedules: list[Schedule] | None = None, *, max_points: int = DENSE_LIMIT
) -> npt.NDArray[np.float64]:
    """Integer steps to evaluate over ``[0, steps]`` (both ends included), sorted and unique.

    Every step when ``steps + 1 <= max_points``; otherwise ``max_points`` evenly spaced steps
    plus, for each schedule, its :func:`breakpoints` and the step before each one, so that
    the end of a warmup or a drop is drawn where it happens.

    >>> sample_steps(4).tolist()
    [0.0, 1.0, 2.0, 3.0, 4.0]
    >>> sample_steps(1000, [warmup(constant(1.0), steps=7)], max_points=3).tolist()
    [0.0, 6.0, 7.0, 500.0, 1000.0]
    """
    steps = check_steps("sample_steps", steps)
    if steps + 1 <= max_points:
        return np.arange(steps + 1, dtype=np.float64)
    grid = np.rint(np.linspace(0, steps, max_points))
    extra: list[float] = []
    for s in schedules or []:
        for b in breakpoints(s, steps):
            extra.extend((math.floor(b) - 1, math.floor(b), math.ceil(b)))
    points = np.concatenate([grid, np.asarray(extra, dtype=np.float64)])
    points = points[(points >= 0) & (points <= steps)]
    return np.unique(points)


def breakpoints(schedule: Schedule, horizon: float | None = None) -> list[float]:
    """Steps where a phase of ``schedule`` ends, sorted, within ``(0, horizon]``.

    Known for every built-in family and combinator: a warmup's end, the joins of a sequence,
    a shift, WSD's phases, one-cycle phase ends, milestones and piecewise boundaries,
    restarts of cyclic schedules (the first 64), and the schedule's duration. Unknown
    classes contribute their duration only. ``horizon`` defaults to the duration; it is
    needed for a schedule that never settles.

    >>> breakpoints(warmup(cosine(1.0, steps=90), steps=10))
    [10.0, 100.0]
    >>> breakpoints(constant(1.0) >> linear(1.0, 0.0, steps=5), 100)
    [5.0]
    """
    if horizon is None:
        horizon = schedule.duration
        if horizon is None:
            raise ValueError(
                f"breakpoints: {schedule} never settles; give horizon=<steps>, got horizon=None"
            )
    out: set[float] = set()
    _walk(schedule, 0.0, 1.0, float(horizon), out)
    return sorted(b for b in out if 0 < b <= horizon)


def _periodic(first: float, period: float, limit: float) -> list[float]:
    """``first, first + period, ...`` up to ``limit`` (at most ``_MAX_PERIODIC`` of them)."""
    if period <= 0 or first > limit:
        return []
    count = min(_MAX_PERIODIC, int((limit - first) // period) + 1)
    return [first + k * period for k in range(count)]


def _walk(s: Schedule, off: float, k: float, horizon: float, out: set[float]) -> None:
    """Add the breakpoints of ``s`` placed at global step ``off + k * local``."""
    name = s._name
    limit = (horizon - off) / k  # the part of s's local clock that is inside the horizon
    if limit <= 0:
        return
    local: list[float] = []
    if name == "warmup":
        w = float(s.steps)  # type: ignore[attr-defined]
        local.append(w)
        _walk(s.schedule, off + k * w, k, horizon, out)  # type: ignore[attr-defined]
    elif name == "sequence":
        children = s.schedules  # type: ignore[attr-defined]
        bounds = s.boundaries  # type: ignore[attr-defined]
        if bounds is None:
            starts = [0.0]
            for child in children[:-1]:
                starts.append(starts[-1] + float(child.duration))
        else:
            starts = [0.0, *(float(b) for b in bounds)]
        ends = [*starts[1:], math.inf]
        for child, start, end in zip(children, starts, ends, strict=True):
            local.append(start)
            sub: set[float] = set()
            _walk(child, 0.0, 1.0, min(end - start, limit - start), sub)
            out.update(off + k * (start + b) for b in sub if b < end - start)
    elif name in ("shift", "advance"):
        d = float(s.steps)  # type: ignore[attr-defined]
        d = d if name == "shift" else -d
        if d > 0:
            local.append(d)
        _walk(s.schedule, off + k * d, k, horizon, out)  # type: ignore[attr-defined]
    elif name == "stretch":
        _walk(s.schedule, off, k * s.factor, horizon, out)  # type: ignore[attr-defined]
    elif name in ("scale", "clip"):
        _walk(s.schedule, off, k, horizon, out)  # type: ignore[attr-defined]
    elif name == "product":
        for child in s.schedules:  # type: ignore[attr-defined]
            _walk(child, off, k, horizon, out)
    elif name == "repeat":
        period = float(s.schedule.duration)  # type: ignore[attr-defined]
        times = s.times if s.times is not None else math.inf  # type: ignore[attr-defined]
        for i in range(int(min(times, _MAX_PERIODIC, limit // period + 1))):
            _walk(s.schedule, off + k * i * period, k, horizon, out)  # type: ignore[attr-defined]
    elif name == "wsd":
        w, st = float(s.warmup_steps), float(s.stable_steps)  # type: ignore[attr-defined]
        local.extend((w, w + st))
    elif name in ("one_cycle", "one_cycle_momentum"):
        n, pct = float(s.steps), s.pct_start  # type: ignore[attr-defined]
        local.append(pct * n - 1.0)
        if s.three_phase:  # type: ignore[attr-defined]
            local.append(2.0 * pct * n - 2.0)
    elif name == "multistep_decay":
        local.extend(float(m) for m in s.milestones)  # type: ignore[attr-defined]
    elif name == "piecewise":
        local.extend(float(b) for b in s.boundaries)  # type: ignore[attr-defined]
    elif name == "interpolate":
        local.extend(float(b) for b in s.steps)  # type: ignore[attr-defined]
    elif name == "step_decay":
        p = float(s.steps)  # type: ignore[attr-defined]
        local.extend(_periodic(p, p, limit))
    elif name == "cosine_restarts":
        first, m = float(s.steps), float(s.period_mult)  # type: ignore[attr-defined]
        start, length = 0.0, first
        for _ in range(_MAX_PERIODIC):
            start += length
            length *= m
            if start > limit:
                break
            local.append(start)
    elif name == "cyclic":
        up = float(s.steps_up)  # type: ignore[attr-defined]
        down = float(s.steps_down if s.steps_down is not None else s.steps_up)  # type: ignore[attr-defined]
        local.extend(start + up for start in _periodic(0.0, up + down, limit))
        local.extend(_periodic(up + down, up + down, limit))
    duration = s.duration
    if duration is not None:
        local.append(float(duration))
    out.update(off + k * b for b in local if 0 < b <= limit)
