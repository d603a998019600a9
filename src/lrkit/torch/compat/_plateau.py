"""Drop-in for torch's ReduceLROnPlateau, built on :class:`lrkit.controllers.Plateau`."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch.optim import Optimizer

from lrkit.schedules import constant
from lrkit.torch._scheduler import Scheduler
from lrkit.torch.compat._base import CompatScheduler, GroupPlateau, per_group

#: The settings saved with the state (torch's ``load_state_dict`` restores them too).
SETTINGS = (
    "mode",
    "factor",
    "patience",
    "threshold",
    "threshold_mode",
    "cooldown",
    "min_lrs",
    "eps",
    "bases",
)


class ReduceLROnPlateau(CompatScheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
    """torch ``ReduceLROnPlateau``: divide the rate by ``1 / factor`` when a metric stalls.

    The decisions (best, bad epochs, cooldown) are lrkit's
    :class:`~lrkit.controllers.Plateau` with ``rule="torch"``; the per-group arithmetic is
    torch's: ``new = max(lr * factor, min_lr_g)``, applied only if ``lr - new > eps``. The base
    rates are the groups' ``lr`` at construction.

    **Differences from torch:** it is an lrkit controller, so it can be placed inside
    :class:`SequentialLR` (active during its segment) and :class:`ChainedScheduler` (its factor
    multiplies the others'); pass the metric to the container's ``step(metric)``. A non-finite
    metric is skipped with a warning (torch counts it as a bad epoch). The state resumes exactly.

    It is an instance of ``torch.optim.lr_scheduler.ReduceLROnPlateau``, so frameworks that test
    for it (Lightning's ``monitor=``) pass it the metric as they do torch's.

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
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"ReduceLROnPlateau: optimizer must be a torch.optim.Optimizer, got {optimizer!r}"
            )
        self._configure(
            optimizer,
            {
                "mode": mode,
                "factor": factor,
                "patience": patience,
                "threshold": threshold,
                "threshold_mode": threshold_mode,
                "cooldown": cooldown,
                "min_lrs": min_lr,
                "eps": eps,
                "bases": [float(g["lr"]) for g in optimizer.param_groups],
            },
        )

    def _configure(self, optimizer: Optimizer, settings: Mapping[str, Any]) -> None:
        """Build the plateau and the constant tracks from ``settings`` (see :data:`SETTINGS`)."""
        owner = "ReduceLROnPlateau"
        factor = settings["factor"]
        if not factor < 1.0:
            raise ValueError(f"{owner}: factor must be < 1.0, got factor={factor!r}")
        n = len(optimizer.param_groups)
        bases = per_group(owner, "bases", list(settings["bases"]), n)
        self.min_lrs = per_group(owner, "min_lr", settings["min_lrs"], n)
        self.mode, self.factor, self.patience = settings["mode"], factor, settings["patience"]
        self.threshold, self.threshold_mode = settings["threshold"], settings["threshold_mode"]
        self.cooldown, self.eps = settings["cooldown"], settings["eps"]
        self.plateau = GroupPlateau(
            mode=self.mode,
            factor=factor,
            patience=self.patience,
            threshold=self.threshold,
            threshold_mode=self.threshold_mode,
            cooldown=self.cooldown,
            min_lrs=self.min_lrs,
            eps=self.eps,
            bases=bases,
        )
        self._start(optimizer, {"lr": [constant(b) for b in bases]}, plateaus=[self.plateau])

    def _settings(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "factor": float(self.factor),
            "patience": int(self.patience),
            "threshold": float(self.threshold),
            "threshold_mode": self.threshold_mode,
            "cooldown": int(self.cooldown),
            "min_lrs": [float(m) for m in self.min_lrs],
            "eps": float(self.eps),
            "bases": list(self.plateau.bases),
        }

    def state_dict(self) -> dict[str, Any]:
        """The Scheduler's state plus torch's settings (mode, factor, patience, threshold,
        threshold_mode, cooldown, min_lrs, eps) and the base rates, under ``"plateau"``."""
        out = super().state_dict()
        out["plateau"] = self._settings()
        return out

    def load_state_dict(self, state_dict: Mapping[str, Any], *, strict: bool = True) -> None:
        """Restore :meth:`state_dict`, adopting the checkpoint's settings as torch does.

        As torch's ``load_state_dict`` (which updates ``__dict__``), mode, factor, patience,
        threshold, threshold_mode, cooldown, min_lrs and eps come from the checkpoint, and so do
        the base rates: a scheduler built on an optimizer whose (reduced) state was loaded first
        continues from the checkpoint's rates, not from the reduced ones. A refused load leaves
        the scheduler and the optimizer's rates as they were.

        Raises:
            ValueError: the checkpoint's settings are invalid or its state does not fit.
        """
        settings = state_dict.get("plateau") if isinstance(state_dict, Mapping) else None
        if settings is None or settings == self._settings():
            super().load_state_dict(state_dict, strict=strict)
            return
        if not isinstance(settings, Mapping) or set(settings) != set(SETTINGS):
            raise ValueError(
                f"ReduceLROnPlateau.load_state_dict: state['plateau'] must be a dict with keys "
                f"{list(SETTINGS)}, got {settings!r}"
            )
        groups = self.optimizer.param_groups
        lrs = [g["lr"] for g in groups]
        fresh = object.__new__(type(self))
        fresh._init_args = _init_args_of(settings)
        try:
            fresh._configure(self.optimizer, settings)
            CompatScheduler.load_state_dict(fresh, state_dict, strict=strict)
        except BaseException:
            for g, lr in zip(groups, lrs, strict=True):
                g["lr"] = lr
            raise
        self.__dict__.clear()
        self.__dict__.update(fresh.__dict__)

    def _adopt_settings(self, saved: object) -> None:
        """Nothing: the settings come from ``state["plateau"]`` (see :meth:`load_state_dict`)."""

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
    def num_bad_epochs(self) -> int:  # type: ignore[override]
        """Bad epochs since the last improvement (torch's attribute)."""
        return int(self.plateau.detector.num_bad_evals)

    @property
    def best(self) -> float:  # type: ignore[override]
        """The best metric so far (torch's attribute; +-inf before the first)."""
        b = self.plateau.detector.best
        return (float("inf") if self.mode == "min" else float("-inf")) if b is None else b

    @property
    def cooldown_counter(self) -> int:  # type: ignore[override]
        """Epochs of cooldown left (torch's attribute)."""
        return int(self.plateau.detector.cooldown_counter)

    @property
    def in_cooldown(self) -> bool:
        """True during cooldown (torch's attribute)."""
        return self.cooldown_counter > 0


def _init_args_of(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The constructor arguments that ``settings`` (a ``state["plateau"]``) stands for."""
    args = {k: settings[k] for k in SETTINGS if k not in ("min_lrs", "bases")}
    args["min_lr"] = settings["min_lrs"]
    return args
