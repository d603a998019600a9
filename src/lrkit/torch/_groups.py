"""How one hyperparameter reaches the optimizer's param groups.

A :class:`Drive` is one distinct schedule for one hyperparameter, with the groups it writes
into (each with its multiplier). Per step it evaluates its schedule once, whatever the number of
groups, and writes ``value * mult`` into each group in place.

Without controllers a drive reads its values from a block cache: the next :data:`BLOCK` values
of the schedule computed in one vectorised call (schedules are pure functions of the step), and
already multiplied by each distinct multiplier. Blocks start at multiples of :data:`BLOCK`, so the
value at a step does not depend on where a run started or resumed (numpy's vectorised and
scalar loops may differ in the last bit; aligned blocks make every run use the same one).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any

import numpy as np
import torch

from lrkit.controllers._base import Controller
from lrkit.schedules import Schedule, as_schedule

#: Steps evaluated per vectorised call when no controller remaps time.
BLOCK = 512

_OWNER = "Scheduler"


def group_label(group: Mapping[str, Any], index: int) -> str:
    """``param group 2 ('head')`` for error messages."""
    name = group.get("name")
    return f"param group {index}" + (f" ({name!r})" if name is not None else "")


# --------------------------------------------------------------------------- writers
def writer_for(name: str, group: Mapping[str, Any], index: int) -> tuple[str, int]:
    """Where hyperparameter ``name`` lives in ``group``: ``(key, position)``.

    ``position`` is -1 for a plain key, 0 or 1 for an element of the ``betas`` tuple.
    ``beta1`` / ``beta2`` are ``betas[0]`` / ``betas[1]``; ``momentum`` is the ``momentum`` key
    when the group has one (SGD, RMSprop) and ``betas[0]`` otherwise (Adam family), as torch's
    ``OneCycleLR`` does.

    Raises:
        ValueError: the group has no such key.
    """
    if name in ("beta1", "beta2"):
        if "betas" not in group:
            raise ValueError(
                f"{_OWNER}: {name} drives betas[{int(name[-1]) - 1}] of an Adam-style optimizer, but "
                f"{group_label(group, index)} has no 'betas' key (keys: {_keys(group)})"
            )
        return "betas", int(name[-1]) - 1
    if name == "momentum" and "momentum" not in group and "betas" in group:
        return "betas", 0
    if name not in group:
        raise ValueError(
            f"{_OWNER}: cannot drive {name!r}: {group_label(group, index)} has no {name!r} key "
            f"(keys: {_keys(group)})"
        )
    return name, -1


def _keys(group: Mapping[str, Any]) -> list[str]:
    """The group's keys but ``params``, sorted (for error messages only)."""
    return sorted(k for k in group if k != "params")


def write_slow(group: dict[str, Any], key: str, pos: int, value: float) -> None:
    """Write into a tensor-valued entry or one element of ``betas``."""
    if pos < 0:
        group[key].fill_(value)
        return
    betas = group[key]
    if isinstance(betas[pos], torch.Tensor):
        betas[pos].fill_(value)
    elif pos == 0:
        group[key] = (value, betas[1])
    else:
        group[key] = (betas[0], value)


# --------------------------------------------------------------------------- specs
class GroupSpec:
    """A hyperparameter's schedules as the user gave them: one, a list, or a dict by name."""

    __slots__ = ("kind", "name", "value")

    def __init__(self, name: str, spec: object, n_groups: int) -> None:
        self.name = name
        if isinstance(spec, (list, tuple)):
            if len(spec) != n_groups:
                raise ValueError(
                    f"{_OWNER}: {name} has {len(spec)} per-group schedules but the optimizer "
                    f"has {n_groups} param groups"
                )
            self.kind = "list"
            self.value: Any = [_one(name, s, f"[{i}]") for i, s in enumerate(spec)]
        elif isinstance(spec, Mapping) and "type" not in spec:
            self.kind = "names"
            self.value = {k: _one(name, s, f"[{k!r}]") for k, s in spec.items()}
        else:
            self.kind = "all"
            self.value = _one(name, spec, "")

    def for_group(self, group: Mapping[str, Any], index: int) -> Schedule | None:
        """The schedule for group ``index`` (None: this group's value is left alone)."""
        if self.kind == "all":
            return self.value
        if self.kind == "list":
            if index >= len(self.value):
                raise ValueError(
                    f"{_OWNER}: {group_label(group, index)} was added to the optimizer, but "
                    f"{self.name} was given as a list of {len(self.value)} per-group schedules; "
                    f"give a dict by group name (with a 'name' key in each group) instead"
                )
            return self.value[index]
        gname = group.get("name")
        if gname not in self.value:
            raise ValueError(
                f"{_OWNER}: {self.name} has schedules for groups {sorted(map(str, self.value))} "
                f"but {group_label(group, index)} is not among them (a None value leaves a "
                f"group alone)"
            )
        return self.value[gname]

    def to_plain(self) -> Any:
        """JSON-ready form of what the user gave (schedules as ``to_dict``)."""
        if self.kind == "all":
            return self.value.to_dict()
        if self.kind == "list":
            return [None if s is None else s.to_dict() for s in self.value]
        return {str(k): None if s is None else s.to_dict() for k, s in self.value.items()}

    def labelled(self) -> list[tuple[str, Schedule]]:
        """``(where, schedule)`` for every schedule given: ``""``, ``"[1]"`` or ``"['head']"``."""
        if self.kind == "all":
            return [("", self.value)]
        items = enumerate(self.value) if self.kind == "list" else self.value.items()
        return [(f"[{k!r}]", s) for k, s in items if s is not None]

    def map(self, fn: Any) -> GroupSpec:
        """A copy with ``fn`` applied to every schedule."""
        out = object.__new__(GroupSpec)
        out.name, out.kind = self.name, self.kind
        if self.kind == "all":
            out.value = fn(self.value)
        elif self.kind == "list":
            out.value = [None if s is None else fn(s) for s in self.value]
        else:
            out.value = {k: None if s is None else fn(s) for k, s in self.value.items()}
        return out


def check_non_negative(spec: GroupSpec, total_steps: int | None) -> None:
    """Raise if a schedule of a hyperparameter torch's optimizers reject when negative (``lr``,
    ``momentum``, ``weight_decay``, ``beta1``, ``beta2``) goes below 0.

    Checked at construction on the steps ``[0, horizon]`` (every step up to 20,000, else a grid
    plus every phase end), ``horizon`` being the schedule's duration, else ``total_steps``,
    else 10,000 steps (cyclic schedules repeat).

    Raises:
        ValueError: naming the hyperparameter, the schedule, the value and the step.
    """
    from lrkit.tools._sampling import sample_steps

    if spec.name not in NON_NEGATIVE:
        return
    for where, s in spec.labelled():
        horizon = s.duration if s.duration is not None else total_steps or 10_000
        steps = sample_steps(max(1, math.ceil(horizon)), [s])
        values = np.asarray(s(steps), dtype=np.float64)
        if (values < 0).any():
            i = int(np.argmax(values < 0))
            raise ValueError(
                f"{_OWNER}: {spec.name}{where}={s} is negative ({float(values[i])!r} at step "
                f"{int(steps[i])}); torch's optimizers reject a negative {spec.name}"
            )


#: Hyperparameters that torch's optimizers reject when negative.
NON_NEGATIVE = ("lr", "momentum", "weight_decay", "beta1", "beta2")


def _one(name: str, spec: object, where: str) -> Schedule | None:
    if spec is None and where:
        return None
    try:
        return as_schedule(spec)  # type: ignore[arg-type]
    except ValueError as exc:  # a bad spec or number: say which argument it came from
        raise type(exc)(f"{_OWNER}: {name}{where}: {exc}") from None
    except TypeError:
        raise TypeError(
            f"{_OWNER}: {name}{where} must be a Schedule, a spec string or dict, or a number, "
            f"got {name}{where}={spec!r}"
        ) from None


def multiplier(
    name: str, group: Mapping[str, Any], index: int, group_mult: Mapping[str, Any]
) -> float:
    """``group['<name>_mult']`` times the ``group_mult`` entry for the group's name (else for
    its ``"block"``, which :func:`lrkit.torch.param_groups` sets).

    A number in ``group_mult`` multiplies ``lr`` only; a dict gives one multiplier per
    hyperparameter (``{"lr": 10.0, "weight_decay": 0.0}``).
    """
    mult = group.get(f"{name}_mult", 1.0)
    entry = group_mult.get(group.get("name"), None) if group_mult else None  # type: ignore[arg-type]
    if entry is None and group_mult and "block" in group:  # param_groups: a block's two groups
        entry = group_mult.get(group["block"])
    if isinstance(entry, Mapping):
        extra = entry.get(name, 1.0)
    elif entry is not None and name == "lr":
        extra = entry
    else:
        extra = 1.0
    for label, m in ((f"{name}_mult", mult), ("group_mult", extra)):
        if isinstance(m, bool) or not isinstance(m, Real) or not math.isfinite(m) or m < 0:
            raise ValueError(
                f"{_OWNER}: {label} for {name} in {group_label(group, index)} must be a finite "
                f"number >= 0, got {m!r}"
            )
    return float(mult) * float(extra)


# --------------------------------------------------------------------------- drives
class Drive:
    """One distinct schedule of one hyperparameter and the groups it writes into."""

    __slots__ = (
        "_base",
        "_block",
        "_plain_clock",
        "_start",
        "controllers",
        "fast",
        "floor",
        "name",
        "schedule",
        "slow",
    )

    def __init__(self, name: str, schedule: Schedule, controllers: Sequence[Any]) -> None:
        self.name = name
        self.schedule = schedule
        self.controllers = list(controllers)
        floors = [c.floor for c in self.controllers if getattr(c, "floor", None) is not None]
        self.floor: float | None = max(floors) if floors else None
        #: (mult, key, [groups]) for plain float entries.
        self.fast: list[tuple[float, str, list[dict[str, Any]]]] = []
        #: (mult, group, key, pos) for tensors and betas.
        self.slow: list[tuple[float, dict[str, Any], str, int]] = []
        self._start = -1
        self._base: list[float] = []
        self._block: list[tuple[list[float], str, list[dict[str, Any]]]] = []
        # controllers that only scale (the base class's identity clock): the schedule's value
        # comes from the precomputed block, as without controllers; not for a controller that
        # asks for one evaluation per step (compat PerStep: Python callables, no look-ahead)
        self._plain_clock = all(
            type(c).clock is Controller.clock and not getattr(c, "evaluate_per_step", False)
            for c in self.controllers
        )

    def add(self, group: dict[str, Any], key: str, pos: int, mult: float) -> None:
        """Make this drive write ``value * mult`` into ``group[key]`` (or ``betas[pos]``)."""
        if pos < 0 and not isinstance(group[key], torch.Tensor):
            for m, k, groups in self.fast:
                if m == mult and k == key:
                    groups.append(group)
                    break
            else:
                self.fast.append((mult, key, [group]))
        else:
            self.slow.append((mult, group, key, pos))
        self._start = -1

    def value(self, step: int) -> float:
        """The value before per-group multipliers at optimizer step ``step``."""
        if not self.controllers:
            return float(self.schedule(step))
        return self._controlled(step)

    def _controlled(self, step: int) -> float:
        if self._plain_clock:
            base = self._block_base(step)
        else:
            c: float = step
            for ctl in self.controllers:
                c = ctl.clock(c)
            base = float(self.schedule(c))
        factor = 1.0
        for ctl in self.controllers:
            factor *= ctl.scale(step)
        v = base * factor
        if self.floor is not None and v < self.floor:
            v = self.floor
        return v

    def _block_base(self, step: int) -> float:
        """The schedule's value at ``step`` from the precomputed block."""
        i = step - self._start
        if self._start < 0 or not 0 <= i < BLOCK:
            self._fill(step)
            i = step - self._start
        return self._base[i]

    def write(self, step: int) -> None:
        """Write the values for optimizer step ``step`` into every group of this drive."""
        if self.controllers:
            v = self._controlled(step)
            for m, key, groups in self.fast:
                vm = v * m
                for g in groups:
                    g[key] = vm
            for m, g, key, pos in self.slow:
                write_slow(g, key, pos, v * m)
            return
        i = step - self._start
        if self._start < 0 or not 0 <= i < BLOCK:
            self._fill(step)
            i = step - self._start
        for vals, key, groups in self._block:
            v = vals[i]
            for g in groups:
                g[key] = v
        if self.slow:
            base = self._base[i]
            for m, g, key, pos in self.slow:
                write_slow(g, key, pos, base * m)

    def _fill(self, step: int) -> None:
        start = (step // BLOCK) * BLOCK
        base = np.asarray(self.schedule(np.arange(start, start + BLOCK, dtype=np.float64)))
        scaled: dict[float, list[float]] = {}
        block = []
        for m, key, groups in self.fast:
            if m not in scaled:
                scaled[m] = base.tolist() if m == 1.0 else (base * m).tolist()
            block.append((scaled[m], key, groups))
        self._block = block
        self._start = start
        self._base = base.tolist() if self.slow or self.controllers else []
