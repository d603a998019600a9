"""A divergence guard: detect a non-finite or spiking loss/gradient, roll back, slow down, re-warm.

Usage (call :meth:`DivergenceGuard.check` after ``backward()``, before ``optimizer.step()``)::

    guard = DivergenceGuard(model, opt, snapshot_every=50, spike_factor=10.0)
    sched = Scheduler(opt, lr=cosine(...), controllers=[guard.controller])
    guard.attach(sched)
    for x, y in data:
        loss = loss_fn(model(x), y)
        loss.backward()
        if guard.check(loss):          # False: rolled back to the last good snapshot
            opt.step()
            sched.step()
        opt.zero_grad()

At every step that is a multiple of ``snapshot_every`` and judged good, the guard copies (in memory) the model's and optimizer's
``state_dict`` and the scheduler's (controllers included). A step is *bad* when the loss is not
finite, the total gradient norm is not finite (``check_grads``), the loss exceeds
``spike_factor`` times the median of the last ``window`` good losses, or (``grad_spike_factor``)
the gradient norm exceeds that factor times the median of the last good norms. On a bad step it
restores the last snapshot, multiplies the learning rate by ``lr_factor`` (once more per
recovery), and re-warms it linearly from ``rewarm_start`` of that level over ``rewarm_steps``;
after ``max_retries`` recoveries the next bad step raises :class:`DivergenceError` naming what
happened at which step. With ``torch.distributed`` initialised the detection flags are
all-reduced (max) so every rank rolls back at the same step.

With a mixed-precision ``GradScaler`` an overflowing (inf/NaN) gradient is routine: the scaler
skips that step and lowers its scale. Build the guard with ``check_grads=False`` so that it does
not roll back for it (it still judges the loss), and call ``scaler.unscale_(opt)`` before
:meth:`~DivergenceGuard.check` if ``grad_spike_factor`` is set, so it sees true gradient norms.
"""

from __future__ import annotations

import copy
import math
import statistics
from collections import deque
from typing import Any

import torch

from lrkit.controllers._base import Controller, integer
from lrkit.schedules._check import boolean, in_range, positive
from lrkit.torch._distributed import any_over_ranks
from lrkit.torch._reset import apply_controller_events, reset_optimizer_state

__all__ = [
    "DivergenceError",
    "DivergenceGuard",
    "GuardController",
    "apply_controller_events",
    "reset_optimizer_state",
]

_REASONS = ("non-finite loss", "non-finite gradient", "loss spike", "gradient spike")


class DivergenceError(RuntimeError):
    """The divergence guard ran out of retries."""


class GuardController(Controller):
    """The guard's learning-rate back-off: ``lr_factor ** n`` after ``n`` recoveries, re-warmed.

    ``scale(k) = lr_factor**n * (start + (1 - start) * min(1, (k - r) / rewarm_steps))`` for
    ``k >= r``, the step of the last recovery; 1 before any recovery.
    """

    _state_fields = ("recoveries", "recovery_step")

    def __init__(
        self,
        lr_factor: float = 0.5,
        rewarm_steps: int = 20,
        rewarm_start: float = 0.1,
        *,
        target: str = "lr",
    ) -> None:
        super().__init__(target=target)
        name = "DivergenceGuard"
        self.lr_factor = in_range(name, "lr_factor", lr_factor, 0.0, 1.0, low_open=True)
        self.rewarm_steps = integer(name, "rewarm_steps", rewarm_steps)
        self.rewarm_start = in_range(name, "rewarm_start", rewarm_start, 0.0, 1.0, low_open=True)
        self.recoveries = 0
        self.recovery_step: int | None = None

    def scale(self, step: int) -> float:
        """The back-off times the re-warm ramp (see the class docstring)."""
        self._seen(step)
        if self.recovery_step is None:
            return 1.0
        level = self.lr_factor**self.recoveries
        if self.rewarm_steps == 0:
            return level
        u = min(1.0, max(0.0, (step - self.recovery_step) / self.rewarm_steps))
        return level * (self.rewarm_start + (1.0 - self.rewarm_start) * u)


class DivergenceGuard:
    """Roll back to the last good in-memory snapshot on divergence (see the module docstring).

    Args:
        model: the ``torch.nn.Module`` trained.
        optimizer: its optimizer.
        scheduler: an :class:`lrkit.torch.Scheduler` with :attr:`controller` among its
            controllers (or attach it later with :meth:`attach`); without one the guard scales
            the param groups' ``lr`` itself (no re-warm).
        snapshot_every: good steps between snapshots.
        spike_factor: a loss above this times the running median is a spike (None: off).
        window: good losses (and gradient norms) in the running median.
        min_history: good losses needed before spikes are judged.
        grad_spike_factor: the same test on the total gradient norm (None: off).
        check_grads: treat a non-finite gradient norm as bad.
        lr_factor: learning-rate multiplier per recovery, in (0, 1].
        rewarm_steps: steps of the linear re-warm after a recovery (0: none).
        rewarm_start: fraction of the reduced level the re-warm starts from, in (0, 1].
        max_retries: recoveries allowed; the next bad step raises :class:`DivergenceError`.
        reset_optimizer_on_recovery: drop optimizer state after restoring instead of restoring it.

    Raises:
        ValueError: a bad argument, naming it and its value.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Any = None,
        *,
        snapshot_every: int = 50,
        spike_factor: float | None = 10.0,
        window: int = 50,
        min_history: int = 10,
        grad_spike_factor: float | None = None,
        check_grads: bool = True,
        lr_factor: float = 0.5,
        rewarm_steps: int = 20,
        rewarm_start: float = 0.1,
        max_retries: int = 3,
        reset_optimizer_on_recovery: bool = False,
    ) -> None:
        name = "DivergenceGuard"
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"{name}: model must be a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(
                f"{name}: optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
            )
        self.model, self.optimizer = model, optimizer
        self.snapshot_every = integer(name, "snapshot_every", snapshot_every, low=1)
        self.spike_factor = (
            None if spike_factor is None else _gt1(name, "spike_factor", spike_factor)
        )
        self.window = integer(name, "window", window, low=1)
        self.min_history = integer(name, "min_history", min_history, low=1)
        self.grad_spike_factor = (
            None
            if grad_spike_factor is None
            else _gt1(name, "grad_spike_factor", grad_spike_factor)
        )
        self.check_grads = boolean(name, "check_grads", check_grads)
        self.max_retries = integer(name, "max_retries", max_retries)
        self.reset_optimizer_on_recovery = boolean(
            name, "reset_optimizer_on_recovery", reset_optimizer_on_recovery
        )
        self.controller = GuardController(lr_factor, rewarm_steps, rewarm_start)
        self.scheduler: Any = None
        self._losses: deque[float] = deque(maxlen=self.window)
        self._norms: deque[float] = deque(maxlen=self.window)
        self._good = 0
        self._calls = 0
        self._snapshot: dict[str, Any] | None = None
        #: One dict per recovery: ``step``, ``reason``, ``value``, ``snapshot_step``.
        self.recoveries: list[dict[str, Any]] = []
        if scheduler is not None:
            self.attach(scheduler)

    # ------------------------------------------------------------------ wiring
    def attach(self, scheduler: Any) -> None:
        """Use ``scheduler`` (an lrkit Scheduler holding :attr:`controller`) for lr and state."""
        ctls = getattr(scheduler, "_controllers", None)
        if ctls is None or not any(c is self.controller for c in ctls):
            raise ValueError(
                "DivergenceGuard.attach: the scheduler must hold guard.controller; build it "
                "with Scheduler(opt, lr=..., controllers=[..., guard.controller])"
            )
        self.scheduler = scheduler
        self._snapshot = None

    @property
    def step(self) -> int:
        """The optimizer step about to be made (the scheduler's clock, else good steps)."""
        if self.scheduler is not None:
            return int(self.scheduler.last_epoch)
        return self._good

    @property
    def snapshot_step(self) -> int | None:
        """The step of the last good snapshot (None: none yet)."""
        return None if self._snapshot is None else self._snapshot["step"]

    # ------------------------------------------------------------------ main entry
    def check(self, loss: torch.Tensor | float) -> bool:
        """Judge this step; True: safe to ``optimizer.step()``; False: rolled back, skip it.

        Call after ``loss.backward()`` on every rank. Takes a snapshot of the current state
        when it is judged good at a step that is a multiple of ``snapshot_every`` (and a
        fallback one before the very first judgement).

        Raises:
            DivergenceError: a bad step after ``max_retries`` recoveries.
        """
        self._calls += 1
        if self._snapshot is None:
            self._take_snapshot()
        value = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
        norm = self._grad_norm() if (self.check_grads or self.grad_spike_factor) else 0.0
        flags = [
            not math.isfinite(value),
            self.check_grads and not math.isfinite(norm),
            self._spike(value, self._losses, self.spike_factor),
            self._spike(norm, self._norms, self.grad_spike_factor),
        ]
        flags = any_over_ranks(flags)
        if any(flags):
            reason = _REASONS[flags.index(True)]
            self._recover(reason, norm if "gradient" in reason else value)
            return False
        self._losses.append(value)
        if self.grad_spike_factor is not None:
            self._norms.append(norm)
        if self.step % self.snapshot_every == 0:
            self._take_snapshot()
        self._good += 1
        return True

    # ------------------------------------------------------------------ internals
    def _spike(self, value: float, history: deque[float], factor: float | None) -> bool:
        if factor is None or len(history) < self.min_history or not math.isfinite(value):
            return False
        return value > factor * statistics.median(history)

    def _grad_norm(self) -> float:
        """The total gradient norm (float64; inf when not finite), synced once per device."""
        sums: dict[torch.device, torch.Tensor] = {}
        for p in self.model.parameters():
            if p.grad is not None:
                sq = p.grad.detach().double().pow(2).sum()
                sums[sq.device] = sums[sq.device] + sq if sq.device in sums else sq
        total = 0.0
        for s in sums.values():
            total += float(s)
        return math.sqrt(total) if math.isfinite(total) else math.inf

    def _take_snapshot(self) -> None:
        snap: dict[str, Any] = {
            "step": self.step,
            "model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
        }
        if self.scheduler is not None:
            snap["scheduler"] = copy.deepcopy(self.scheduler.state_dict())
        else:
            snap["lrs"] = [g["lr"] for g in self.optimizer.param_groups]
        self._snapshot = snap

    def _recover(self, reason: str, value: float) -> None:
        step = self.step
        snap = self._snapshot
        if snap is None:  # check() takes one before the first judgement
            raise RuntimeError("DivergenceGuard: no snapshot to restore")
        if len(self.recoveries) >= self.max_retries:
            history = "; ".join(f"{r['reason']} at step {r['step']}" for r in self.recoveries)
            raise DivergenceError(
                f"DivergenceGuard: gave up at step {step}: {reason} (value {value!r}) after "
                f"max_retries={self.max_retries} recoveries"
                + (f" ({history})" if history else "")
                + f"; last good snapshot at step {snap['step']}"
            )
        self.recoveries.append(
            {"step": step, "reason": reason, "value": value, "snapshot_step": snap["step"]}
        )
        self.model.load_state_dict(snap["model"])
        self.optimizer.load_state_dict(copy.deepcopy(snap["optimizer"]))
        if self.reset_optimizer_on_recovery:
            reset_optimizer_state(self.optimizer)
        self.optimizer.zero_grad(set_to_none=True)
        n = len(self.recoveries)
        if self.scheduler is not None:
            self.scheduler.load_state_dict(copy.deepcopy(snap["scheduler"]))
            self.controller.recoveries = n
            self.controller.recovery_step = snap["step"]
            self.scheduler.step(to=snap["step"])  # rewrite the values with the new back-off
        else:
            for g, lr in zip(self.optimizer.param_groups, snap["lrs"], strict=False):
                g["lr"] = lr * self.controller.lr_factor**n
        self._good = snap["step"] if self.scheduler is None else self._good


def _gt1(owner: str, name: str, value: object) -> float:
    out = positive(owner, name, value)
    if out <= 1.0:
        raise ValueError(f"{owner}: {name} must be > 1, got {name}={value!r}")
    return out
