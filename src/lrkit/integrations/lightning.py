"""Lightning: feed logged metrics to lrkit's controllers, log every driven hyperparameter.

Return an :class:`lrkit.torch.Scheduler` from ``configure_optimizers`` with ``"interval":
"step"`` (it counts optimizer updates, so gradient accumulation and checkpoint resume follow the
schedule), and add :class:`LrkitCallback` to the ``Trainer``::

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=1e-3)
        sched = Scheduler(opt, lr=lrkit.warmup(lrkit.cosine(1e-3, steps=900), steps=100),
                          controllers=[Plateau(factor=0.5, patience=2, metric="val_loss")])
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    trainer = lightning.Trainer(callbacks=[LrkitCallback()], ...)

The callback reads ``trainer.callback_metrics`` (what ``self.log`` recorded): the metrics the
controllers watch (``Scheduler.metric_names``) that start with ``"train"`` (or are listed in
``train_metrics=``) after every optimizer step, the others after every validation run (not
during the sanity check). Each hyperparameter the scheduler drives is logged to the trainer's
loggers before every optimizer step (``lrkit/lr``, ``lrkit/momentum``, per group when there are
several), each controller event (a plateau's reduction, a restart) as ``lrkit/event/<kind>``
with its step as value and on the ``lrkit`` Python logger. A watched metric not logged by the
end of the first epoch (training metrics) or of the first validation run (the others) gets one
warning naming the metrics that were.

``LrkitCallback(diagnostics=True)`` also attaches an :class:`lrkit.torch.Monitor` to the
module and its (first) optimizer: it records every optimizer step's loss (the training step's
returned loss), rates, gradient norms and update ratios, and the logged metrics whose name
starts with ``val`` after each validation run, into ``<trainer.log_dir>/lrkit_monitor.jsonl``
(or the path given as ``diagnostics=``; or pass your own ``Monitor``); after the fit,
``callback.diagnose()`` returns the findings (see ``docs/diagnostics.md``).

torch's ``ReduceLROnPlateau`` and lrkit's drop-in (:class:`lrkit.torch.compat.ReduceLROnPlateau`,
an instance of torch's) need no callback: give Lightning ``"monitor": "val_loss"`` and it passes
the metric to ``step()``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from lrkit.diagnostics import Finding
from lrkit.integrations._feed import (
    MetricPlan,
    driven_values,
    feed,
    lrkit_schedulers,
    plan_for,
    unnamed_watchers,
)
from lrkit.integrations._monitor import (
    MonitorSpec,
    batch_loss,
    check_spec,
    make_monitor,
    val_metrics,
)
from lrkit.torch._scheduler import Scheduler
from lrkit.torch.monitor import Monitor

__all__ = ["LrkitCallback"]


class LrkitCallback(pl.Callback):
    """Feeds logged metrics to lrkit controllers and logs hyperparameters and events.

    Args:
        scheduler: the :class:`~lrkit.torch.Scheduler` (or a list of them) to feed (None: every
            lrkit Scheduler among the trainer's ``lr_scheduler_configs``).
        train_metrics: names fed after every optimizer step (None: the watched names that start
            with ``"train"``); the other watched names are fed after validation.
        monitor: a logged metric fed to the controllers that name no metric (``Plateau()``
            without ``metric=``); None: such controllers get nothing (a warning says so).
        log_values: log the driven hyperparameters to the trainer's loggers.
        prefix: the prefix of the logged names.
        diagnostics: attach an :class:`lrkit.torch.Monitor` to the module and its first
            optimizer: True (its log goes to ``<trainer.log_dir>/lrkit_monitor.jsonl``), a log
            file path (``.jsonl`` or ``.csv``), or a ``Monitor`` you built (fed, flushed, not
            closed). False: none. Only on the global-zero process.

    Attributes:
        events: every controller event seen, in order (dicts with ``kind`` and ``step``).
        diagnostics_monitor: the attached ``Monitor`` (None before the fit or without
            ``diagnostics``).

    Raises:
        ValueError: ``monitor`` given but every controller names its metric.
    """

    def __init__(
        self,
        scheduler: Scheduler | Iterable[Scheduler] | None = None,
        *,
        train_metrics: Iterable[str] | None = None,
        monitor: str | None = None,
        log_values: bool = True,
        prefix: str = "lrkit",
        diagnostics: MonitorSpec = False,
    ) -> None:
        super().__init__()
        self._diagnostics = check_spec("LrkitCallback", diagnostics)
        self.diagnostics_monitor: Monitor | None = (
            diagnostics if isinstance(diagnostics, Monitor) else None
        )
        if scheduler is None:
            self._given: list[Scheduler] | None = None
        else:
            items = [scheduler] if isinstance(scheduler, Scheduler) else list(scheduler)
            bad = [s for s in items if not isinstance(s, Scheduler)]
            if bad:
                raise TypeError(
                    f"LrkitCallback: scheduler must be an lrkit.torch.Scheduler or a list of "
                    f"them, got {bad[0]!r}"
                )
            self._given = items
        self.train_metrics = None if train_metrics is None else tuple(train_metrics)
        self.monitor = monitor
        self.log_values = log_values
        self.prefix = prefix
        self.events: list[dict[str, Any]] = []
        self._plans: list[tuple[Scheduler, MetricPlan]] = []
        self._logged_step = -1
        self._fed_step = -1
        self._seen: set[str] = set()
        self._warned: set[str] = set()

    # ------------------------------------------------------------------ setup
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Find the schedulers and plan which metric is fed when."""
        found = self._given
        if found is None:
            found = lrkit_schedulers(c.scheduler for c in trainer.lr_scheduler_configs)
        self._plans = []
        for s in found:
            plan = plan_for(
                "LrkitCallback", s, train_metrics=self.train_metrics, monitor=self.monitor
            )
            if plan.unnamed is None and unnamed_watchers(s):
                warnings.warn(
                    f"LrkitCallback: {', '.join(unnamed_watchers(s))} watch(es) no named "
                    f"metric, so nothing logged reaches it; give it metric='val_loss' (the "
                    f"name you log) or pass LrkitCallback(monitor='val_loss')",
                    UserWarning,
                    stacklevel=2,
                )
            self._plans.append((s, plan))
        # global_step counts optimizer steps: metrics are fed when it moves (not on the
        # micro-batches of gradient accumulation, nor again for a resumed checkpoint's step)
        self._fed_step = trainer.global_step
        self._logged_step = -1
        if self._diagnostics is not False and trainer.is_global_zero:
            self._attach(trainer, pl_module)

    def _attach(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if isinstance(self._diagnostics, Monitor) or not trainer.optimizers:
            return
        default = Path(trainer.log_dir or trainer.default_root_dir) / "lrkit_monitor.jsonl"
        self.diagnostics_monitor = make_monitor(
            self._diagnostics, pl_module, trainer.optimizers[0], default
        )

    def diagnose(self, **kwargs: Any) -> list[Finding]:
        """The attached Monitor's findings (:meth:`lrkit.torch.Monitor.diagnose`).

        Raises:
            ValueError: no Monitor attached (no ``diagnostics=``, or before the fit).
        """
        if self.diagnostics_monitor is None:
            raise ValueError(
                "LrkitCallback.diagnose: no Monitor attached; pass LrkitCallback(diagnostics=True)"
                " and fit first"
            )
        return self.diagnostics_monitor.diagnose(**kwargs)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Write out the Monitor's log (and close it, when the callback built it)."""
        mon = self.diagnostics_monitor
        if mon is None:
            return
        if isinstance(self._diagnostics, Monitor):
            mon.flush()
        else:
            mon.close()

    # ------------------------------------------------------------------ training
    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        """Log the values the next optimizer update will use (once per optimizer step)."""
        step = trainer.global_step
        if not self.log_values or step == self._logged_step:
            return
        self._logged_step = step
        values: dict[str, float] = {}
        for s, _ in self._plans:
            values.update(driven_values(s, self.prefix))
        self._log(trainer, values, step)

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        """After an optimizer step (not a micro-batch of accumulation), feed training metrics."""
        if self.diagnostics_monitor is not None:
            loss = batch_loss(outputs)
            if loss is not None:
                self.diagnostics_monitor.log(loss)
        step = trainer.global_step
        if step == self._fed_step:
            return
        self._fed_step = step
        self._feed(trainer, train=True)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Feed the validation metrics (not during the sanity check)."""
        if trainer.sanity_checking:
            return
        if self.diagnostics_monitor is not None:
            metrics = val_metrics(trainer.callback_metrics)
            if metrics:
                self.diagnostics_monitor.log_val(**metrics)
        self._feed(trainer, train=False)
        self._warn_unlogged(trainer, train=False)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Warn once for each watched training metric not logged during the epoch."""
        self._warn_unlogged(trainer, train=True)

    # ------------------------------------------------------------------ helpers
    def _feed(self, trainer: pl.Trainer, *, train: bool) -> None:
        metrics = trainer.callback_metrics
        for s, plan in self._plans:
            self._seen.update(n for n in plan.watched if n in metrics)
            events = feed(s, plan, metrics, train=train)
            if events:
                self.events.extend(events)
                self._log(
                    trainer,
                    {f"{self.prefix}/event/{e['kind']}": float(e["step"]) for e in events},
                    trainer.global_step,
                )

    def _warn_unlogged(self, trainer: pl.Trainer, *, train: bool) -> None:
        """Warn once per watched name (training ones after an epoch, validation ones after a
        validation run) that has not been logged yet."""
        logged = sorted(trainer.callback_metrics)
        when = f"epoch {trainer.current_epoch}" if train else "the validation run"
        for _, plan in self._plans:
            names = list(plan.train if train else plan.val)
            if plan.unnamed is not None and plan.unnamed_is_train == train:
                names.append(plan.unnamed)
            for name in names:
                if name in self._seen or name in self._warned:
                    continue
                self._warned.add(name)
                warnings.warn(
                    f"LrkitCallback: a controller watches {name!r} but no metric of that name "
                    f"was logged in {when} (logged: {logged}); log it with "
                    f"self.log({name!r}, value) or rename the controller's metric=",
                    UserWarning,
                    stacklevel=2,
                )

    @staticmethod
    def _log(trainer: pl.Trainer, values: dict[str, float], step: int) -> None:
        if not values:
            return
        for logger in trainer.loggers:
            logger.log_metrics(values, step=step)
