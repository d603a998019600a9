"""The divergence guard's checkpoint state: build it, check all of it, then apply it.

Layout (format ``lrkit.torch.DivergenceGuard/1``)::

    {"format", "settings": {...}, "calls", "good", "next_snapshot",
     "losses": [...], "norms": [...], "pending": [[step, loss, norm], ...],
     "recoveries": [{"step", "reason", "value", "snapshot_step"}, ...],
     "controller": GuardController.state_dict(),
     "snapshot": None | {"step", "model", "optimizer", "scheduler", "lrs"}}

Everything but ``snapshot`` is JSON data; the snapshot holds the model's and optimizer's tensors.
``pending`` holds the calls since the last judgement (``every=k``); their ``norm`` is None, the
gradient norm being measured at judged calls only (a number, from a state saved before that, is
judged as it was).
:func:`load` validates every key (types, ranges, finiteness, the snapshot against the model and
optimizer) before it changes anything, so a refused load leaves the guard as it was.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any

import torch

from lrkit.torch import _guard_probe as probe
from lrkit.torch._guard_spike import SpikeWindow

if TYPE_CHECKING:
    from lrkit.torch.guard import DivergenceGuard

FORMAT = "lrkit.torch.DivergenceGuard/1"
_OWNER = "DivergenceGuard.load_state_dict"
_KEYS = (
    "format",
    "settings",
    "calls",
    "good",
    "next_snapshot",
    "losses",
    "norms",
    "pending",
    "recoveries",
    "controller",
    "snapshot",
)
_SNAPSHOT_KEYS = ("step", "model", "optimizer", "scheduler", "lrs")
_RECOVERY_KEYS = ("step", "reason", "value", "snapshot_step")


def plain_copy(x: Any) -> Any:
    """A deep copy of JSON-like data (None stays None)."""
    return copy.deepcopy(x)


def build(g: DivergenceGuard) -> dict[str, Any]:
    """The state of ``g`` (see the module docstring); pending device values are read here."""
    pending = [[r.step, r.loss, r.norm] for r in probe.read(g._pending)]
    snap = g._snapshot
    return {
        "format": FORMAT,
        "settings": g.settings,
        "calls": g._calls,
        "good": g._good,
        "next_snapshot": g._next_snapshot,
        "losses": list(g._losses.values),
        "norms": list(g._norms.values),
        "pending": pending,
        "recoveries": [dict(r) for r in g.recoveries],
        "controller": g.controller.state_dict(),
        "snapshot": None
        if snap is None
        else {
            "step": snap.step,
            "model": snap.model,
            "optimizer": snap.optimizer,
            "scheduler": plain_copy(snap.scheduler),
            "lrs": None if snap.lrs is None else list(snap.lrs),
        },
    }


def load(g: DivergenceGuard, state: Mapping[str, Any], *, strict: bool) -> None:
    """Validate ``state`` against ``g`` in full, then apply it (see the module docstring)."""
    from lrkit.torch.guard import _REASONS, GuardSnapshot

    if not isinstance(state, Mapping):
        raise TypeError(f"{_OWNER}: state must be a dict, got {type(state).__name__}")
    if state.get("format") != FORMAT:
        raise ValueError(
            f"{_OWNER}: not a state saved by DivergenceGuard (format={state.get('format')!r}, "
            f"expected {FORMAT!r})"
        )
    _exact_keys("state", state, _KEYS)
    theirs = _settings(state["settings"], g.settings)
    if theirs != g.settings:
        diff = ", ".join(
            f"{k}: checkpoint {theirs[k]!r}, here {v!r}"
            for k, v in g.settings.items()
            if theirs[k] != v
        )
        if strict:
            raise ValueError(
                f"{_OWNER}: the checkpoint was made with other settings ({diff}); build the "
                f"guard with the checkpoint's settings, or pass strict=False to keep these"
            )
        warnings.warn(
            f"{_OWNER}: settings differ from the checkpoint's ({diff}); keeping this guard's "
            f"(strict=False)",
            UserWarning,
            stacklevel=3,
        )
    calls = _int("calls", state["calls"])
    good = _int("good", state["good"])
    next_snapshot = _int("next_snapshot", state["next_snapshot"])
    losses = _finite_list("losses", state["losses"], theirs["window"])
    norms = _finite_list("norms", state["norms"], theirs["window"])
    pending = _pending(state["pending"], theirs["every"])
    recoveries = _recoveries(state["recoveries"], theirs["max_retries"], _REASONS)
    ctl = _controller(g, state["controller"], len(recoveries), strict=strict)
    snap = _snapshot(g, state["snapshot"])
    if snap is None and calls > 0:
        raise ValueError(f"{_OWNER}: snapshot is None but calls={calls} (a check() was made)")
    # ---- everything checked: apply
    dev = g.snapshot_device
    new_snap = None
    if snap is not None:
        new_snap = GuardSnapshot(
            snap["step"],
            probe.copy_tree(dict(snap["model"]), dev),
            probe.copy_tree(dict(snap["optimizer"]), dev),
            plain_copy(snap["scheduler"]),
            None if snap["lrs"] is None else [float(x) for x in snap["lrs"]],
        )
    g._calls, g._good, g._next_snapshot = calls, good, next_snapshot
    g._losses = SpikeWindow(g.window, losses)
    g._norms = SpikeWindow(g.window, norms)
    g._pending = [probe.Probe(s, v, n) for s, v, n in pending]
    g.recoveries = recoveries
    g._snapshot, g._copy_events = new_snap, []
    g.controller._apply_state(ctl)


# ---------------------------------------------------------------------- validators
def _fail(key: str, what: str, value: Any) -> ValueError:
    return ValueError(f"{_OWNER}: {key} must be {what}, got {key}={_short(value)}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _exact_keys(key: str, d: Mapping[str, Any], keys: Sequence[str]) -> None:
    missing = [k for k in keys if k not in d]
    extra = [k for k in d if k not in keys]
    if missing or extra:
        raise ValueError(
            f"{_OWNER}: {key} has keys {sorted(map(str, d))}; missing {missing}, unknown {extra}"
        )


def _int(key: str, value: Any, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
        raise _fail(key, f"an integer >= {low}", value)
    return int(value)


def _float(key: str, value: Any, *, finite: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise _fail(key, "a number", value)
    out = float(value)
    if finite and not math.isfinite(out):
        raise _fail(key, "finite", value)
    return out


def _list(key: str, value: Any) -> list[Any]:
    if not isinstance(value, (list, tuple)):
        raise _fail(key, "a list", value)
    return list(value)


def _finite_list(key: str, value: Any, most: int) -> list[float]:
    items = _list(key, value)
    if len(items) > most:
        raise _fail(f"len({key})", f"<= window={most}", len(items))
    return [_float(f"{key}[{i}]", v) for i, v in enumerate(items)]


def _settings(value: Any, mine: Mapping[str, Any]) -> dict[str, Any]:
    """The checkpoint's settings, each re-checked as the constructor checks it."""
    from lrkit.torch.guard import DivergenceGuard

    if not isinstance(value, Mapping):
        raise _fail("settings", "a dict", value)
    _exact_keys("settings", value, tuple(mine))
    model = torch.nn.Linear(1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    try:
        probe_guard = DivergenceGuard(model, opt, **dict(value))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{_OWNER}: bad settings in the checkpoint: {err}") from err
    return probe_guard.settings


def _pending(value: Any, every: int) -> list[tuple[int, float, float | None]]:
    items = _list("pending", value)
    if len(items) >= every:
        raise _fail("len(pending)", f"< every={every}", len(items))
    out = []
    for i, row in enumerate(items):
        row = _list(f"pending[{i}]", row)
        if len(row) != 3:
            raise _fail(f"pending[{i}]", "[step, loss, norm]", row)
        norm = None if row[2] is None else _float(f"pending[{i}][2]", row[2], finite=False)
        out.append(
            (
                _int(f"pending[{i}][0]", row[0]),
                _float(f"pending[{i}][1]", row[1], finite=False),
                norm,
            )
        )
    return out


def _recoveries(value: Any, most: int, reasons: Sequence[str]) -> list[dict[str, Any]]:
    items = _list("recoveries", value)
    if len(items) > most:
        raise _fail("len(recoveries)", f"<= max_retries={most}", len(items))
    out = []
    for i, r in enumerate(items):
        key = f"recoveries[{i}]"
        if not isinstance(r, Mapping):
            raise _fail(key, "a dict", r)
        _exact_keys(key, r, _RECOVERY_KEYS)
        if r["reason"] not in reasons:
            raise _fail(f"{key}['reason']", f"one of {list(reasons)}", r["reason"])
        step = _int(f"{key}['step']", r["step"])
        snap = _int(f"{key}['snapshot_step']", r["snapshot_step"])
        if snap > step:
            raise _fail(f"{key}['snapshot_step']", f"<= its step {step}", snap)
        out.append(
            {
                "step": step,
                "reason": str(r["reason"]),
                "value": _float(f"{key}['value']", r["value"], finite=False),
                "snapshot_step": snap,
            }
        )
    return out


def _controller(g: DivergenceGuard, value: Any, n: int, *, strict: bool) -> Any:
    """The guard controller's state, checked by the controller itself (kind, version, keys,
    settings, types) and against the guard's own record of recoveries."""
    if not isinstance(value, Mapping) or value.get("kind") != "GuardController":
        raise _fail("controller", "a GuardController state", value)
    checked = g.controller._check_state(value, strict=strict)
    rec = _int("controller['recoveries']", checked.fields["recoveries"])
    if rec != n:
        raise _fail("controller['recoveries']", f"the number of recoveries, {n}", rec)
    rstep = checked.fields["recovery_step"]
    if rstep is not None:
        rstep = _int("controller['recovery_step']", rstep)
    if (rstep is None) != (rec == 0):
        raise _fail("controller['recovery_step']", "None exactly when there is no recovery", rstep)
    if checked.events:
        raise _fail("controller['events']", "empty", checked.events)
    return checked


def _snapshot(g: DivergenceGuard, value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise _fail("snapshot", "None or a dict", value)
    _exact_keys("snapshot", value, _SNAPSHOT_KEYS)
    step = _int("snapshot['step']", value["step"])
    _check_model(g.model, value["model"])
    _check_optimizer(g.optimizer, value["optimizer"])
    sched, lrs = value["scheduler"], value["lrs"]
    if g.scheduler is not None:
        if not isinstance(sched, Mapping) or lrs is not None:
            raise ValueError(
                f"{_OWNER}: the snapshot was taken without a scheduler but this guard has one "
                f"(snapshot['scheduler']={_short(sched)})"
            )
        here = g.scheduler.state_dict()
        for key in ("format", "schedules", "clock"):
            if sched.get(key) != here.get(key):
                raise _fail(
                    f"snapshot['scheduler'][{key!r}]",
                    f"{here.get(key)!r} (this scheduler's)",
                    sched.get(key),
                )
        if len(_list("snapshot['scheduler']['controllers']", sched.get("controllers"))) != len(
            here["controllers"]
        ):
            raise _fail(
                "snapshot['scheduler']['controllers']",
                "one state per controller",
                sched.get("controllers"),
            )
        if _int("snapshot['scheduler']['step']", sched.get("step")) != step:
            raise _fail(
                "snapshot['scheduler']['step']", f"the snapshot's step {step}", sched.get("step")
            )
    else:
        if sched is not None:
            raise ValueError(
                f"{_OWNER}: the snapshot holds a scheduler state but this guard has none; "
                f"attach the scheduler before loading"
            )
        items = _list("snapshot['lrs']", lrs)
        if len(items) != len(g.optimizer.param_groups):
            raise _fail(
                "len(snapshot['lrs'])",
                f"{len(g.optimizer.param_groups)} (one per group)",
                len(items),
            )
        for i, v in enumerate(items):
            if _float(f"snapshot['lrs'][{i}]", v) < 0:
                raise _fail(f"snapshot['lrs'][{i}]", ">= 0", v)
    return {
        "step": step,
        "model": value["model"],
        "optimizer": value["optimizer"],
        "scheduler": sched,
        "lrs": lrs,
    }


def _check_model(model: torch.nn.Module, value: Any) -> None:
    if not isinstance(value, Mapping):
        raise _fail("snapshot['model']", "a state dict", value)
    here = model.state_dict()
    if set(value) != set(here):
        missing = sorted(set(here) - set(value))
        extra = sorted(set(value) - set(here))
        raise ValueError(
            f"{_OWNER}: snapshot['model'] does not match this model: missing {missing}, "
            f"unknown {extra}"
        )
    for k, t in value.items():
        key = f"snapshot['model'][{k!r}]"
        ref = here[k]
        if not isinstance(t, torch.Tensor):
            raise _fail(key, "a tensor", t)
        if t.shape != ref.shape or t.dtype != ref.dtype:
            raise _fail(
                key,
                f"a {ref.dtype} tensor of shape {tuple(ref.shape)}",
                f"{t.dtype} {tuple(t.shape)}",
            )
        _finite_tensor(key, t)


def _check_optimizer(opt: torch.optim.Optimizer, value: Any) -> None:
    key = "snapshot['optimizer']"
    if not isinstance(value, Mapping) or set(value) != {"state", "param_groups"}:
        raise _fail(key, "an optimizer state dict", value)
    groups = _list(f"{key}['param_groups']", value["param_groups"])
    if len(groups) != len(opt.param_groups):
        raise _fail(f"len({key}['param_groups'])", f"{len(opt.param_groups)}", len(groups))
    ids: set[Any] = set()
    for i, (g, mine) in enumerate(zip(groups, opt.param_groups, strict=True)):
        if not isinstance(g, Mapping) or "params" not in g:
            raise _fail(f"{key}['param_groups'][{i}]", "a param group", g)
        params = _list(f"{key}['param_groups'][{i}]['params']", g["params"])
        if len(params) != len(mine["params"]):
            raise _fail(
                f"len({key}['param_groups'][{i}]['params'])", f"{len(mine['params'])}", len(params)
            )
        ids.update(params)
    state = value["state"]
    if not isinstance(state, Mapping) or not set(state) <= ids:
        raise _fail(f"{key}['state']", "per-parameter state keyed by the groups' params", state)
    for pid, s in state.items():
        if not isinstance(s, Mapping):
            raise _fail(f"{key}['state'][{pid!r}]", "a dict", s)
        for name, t in s.items():
            if isinstance(t, torch.Tensor):
                _finite_tensor(f"{key}['state'][{pid!r}][{name!r}]", t)


def _finite_tensor(key: str, t: torch.Tensor) -> None:
    if (t.is_floating_point() or t.is_complex()) and not bool(torch.isfinite(t).all()):
        raise _fail(key, "finite (a snapshot is a good state)", "a tensor with NaN/inf")
