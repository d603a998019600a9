"""The divergence guard's records: its error, its snapshot and its learning-rate back-off.

Re-exported by :mod:`lrkit.torch.guard`, where they are documented for users.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from lrkit.controllers._base import Controller, integer
from lrkit.schedules._check import in_range

__all__ = ["DivergenceError", "GuardController", "GuardSnapshot"]


class DivergenceError(RuntimeError):
    """The divergence guard ran out of retries; the last good snapshot has been restored.

    Attributes: ``step`` and ``reason`` of the last bad step, ``snapshot_step`` (the step of the
    snapshot now in the model, optimizer and scheduler; also ``guard.snapshot``).
    """

    def __init__(self, message: str, *, step: int, reason: str, snapshot_step: int) -> None:
        super().__init__(message)
        self.step, self.reason, self.snapshot_step = step, reason, snapshot_step


@dataclass(frozen=True)
class GuardSnapshot:
    """The last good state: ``model`` and ``optimizer`` state dicts (tensors), the scheduler's
    state (or the groups' ``lrs`` without a scheduler), and the ``step`` it was taken at."""

    step: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any] | None
    lrs: list[float] | None


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
