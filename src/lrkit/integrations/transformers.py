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

transformers itself feeds ``ReduceLROnPlateau`` (torch's, or lrkit's drop-in, an instance of
it) with ``metric_for_best_model``; it needs no callback.
"""

from __future__ import annotations

import warnings
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from lrkit.integrations._feed import MetricPlan, feed, lrkit_schedulers, plan_for
from lrkit.torch._scheduler import Scheduler

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

    Attributes:
        events: every controller event seen, in order.
    """

    def __init__(self, scheduler: Scheduler | None = None, *, monitor: str | None = None) -> None:
        if scheduler is not None and not isinstance(scheduler, Scheduler):
            raise TypeError(
                f"LrkitTrainerCallback: scheduler must be an lrkit.torch.Scheduler, got {scheduler!r}"
            )
        self._given = scheduler
        self.monitor = monitor
        self.events: list[dict[str, Any]] = []
        self._plan: tuple[Scheduler, MetricPlan] | None = None
        self._checked = False

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
