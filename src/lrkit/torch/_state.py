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
from typing import TYPE_CHECKING, Any

from lrkit.torch._groups import multiplier

if TYPE_CHECKING:
    from lrkit.torch._scheduler import Scheduler

FORMAT = "lrkit.torch.Scheduler/1"


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


def load(s: Scheduler, state: Mapping[str, Any], *, strict: bool) -> None:
    """Check ``state`` against ``s`` and restore it into ``s`` (see Scheduler.load_state_dict)."""
    owner = "Scheduler.load_state_dict"
    if not isinstance(state, Mapping) or state.get("format") != FORMAT:
        fmt = state.get("format") if isinstance(state, Mapping) else None
        raise ValueError(
            f"{owner}: not a state saved by lrkit.torch.Scheduler (format={fmt!r}, expected "
            f"{FORMAT!r})"
        )
    if state["clock"] != s.clock:
        raise ValueError(
            f"{owner}: the checkpoint counts clock={state['clock']!r} but this scheduler "
            f"counts clock={s.clock!r}"
        )
    mine = _plain({name: spec.to_plain() for name, spec in s._specs.items()})
    theirs = _plain(state["schedules"])
    if mine != theirs:
        diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        detail = "; ".join(
            f"{k}: checkpoint {_brief(theirs.get(k))}, here {_brief(mine.get(k))}" for k in diff
        )
        if strict:
            raise ValueError(
                f"{owner}: the checkpoint was made with other schedules ({detail}); build the "
                f"Scheduler with the checkpoint's schedules, or pass strict=False to keep these "
                f"and take only the clock"
            )
        warnings.warn(
            f"{owner}: schedules differ from the checkpoint's ({detail}); keeping this "
            f"scheduler's schedules (strict=False)",
            UserWarning,
            stacklevel=3,
        )
    ctl_states = list(state["controllers"])
    if len(ctl_states) != len(s._controllers):
        raise ValueError(
            f"{owner}: the checkpoint has {len(ctl_states)} controller states but this "
            f"scheduler has {len(s._controllers)} controllers"
        )
    spe_here, spe_there = s.steps_per_epoch, state["steps_per_epoch"]
    if spe_here is not None and spe_there is not None and spe_here != spe_there:
        raise ValueError(
            f"{owner}: the checkpoint was made with steps_per_epoch={spe_there} but this "
            f"scheduler has steps_per_epoch={spe_here}; lengths in epochs would move"
        )
    resizes = [list(r) for r in state["resizes"]]
    ckpt_total = resizes[-1][1] if resizes else state["total_steps"]
    wanted = s._total_constructed
    resize_to = None
    if wanted is not None and wanted not in (ckpt_total, state["total_steps"]):
        if s.on_resize is None:
            raise ValueError(
                f"{owner}: the checkpoint's run has total_steps={ckpt_total} but this "
                f"scheduler was built with total_steps={wanted}; pass on_resize='keep' or "
                f"'rescale' to the Scheduler to change the run's length on load, or build it "
                f"with total_steps={ckpt_total} and call resize() after loading"
            )
        if s.on_resize == "rescale" and wanted <= int(state["step"]):
            raise ValueError(
                f"{owner}: cannot rescale the run to total_steps={wanted}: the checkpoint is "
                f"already at step {state['step']}"
            )
        resize_to = wanted
    old = (s._total0, s.steps_per_epoch, s._resizes, s._total)
    s._total0 = state["total_steps"]
    s.steps_per_epoch = spe_there if spe_there is not None else spe_here
    s._resizes = resizes
    s._total = ckpt_total
    try:
        s._bind()
    except ValueError:
        s._total0, s.steps_per_epoch, s._resizes, s._total = old
        raise
    s._step = int(state["step"])
    s._pending = int(state["pending"])
    s._step_count = int(state["calls"])
    for c, cs in zip(s._controllers, ctl_states, strict=True):
        c.load_state_dict(cs)
    if resize_to is not None:
        s.resize(resize_to, s.on_resize)


def _plain(x: Any) -> Any:
    return json.loads(json.dumps(x))


def _is_plain(x: Any) -> bool:
    return x is None or isinstance(x, (str, int, float))


def _brief(spec: Any) -> str:
    if spec is None:
        return "none"
    text = json.dumps(spec)
    return text if len(text) <= 120 else text[:117] + "..."
