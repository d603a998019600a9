"""Progressive unfreezing: a plan of which param groups train from which step.

:class:`Unfreeze` is a controller of :class:`lrkit.torch.Scheduler` (``controllers=[...]``): the
Scheduler steps it and saves it in its checkpoint like any controller. Every param group stays
in the optimizer from the start; a frozen group has ``requires_grad=False`` on its parameters
(no gradient, so no update, no weight decay, no optimizer state) and its ``lr`` written as 0.
At its planned step a group's parameters get ``requires_grad=True`` back, and its rate, for a
group unfrozen at step ``u > 0``, is re-warmed::

    lr_g(k) = sched_lr(k) * mult_g * r(k - u) * prod_e b_e(k - u_e)
    r(j)    = min(1, (j + 1) / rewarm_steps)             (1 if rewarm_steps == 0)
    b_e(j)  = 1 + (bump - 1) * max(0, 1 - j / bump_steps)

where the product runs over the later unfreezing events ``e`` (at steps ``u < u_e <= k``): the
groups already training get a mild bump that decays linearly back to 1 when others join
(``bump=1``: none). Everything is a function of the step and the plan, so a resumed run unfreezes
the same groups at the same steps; the state saved is which unfreezings have been applied (so a
requested optimizer-state reset is not repeated after a resume).

Keeping every group in the optimizer (rather than ``add_param_group`` at the step) keeps the
optimizer's ``state_dict`` the same shape throughout, so checkpoints load in any order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch

from lrkit.controllers._base import Controller, integer
from lrkit.controllers._state import step_list
from lrkit.schedules._check import positive
from lrkit.schedules._errors import ScheduleTypeError, ScheduleValueError
from lrkit.schedules._units import Length, RunInfo, check_length, resolve_length
from lrkit.torch._reset import reset_optimizer_state

__all__ = ["Unfreeze"]

_OWNER = "Unfreeze"


class Unfreeze(Controller):
    """Unfreeze param groups at planned steps, with a re-warm of their rate.

    Args:
        plan: ``[(name, at), ...]``: the group(s) whose ``"block"`` or ``"name"`` is ``name``
            train from step ``at`` (an integer, ``"10%"`` of the run or ``"3ep"``). Groups the
            plan does not name stay frozen for the whole run.
        rewarm_steps: steps over which a group unfrozen after step 0 ramps up to its rate.
        bump: multiplier given to the groups already training when others are unfrozen
            (>= 1; 1: none), decaying linearly back to 1 over ``bump_steps``.
        bump_steps: length of that decay (default ``rewarm_steps``, at least 1).
        reset_state: drop the optimizer state (Adam moments, momentum) of a group when it is
            unfrozen after step 0 (for an optimizer loaded from pre-training).

    Lengths in units are bound with the Scheduler's ``total_steps`` and ``steps_per_epoch`` when
    it is built.

    Raises:
        TypeError, ValueError: a malformed plan or argument (here); a plan naming no group, or a
            group whose ``lr`` is not driven (when the Scheduler is built).

    Example:
        >>> groups = lrkit.torch.param_groups(model)             # doctest: +SKIP
        >>> plan = Unfreeze([("head", 0), ("blocks.3", "10%"), ("blocks.2", "20%")],
        ...                 rewarm_steps=50)                     # doctest: +SKIP
        >>> sched = Scheduler(opt, lr=cosine(1e-3, steps=1000), controllers=[plan],
        ...                   total_steps=1000)                  # doctest: +SKIP
    """

    _state_fields = ("done",)
    _state_checks: ClassVar[Mapping[str, Any]] = {"done": step_list}
    _settings_fields = (
        *Controller._settings_fields,
        "rewarm_steps",
        "bump",
        "bump_steps",
        "reset_state",
    )

    def __init__(
        self,
        plan: Sequence[tuple[str, Length]],
        *,
        rewarm_steps: int = 0,
        bump: float = 1.0,
        bump_steps: int | None = None,
        reset_state: bool = False,
    ) -> None:
        super().__init__(target="lr")
        self.plan: list[tuple[str, Length]] = _check_plan(plan)
        self.rewarm_steps = _count("rewarm_steps", rewarm_steps, low=0)
        self.bump = positive(_OWNER, "bump", bump)
        if self.bump < 1:
            raise ScheduleValueError(f"{_OWNER}: bump must be >= 1, got bump={bump!r}")
        steps = max(1, self.rewarm_steps) if bump_steps is None else bump_steps
        self.bump_steps = _count("bump_steps", steps, low=1)
        if not isinstance(reset_state, bool):
            raise ScheduleTypeError(
                f"{_OWNER}: reset_state must be True or False, got reset_state={reset_state!r}"
            )
        self.reset_state = reset_state
        #: Indices of the groups whose unfreezing has been applied (saved in checkpoints).
        self.done: list[int] = []
        self._every: tuple[Length, Length] | None = None
        self._at: list[int | None] | None = None  # per param group: unfreeze step, None: never
        self._events_at: list[int] = []
        self._frozen: list[bool | None] = []

    @classmethod
    def every(cls, steps: Length, *, start: Length = 0, **options: Any) -> Unfreeze:
        """One block more every ``steps``, from the top: the last block (head) at ``start``,
        the one below at ``start + steps``, ... down to the first (blocks as ordered by
        :func:`lrkit.torch.param_groups`, by their ``"block"`` key).

        ``options`` are those of :class:`Unfreeze`.
        """
        out = cls([], **options)
        out._every = (
            check_length(f"{_OWNER}.every", "steps", steps),
            check_length(f"{_OWNER}.every", "start", start, allow_zero=True),
        )
        return out

    # ------------------------------------------------------------------ binding
    def after_write(self, scheduler: Any) -> None:
        """Called by the Scheduler after it writes a step's values: freeze, unfreeze, scale.

        Sets ``requires_grad`` of every managed group's parameters for the current step and
        multiplies each group's ``lr`` (just written by the Scheduler) by the formula above.
        """
        groups = scheduler.optimizer.param_groups
        if self._at is None or len(self._at) != len(groups):
            self._bind(scheduler, groups)
        assert self._at is not None
        k = int(scheduler.last_epoch)
        self._seen(k)
        for i, g in enumerate(groups):
            u = self._at[i]
            frozen = u is None or k < u
            if frozen is not self._frozen[i]:
                for p in g["params"]:
                    p.requires_grad_(not frozen)
                self._frozen[i] = frozen
            if u is not None and not frozen and i not in self.done:
                self.done.append(i)
                if self.reset_state and u > 0:
                    reset_optimizer_state(scheduler.optimizer, [i])
                self._emit("unfreeze", k, groups=[i])
            factor = 0.0 if frozen else self.factor(u, k)  # type: ignore[arg-type]
            if factor != 1.0:
                lr = g["lr"]
                if isinstance(lr, torch.Tensor):
                    lr.mul_(factor)
                else:
                    g["lr"] = lr * factor

    def lr_factor(self, scheduler: Any, group: int, step: int) -> float:
        """The multiplier :meth:`after_write` gives group ``group``'s ``lr`` at ``step`` (0:
        frozen then), changing nothing: what :meth:`lrkit.torch.Scheduler.values_at` shows."""
        groups = scheduler.optimizer.param_groups
        if self._at is None or len(self._at) != len(groups):
            self._bind(scheduler, groups)
        assert self._at is not None
        u = self._at[group]
        return 0.0 if u is None or step < u else self.factor(u, step)

    def factor(self, unfrozen_at: int, step: int) -> float:
        """The multiplier at ``step`` of a group unfrozen at ``unfrozen_at <= step``."""
        j = step - unfrozen_at
        out = 1.0
        if unfrozen_at > 0 and self.rewarm_steps > 0 and j < self.rewarm_steps:
            out = (j + 1) / self.rewarm_steps
        if self.bump != 1.0:
            for e in self._events_at:
                if unfrozen_at < e <= step and step - e < self.bump_steps:
                    out *= 1.0 + (self.bump - 1.0) * (1.0 - (step - e) / self.bump_steps)
        return out

    @property
    def schedule_of_groups(self) -> list[int | None]:
        """Per param group, the step it is unfrozen at (None: never), once bound."""
        if self._at is None:
            raise ScheduleValueError(f"{_OWNER}: not bound yet; pass it to a Scheduler first")
        return list(self._at)

    def _bind(self, scheduler: Any, groups: Sequence[Mapping[str, Any]]) -> None:
        run = RunInfo(getattr(scheduler, "total_steps", None), scheduler.steps_per_epoch)
        blocks = [str(g.get("block", g.get("name", f"group {i}"))) for i, g in enumerate(groups)]
        plan = self.plan
        if self._every is not None:
            every = resolve_length(f"{_OWNER}.every", "steps", self._every[0], run)
            start = resolve_length(f"{_OWNER}.every", "start", self._every[1], run)
            top_down = list(dict.fromkeys(reversed(blocks)))
            plan = [(b, start + i * every) for i, b in enumerate(top_down)]
        at: list[int | None] = [None] * len(groups)
        for i, (name, when) in enumerate(plan):
            step = resolve_length(_OWNER, f"plan[{i}]", when, run)
            hits = [j for j, g in enumerate(groups) if name in (blocks[j], g.get("name"))]
            if not hits:
                raise ScheduleValueError(
                    f"{_OWNER}: plan[{i}] names {name!r}, which is no param group's 'block' or "
                    f"'name' (groups: {sorted(set(blocks))})"
                )
            for j in hits:
                at[j] = step if at[j] is None else min(at[j], step)  # type: ignore[type-var]
        spec = scheduler._bound["lr"]
        for j, g in enumerate(groups):
            if spec.for_group(g, j) is None:
                raise ScheduleValueError(
                    f"{_OWNER}: param group {j} ({blocks[j]!r}) has no lr schedule; Unfreeze "
                    f"scales the lr the Scheduler writes into every group"
                )
        self._at = at
        self._events_at = sorted({u for u in at if u is not None and u > 0})
        self._frozen = [None] * len(groups)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """``done`` and the plan as bound (steps per group), to check a resumed run's plan."""
        out = super().state_dict()
        out["at"] = None if self._at is None else list(self._at)
        return out

    def _check_state(self, state: object, *, strict: bool = True) -> Any:
        """Check the state as any controller's, and that the checkpoint's bound plan (``"at"``)
        is this one's: a resumed run must unfreeze the same groups at the same steps."""
        if isinstance(state, Mapping) and "at" in state:
            theirs = state["at"]
            if self._at is not None and theirs is not None and list(theirs) != self._at:
                raise ScheduleValueError(
                    f"{_OWNER}.load_state_dict: the checkpoint unfreezes the groups at steps "
                    f"{theirs} but this plan at {self._at}"
                )
            state = {k: v for k, v in state.items() if k != "at"}
        return super()._check_state(state, strict=strict)

    def _apply_state(self, checked: Any, *, stacklevel: int = 2) -> None:
        """Restore ``done``; ``requires_grad`` is set again at the next write."""
        super()._apply_state(checked, stacklevel=stacklevel + 1)
        self.done = [int(i) for i in self.done]
        self._frozen = [None] * len(self._frozen)

    def __repr__(self) -> str:
        plan = f"every{self._every!r}" if self._every is not None else repr(self.plan)
        return (
            f"Unfreeze({plan}, rewarm_steps={self.rewarm_steps}, bump={self.bump}, "
            f"bump_steps={self.bump_steps}, reset_state={self.reset_state})"
        )


def _check_plan(plan: object) -> list[tuple[str, Length]]:
    if isinstance(plan, (str, bytes, Mapping)) or not isinstance(plan, Sequence):
        raise ScheduleTypeError(
            f"{_OWNER}: plan must be a list of (group name, step) pairs, got plan={plan!r}"
        )
    out: list[tuple[str, Length]] = []
    for i, entry in enumerate(plan):
        if not isinstance(entry, (tuple, list)) or len(entry) != 2 or not isinstance(entry[0], str):
            raise ScheduleTypeError(
                f"{_OWNER}: plan[{i}] must be a (group name, step) pair, got plan[{i}]={entry!r}"
            )
        out.append((entry[0], check_length(_OWNER, f"plan[{i}]", entry[1], allow_zero=True)))
    return out


def _count(name: str, value: object, *, low: int) -> int:
    return integer(_OWNER, name, value, low=low)
