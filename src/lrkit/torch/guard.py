"""A divergence guard: detect a non-finite or spiking loss/gradient, roll back, slow down, re-warm.

Usage (call :meth:`DivergenceGuard.check` after ``backward()``, before ``optimizer.step()``)::

    guard = DivergenceGuard(model, opt, snapshot_every=50)
    sched = Scheduler(opt, lr=cosine(...), controllers=[guard.controller])
    guard.attach(sched)
    for x, y in data:
        loss = loss_fn(model(x), y)
        loss.backward()
        if guard.check(loss):          # False: rolled back to the last good snapshot
            opt.step()
            sched.step()
        opt.zero_grad()

A step is *bad* when the loss is not finite, the total gradient norm is not finite
(``check_grads``), a floating-point buffer (BatchNorm's running statistics) is not finite
(``check_buffers``), or the loss (or, with ``grad_spike_factor``, the gradient norm) is a
*spike*: with ``m`` the median of the last ``window`` good values and ``scale =
max(1.4826 * MAD, spike_floor_frac * median(|values|))``, a spike is ``value - m >
max(spike_factor * scale, spike_min_delta)`` (see :mod:`lrkit.torch._guard_spike`; right for
negative, zero and tiny losses). At a good step that reaches a multiple of ``snapshot_every`` the
guard copies the model's and optimizer's ``state_dict`` and the scheduler's (controllers
included), after checking that every parameter and buffer is finite; ``snapshot_device="cpu"``
keeps the copy off the accelerator. On a bad step it restores the last snapshot, multiplies the
learning rate by ``lr_factor`` (once more per recovery) and re-warms it linearly from
``rewarm_start`` of that level over ``rewarm_steps``; after ``max_retries`` recoveries the next bad
step restores the last snapshot once more and raises :class:`DivergenceError` naming what
happened at which step. With ``torch.distributed`` initialised the first bad value and reason are
all-reduced (one number, the minimum over the ranks) so every rank rolls back at the same step
for the same reason.

Cost: a judged call measures one fused gradient norm (and the buffers) and reads the device once
(loss, norm and buffer check together); the spike windows are kept sorted, so judging a value
costs a median lookup. ``every=k`` judges every ``k``-th call only: a call in between keeps its
loss (on the device, no sync) and measures nothing else; at the judged call every kept loss is
judged, in order, and a bad one rolls back to the last snapshot, taken at a judged good call.
The gradient norm is measured at judged calls only, so a non-finite gradient at a call in
between is not seen there: the update it makes is, through the non-finite losses that follow.

Checkpoints: :meth:`DivergenceGuard.state_dict` holds everything the guard decides from (loss
window, recoveries, back-off, counters, the last snapshot), so a resumed run decides as one never
stopped; save it beside the others, ``{"model": ..., "optimizer": ..., "scheduler": ...,
"guard": guard.state_dict()}``, and load it after the scheduler.

With a mixed-precision ``GradScaler`` an overflowing (inf/NaN) gradient is routine: the scaler
skips that step and lowers its scale. Build the guard with ``check_grads=False`` so that it does
not roll back for it (it still judges the loss), and call ``scaler.unscale_(opt)`` before
:meth:`~DivergenceGuard.check` if ``grad_spike_factor`` is set, so it sees true gradient norms.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from lrkit.controllers._base import integer
from lrkit.schedules._check import boolean, in_range, non_negative, positive
from lrkit.torch import _guard_probe as probe
from lrkit.torch import _guard_state
from lrkit.torch._distributed import min_over_ranks
from lrkit.torch._guard_records import DivergenceError, GuardController, GuardSnapshot
from lrkit.torch._guard_spike import SpikeWindow
from lrkit.torch._reset import apply_controller_events, reset_optimizer_state

__all__ = [
    "DivergenceError",
    "DivergenceGuard",
    "GuardController",
    "GuardSnapshot",
    "apply_controller_events",
    "reset_optimizer_state",
]

_REASONS = (
    "non-finite loss",
    "non-finite gradient",
    "non-finite buffer",
    "non-finite parameter",
    "loss spike",
    "gradient spike",
)


class DivergenceGuard:
    """Roll back to the last good in-memory snapshot on divergence (see the module docstring).

    Args:
        model: the ``torch.nn.Module`` trained.
        optimizer: its optimizer.
        scheduler: an :class:`lrkit.torch.Scheduler` with :attr:`controller` among its
            controllers (or attach it later with :meth:`attach`); without one the guard scales
            the param groups' ``lr`` itself (no re-warm).
        snapshot_every: steps between snapshots (taken at good judged steps).
        spike_factor: a value more than this many robust scales above the running median is a
            spike (None: loss spikes off). The default was chosen on development runs and checked
            on held-out ones (``benchmarks/guard_spike_threshold.py``).
        spike_floor_frac: the robust scale is at least this fraction of the median |value|.
        spike_min_delta: a rise above the median smaller than this is never a spike.
        window: good losses (and gradient norms) in the running statistics.
        min_history: good values needed before spikes are judged.
        grad_spike_factor: the same test on the total gradient norm (None: off).
        check_grads: treat a non-finite gradient norm as bad.
        check_buffers: treat a non-finite floating-point buffer as bad.
        lr_factor: learning-rate multiplier per recovery, in (0, 1].
        rewarm_steps: steps of the linear re-warm after a recovery (0: none).
        rewarm_start: fraction of the reduced level the re-warm starts from, in (0, 1].
        max_retries: recoveries allowed; the next bad step restores the last snapshot and raises
            :class:`DivergenceError`.
        reset_optimizer_on_recovery: drop optimizer state after restoring instead of restoring it.
        every: judge every ``every``-th call of :meth:`check` (1: every call); the losses of the
            calls in between are judged then, the gradient norm only at judged calls.
        snapshot_device: where snapshots live (None: beside the tensors; ``"cpu"``: host memory,
            copied without blocking).

    Raises:
        TypeError, ValueError: a bad argument, naming it and its value.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Any = None,
        *,
        snapshot_every: int = 50,
        spike_factor: float | None = 21.0,
        spike_floor_frac: float = 0.1,
        spike_min_delta: float = 1e-8,
        window: int = 50,
        min_history: int = 10,
        grad_spike_factor: float | None = None,
        check_grads: bool = True,
        check_buffers: bool = True,
        lr_factor: float = 0.5,
        rewarm_steps: int = 20,
        rewarm_start: float = 0.1,
        max_retries: int = 3,
        reset_optimizer_on_recovery: bool = False,
        every: int = 1,
        snapshot_device: str | torch.device | None = None,
    ) -> None:
        name = "DivergenceGuard"
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"{name}: model must be a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(
                f"{name}: optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
            )
        self.model, self.optimizer = model, optimizer
        # listed once (walking the module tree costs more than the norm on small models); the
        # buffers by (module, name), so that a buffer replaced by a new tensor is still seen
        self._params = list(model.parameters())
        self._buffer_slots = [
            (m, n)
            for m in model.modules()
            for n, b in m._buffers.items()
            if b is not None and n not in m._non_persistent_buffers_set
        ]
        self.snapshot_every = integer(name, "snapshot_every", snapshot_every, low=1)
        self.spike_factor = _opt_positive(name, "spike_factor", spike_factor)
        self.spike_floor_frac = in_range(name, "spike_floor_frac", spike_floor_frac, 0.0, 1.0)
        self.spike_min_delta = non_negative(name, "spike_min_delta", spike_min_delta)
        self.window = integer(name, "window", window, low=1)
        self.min_history = integer(name, "min_history", min_history, low=1)
        self.grad_spike_factor = _opt_positive(name, "grad_spike_factor", grad_spike_factor)
        self.check_grads = boolean(name, "check_grads", check_grads)
        self.check_buffers = boolean(name, "check_buffers", check_buffers)
        self.max_retries = integer(name, "max_retries", max_retries)
        self.reset_optimizer_on_recovery = boolean(
            name, "reset_optimizer_on_recovery", reset_optimizer_on_recovery
        )
        self.every = integer(name, "every", every, low=1)
        self.snapshot_device = _device(name, snapshot_device)
        self.controller = GuardController(lr_factor, rewarm_steps, rewarm_start)
        self.scheduler: Any = None
        self._losses = SpikeWindow(self.window)
        self._norms = SpikeWindow(self.window)
        self._good = 0
        self._calls = 0
        self._next_snapshot = 0
        self._pending: list[probe.Probe] = []
        self._snapshot: GuardSnapshot | None = None
        self._copy_events: list[Any] = []
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
    def snapshot(self) -> GuardSnapshot | None:
        """The last good snapshot (None: none yet); after :class:`DivergenceError` it is the
        state the model, optimizer and scheduler were restored to."""
        self._wait_copies()
        return self._snapshot

    @property
    def snapshot_step(self) -> int | None:
        """The step of the last good snapshot (None: none yet)."""
        return None if self._snapshot is None else self._snapshot.step

    @property
    def settings(self) -> dict[str, Any]:
        """The settings that change decisions (saved in :meth:`state_dict` and compared)."""
        c = self.controller
        return {
            "snapshot_every": self.snapshot_every,
            "spike_factor": self.spike_factor,
            "spike_floor_frac": self.spike_floor_frac,
            "spike_min_delta": self.spike_min_delta,
            "window": self.window,
            "min_history": self.min_history,
            "grad_spike_factor": self.grad_spike_factor,
            "check_grads": self.check_grads,
            "check_buffers": self.check_buffers,
            "lr_factor": c.lr_factor,
            "rewarm_steps": c.rewarm_steps,
            "rewarm_start": c.rewarm_start,
            "max_retries": self.max_retries,
            "reset_optimizer_on_recovery": self.reset_optimizer_on_recovery,
            "every": self.every,
        }

    # ------------------------------------------------------------------ main entry
    def check(self, loss: torch.Tensor | float) -> bool:
        """Judge this step; True: safe to ``optimizer.step()``; False: rolled back, skip it.

        Call after ``loss.backward()`` on every rank. With ``every=k`` only every ``k``-th call
        is judged: the others return True and keep their loss for that judgement (the gradient
        norm and the buffers are measured at judged calls only). Takes a snapshot when a judged
        good step reaches a multiple of ``snapshot_every`` (and a fallback one before the very
        first call).

        Raises:
            DivergenceError: a bad step after ``max_retries`` recoveries (the last good
                snapshot is restored first).
        """
        self._calls += 1
        if self._snapshot is None:
            self._take_snapshot()
        if self._calls % self.every:  # between judgements: keep the loss, measure nothing
            value = loss.detach() if isinstance(loss, torch.Tensor) else float(loss)
            self._pending.append(probe.Probe(self.step, value, None))
            self._good += 1
            return True
        self._pending.append(self._measure(loss))
        return self._judge()

    def state_dict(self) -> dict[str, Any]:
        """Everything the guard decides from: settings, counters, windows, recoveries, the
        back-off controller's state and the last snapshot.

        All but ``snapshot`` is plain JSON data (numbers, strings, lists, dicts; a non-finite
        value of a recovery is a float); ``snapshot`` holds the model's and optimizer's tensors.
        The whole survives ``torch.save`` / ``torch.load(weights_only=True)``.
        """
        self._wait_copies()
        return _guard_state.build(self)

    def load_state_dict(self, state: Mapping[str, Any], *, strict: bool = True) -> None:
        """Restore :meth:`state_dict`'s output; load it after the scheduler's (and attach first).

        The whole state is checked (format, keys, types, ranges, finiteness, the snapshot's
        tensors against this model and optimizer) before anything changes, so a refused load
        leaves the guard as it was. Settings that differ from the checkpoint's raise
        (``strict=False``: warn and keep this guard's).

        Raises:
            ValueError, TypeError: a bad state, naming the key and value.
        """
        _guard_state.load(self, state, strict=strict)

    def restore(self) -> int:
        """Put the last good snapshot back into the model, optimizer and scheduler (without any
        back-off); returns its step.

        Raises:
            RuntimeError: no snapshot yet.
        """
        snap = self.snapshot
        if snap is None:
            raise RuntimeError("DivergenceGuard.restore: no snapshot yet (call check() first)")
        self.model.load_state_dict(snap.model)
        self.optimizer.load_state_dict(probe.copy_tree(snap.optimizer, None))
        self.optimizer.zero_grad(set_to_none=True)
        if self.scheduler is not None and snap.scheduler is not None:
            self.scheduler.load_state_dict(_guard_state.plain_copy(snap.scheduler))
        elif snap.lrs is not None:
            for g, lr in zip(self.optimizer.param_groups, snap.lrs, strict=False):
                g["lr"] = lr
        self._good = snap.step if self.scheduler is None else self._good
        self._pending = []
        return snap.step

    # ------------------------------------------------------------------ internals
    def _measure(self, loss: torch.Tensor | float) -> probe.Probe:
        """A judged call's probe: the loss, the gradient norm, the buffers and, when a snapshot
        may follow, the parameters (on the device, not read)."""
        value = loss.detach() if isinstance(loss, torch.Tensor) else float(loss)
        norm = buffers = params = None
        if self.check_grads or self.grad_spike_factor is not None:
            norm = probe.grad_norm(self._params)
        if self.check_buffers and self._buffer_slots:
            buffers = probe.max_abs(
                b for m, n in self._buffer_slots if (b := m._buffers.get(n)) is not None
            )
        step = self.step
        if step >= self._next_snapshot:  # a snapshot may follow: parameters too
            params = probe.max_abs(self._params)
        return probe.Probe(step, value, norm, buffers, params)

    def _judge(self) -> bool:
        """Read the pending probes (one host sync), judge them in order, act on the first bad.

        The windows see each good value before the next one is judged; they keep the values
        only when every rank found every value good (else the run rolls back, and the values
        after the snapshot are gone)."""
        rows = probe.read(self._pending)
        self._pending = []
        losses, norms = self._losses, self._norms
        several = len(rows) > 1
        if several:  # judged against windows that grow within the judgement: copies
            losses, norms = losses.copy(), norms.copy()
        bad = len(rows) * len(_REASONS)  # (row, reason) coded as row * len(_REASONS) + reason
        for i, r in enumerate(rows):
            fault = self._fault(r, losses, norms)
            if fault is not None:
                bad = i * len(_REASONS) + fault
                break
            if several:
                self._keep(r, losses, norms)
        # every rank acts on the first bad row of any rank, for its first reason: the minimum
        # code over the ranks (a rank's rows after its own first bad row are never reached)
        bad = int(min_over_ranks(bad))
        if bad < len(rows) * len(_REASONS):
            r, reason = rows[bad // len(_REASONS)], _REASONS[bad % len(_REASONS)]
            shown = r.norm if "gradient" in reason else r.loss
            if "buffer" in reason or "parameter" in reason:
                shown = r.buffers if "buffer" in reason else r.params
            self._recover(reason, math.nan if shown is None else shown, r.step)
            return False
        if several:
            self._losses, self._norms = losses, norms
        else:
            self._keep(rows[0], losses, norms)
        if self.step >= self._next_snapshot:
            self._take_snapshot()
        self._good += 1
        return True

    def _keep(self, r: probe.Reading, losses: SpikeWindow, norms: SpikeWindow) -> None:
        """Add a good reading to the windows (a gradient norm: when judged, measured, finite)."""
        losses.push(r.loss)
        if self.grad_spike_factor is not None and r.norm is not None and math.isfinite(r.norm):
            norms.push(r.norm)

    def _fault(self, r: probe.Reading, losses: SpikeWindow, norms: SpikeWindow) -> int | None:
        """The index in ``_REASONS`` of the first thing wrong with reading ``r`` (None: good),
        tested in the order of ``_REASONS``."""
        if not math.isfinite(r.loss):
            return 0
        norm = r.norm
        if self.check_grads and norm is not None and not math.isfinite(norm):
            return 1
        if r.buffers is not None and not math.isfinite(r.buffers):
            return 2
        if r.params is not None and not math.isfinite(r.params):
            return 3
        floor, delta, least = self.spike_floor_frac, self.spike_min_delta, self.min_history
        if losses.is_spike(
            r.loss, factor=self.spike_factor, floor_frac=floor, min_delta=delta, min_history=least
        ):
            return 4
        if norm is not None and norms.is_spike(
            norm,
            factor=self.grad_spike_factor,
            floor_frac=floor,
            min_delta=delta,
            min_history=least,
        ):
            return 5
        return None

    def _take_snapshot(self) -> None:
        step = self.step
        dev = self.snapshot_device
        model = probe.copy_tree(self.model.state_dict(), dev)
        optimizer = probe.copy_tree(self.optimizer.state_dict(), dev)
        scheduler = None if self.scheduler is None else self.scheduler.state_dict()
        lrs = None if self.scheduler is not None else [g["lr"] for g in self.optimizer.param_groups]
        self._snapshot = GuardSnapshot(
            step, model, optimizer, _guard_state.plain_copy(scheduler), lrs
        )
        self._next_snapshot = (step // self.snapshot_every + 1) * self.snapshot_every
        if dev is not None and dev.type == "cpu":
            srcs = probe.accelerator_devices(self.model.state_dict())
            self._copy_events = probe.record_events(srcs) if srcs else []

    def _wait_copies(self) -> None:
        for ev in self._copy_events:
            ev.synchronize()
        self._copy_events = []

    def _recover(self, reason: str, value: float, bad_step: int) -> None:
        snap = self.snapshot
        if snap is None:  # check() takes one before the first judgement
            raise RuntimeError("DivergenceGuard: no snapshot to restore")
        if len(self.recoveries) >= self.max_retries:
            history = "; ".join(f"{r['reason']} at step {r['step']}" for r in self.recoveries)
            self.restore()
            raise DivergenceError(
                f"DivergenceGuard: gave up at step {bad_step}: {reason} (value {value!r}) after "
                f"max_retries={self.max_retries} recoveries"
                + (f" ({history})" if history else "")
                + f"; restored the last good snapshot, of step {snap.step} (guard.snapshot)",
                step=bad_step,
                reason=reason,
                snapshot_step=snap.step,
            )
        self.recoveries.append(
            {"step": bad_step, "reason": reason, "value": value, "snapshot_step": snap.step}
        )
        self.restore()
        if self.reset_optimizer_on_recovery:
            reset_optimizer_state(self.optimizer)
        n = len(self.recoveries)
        if self.scheduler is not None:
            self.controller.recoveries = n
            self.controller.recovery_step = snap.step
            self.scheduler.step(to=snap.step)  # rewrite the values with the new back-off
        else:
            self.controller.recoveries = n
            for g, lr in zip(self.optimizer.param_groups, snap.lrs or [], strict=False):
                g["lr"] = lr * self.controller.lr_factor**n
        self._next_snapshot = (snap.step // self.snapshot_every + 1) * self.snapshot_every


def _opt_positive(owner: str, name: str, value: object) -> float | None:
    return None if value is None else positive(owner, name, value)


def _device(owner: str, value: object) -> torch.device | None:
    if value is None:
        return None
    if not isinstance(value, (str, torch.device)):
        raise TypeError(
            f"{owner}: snapshot_device must be None, a device name or a torch.device, "
            f"got snapshot_device={value!r}"
        )
    try:
        return torch.device(value)
    except RuntimeError as err:
        raise ValueError(
            f"{owner}: snapshot_device must name a device, got snapshot_device={value!r}"
        ) from err
