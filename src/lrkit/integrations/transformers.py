"""Hugging Face ``Trainer``: feed evaluation (and logged training) metrics to lrkit controllers.

Give the ``Trainer`` an :class:`lrkit.torch.Scheduler` (``optimizers=(opt, sched)``, e.g. from
:func:`lrkit.torch.get_scheduler`, which takes transformers' scheduler names) and add
:class:`LrkitTrainerCallback`::

    sched = get_scheduler("cosine", opt, num_warmup_steps=100, num_training_steps=1000,
                          controllers=[Plateau(factor=0.5, patience=2, metric="eval_loss")])
    trainer = Trainer(model, args, optimizers=(opt, sched), callbacks=[LrkitTrainerCallback()])

The ``Trainer`` calls ``sched.step()`` after each optimizer step (the Scheduler counts optimizer
updates, so ``gradient_accumulation_steps`` and ``resume_from_checkpoint`` follow the schedule)
and saves and loads its state with the checkpoint. The callback reads what the ``Trainer`` logs
(``on_log``: ``eval_loss`` and the other ``eval_*`` metrics after each evaluation, ``loss`` every
``logging_steps``) and shows each controller the metric it names
(``Scheduler.metric_names``); controller events (a reduction, a restart) are kept in
:attr:`LrkitTrainerCallback.events` and logged on the ``lrkit`` Python logger. A watched metric
that the first evaluation did not produce gets a warning naming the metrics it did.

``LrkitTrainerCallback(diagnostics=True)`` also attaches an :class:`lrkit.torch.Monitor` to the
model and optimizer when training begins: each optimizer step's loss (read from the model's
output ``loss`` in training mode, micro-batches averaged), rates, gradient norms and update
ratios, and each evaluation's ``eval_*`` metrics (as ``val_*``), go to
``<output_dir>/lrkit_monitor.jsonl`` (or the path given); ``callback.diagnose()`` returns the
findings.

transformers itself feeds ``ReduceLROnPlateau`` (torch's, or lrkit's drop-in, an instance of
it) with ``metric_for_best_model``; it needs no callback.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from lrkit.diagnostics import Finding
from lrkit.integrations._feed import MetricPlan, feed, lrkit_schedulers, plan_for
from lrkit.integrations._monitor import (
    MonitorSpec,
    batch_loss,
    check_spec,
    make_monitor,
    val_metrics,
)
from lrkit.torch._scheduler import Scheduler
from lrkit.torch.monitor import Monitor

#: Evaluation "metrics" that are timings, not model quality (left out of the Monitor's log).
_TIMINGS = ("_runtime", "_per_second", "epoch")

__all__ = ["LrkitTrainerCallback"]


def _unwrap(scheduler: Any) -> Any:
    """The scheduler inside Accelerate's ``AcceleratedScheduler`` (if wrapped)."""
    return getattr(scheduler, "scheduler", scheduler)


class LrkitTrainerCallback(TrainerCallback):  # type: ignore[misc]
    """Feeds the ``Trainer``'s logged metrics to the controllers of an lrkit Scheduler.

    Args:
        scheduler: the :class:`~lrkit.torch.Scheduler` (None: the ``Trainer``'s
            ``lr_scheduler``, when it is one).
        monitor: a logged metric fed to the controllers that name no metric (e.g.
            ``"eval_loss"`` for ``Plateau()``); None: none.
        diagnostics: attach an :class:`lrkit.torch.Monitor`: True (log in
            ``<output_dir>/lrkit_monitor.jsonl``), a log file path, or a ``Monitor`` you built
            on the model and (unwrapped) optimizer (fed, flushed, not closed). False: none.
            Only on the world-zero process.

    Attributes:
        events: every controller event seen, in order.
        diagnostics_monitor: the attached ``Monitor`` (None before training or without
            ``diagnostics``).
    """

    def __init__(
        self,
        scheduler: Scheduler | None = None,
        *,
        monitor: str | None = None,
        diagnostics: MonitorSpec = False,
    ) -> None:
        if scheduler is not None and not isinstance(scheduler, Scheduler):
            raise TypeError(
                f"LrkitTrainerCallback: scheduler must be an lrkit.torch.Scheduler, got {scheduler!r}"
            )
        self._given = scheduler
        self.monitor = monitor
        self.events: list[dict[str, Any]] = []
        self._plan: tuple[Scheduler, MetricPlan] | None = None
        self._checked = False
        self._diagnostics = check_spec("LrkitTrainerCallback", diagnostics)
        self.diagnostics_monitor: Monitor | None = (
            diagnostics if isinstance(diagnostics, Monitor) else None
        )
        self._hook: Any = None

    # ------------------------------------------------------------------ diagnostics
    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Attach the Monitor (``diagnostics=``) and read each training forward's loss."""
        model, opt = kwargs.get("model"), kwargs.get("optimizer")
        if self._diagnostics is False or not state.is_world_process_zero or model is None:
            return
        opt = getattr(opt, "optimizer", opt)  # Accelerate's wrapper
        if self.diagnostics_monitor is None and isinstance(opt, torch.optim.Optimizer):
            default = Path(args.output_dir or ".") / "lrkit_monitor.jsonl"
            self.diagnostics_monitor = make_monitor(self._diagnostics, model, opt, default)
        mon = self.diagnostics_monitor
        if mon is not None and self._hook is None:

            def hook(module: torch.nn.Module, inputs: Any, output: Any) -> None:
                loss = batch_loss(output) if module.training else None
                if loss is not None:
                    mon.log(loss)

            self._hook = model.register_forward_hook(hook)

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        metrics: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        """Record the evaluation's metrics (``eval_loss`` as ``val_loss``) in the Monitor."""
        if self.diagnostics_monitor is None or not metrics:
            return
        keep = {k: v for k, v in metrics.items() if not k.endswith(_TIMINGS)}
        values = val_metrics(keep, prefixes=("eval",))
        if values:
            self.diagnostics_monitor.log_val(**values)

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Stop reading losses; write out the Monitor's log (close it when built here)."""
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        mon = self.diagnostics_monitor
        if mon is None:
            return
        if isinstance(self._diagnostics, Monitor):
            mon.flush()
        else:
            mon.close()

    def diagnose(self, **kwargs: Any) -> list[Finding]:
        """The attached Monitor's findings (:meth:`lrkit.torch.Monitor.diagnose`).

        Raises:
            ValueError: no Monitor attached.
        """
        if self.diagnostics_monitor is None:
            raise ValueError(
                "LrkitTrainerCallback.diagnose: no Monitor attached; pass "
                "LrkitTrainerCallback(diagnostics=True) and train first"
            )
        return self.diagnostics_monitor.diagnose(**kwargs)

    def _scheduler_plan(self, kwargs: dict[str, Any]) -> tuple[Scheduler, MetricPlan] | None:
        if self._plan is None:
            found = (
                [self._given]
                if self._given is not None
                else lrkit_schedulers([_unwrap(kwargs.get("lr_scheduler"))])
            )
            if not found:
                return None
            # every watched name is fed whenever it is logged (train_metrics=(): all in .val)
            plan = plan_for(
                "LrkitTrainerCallback", found[0], train_metrics=(), monitor=self.monitor
            )
            self._plan = (found[0], plan)
        return self._plan

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        """Feed the watched metrics present in ``logs`` (evaluation or training)."""
        found = self._scheduler_plan(kwargs)
        if found is None or not logs:
            return
        sched, plan = found
        self.events.extend(feed(sched, plan, logs, train=False))
        if not self._checked and any(k.startswith("eval_") for k in logs):
            self._checked = True
            missing = [n for n in plan.watched if n not in logs and not _is_training_log(n)]
            if missing:
                warnings.warn(
                    f"LrkitTrainerCallback: a controller watches {missing[0]!r} but the "
                    f"evaluation logged {sorted(logs)}; name the controller's metric after one "
                    f"of them (transformers prefixes evaluation metrics with 'eval_')",
                    UserWarning,
                    stacklevel=2,
                )


def _is_training_log(name: str) -> bool:
    return name in ("loss", "grad_norm", "learning_rate") or name.startswith("train")
