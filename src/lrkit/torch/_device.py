"""Schedules inside the training step: the step counter and the learning rate live on the device.

:class:`DeviceScheduler` keeps the number of updates made as a 0-d tensor on the parameters'
device and writes each param group's ``lr`` as a 0-d tensor there (torch's optimizers accept a
tensor ``lr``). :meth:`DeviceScheduler.step` is a few in-place tensor operations: the schedule's
own formula evaluated on the device through the array API (see
:mod:`lrkit.schedules._arrays`), with no host sync and no Python number that changes from one
step to the next. So ``opt.step(); sched.step()`` can be compiled with
``torch.compile(fullgraph=True)`` (no recompilation as the rate changes) or captured in a CUDA
graph, and stays exact over replays: replay ``k`` computes the schedule at step ``k``.

Reactive controllers (plateau, restarts) decide on the host from metrics, so they are not
available here; use :class:`lrkit.torch.Scheduler` for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch.optim import Optimizer

from lrkit.schedules import Schedule, as_schedule


class DeviceScheduler:
    """Drive each param group's ``lr`` from a schedule, computed on the device.

    At update ``k`` (from 0) group ``g`` gets ``lr = schedule(k) * g.get("lr_mult", 1.0)``,
    as a tensor of ``dtype`` on ``device``. Call :meth:`step` once after each
    ``optimizer.step()`` (inside the compiled or captured region if you like).

    Args:
        optimizer: a torch optimizer whose update accepts a tensor ``lr`` (SGD; Adam/AdamW with
            ``capturable=True`` or ``fused=True`` for CUDA graphs).
        lr: a schedule, spec text, spec dict or number.
        total_steps / steps_per_epoch: bind lengths in units (``"10%"``, ``"3ep"``).
        device: where the counter and rates live (default: the first parameter's device).
        dtype: the rates' dtype (default float32, as the parameters usually are). The counter
            is an int64 and the schedule is evaluated in float64, so the rates are lrkit's
            numpy values rounded once to ``dtype``. (0-d float64 CPU tensors are avoided on
            purpose: torch.compile 2.13 drops in-place updates to them.)

    Raises:
        TypeError: ``optimizer`` is not a torch optimizer.
        ValueError: lengths in units left unbound, or a bad spec.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        lr: Schedule | Mapping[str, Any] | str | float,
        *,
        total_steps: int | None = None,
        steps_per_epoch: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                "DeviceScheduler: optimizer must be a torch.optim.Optimizer, got "
                f"{type(optimizer).__name__}"
            )
        sched = as_schedule(lr)
        if total_steps is not None or steps_per_epoch is not None:
            sched = sched.bind(total_steps, steps_per_epoch=steps_per_epoch)
        sched._require_bound()
        if device is None:
            first = next((p for g in optimizer.param_groups for p in g["params"]), None)
            device = first.device if first is not None else torch.device("cpu")
        self.optimizer = optimizer
        self.schedule = sched
        self.device = torch.device(device)
        self.dtype = dtype
        #: Updates made so far, a 0-d tensor on the device.
        self.count = torch.zeros((), dtype=torch.int64, device=self.device)
        self._mults = [float(g.get("lr_mult", 1.0)) for g in optimizer.param_groups]
        for g in optimizer.param_groups:
            g["lr"] = torch.zeros((), dtype=dtype, device=self.device)
        self._write()

    def _write(self) -> None:
        v = self.schedule(self.count.to(torch.float64))
        for g, mult in zip(self.optimizer.param_groups, self._mults, strict=True):
            g["lr"].copy_(v * mult if mult != 1.0 else v)

    def step(self) -> None:
        """Count one update and write the rates for the next one (on the device, no sync)."""
        self.count.add_(1)
        self._write()

    def set_step(self, step: int) -> None:
        """Set the number of updates made (resume from a global step) and write the rates."""
        self.count.fill_(step)
        self._write()

    @property
    def last_step(self) -> int:
        """Updates made so far, as an int (reads the device: a host sync)."""
        return int(self.count.item())

    def get_last_lr(self) -> list[torch.Tensor]:
        """The rates each param group will use at its next update (tensors on the device)."""
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """``{"step": int, "schedule": dict}`` (plain JSON data; a host sync)."""
        return {"step": self.last_step, "schedule": self.schedule.to_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume at the saved step.

        Raises:
            ValueError: the checkpoint was made with another schedule.
        """
        if as_schedule(state["schedule"]) != self.schedule:
            raise ValueError(
                f"DeviceScheduler.load_state_dict: the checkpoint's schedule "
                f"{as_schedule(state['schedule'])} is not this one, {self.schedule}"
            )
        self.set_step(int(state["step"]))

    def __repr__(self) -> str:
        return f"DeviceScheduler(lr={self.schedule}, device={self.device}, dtype={self.dtype})"
