"""The Scheduler's checkpoint state: build it, check it, load it.

The state is plain JSON data (ints, floats, strings, lists, dicts, None), so it survives
``json.dumps`` and ``torch.load(weights_only=True)``. It holds the clock, the run's length and
its resizes, the schedule specs as given (to detect a checkpoint made with other schedules), the
per-group multipliers (for information) and every controller's state.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lrkit.controllers import Controller
from lrkit.controllers._base import integer
from lrkit.controllers._state import exact_keys, json_value
from lrkit.schedules._check import choice
from lrkit.torch._groups import GroupSpec, multiplier
from lrkit.torch._resize import POLICIES
from lrkit.torch._wiring import bind_specs

if TYPE_CHECKING:
    from lrkit.torch._scheduler import Scheduler

FORMAT = "lrkit.torch.Scheduler/1"
OWNER = "Scheduler.load_state_dict"


def build(s: Scheduler) -> dict[str, Any]:
    """The JSON-ready state of ``s``."""
    groups = []
    for i, g in enumerate(s.optimizer.param_groups):
        mults: dict[str, float | None] = {}
        for name in s._specs:
            try:
                mults[name] = multiplier(name, g, i, s._group_mult)
            except ValueError:
                mults[name] = None
        groups.append({"name": g.get("name") if _is_plain(g.get("name")) else None, "mult": mults})
    return {
        "format": FORMAT,
        "clock": s.clock,
        "step": s._step,
        "pending": s._pending,
        "calls": s._step_count,
        "total_steps": s._total0,
        "steps_per_epoch": s.steps_per_epoch,
        "resizes": [list(r) for r in s._resizes],
        "schedules": {name: spec.to_plain() for name, spec in s._specs.items()},
        "groups": groups,
        "controllers": [c.state_dict() for c in s._controllers],
    }


@dataclass(frozen=True)
class _Plan:
    """A checkpoint that passed :func:`check`: everything :func:`apply` writes into the
    scheduler, computed without changing it."""

    step: int
    pending: int
    calls: int
    total0: int | None
    steps_per_epoch: int | None
    resizes: list[list[Any]]
    total: int | None
    bound: dict[str, GroupSpec]
    controllers: list[tuple[Any, Any, bool]]  # (controller, checked state or raw, checked?)
    warnings: list[str]


def load(s: Scheduler, state: Mapping[str, Any], *, strict: bool) -> None:
    """Check ``state`` against ``s``, then restore it into ``s``: all or nothing.

    Everything is validated before anything is changed (see :func:`check`); should applying
    still fail (a controller of another library whose ``load_state_dict`` raises, a schedule
    that cannot be evaluated at the checkpoint's step), the scheduler and its controllers are
    put back as they were before the error is raised.
    """
    plan = check(s, state, strict=strict)
    saved = _snapshot(s)
    try:
        apply(s, plan)
    except BaseException:
        _restore(s, saved)
        raise
    for message in plan.warnings:
        warnings.warn(message, UserWarning, stacklevel=3)


def check(s: Scheduler, state: object, *, strict: bool) -> _Plan:
    """Validate the whole of ``state`` for ``s`` (keys, types, ranges, schedules, run length,
    controllers) and compute what loading it sets; ``s`` is not changed.

    Raises:
        ValueError: not an lrkit state or another format, missing or unknown keys, a value out
            of range, a schedule or clock mismatch (``strict``), a run-length mismatch, a
            controller state that does not fit its controller.
        TypeError: a value of the wrong type.
    """
    if not isinstance(state, Mapping) or state.get("format") != FORMAT:
        fmt = state.get("format") if isinstance(state, Mapping) else None
        raise ValueError(
            f"{OWNER}: not a state saved by lrkit.torch.Scheduler (format={fmt!r}, expected "
            f"{FORMAT!r})"
        )
    exact_keys(OWNER, "state", state, tuple(s.state_dict()))
    if state["clock"] != s.clock:
        raise ValueError(
            f"{OWNER}: the checkpoint counts clock={state['clock']!r} but this scheduler "
            f"counts clock={s.clock!r}"
        )
    step = integer(OWNER, "step", state["step"])
    pending = integer(OWNER, "pending", state["pending"])
    calls = integer(OWNER, "calls", state["calls"])
    total0 = _opt_length("total_steps", state["total_steps"])
    spe_there = _opt_length("steps_per_epoch", state["steps_per_epoch"])
    resizes = _resizes(state["resizes"])
    _groups(state["groups"])
    messages: list[str] = []
    mismatch = _schedule_mismatch(s, state["schedules"], strict=strict)
    if mismatch is not None:
        messages.append(mismatch)
    controllers = _controllers(s, state["controllers"], strict=strict, messages=messages)
    spe_here = s.steps_per_epoch
    if spe_here is not None and spe_there is not None and spe_here != spe_there:
        raise ValueError(
            f"{OWNER}: the checkpoint was made with steps_per_epoch={spe_there} but this "
            f"scheduler has steps_per_epoch={spe_here}; lengths in epochs would move"
        )
    ckpt_total = resizes[-1][1] if resizes else total0
    wanted = s._total_constructed
    if wanted is not None and wanted not in (ckpt_total, total0):
        if s.on_resize is None:
            raise ValueError(
                f"{OWNER}: the checkpoint's run has total_steps={ckpt_total} but this "
                f"scheduler was built with total_steps={wanted}; pass on_resize='keep' or "
                f"'rescale' to the Scheduler to change the run's length on load, or build it "
                f"with total_steps={ckpt_total} and call resize() after loading"
            )
        if s.on_resize == "rescale" and wanted <= step:
            raise ValueError(
                f"{OWNER}: cannot rescale the run to total_steps={wanted}: the checkpoint is "
                f"already at step {step}"
            )
        resizes = [*resizes, [step, wanted, s.on_resize]]
        ckpt_total = wanted
    spe = spe_there if spe_there is not None else spe_here
    bound = bind_specs(s._specs, total0, spe, resizes)
    return _Plan(
        step=step,
        pending=pending,
        calls=calls,
        total0=total0,
        steps_per_epoch=spe,
        resizes=resizes,
        total=ckpt_total,
        bound=bound,
        controllers=controllers,
        warnings=messages,
    )


def apply(s: Scheduler, plan: _Plan) -> None:
    """Write a checked plan into ``s`` and the values of its step into the param groups."""
    s._total0, s.steps_per_epoch, s._total = plan.total0, plan.steps_per_epoch, plan.total
    s._resizes = [list(r) for r in plan.resizes]
    s._bound = plan.bound
    s._step, s._pending, s._step_count = plan.step, plan.pending, plan.calls
    for c, cs, checked in plan.controllers:
        if checked:
            c._apply_state(cs)
        else:
            c.load_state_dict(cs)
    s._groups_ref = None
    s._write()


# ---------------------------------------------------------------------- parts of the check
def _opt_length(name: str, value: object) -> int | None:
    """None or a positive integer (a run length)."""
    return None if value is None else integer(OWNER, name, value, low=1)


def _resizes(value: object) -> list[list[Any]]:
    """The resizes ``[at, total_steps, policy]`` replayed on load."""
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{OWNER}: resizes must be a list, got resizes={value!r}")
    out = []
    for i, r in enumerate(value):
        name = f"resizes[{i}]"
        if not isinstance(r, (list, tuple)) or len(r) != 3:
            raise ValueError(f"{OWNER}: {name} must be [at, total_steps, policy], got {name}={r!r}")
        out.append(
            [
                integer(OWNER, f"{name}[0] (at)", r[0]),
                integer(OWNER, f"{name}[1] (total_steps)", r[1], low=1),
                choice(OWNER, f"{name}[2] (policy)", r[2], POLICIES),
            ]
        )
    return out


def _groups(value: object) -> None:
    """The per-group information: a list of ``{"name": str | None, "mult": {...}}``."""
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{OWNER}: groups must be a list, got groups={value!r}")
    for i, g in enumerate(value):
        g = exact_keys(OWNER, f"groups[{i}]", g, ("name", "mult"))
        json_value(OWNER, f"groups[{i}]", g)
        if not isinstance(g["mult"], Mapping):
            raise TypeError(
                f"{OWNER}: groups[{i}]['mult'] must be a dict, got groups[{i}]['mult']={g['mult']!r}"
            )


def _schedule_mismatch(s: Scheduler, schedules: object, *, strict: bool) -> str | None:
    """None when the checkpoint's schedules are this scheduler's; else raise or (not strict)
    the warning to give."""
    if not isinstance(schedules, Mapping):
        raise TypeError(f"{OWNER}: schedules must be a dict, got schedules={schedules!r}")
    mine = _plain({name: spec.to_plain() for name, spec in s._specs.items()})
    theirs = _plain(json_value(OWNER, "schedules", schedules))
    if mine == theirs:
        return None
    diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
    detail = "; ".join(
        f"{k}: checkpoint {_brief(theirs.get(k))}, here {_brief(mine.get(k))}" for k in diff
    )
    if strict:
        raise ValueError(
            f"{OWNER}: the checkpoint was made with other schedules ({detail}); build the "
            f"Scheduler with the checkpoint's schedules, or pass strict=False to keep these "
            f"and take only the clock"
        )
    return (
        f"{OWNER}: schedules differ from the checkpoint's ({detail}); keeping this "
        f"scheduler's schedules (strict=False)"
    )


def _controllers(
    s: Scheduler, states: object, *, strict: bool, messages: list[str]
) -> list[tuple[Any, Any, bool]]:
    """Each controller's state checked by the controller (lrkit's) or kept for its own
    ``load_state_dict`` (others, undone on failure by :func:`load`)."""
    if not isinstance(states, (list, tuple)):
        raise TypeError(f"{OWNER}: controllers must be a list, got controllers={states!r}")
    if len(states) != len(s._controllers):
        raise ValueError(
            f"{OWNER}: the checkpoint has {len(states)} controller states but this "
            f"scheduler has {len(s._controllers)} controllers"
        )
    out: list[tuple[Any, Any, bool]] = []
    for i, (c, cs) in enumerate(zip(s._controllers, states, strict=True)):
        if not _checks_its_state(c):
            out.append((c, cs, False))
            continue
        try:
            checked = c._check_state(cs, strict=strict)
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"{OWNER}: controllers[{i}]: {exc}") from None
        if checked.warning is not None:
            messages.append(checked.warning)
        out.append((c, checked, True))
    return out


def _checks_its_state(c: Any) -> bool:
    """Whether ``c`` is an lrkit controller whose state the base class checks and loads."""
    return isinstance(c, Controller) and type(c).load_state_dict is Controller.load_state_dict


# ---------------------------------------------------------------------- rollback
def _snapshot(s: Scheduler) -> dict[str, Any]:
    keys = ("_total0", "steps_per_epoch", "_total", "_resizes", "_bound", "_step", "_pending")
    out: dict[str, Any] = {k: getattr(s, k) for k in keys}
    out["_step_count"] = s._step_count
    out["controllers"] = [c.state_dict() for c in s._controllers]
    return out


def _restore(s: Scheduler, saved: dict[str, Any]) -> None:
    for c, cs in zip(s._controllers, saved.pop("controllers"), strict=True):
        if _checks_its_state(c):
            c._apply_state(c._check_state(cs, strict=False))
        else:
            c.load_state_dict(cs)
    for k, v in saved.items():
        setattr(s, k, v)
    s._groups_ref = None
    s._write()


def _plain(x: Any) -> Any:
    return json.loads(json.dumps(x))


def _is_plain(x: Any) -> bool:
    return x is None or isinstance(x, (str, int, float))


def _brief(spec: Any) -> str:
    if spec is None:
        return "none"
    text = json.dumps(spec)
    return text if len(text) <= 120 else text[:117] + "..."
