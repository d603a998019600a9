"""The base of the torch drop-ins: torch's call conventions on top of :class:`lrkit.torch.Scheduler`.

A compat class turns torch's constructor arguments into one lrkit schedule per param group and
hyperparameter (its *tracks*) and lets the :class:`~lrkit.torch.Scheduler` drive them with
``clock="calls"`` (time = number of ``step()`` calls, torch's ``last_epoch``). What torch does
with run-time state, ReduceLROnPlateau, is a controller (:class:`GroupPlateau`) whose per-group
factor is applied on top of the tracks.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch.optim import Optimizer

from lrkit.controllers import Controller, Plateau
from lrkit.schedules import Schedule, constant
from lrkit.torch._groups import GroupSpec, write_slow, writer_for
from lrkit.torch._scheduler import Scheduler

#: The warning of ``step(epoch)``: torch's own text, so that code filtering it keeps working.
EPOCH_WARNING: str = getattr(
    torch.optim.lr_scheduler,
    "EPOCH_DEPRECATION_WARNING",
    "The epoch parameter in `scheduler.step()` is deprecated; lrkit.torch.compat sets the "
    "clock to it and writes the closed-form values there",
)


class PerStep(Controller):
    """A controller that changes nothing: its presence makes the Scheduler evaluate the tracks
    one step at a time (no look-ahead), as Python callables (LambdaLR) need."""

    #: Read by the Scheduler's drives: evaluate the schedule at each step, never a block ahead.
    evaluate_per_step = True

    def state_dict(self) -> dict[str, Any]:
        """Nothing to save but the kind."""
        return {"kind": "PerStep"}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Nothing to restore."""


class GroupPlateau(Controller):
    """torch's ReduceLROnPlateau decisions (an lrkit :class:`~lrkit.controllers.Plateau`) plus
    torch's per-group arithmetic, active on the window ``[start, end)`` of the clock.

    After ``n`` plateaus group ``g`` holds ``x_n`` with ``x_0 = base_g`` and
    ``x_{k+1} = max(x_k * factor, min_lr_g)`` unless ``x_k - that <= eps`` (then it stays for
    good), exactly as torch iterates it; :meth:`factor` is ``x_n / base_g``. ``scale`` is 1: the
    compat class applies the per-group factor itself (the controller protocol has one scale per
    hyperparameter, not per group).
    """

    def __init__(
        self,
        *,
        mode: str,
        factor: float,
        patience: int,
        threshold: float,
        threshold_mode: str,
        cooldown: int,
        min_lrs: Sequence[float],
        eps: float,
        bases: Sequence[float],
    ) -> None:
        super().__init__(target="lr")
        self.detector = Plateau(
            mode=mode,
            factor=factor,
            patience=patience,
            threshold=threshold,
            threshold_mode=threshold_mode,
            cooldown=cooldown,
            eps=0.0,
            rule="torch",
        )
        self.factor_, self.eps, self.min_lrs = (
            float(factor),
            float(eps),
            [float(m) for m in min_lrs],
        )
        self.bases = [float(b) for b in bases]
        self.start, self.end = 0, math.inf
        self._values: list[list[float]] = [[b] for b in self.bases]

    def shifted(self, offset: int, end: float) -> GroupPlateau:
        """The same plateau (shared state) seen from a parent's clock: window moved by ``offset``."""
        out = object.__new__(GroupPlateau)
        out.__dict__.update(self.__dict__)
        out.start = self.start + offset
        out.end = min(self.end + offset, end)
        out._origin = getattr(self, "_origin", self)  # type: ignore[attr-defined]
        return out

    @property
    def origin(self) -> GroupPlateau:
        """The plateau whose decisions this one shares."""
        return getattr(self, "_origin", self)

    def active(self, step: float) -> bool:
        """Whether ``step`` lies in this plateau's window."""
        return self.start <= step < self.end

    def observe(self, step: int, metric: float) -> None:
        """Take ``metric`` if ``step`` is in the window (torch's ``step(metrics)``)."""
        if self.active(step):
            self.origin.detector.observe(step, metric)

    @property
    def num_plateaus(self) -> int:
        """Times torch's rule fired so far."""
        return self.origin.detector.num_plateaus

    def value(self, g: int) -> float:
        """Group ``g``'s learning rate after the plateaus so far (torch's arithmetic)."""
        n = self.num_plateaus
        vals = self.origin._values[g]
        while len(vals) <= n:
            x = vals[-1]
            new = max(x * self.factor_, self.min_lrs[g])
            vals.append(new if x - new > self.eps else x)
        return vals[n]

    def factor(self, g: int) -> float:
        """``value(g) / base_g`` (1 for a zero base, or a group added after construction)."""
        if g >= len(self.bases):
            return 1.0
        base = self.bases[g]
        return self.value(g) / base if base != 0 else 1.0

    def state_dict(self) -> dict[str, Any]:
        """The decision state (JSON)."""
        return {"kind": "GroupPlateau", "detector": self.origin.detector.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.origin.detector.load_state_dict(state["detector"])


class CompatScheduler(Scheduler):
    """Common machinery of the drop-ins (not public): tracks, torch's ``step(epoch)``,
    ``last_epoch`` on construction, plateau factors, and the state of Python callables."""

    _check_values = False
    _tracks: dict[str, list[Schedule]]
    _plateaus: list[GroupPlateau]
    _callables: list[Any]
    #: Whether ``step(epoch)`` takes a fractional epoch (closed forms do; a running product
    #: of a callable, MultiplicativeLR, does not).
    _fractional_epochs = True
    #: For a class whose torch recursion moves each group by the same ratio (the decays,
    #: CosineAnnealingLR), the level those ratios apply above (0; ``eta_min``): a param group
    #: added later follows group 0 from its own value. None: torch raises on an added group,
    #: so does this class.
    _added_group_offset: float | None = None
    #: The constructor's arguments (but the optimizer and last_epoch), by name.
    _init_args: dict[str, Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Record each drop-in's constructor arguments (as torch keeps its settings in
        ``__dict__``), so that :meth:`load_state_dict` can adopt a checkpoint's settings."""
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return
        sig = inspect.signature(init)

        @functools.wraps(init)
        def recording(self: CompatScheduler, *args: Any, **kw: Any) -> None:
            bound = sig.bind(self, *args, **kw)
            bound.apply_defaults()
            init(self, *args, **kw)
            self._init_args = {
                k: v
                for k, v in bound.arguments.items()
                if k not in ("self", "optimizer", "last_epoch", "verbose")
            }

        cls.__init__ = recording  # type: ignore[method-assign,assignment]

    def _start(
        self,
        optimizer: Optimizer,
        tracks: Mapping[str, Sequence[Schedule]],
        *,
        last_epoch: int = -1,
        plateaus: Sequence[GroupPlateau] = (),
        callables: Sequence[Any] = (),
        total_steps: int | None = None,
    ) -> None:
        self._tracks = {k: list(v) for k, v in tracks.items()}
        self._plateaus = list(plateaus)
        self._callables = list(callables)
        self._frac = 0.0
        ctls: list[Any] = list(self._plateaus)
        if self._callables:
            ctls.append(PerStep())
        hyperparameters: dict[str, Any] = self._tracks
        Scheduler.__init__(
            self,
            optimizer,
            clock="calls",
            controllers=ctls,
            total_steps=total_steps,
            **hyperparameters,
        )
        # no on_resize check on load: as torch's load_state_dict, the checkpoint's total_steps
        # is taken (another length is a schedule mismatch: raises, or warns with strict=False)
        self._total_constructed = None
        if last_epoch != -1:
            self._step = last_epoch + 1
            self._write()

    # ------------------------------------------------------------------ writing
    def _sync_groups(self) -> None:
        groups = self.optimizer.param_groups
        n = len(next(iter(self._tracks.values())))
        if len(groups) < n:
            raise ValueError(
                f"{type(self).__name__}: the optimizer has {len(groups)} param groups but this "
                f"scheduler was built for {n}; param groups cannot be removed"
            )
        if len(groups) > n and self._added_group_offset is None:
            raise ValueError(
                f"{type(self).__name__}: the optimizer has {len(groups)} param groups but this "
                f"scheduler was built for {n}; as in torch, this class cannot drive groups added "
                f"later (torch raises too); to drive them use lrkit.torch.Scheduler"
            )
        if len(groups) > n and self._added_group_offset is not None:
            self._add_groups(n, self._added_group_offset)
        super()._sync_groups()

    def _add_groups(self, n: int, offset: float) -> None:
        """Drive the groups added since construction as torch's recursion does: from the value
        each has now, moved by the same ratios as group 0 above ``offset`` from here on:
        ``v_g(t) = offset + (v_g(now) - offset) * (f(t) - offset) / (f(now) - offset)``, with
        ``f`` group 0's track."""
        from lrkit.torch.compat._schedules import Affine

        now = getattr(self, "_written_at", 0.0)  # when the groups were last written
        for name, tracks in self._tracks.items():
            ref = tracks[0]
            above = float(ref(now)) - offset
            for group in self.optimizer.param_groups[n:]:
                here = _get(group, name)
                ratio = (here - offset) / above if above != 0 else math.nan
                if math.isfinite(ratio):
                    tracks.append(Affine(ref, ratio, offset * (1.0 - ratio)))
                else:  # group 0 sits at the offset: nothing to follow, hold the value
                    tracks.append(constant(here))
            self._specs[name] = GroupSpec(name, tracks, len(tracks))
        self._bind()

    def _write(self) -> None:
        if self._frac:
            self._write_at(self._step + self._frac)
        else:
            super()._write()
        if self._plateaus:
            self._apply_plateaus()
        self._written_at = self._step + self._frac

    def _write_at(self, time: float) -> None:
        """Write the tracks' values at a fractional time (CosineAnnealingWarmRestarts)."""
        for name, tracks in self._tracks.items():
            for group, s in zip(self.optimizer.param_groups, tracks, strict=False):
                _put(group, name, float(s(time)))

    def _apply_plateaus(self) -> None:
        t = self._step
        for g, group in enumerate(self.optimizer.param_groups):
            f = 1.0
            for p in self._plateaus:
                if p.active(t):
                    f *= p.factor(g)
            if f != 1.0:
                _put(group, "lr", _get(group, "lr") * f)

    # ------------------------------------------------------------------ torch API
    def step(self, epoch: float | None = None) -> None:  # type: ignore[override]
        """Advance the clock by one call (torch's ``last_epoch += 1``) and write the values.

        Args:
            epoch: deprecated in torch: set the clock to ``epoch`` instead (a warning is
                issued, as torch does); the values are the closed form there.
        """
        if epoch is None:
            self._step_count += 1
            self._step += 1
            self._write()
            return
        warnings.warn(EPOCH_WARNING, UserWarning, stacklevel=2)
        self._set_epoch(epoch)

    def _set_epoch(self, epoch: float) -> None:
        """torch's deprecated ``step(epoch)``: the closed form at ``epoch`` (fractions allowed
        where torch's closed form takes them, e.g. ``ExponentialLR.step(1.5)``)."""
        owner = f"{type(self).__name__}.step"
        if isinstance(epoch, bool) or not isinstance(epoch, (int, float)) or not epoch >= 0:
            raise ValueError(f"{owner}: epoch must be a number >= 0, got epoch={epoch!r}")
        if not math.isfinite(epoch):
            raise ValueError(f"{owner}: epoch must be finite, got epoch={epoch!r}")
        whole = int(epoch // 1)
        if whole != epoch and not self._fractional_epochs:
            raise ValueError(
                f"{owner}: epoch must be a whole number here (a running product of lr_lambda "
                f"has no value between steps), got epoch={epoch!r}"
            )
        self._step_count += 1
        self._step = whole
        self._frac = float(epoch) - whole
        self._write()

    def state_dict(self) -> dict[str, Any]:
        """The Scheduler's JSON state plus, as torch saves them, the ``__dict__`` of callable
        objects (plain functions and lambdas are not saved: rebuild them in code)."""
        out = super().state_dict()
        out["frac"] = self._frac
        out["settings"] = _plain_settings(self._init_args)
        out["lr_lambdas"] = [
            None if _is_function(fn) else dict(fn.__dict__) for fn in self._callables
        ]
        return out

    def load_state_dict(self, state_dict: Mapping[str, Any], *, strict: bool = True) -> None:
        """Restore :meth:`state_dict` (callable objects get their saved ``__dict__`` back).

        As torch does, a checkpoint made with other settings (``step_size``, ``gamma``,
        ``T_max``, milestones, ...) is loaded with the checkpoint's settings: the scheduler is
        rebuilt with them first (on the same optimizer and base rates).
        """
        self._adopt_settings(state_dict.get("settings"))
        saved = state_dict.get("lr_lambdas") or []
        for fn, d in zip(self._callables, saved, strict=False):
            if d is not None:
                fn.__dict__.update(d)
        for tracks in self._tracks.values():
            for s in tracks:
                _reset_caches(s)
        self._frac = float(state_dict.get("frac", 0.0))
        super().load_state_dict(state_dict, strict=strict)

    def _adopt_settings(self, saved: object) -> None:
        if not isinstance(saved, Mapping) or not hasattr(self, "_init_args"):
            return
        mine = _plain_settings(self._init_args)
        theirs = json.loads(json.dumps(dict(saved)))
        if theirs == mine or set(theirs) != set(mine):
            return
        args = dict(self._init_args)
        args.update({k: _as_given(self._init_args[k], v) for k, v in theirs.items()})
        type(self).__init__(self, optimizer=self.optimizer, **args)


# ---------------------------------------------------------------------- helpers
def _plain_settings(args: Mapping[str, Any]) -> dict[str, Any]:
    """The constructor arguments that are plain data (numbers, strings, lists of them), as
    JSON would give them back; callables and child schedulers are left out."""
    out: dict[str, Any] = {}
    for k, v in args.items():
        try:
            text = json.dumps(list(v) if isinstance(v, tuple) else v)
        except (TypeError, ValueError):
            continue
        out[k] = json.loads(text)
    return out


def _as_given(mine: object, theirs: object) -> object:
    """A checkpoint's setting in the type this argument was given in (a tuple stays a tuple)."""
    return tuple(theirs) if isinstance(mine, tuple) and isinstance(theirs, list) else theirs


# ---------------------------------------------------------------------- helpers (values)
def base_lrs(optimizer: Optimizer, last_epoch: int, owner: str) -> list[float]:
    """torch's base rates: each group's ``initial_lr`` (set from ``lr`` when ``last_epoch=-1``).

    Raises:
        TypeError: not an optimizer.
        KeyError: ``last_epoch >= 0`` and a group lacks ``initial_lr`` (as torch).
    """
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{owner}: optimizer must be a torch.optim.Optimizer, got {optimizer!r}")
    if isinstance(last_epoch, bool) or not isinstance(last_epoch, int) or last_epoch < -1:
        raise ValueError(
            f"{owner}: last_epoch must be an integer >= -1, got last_epoch={last_epoch!r}"
        )
    for i, group in enumerate(optimizer.param_groups):
        if last_epoch == -1:
            lr = group["lr"]
            group.setdefault("initial_lr", lr.clone() if isinstance(lr, torch.Tensor) else lr)
        elif "initial_lr" not in group:
            raise KeyError(
                f"{owner}: param 'initial_lr' is not specified in param_groups[{i}] when resuming "
                f"with last_epoch={last_epoch}; load the optimizer's state first"
            )
    return [float(g["initial_lr"]) for g in optimizer.param_groups]


def per_group(owner: str, name: str, value: Any, n: int) -> list[float]:
    """A scalar repeated per group, or a list of one value per group (torch's ``_format_param``)."""
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(
                f"{owner}: {name} must have one value per param group ({n}), got "
                f"{name}={list(value)!r}"
            )
        return [float(v) for v in value]
    return [float(value)] * n


def _get(group: dict[str, Any], name: str) -> float:
    key, pos = writer_for(name, group, 0)
    return float(group[key] if pos < 0 else group[key][pos])


def _put(group: dict[str, Any], name: str, value: float) -> None:
    key, pos = writer_for(name, group, 0)
    if pos < 0 and not isinstance(group[key], torch.Tensor):
        group[key] = value
    else:
        write_slow(group, key, pos, value)


def _is_function(fn: Any) -> bool:
    import types

    return isinstance(fn, types.FunctionType) or not hasattr(fn, "__dict__")


def _reset_caches(s: Schedule) -> None:
    reset = getattr(s, "reset", None)
    if callable(reset):
        reset()
    for child in s._child_schedules():
        _reset_caches(child)
