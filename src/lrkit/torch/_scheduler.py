"""``lrkit.torch.Scheduler``: drive any hyperparameter of any param group from lrkit schedules."""

from __future__ import annotations

import sys
import weakref
from collections.abc import Iterable, Mapping
from numbers import Integral
from typing import Any

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from lrkit.torch import _state
from lrkit.torch._accelerate import WRAPPER_MODULE, updates_per_update
from lrkit.torch._clock import IdleWatch
from lrkit.torch._groups import Drive, GroupSpec, check_non_negative
from lrkit.torch._metrics import DEFAULT_WAIT, MetricRouter, metric_names
from lrkit.torch._reset import apply_controller_events
from lrkit.torch._resize import POLICIES
from lrkit.torch._wiring import bind_specs, build_drives, preview_values

_CONTROLLER_MEMBERS = ("target", "clock", "scale", "observe", "state_dict", "load_state_dict")


class Scheduler(LRScheduler):
    """Drive ``lr`` (and ``momentum``, ``beta1``, ``weight_decay``, any param-group key) from schedules.

    Each keyword names a hyperparameter and gives its schedule: a :class:`lrkit.Schedule`, a
    number (constant), a spec string (``"warmup(cosine(1e-3, steps=9000), steps=1000)"``) or a
    spec dict; or per group, a list (one per param group, ``None`` leaves a group alone) or a
    dict by the groups' ``"name"`` key. For hyperparameter ``h`` at optimizer step ``k`` group
    ``g`` gets ``schedule(k) * mult_g``, where ``mult_g = group["<h>_mult"] * group_mult[name]``
    (both default 1). ``beta1``/``beta2`` are the elements of Adam's ``betas``; ``momentum`` is
    the ``momentum`` key, or ``betas[0]`` for the Adam family (as torch's ``OneCycleLR``).

    **Clock.** ``clock="updates"`` (default): time is the number of optimizer updates really
    applied, counted by a hook on ``optimizer.step``. Call ``scheduler.step()`` after each
    ``optimizer.step()`` (or ``scaler.step(optimizer)``): it moves the clock by the updates
    applied since the last call, so when a ``GradScaler`` skips a step the clock stays, and with
    gradient accumulation it counts optimizer steps, not micro-batches (calling ``step()`` on
    every micro-batch is harmless); 1000 calls in a row that find no update (an optimizer step
    replayed in a CUDA graph, where hooks do not run) warn once. ``clock="calls"``: time is the
    number of ``step()`` calls, as in torch (e.g. one call per epoch with a schedule whose
    lengths are epochs).
    ``step(to=k)`` sets the clock to ``k``. The constructor writes the values for step 0 into
    the groups and takes no step.

    Lengths in units (``"10%"``, ``"3ep"``) are bound here with ``total_steps`` and
    ``steps_per_epoch``. Groups added later with ``optimizer.add_param_group`` are picked up at
    the next ``step()``. Controllers (see :mod:`lrkit.controllers`) modify one hyperparameter
    each from metrics passed to ``step(metric)`` or :meth:`observe`.

    Args:
        optimizer: a ``torch.optim.Optimizer``.
        lr: schedule of the learning rate (None: not driven).
        controllers: controllers, applied in order to the hyperparameter each targets.
        total_steps: the run's length in optimizer steps (binds ``'%'`` lengths; the old length
            for :meth:`resize`).
        steps_per_epoch: optimizer steps per epoch (binds ``'ep'`` lengths).
        group_mult: multipliers by group name: a number (for ``lr``) or a dict by
            hyperparameter, e.g. ``{"backbone": 0.1, "head": {"lr": 10.0, "weight_decay": 0.0}}``.
        on_resize: ``"keep"`` or ``"rescale"``: policy of :meth:`resize` when none is passed,
            and applied by :meth:`load_state_dict` when the checkpoint's ``total_steps`` differs
            from this scheduler's (None: such a load raises).
        clock: ``"updates"`` or ``"calls"`` (see above).
        **hyperparameters: other hyperparameters by name (``momentum=``, ``beta1=``, ...).

    Raises:
        TypeError: not an optimizer, a bad schedule or controller.
        ValueError: no hyperparameter given, a group without the key, unit lengths without
            ``total_steps``/``steps_per_epoch``, a controller for an undriven hyperparameter.

    >>> import torch
    >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=1.0, momentum=0.9)
    >>> sched = lrkit.torch.Scheduler(opt, lr=linear(0.1, 0.0, steps=10))
    >>> opt.param_groups[0]["lr"]
    0.1
    >>> opt.step(); sched.step(); sched.get_last_lr()
    [0.09000000000000001]
    """

    #: Reject schedules that go negative for lr, momentum, ... at construction (the torch
    #: drop-ins do not: they evaluate Python callables only when stepped, as torch does).
    _check_values = True

    def __init__(
        self,
        optimizer: Optimizer,
        lr: Any = None,
        *,
        controllers: Iterable[Any] = (),
        total_steps: int | None = None,
        steps_per_epoch: int | None = None,
        group_mult: Mapping[str, Any] | None = None,
        on_resize: str | None = None,
        clock: str = "updates",
        **hyperparameters: Any,
    ) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"Scheduler: optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
            )
        self.optimizer = optimizer
        self._total = _opt_length("total_steps", total_steps)
        self.steps_per_epoch = _opt_length("steps_per_epoch", steps_per_epoch)
        if not isinstance(clock, str) or clock not in ("updates", "calls"):
            raise ValueError(f"Scheduler: clock must be 'updates' or 'calls', got clock={clock!r}")
        if on_resize is not None and (not isinstance(on_resize, str) or on_resize not in POLICIES):
            raise ValueError(
                f"Scheduler: on_resize must be 'keep', 'rescale' or None, got on_resize={on_resize!r}"
            )
        self.clock, self.on_resize = clock, on_resize
        if group_mult is not None and not isinstance(group_mult, Mapping):
            raise TypeError(
                f"Scheduler: group_mult must be a dict by group name, got {group_mult!r}"
            )
        self._group_mult = dict(group_mult or {})
        given = {"lr": lr, **hyperparameters} if lr is not None else dict(hyperparameters)
        given = {k: v for k, v in given.items() if v is not None}
        if not given:
            raise ValueError("Scheduler: give at least one schedule, e.g. lr=cosine(...)")
        if "momentum" in given and "beta1" in given:
            raise ValueError("Scheduler: momentum and beta1 both drive Adam's betas[0]; give one")
        n = len(optimizer.param_groups)
        self._specs = {name: GroupSpec(name, spec, n) for name, spec in given.items()}
        self._controllers = self._check_controllers(controllers)
        # controllers that act on the groups after each write (lrkit.torch.Unfreeze)
        self._after_write = [c for c in self._controllers if hasattr(c, "after_write")]
        wait = self.steps_per_epoch if self.steps_per_epoch is not None else DEFAULT_WAIT
        self._router = MetricRouter(self._controllers, wait)
        self._total0 = self._total_constructed = self._total
        self._resizes: list[list[Any]] = []
        self._step = 0
        self._pending = 0
        self._step_count = 1
        self._bind()
        if self._check_values:
            for spec in self._bound.values():
                check_non_negative(spec, self._total)
        self._groups_ref: list[dict[str, Any]] | None = None
        self._drives: list[Drive] = []
        self._sync_groups()
        #: The controllers' events drained at the last metric (see lrkit.controllers).
        self.last_events: list[dict[str, Any]] = []
        self._hook: Any = None
        self._count_updates()
        self._write()

    def _count_updates(self) -> None:
        """With ``clock="updates"``, count the optimizer's steps (a post-step hook)."""
        if self.clock != "updates":
            return
        self._idle = IdleWatch()
        ref = weakref.ref(self)

        def _count(opt: Any, args: Any, kwargs: Any) -> None:
            s = ref()
            if s is not None:
                s._pending += 1

        self._hook = self.optimizer.register_step_post_hook(_count)

    def __getstate__(self) -> dict[str, Any]:
        # the hook lives on the optimizer and is not picklable: a copy registers its own
        state = self.__dict__.copy()
        state["_hook"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._groups_ref = None
        self._count_updates()

    # ------------------------------------------------------------------ construction
    def _check_controllers(self, controllers: Iterable[Any]) -> list[Any]:
        out = list(controllers)
        for i, c in enumerate(out):
            missing = [m for m in _CONTROLLER_MEMBERS if not hasattr(c, m)]
            if missing:
                raise TypeError(
                    f"Scheduler: controllers[{i}] = {c!r} lacks {missing} (see "
                    f"lrkit.controllers.Controller)"
                )
            if c.target not in self._specs:
                raise ValueError(
                    f"Scheduler: controllers[{i}] targets {c.target!r}, which has no schedule "
                    f"here (driven: {sorted(self._specs)}); pass {c.target}=... too"
                )
        return out

    def _bind(self) -> None:
        """Bind unit lengths for the run, then replay resizes: ``self._bound``."""
        self._bound = bind_specs(self._specs, self._total0, self.steps_per_epoch, self._resizes)

    def _sync_groups(self) -> None:
        """(Re)build the drives from the optimizer's current param groups."""
        groups = self.optimizer.param_groups
        self._drives = build_drives(self._bound, self._controllers, groups, self._group_mult)
        self._groups_ref = groups
        self._n_groups = len(groups)

    # ------------------------------------------------------------------ stepping
    def _write(self) -> None:
        groups = self.optimizer.param_groups
        if groups is not self._groups_ref or len(groups) != self._n_groups:
            self._sync_groups()
        k = self._step
        for d in self._drives:
            d.write(k)
        for c in self._after_write:
            c.after_write(self)

    def step(  # type: ignore[override]
        self, metric: float | None = None, *, to: int | None = None, **metrics: Any
    ) -> None:
        """Advance the clock and write the new values into the param groups.

        Call once after each ``optimizer.step()``. With ``clock="updates"`` the clock moves by
        the optimizer updates really applied since the last call (0 when a GradScaler skipped
        the step); with ``clock="calls"`` by one.

        Args:
            metric: an unnamed metric for the controllers that name none (e.g. a loss),
                observed at the new step after a mean over ranks when torch.distributed is
                initialised.
            to: set the clock to this step instead of advancing it (resuming from a global
                step).
            **metrics: named metrics, each shown only to the controllers watching that name
                (``step(train_loss=loss)`` for ``RestartOnShift(metric="train_loss")``).

        Raises:
            ValueError: ``to`` not an integer >= 0.
            TypeError: a metric given but no controller watching it.
        """
        before = self._step
        if to is not None:
            if isinstance(to, bool) or not isinstance(to, Integral) or to < 0:
                raise ValueError(f"Scheduler.step: to must be an integer >= 0, got to={to!r}")
            self._step = int(to)
        elif self.clock == "updates":
            n = self._pending
            self._idle.see(n, self._step)  # warns once when many calls in a row find none
            if n and WRAPPER_MODULE in sys.modules:
                # Accelerate's wrapper calls step() num_processes times per update
                n *= updates_per_update(sys._getframe(1))
            self._step += n
        else:
            self._step += 1
        # torch's call counter; with clock="updates" it follows the clock, so wrappers that
        # stop stepping once _step_count > total_steps (Accelerate) stop at the run's end
        self._step_count = self._step + 1 if self.clock == "updates" else self._step_count + 1
        self._pending = 0
        if metric is not None or metrics:
            self._observe(metric, metrics, owner="Scheduler.step")
        if to is None and self._router.watching:
            self._router.advance(self._step - before)
        self._write()

    def set_step(self, step: int) -> None:
        """Set the clock to ``step`` (optimizer updates already made) and write its values."""
        self.step(to=step)

    def observe(self, metric: float | None = None, **metrics: Any) -> None:
        """Show metrics to the controllers at the current step, without advancing the clock.

        Use it for a metric computed once per epoch (validation loss): ``observe(0.31)`` shows
        an unnamed metric to the controllers that name none; ``observe(val_loss=0.31,
        train_loss=1.2)`` shows each value only to the controllers watching that name (see
        :attr:`metric_names`). The controllers' new decisions are written into the groups at
        once. Events the controllers emit are drained into :attr:`last_events`; one asking for
        ``reset_optimizer`` drops the optimizer's per-parameter state (Adam moments, momentum
        buffers) of the groups it names.

        Raises:
            TypeError: no metric, a value that is not a number, a name no controller watches,
                or an unnamed metric when every controller watches a named one.
        """
        if metric is None and not metrics:
            raise TypeError(
                "Scheduler.observe: give a metric, e.g. observe(0.3) or observe(val_loss=0.3)"
            )
        self._observe(metric, metrics, owner="Scheduler.observe")
        self._write()

    def _observe(
        self, metric: Any, metrics: Mapping[str, Any] | None = None, *, owner: str = "Scheduler"
    ) -> None:
        self._router.feed(owner, self._step, metric, metrics or {})
        self._drain_events()

    @property
    def metric_names(self) -> tuple[str, ...]:
        """The metric names the controllers watch (``Plateau(metric="val_loss")``), in order.

        Controllers with ``metric=None`` take the unnamed metric and are not listed.
        """
        return metric_names(self._controllers)

    @property
    def takes_unnamed_metric(self) -> bool:
        """Whether a controller that uses metrics names none, and so takes ``step(metric)``'s
        unnamed value."""
        return self._router.takes_unnamed

    @property
    def metric_wait(self) -> int | None:
        """Steps a metric-watching controller may go without a metric before it warns once.

        Defaults to ``steps_per_epoch`` (a whole epoch) when given, else 1000 steps; None
        turns the warning off.
        """
        return self._router.wait

    @metric_wait.setter
    def metric_wait(self, value: int | None) -> None:
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, Integral) or value < 1
        ):
            raise ValueError(
                f"Scheduler.metric_wait: must be None or an integer >= 1, got {value!r}"
            )
        self._router.wait = None if value is None else int(value)

    def _drain_events(self) -> None:
        """Act on the controllers' events: reset optimizer state where one asks for it."""
        self.last_events = apply_controller_events(self.optimizer, self._controllers)

    # ------------------------------------------------------------------ run length
    def resize(self, total_steps: int, policy: str | None = None) -> None:
        """Change the run's length from the current step on.

        ``policy="keep"``: every step keeps its value (past the schedule's end the final value
        holds). ``policy="rescale"``: the part of the schedule not yet run is stretched (or
        squeezed) to end at ``total_steps``; values are continuous at the current step. The
        resize is recorded in :meth:`state_dict`, so a resumed run replays it.

        Raises:
            ValueError: bad ``total_steps`` (must exceed the current step for "rescale"), no
                policy given and no ``on_resize``.
        """
        new_total = _opt_length("total_steps", total_steps)
        policy = policy if policy is not None else self.on_resize
        if policy not in POLICIES:
            raise ValueError(
                f"Scheduler.resize: policy must be 'keep' or 'rescale', got policy={policy!r}"
            )
        if new_total is None or (policy == "rescale" and new_total <= self._step):
            raise ValueError(
                f"Scheduler.resize: total_steps must be > the current step {self._step} for "
                f"policy='rescale', got total_steps={total_steps!r}"
            )
        if new_total == self._total:
            return
        self._resizes.append([self._step, new_total, policy])
        try:
            self._bind()
        except ValueError:
            self._resizes.pop()
            raise
        self._total = new_total
        self._groups_ref = None
        self._write()

    # ------------------------------------------------------------------ torch API
    @property
    def total_steps(self) -> int:
        """The run's length in optimizer steps (after resizes).

        Raises:
            AttributeError: no ``total_steps`` was given, so ``hasattr(s, "total_steps")`` is
                False, as wrappers such as Accelerate's expect of a scheduler without one.
        """
        if self._total is None:
            raise AttributeError("Scheduler.total_steps: not given; pass total_steps= to set it")
        return self._total

    @property
    def last_epoch(self) -> int:  # type: ignore[override]
        """The clock (torch's name): optimizer updates made, or ``step()`` calls."""
        return self._step

    @last_epoch.setter
    def last_epoch(self, value: int) -> None:
        self._step = int(value)

    @property
    def base_lrs(self) -> list[float]:  # type: ignore[override]
        """Learning rates at step 0 per group (the group's own lr where lr is not driven)."""
        return self.values_at(0).get("lr", [g["lr"] for g in self.optimizer.param_groups])

    def get_last_lr(self) -> list[float | torch.Tensor]:
        """The learning rate of each param group, as written at the last step."""
        return [
            g["lr"].clone() if isinstance(g["lr"], torch.Tensor) else g["lr"]
            for g in self.optimizer.param_groups
        ]

    def get_lr(self) -> list[float | torch.Tensor]:
        """Same as :meth:`get_last_lr` (torch's abstract method)."""
        return self.get_last_lr()

    def values_at(self, step: int) -> dict[str, list[float | None]]:
        """Each hyperparameter's value per group at ``step`` (None: group not driven).

        Computed from the schedules, controllers, multipliers and an :class:`Unfreeze` plan's
        factors (0 for a group frozen at ``step``); nothing is written.
        """
        out = preview_values(
            self._bound, self._controllers, self.optimizer.param_groups, self._group_mult, step
        )
        lrs = out.get("lr")
        for c in self._after_write:
            if lrs is not None and hasattr(c, "lr_factor"):
                lrs[:] = [
                    None if v is None else v * c.lr_factor(self, i, step) for i, v in enumerate(lrs)
                ]
        return out

    @property
    def schedules(self) -> dict[str, Any]:
        """The bound schedules driven, by hyperparameter (one, a list, or a dict by name)."""
        return {name: spec.value for name, spec in self._bound.items()}

    def state_dict(self) -> dict[str, Any]:
        """Small, JSON-serialisable state: clock, run, schedule specs, resizes, controllers."""
        return _state.build(self)

    def load_state_dict(self, state_dict: Mapping[str, Any], *, strict: bool = True) -> None:
        """Restore the clock, resizes and controllers; write the values for that step.

        The whole state is validated first (format, keys, each value's type, range and
        finiteness, every controller's state), and only then applied: a refused load changes
        nothing. The schedules given to this scheduler must equal the checkpoint's, and each
        lrkit controller's settings its saved ones (``strict=False``: keep this scheduler's,
        with a warning). A different ``total_steps`` is resized with ``on_resize`` or raises.

        Raises:
            ValueError: not an lrkit state, a bad value (naming its key and the value), a
                schedule or settings mismatch, or a run-length mismatch.
            TypeError: a value of the wrong type.
        """
        _state.load(self, state_dict, strict=strict)

    def __repr__(self) -> str:
        specs = ", ".join(f"{k}={v!s}" for k, v in self.schedules.items())
        return f"Scheduler({specs}, step={self._step})"


def _opt_length(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Integral) or value <= 0:
        raise ValueError(f"Scheduler: {name} must be a positive integer, got {name}={value!r}")
    return int(value)


__all__ = ["Scheduler"]
