"""What the framework callbacks share: which metrics to feed when, and what to log.

A framework callback feeds an lrkit :class:`~lrkit.torch.Scheduler` the metrics its controllers
watch (:attr:`~lrkit.torch.Scheduler.metric_names`). *Training* metrics are fed after every
optimizer step, *validation* metrics after every evaluation. Which is which: the names given as
``train_metrics``, or by default every watched name that starts with ``"train"``
(``train_loss``, ``train/loss``); the others are validation metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lrkit.torch._groups import writer_for
from lrkit.torch._scheduler import Scheduler
from lrkit.torch.compat._base import CompatScheduler

log = logging.getLogger("lrkit")


@dataclass(frozen=True)
class MetricPlan:
    """Which logged metrics a callback feeds to one scheduler, and when.

    Attributes:
        train: names fed after every optimizer step.
        val: names fed after every evaluation.
        unnamed: the logged metric fed to the controllers that name none (None: none).
        unnamed_is_train: whether ``unnamed`` is a training metric.
    """

    train: tuple[str, ...]
    val: tuple[str, ...]
    unnamed: str | None
    unnamed_is_train: bool

    @property
    def watched(self) -> tuple[str, ...]:
        """Every logged name this plan reads."""
        extra = () if self.unnamed is None else (self.unnamed,)
        return (*self.train, *self.val, *extra)


def _is_train(name: str, train_metrics: Sequence[str] | None) -> bool:
    if train_metrics is not None:
        return name in train_metrics
    return name.startswith("train")


def plan_for(
    owner: str,
    scheduler: Scheduler,
    *,
    train_metrics: Iterable[str] | None,
    monitor: str | None,
) -> MetricPlan:
    """The :class:`MetricPlan` of ``scheduler`` (see the module docstring).

    Raises:
        ValueError: ``monitor`` given but no controller takes the unnamed metric.
    """
    given = None if train_metrics is None else tuple(train_metrics)
    names = scheduler.metric_names
    if monitor is not None and not scheduler.takes_unnamed_metric:
        raise ValueError(
            f"{owner}: monitor={monitor!r} feeds the controllers that name no metric, but every "
            f"controller names one ({list(names)}); drop monitor="
        )
    return MetricPlan(
        train=tuple(n for n in names if _is_train(n, given)),
        val=tuple(n for n in names if not _is_train(n, given)),
        unnamed=monitor,
        unnamed_is_train=monitor is not None and _is_train(monitor, given),
    )


def unnamed_watchers(scheduler: Scheduler) -> list[str]:
    """Class names of the controllers that watch the unnamed metric."""
    return [
        type(c).__name__
        for c in scheduler._controllers
        if getattr(c, "metric", None) is None and getattr(c, "watches_metric", True)
    ]


def lrkit_schedulers(candidates: Iterable[Any]) -> list[Scheduler]:
    """The lrkit Schedulers among ``candidates`` (the torch drop-ins excluded: frameworks feed
    their ``ReduceLROnPlateau`` themselves, as torch's)."""
    return [
        s for s in candidates if isinstance(s, Scheduler) and not isinstance(s, CompatScheduler)
    ]


def pick(metrics: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """The entries of ``metrics`` named in ``names`` (missing ones left out)."""
    return {n: metrics[n] for n in names if n in metrics and metrics[n] is not None}


def feed(
    scheduler: Scheduler, plan: MetricPlan, metrics: Mapping[str, Any], *, train: bool
) -> list[dict[str, Any]]:
    """Feed ``scheduler`` the training (``train=True``) or validation metrics of ``plan`` found
    in ``metrics``; return the controller events this caused (logged at INFO on ``lrkit``)."""
    named = pick(metrics, plan.train if train else plan.val)
    unnamed = None
    if plan.unnamed is not None and plan.unnamed_is_train == train:
        unnamed = metrics.get(plan.unnamed)
    if not named and unnamed is None:
        return []
    scheduler.observe(unnamed, **named)
    events = list(scheduler.last_events)
    for e in events:
        log.info("lrkit: controller event %s at step %d", e["kind"], e["step"])
    return events


def driven_values(scheduler: Scheduler, prefix: str = "lrkit") -> dict[str, float]:
    """Every hyperparameter the scheduler drives, per param group, as written in the groups.

    Keys: ``f"{prefix}/{name}"`` with one group, else ``f"{prefix}/{name}/{group}"`` where
    ``group`` is the group's ``"name"`` or its index.
    """
    groups = scheduler.optimizer.param_groups
    out: dict[str, float] = {}
    for name in scheduler.schedules:
        for i, g in enumerate(groups):
            try:
                key, pos = writer_for(name, g, i)
            except ValueError:
                continue
            value = g[key] if pos < 0 else g[key][pos]
            label = (
                f"{prefix}/{name}" if len(groups) == 1 else f"{prefix}/{name}/{g.get('name', i)}"
            )
            out[label] = float(value)
    return out
