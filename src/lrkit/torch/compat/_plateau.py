"""Drop-in for torch's ReduceLROnPlateau, built on :class:`lrkit.controllers.Plateau`."""

from __future__ import annotations

import warnings
from typing import Any

from torch.optim import Optimizer

from lrkit.schedules import constant
from lrkit.torch._scheduler import Scheduler
from lrkit.torch.compat._base import CompatScheduler, GroupPlateau, per_group


class ReduceLROnPlateau(CompatScheduler):
    """torch ``ReduceLROnPlateau``: divide the rate by ``1 / factor`` when a metric stalls.

    The decisions (best, bad epochs, cooldown) are lrkit's
    :class:`~lrkit.controllers.Plateau` with ``rule="torch"``; the per-group arithmetic is
    torch's: ``new = max(lr * factor, min_lr_g)``, applied only if ``lr - new > eps``. The base
    rates are the groups' ``lr`` at construction.

    **Differences from torch:** it is an lrkit controller, so it can be placed inside
    :class:`SequentialLR` (active during its segment) and :class:`ChainedScheduler` (its factor
    multiplies the others'); pass the metric to the container's ``step(metric)``. A non-finite
    metric is skipped with a warning (torch counts it as a bad epoch). The state resumes exactly.

    >>> import torch
    >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    >>> s = ReduceLROnPlateau(opt, factor=0.5, patience=0)
    >>> for loss in [1.0, 1.0]: s.step(loss)
    >>> s.get_last_lr()
    [0.5]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: list[float] | float = 0,
        eps: float = 1e-8,
    ) -> None:
        owner = "ReduceLROnPlateau"
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"{owner}: optimizer must be a torch.optim.Optimizer, got {optimizer!r}"
            )
        if not factor < 1.0:
            raise ValueError(f"{owner}: factor must be < 1.0, got factor={factor!r}")
        n = len(optimizer.param_groups)
        bases = [float(g["lr"]) for g in optimizer.param_groups]
        self.min_lrs = per_group(owner, "min_lr", min_lr, n)
        self.mode, self.factor, self.patience = mode, factor, patience
        self.threshold, self.threshold_mode = threshold, threshold_mode
        self.cooldown, self.eps = cooldown, eps
        self.plateau = GroupPlateau(
            mode=mode,
            factor=factor,
            patience=patience,
            threshold=threshold,
            threshold_mode=threshold_mode,
            cooldown=cooldown,
            min_lrs=self.min_lrs,
            eps=eps,
            bases=bases,
        )
        self._start(optimizer, {"lr": [constant(b) for b in bases]}, plateaus=[self.plateau])

    def step(self, metrics: Any, epoch: int | None = None) -> None:  # type: ignore[override]
        """Count one epoch and judge ``metrics`` (a number or a 0-d tensor), as torch does.

        Args:
            metrics: the monitored quantity.
            epoch: deprecated in torch; sets the epoch counter (a warning is issued).
        """
        if epoch is not None:
            warnings.warn(
                "ReduceLROnPlateau.step(metrics, epoch): the epoch argument is deprecated in torch",
                UserWarning,
                stacklevel=2,
            )
            self._step = int(epoch) - 1
        Scheduler.step(self, metrics)

    @property
    def num_bad_epochs(self) -> int:
        """Bad epochs since the last improvement (torch's attribute)."""
        return int(self.plateau.detector.num_bad_evals)

    @property
    def best(self) -> float:
        """The best metric so far (torch's attribute; +-inf before the first)."""
        b = self.plateau.detector.best
        return (float("inf") if self.mode == "min" else float("-inf")) if b is None else b

    @property
    def cooldown_counter(self) -> int:
        """Epochs of cooldown left (torch's attribute)."""
        return int(self.plateau.detector.cooldown_counter)

    @property
    def in_cooldown(self) -> bool:
        """True during cooldown (torch's attribute)."""
        return self.cooldown_counter > 0
