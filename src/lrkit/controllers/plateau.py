"""Reduce-on-plateau: multiply the schedule by ``factor`` each time a metric stops improving.

The detection (is this evaluation better? how many bad ones in a row? cooldown?) lives in
:class:`PlateauDetector`, shared with :class:`lrkit.controllers.RestartOnPlateau`; the action
(shrink the scale) in :class:`Plateau`. Four counting rules reproduce the libraries users know;
``docs/controllers.md`` sets them side by side.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from lrkit.controllers._base import Controller, integer
from lrkit.controllers._state import (
    Check,
    count,
    finite,
    finite_list,
    optional_finite,
    optional_step,
)
from lrkit.schedules._check import choice, in_range, non_negative
from lrkit.schedules._errors import ScheduleValueError

__all__ = ["Plateau", "PlateauDetector"]

RULES = ("torch", "keras", "optax", "fastai")


class PlateauDetector(Controller):
    """Decides when a monitored metric has plateaued; subclasses say what to do then.

    An evaluation ``v`` (after optional averaging and smoothing) is *better* when, with
    ``rel = threshold`` if ``threshold_mode == "rel"`` else 0 and ``abs = threshold`` if
    ``threshold_mode == "abs"`` else 0, plus ``min_delta``:

    - mode ``"min"``: ``v < best * (1 - rel) - abs - min_delta``
    - mode ``"max"``: ``v > best * (1 + rel) + abs + min_delta``

    (the first finite evaluation is always better). With ``judge="trend"`` an evaluation is
    better when the Theil-Sen line (median of pairwise slopes, robust to one outlier) through
    the last ``window`` values falls (mode min) over the window by more than ``threshold * |mean|`` (rel) or ``threshold`` (abs), plus
    ``min_delta``; fewer than ``window`` values count as better.

    The counting of bad evaluations and the cooldown follow ``rule``:

    - ``"torch"`` (torch.optim.lr_scheduler.ReduceLROnPlateau): ``bad`` counts evaluations since
      the last better one; during cooldown (counter > 0) the counter is decremented and ``bad``
      zeroed; act when ``bad > patience``; then cooldown restarts and ``bad = 0``.
    - ``"optax"`` (optax.contrib.reduce_on_plateau): as torch, but act when
      ``bad == patience`` (``patience >= 1``); use ``accumulation_size`` for its averaging.
    - ``"keras"`` (keras.callbacks.ReduceLROnPlateau): the cooldown counter is decremented
      *first*; bad evaluations are counted only outside cooldown; act when ``bad >= patience``
      and the scale is above ``min_scale`` (otherwise keep counting).
    - ``"fastai"`` (fastai ReduceLROnPlateau callback): no cooldown; act when
      ``bad >= patience``.

    Args:
        mode: "min" (lower is better) or "max".
        patience: bad evaluations tolerated (see ``rule`` for the exact count).
        threshold: the margin an evaluation must beat the best by (see ``threshold_mode``).
        threshold_mode: "rel" (a fraction of the best) or "abs".
        cooldown: evaluations after an action during which bad ones are not counted.
        target: the hyperparameter modified.
        floor: absolute minimum of the value.
        rule: "torch", "keras", "optax" or "fastai" (see above).
        min_delta: an extra absolute margin (Keras / fastai ``min_delta``, optax ``atol``).
        accumulation_size: average this many observations into one evaluation (optax).
        smoothing: judge the bias-corrected exponential moving average
            ``m_t = s * m_{t-1} + (1 - s) * x_t`` instead of the raw value (0: off).
        judge: "best" (compare with the best so far) or "trend" (slope of the last ``window``).
        window: evaluations in the trend fit (``judge="trend"``).
        metric: the name of the metric watched, e.g. ``"val_loss"`` (None: the unnamed metric
            of ``scheduler.observe(x)``); see :class:`~lrkit.controllers.Controller`.

    Raises:
        ValueError: an argument out of range, naming it and its value.
    """

    _detector_fields: ClassVar[tuple[str, ...]] = (
        "best",
        "num_bad_evals",
        "cooldown_counter",
        "num_plateaus",
        "num_evals",
        "num_skipped",
        "_acc_sum",
        "_acc_count",
        "_ema",
        "_ema_count",
        "_recent",
    )
    _state_fields = _detector_fields
    _detector_checks: ClassVar[Mapping[str, Check]] = {
        "best": optional_finite,
        "num_bad_evals": count,
        "cooldown_counter": count,
        "num_plateaus": count,
        "num_evals": count,
        "num_skipped": count,
        "_acc_sum": finite,
        "_acc_count": count,
        "_ema": finite,
        "_ema_count": count,
        "_recent": finite_list,
    }
    _state_checks = _detector_checks
    _detector_settings: ClassVar[tuple[str, ...]] = (
        *Controller._settings_fields,
        "mode",
        "patience",
        "threshold",
        "threshold_mode",
        "cooldown",
        "rule",
        "min_delta",
        "accumulation_size",
        "smoothing",
        "judge",
        "window",
    )
    _settings_fields = _detector_settings

    def __init__(
        self,
        mode: str = "min",
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        *,
        target: str = "lr",
        floor: float | None = None,
        rule: str = "torch",
        min_delta: float = 0.0,
        accumulation_size: int = 1,
        smoothing: float = 0.0,
        judge: str = "best",
        window: int = 5,
        metric: str | None = None,
    ) -> None:
        super().__init__(target=target, floor=floor, metric=metric)
        name = type(self).__name__
        self.mode = choice(name, "mode", mode, ("min", "max"))
        self.rule = choice(name, "rule", rule, RULES)
        self.patience = integer(name, "patience", patience, low=1 if rule == "optax" else 0)
        self.threshold_mode = choice(name, "threshold_mode", threshold_mode, ("rel", "abs"))
        if threshold_mode == "rel":
            self.threshold = in_range(name, "threshold", threshold, 0.0, 1.0, high_open=True)
        else:
            self.threshold = non_negative(name, "threshold", threshold)
        self.cooldown = integer(name, "cooldown", cooldown)
        if rule == "fastai" and self.cooldown:
            raise ScheduleValueError(
                f"{name}: rule='fastai' has no cooldown, got cooldown={cooldown!r}"
            )
        self.min_delta = non_negative(name, "min_delta", min_delta)
        self.accumulation_size = integer(name, "accumulation_size", accumulation_size, low=1)
        self.smoothing = in_range(name, "smoothing", smoothing, 0.0, 1.0, high_open=True)
        self.judge = choice(name, "judge", judge, ("best", "trend"))
        self.window = integer(name, "window", window, low=2)
        # state
        self.best: float | None = None
        self.num_bad_evals = 0
        self.cooldown_counter = 0
        self.num_plateaus = 0  # times the rule fired (acted or not)
        self.num_evals = 0
        self.num_skipped = 0
        self._acc_sum = 0.0
        self._acc_count = 0
        self._ema = 0.0
        self._ema_count = 0
        self._recent: list[float] = []

    # ------------------------------------------------------------------ hooks
    def _act(self, step: int) -> None:
        """Do what the subclass does on a plateau (reduce, restart)."""

    def _can_act(self) -> bool:
        """Keras rule only: whether an action would change anything (else keep counting)."""
        return True

    # ------------------------------------------------------------------ observe
    def observe(self, step: int, metric: float) -> None:
        """Take a metric seen at ``step``; a non-finite one is skipped with a warning."""
        value = self._metric(step, metric)
        if value is None:
            self.num_skipped += 1
            return
        if self.accumulation_size > 1:
            self._acc_sum += value
            self._acc_count += 1
            if self._acc_count < self.accumulation_size:
                return
            value = self._acc_sum / self._acc_count
            self._acc_sum, self._acc_count = 0.0, 0
        if self.smoothing > 0.0:
            s = self.smoothing
            self._ema = s * self._ema + (1.0 - s) * value
            self._ema_count += 1
            value = self._ema / (1.0 - s**self._ema_count)
        self.num_evals += 1
        self._decide(int(step), value)

    def is_better(self, value: float) -> bool:
        """Whether ``value`` beats the best so far by the configured margin (no state change)."""
        if self.best is None:
            return True
        rel = self.threshold if self.threshold_mode == "rel" else 0.0
        ab = (self.threshold if self.threshold_mode == "abs" else 0.0) + self.min_delta
        if self.mode == "min":
            return value < self.best * (1.0 - rel) - ab
        return value > self.best * (1.0 + rel) + ab

    def _judge(self, value: float) -> bool:
        if self.judge == "best":
            better = self.is_better(value)
            if better:
                self.best = value
            return better
        self._recent = [*self._recent, value][-self.window :]
        if self.best is None or (value < self.best if self.mode == "min" else value > self.best):
            self.best = value
        if len(self._recent) < self.window:
            return True
        n = len(self._recent)
        mean_y = sum(self._recent) / n
        # Theil-Sen: the median of the pairwise slopes, robust to a single outlier
        slopes = sorted(
            (self._recent[j] - self._recent[i]) / (j - i) for i in range(n) for j in range(i + 1, n)
        )
        mid = len(slopes) // 2
        slope = slopes[mid] if len(slopes) % 2 else 0.5 * (slopes[mid - 1] + slopes[mid])
        change = slope * (n - 1)
        margin = (
            self.threshold * abs(mean_y) if self.threshold_mode == "rel" else self.threshold
        ) + self.min_delta
        return change < -margin if self.mode == "min" else change > margin

    def _decide(self, step: int, value: float) -> None:
        if self.rule == "keras":
            if self.cooldown_counter > 0:
                self.cooldown_counter -= 1
                self.num_bad_evals = 0
            if self._judge(value):
                self.num_bad_evals = 0
            elif self.cooldown_counter == 0:
                self.num_bad_evals += 1
                if self.num_bad_evals >= self.patience and self._can_act():
                    self._fire(step)
            return
        better = self._judge(value)
        self.num_bad_evals = 0 if better else self.num_bad_evals + 1
        if self.rule == "fastai":
            if not better and self.num_bad_evals >= self.patience:
                self._fire(step)
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_evals = 0
        limit_hit = (
            self.num_bad_evals > self.patience
            if self.rule == "torch"
            else self.num_bad_evals >= self.patience > 0
        )
        if limit_hit:
            self._fire(step)

    def _fire(self, step: int) -> None:
        self.num_plateaus += 1
        self._act(step)
        self.cooldown_counter = self.cooldown
        self.num_bad_evals = 0


class Plateau(PlateauDetector):
    """Reduce a hyperparameter by ``factor`` whenever a monitored metric plateaus.

    ``scale = max(factor ** n, min_scale)`` after ``n`` reductions; the value applied is
    ``max(schedule(step) * scale, floor)``, so it sits on top of any schedule (warmup, cosine,
    ...). A reduction whose change of scale is not more than ``eps`` is skipped (as torch skips a
    change of learning rate below ``eps``; torch compares absolute rates, lrkit the scale, which
    is the same with a base value of 1). When the plateau rule fires the counters are reset
    whether or not the scale moved, as torch does.

    With the defaults and ``floor=min_lr``, on a constant schedule the values equal
    ``torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode, factor, patience, threshold,
    threshold_mode, cooldown, min_lr, eps)`` fed the same metrics, step for step, as long as
    each reduction changes the rate by more than ``eps``: torch stops reducing once
    ``lr * (1 - factor) <= eps`` (rates near ``eps``), while the scale here compares changes of
    the scale with ``eps``; :class:`lrkit.torch.compat.ReduceLROnPlateau` reproduces torch there
    too.

    Args:
        mode, patience, threshold, threshold_mode, cooldown, target, floor, rule, min_delta,
            accumulation_size, smoothing, judge, window, metric: see :class:`PlateauDetector`.
        factor: multiplier per reduction, in (0, 1).
        min_scale: the scale is never reduced below this, in [0, 1).
        eps: minimal change of scale for a reduction to be applied.

    Attributes:
        num_reductions: reductions applied so far (``n`` above).
        last_reduced_step: the step of the last applied reduction (None: none yet).

    Raises:
        ValueError: an argument out of range, naming it and its value.

    Example:
        >>> from lrkit.controllers import Plateau
        >>> p = Plateau(factor=0.5, patience=1)
        >>> for step, loss in enumerate([1.0, 0.9, 0.95, 0.95, 0.95]):
        ...     p.observe(step, loss)
        >>> p.num_reductions, p.last_reduced_step, p.scale(5)
        (1, 3, 0.5)
    """

    _state_fields = (*PlateauDetector._detector_fields, "num_reductions", "last_reduced_step")
    _state_checks: ClassVar[Mapping[str, Check]] = {
        **PlateauDetector._detector_checks,
        "num_reductions": count,
        "last_reduced_step": optional_step,
    }
    _settings_fields = (*PlateauDetector._detector_settings, "factor", "min_scale", "eps")

    def __init__(
        self,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        floor: float | None = None,
        min_scale: float = 0.0,
        eps: float = 1e-8,
        target: str = "lr",
        *,
        rule: str = "torch",
        min_delta: float = 0.0,
        accumulation_size: int = 1,
        smoothing: float = 0.0,
        judge: str = "best",
        window: int = 5,
        metric: str | None = None,
    ) -> None:
        super().__init__(
            mode,
            patience,
            threshold,
            threshold_mode,
            cooldown,
            target=target,
            floor=floor,
            rule=rule,
            min_delta=min_delta,
            accumulation_size=accumulation_size,
            smoothing=smoothing,
            judge=judge,
            window=window,
            metric=metric,
        )
        self.factor = in_range("Plateau", "factor", factor, 0.0, 1.0, low_open=True, high_open=True)
        self.min_scale = in_range("Plateau", "min_scale", min_scale, 0.0, 1.0, high_open=True)
        self.eps = non_negative("Plateau", "eps", eps)
        self.num_reductions = 0
        self.last_reduced_step: int | None = None

    def _current(self) -> float:
        return max(self.factor**self.num_reductions, self.min_scale)

    def scale(self, step: int) -> float:
        """``max(factor ** num_reductions, min_scale)``."""
        self._seen(step)
        return self._current()

    def _can_act(self) -> bool:
        return self._current() > self.min_scale

    def _act(self, step: int) -> None:
        old = self._current()
        new = max(self.factor ** (self.num_reductions + 1), self.min_scale)
        if old - new > self.eps:
            self.num_reductions += 1
            self.last_reduced_step = step
            self._emit("reduce", step)

    def __repr__(self) -> str:
        return (
            f"Plateau(mode={self.mode!r}, factor={self.factor!r}, patience={self.patience!r}, "
            f"threshold={self.threshold!r}, threshold_mode={self.threshold_mode!r}, "
            f"cooldown={self.cooldown!r}, floor={self.floor!r}, min_scale={self.min_scale!r}, "
            f"eps={self.eps!r}, target={self.target!r}, rule={self.rule!r}, "
            f"metric={self.metric!r})"
        )
