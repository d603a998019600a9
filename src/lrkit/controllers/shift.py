"""Restart when the training loss shifts up: Page-Hinkley and CUSUM change detectors.

A training loss that jumps and stays up (new data, a new task, a changed target) is a
distribution shift; a decayed learning rate then recovers slowly. :class:`RestartOnShift` feeds
the loss to a detector and, on an alarm, warm-restarts the schedule (as
:class:`lrkit.controllers.Restarts` does), optionally resetting the optimizer's state.

Both detectors look for an *increase* of the mean, relative to an exponential moving average
``mu_t = (1 - alpha) mu_{t-1} + alpha x_t`` (which forgets the early, higher losses), and learn
their statistics for ``burn_in`` observations after construction and after every alarm:

- :class:`PageHinkley` (Page 1954; Hinkley 1971), on relative deviations:
  ``m_t = m_{t-1} + (x_t - mu_{t-1}) / |mu_{t-1}| - delta``, ``M_t = min(M_{t-1}, m_t)``,
  alarm when ``m_t - M_t > threshold``.
- :class:`Cusum` (Page 1954, one-sided upper CUSUM), on standardised deviations
  ``z_t = (x_t - mu_{t-1}) / sigma_{t-1}`` (``sigma`` from an EMA of squared deviations):
  ``g_t = max(0, g_{t-1} + z_t - drift)``, alarm when ``g_t > threshold``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

from lrkit.controllers._base import _copy_json, groups_list, integer
from lrkit.controllers._state import (
    Check,
    count,
    exact_keys,
    finite,
    optional_step,
    restart_list,
    step_list,
)
from lrkit.controllers.restarts import _Rewinding
from lrkit.schedules._check import boolean, choice, in_range, non_negative, positive
from lrkit.schedules._errors import ScheduleValueError

__all__ = ["Cusum", "PageHinkley", "RestartOnShift"]


class _Detector:
    """Shared EMA statistics, burn-in and state handling."""

    _fields: ClassVar[tuple[str, ...]] = ("n", "mu", "var")
    _checks: ClassVar[dict[str, Check]] = {"n": count, "mu": finite, "var": non_negative}
    _settings: ClassVar[tuple[str, ...]] = ("alpha", "burn_in")

    def __init__(self, alpha: float, burn_in: int) -> None:
        name = type(self).__name__
        self.alpha = in_range(name, "alpha", alpha, 0.0, 1.0, low_open=True)
        self.burn_in = integer(name, "burn_in", burn_in, low=1)
        self.reset()

    def reset(self) -> None:
        """Forget everything (called after an alarm: the new regime is learnt afresh)."""
        self.n = 0
        self.mu = 0.0
        self.var = 0.0

    def _learn(self, x: float) -> None:
        self.n += 1
        if self.n == 1:
            self.mu, self.var = x, 0.0
            return
        # during burn-in a plain running mean (fast start), then the EMA
        a = max(self.alpha, 1.0 / self.n)
        d = x - self.mu
        self.mu += a * d
        self.var = (1.0 - a) * (self.var + a * d * d)

    def update(self, x: float) -> bool:
        """Take one observation; True on an alarm (the detector then resets itself)."""
        if self.n < self.burn_in:
            self._learn(x)
            return False
        alarm = self._test(x)
        if alarm:
            self.reset()
            return True
        self._learn(x)
        return False

    def _test(self, x: float) -> bool:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """The statistics (JSON-serialisable)."""
        return {f: _copy_json(getattr(self, f)) for f in self._fields}

    def settings(self) -> dict[str, Any]:
        """The detector's kind and arguments (JSON), compared when a checkpoint is loaded."""
        out: dict[str, Any] = {"kind": type(self).__name__}
        out.update({f: getattr(self, f) for f in self._settings})
        return out

    def check_state(self, owner: str, name: str, state: object) -> dict[str, Any]:
        """``state`` validated (exact keys, each value's range), without changing anything.

        Raises:
            ValueError, TypeError: naming ``name[key]`` and the value.
        """
        saved = exact_keys(owner, name, state, self._fields)
        out = {f: self._checks[f](owner, f"{name}[{f!r}]", saved[f]) for f in self._fields}
        self._check_relations(owner, name, out)
        return out

    def _check_relations(self, owner: str, name: str, state: dict[str, Any]) -> None:
        """Relations between the statistics (none here)."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output (checked first: a refused state changes nothing)."""
        checked = self.check_state(f"{type(self).__name__}.load_state_dict", "state", state)
        for f, v in checked.items():
            setattr(self, f, v)


class PageHinkley(_Detector):
    """Page-Hinkley test for an upward shift of the mean, on relative deviations.

    Args:
        delta: tolerated relative increase per observation (drift allowance), >= 0.
        threshold: alarm level of the cumulated relative deviation, > 0.
        alpha: EMA weight of the reference mean, in (0, 1].
        burn_in: observations learnt before testing (after construction and each alarm).

    Example:
        >>> from lrkit.controllers import PageHinkley
        >>> d = PageHinkley(delta=0.05, threshold=0.5, burn_in=5)
        >>> [d.update(x) for x in [1.0] * 8 + [2.0]][-1]
        True
    """

    _fields = ("n", "mu", "var", "cum", "cum_min")
    _checks: ClassVar[dict[str, Check]] = {**_Detector._checks, "cum": finite, "cum_min": finite}
    _settings = ("delta", "threshold", *_Detector._settings)

    def __init__(
        self, delta: float = 0.05, threshold: float = 1.0, alpha: float = 0.05, burn_in: int = 20
    ) -> None:
        self.delta = non_negative("PageHinkley", "delta", delta)
        self.threshold = positive("PageHinkley", "threshold", threshold)
        super().__init__(alpha, burn_in)

    def reset(self) -> None:
        super().reset()
        self.cum = 0.0
        self.cum_min = 0.0

    def _check_relations(self, owner: str, name: str, state: dict[str, Any]) -> None:
        """``cum_min = min(0, cum_1, ..., cum_t)``: at most 0 and at most ``cum``."""
        if state["cum_min"] > min(0.0, state["cum"]):
            raise ScheduleValueError(
                f"{owner}: {name}['cum_min'] must be <= min(0, cum), got "
                f"cum_min={state['cum_min']!r}, cum={state['cum']!r}"
            )

    def _test(self, x: float) -> bool:
        ref = abs(self.mu) if self.mu != 0.0 else 1.0
        self.cum += (x - self.mu) / ref - self.delta
        self.cum_min = min(self.cum_min, self.cum)
        return self.cum - self.cum_min > self.threshold


class Cusum(_Detector):
    """One-sided upper CUSUM on standardised deviations from an EMA mean.

    Args:
        drift: allowance ``k`` in standard deviations subtracted per observation, >= 0.
        threshold: alarm level ``h`` of the cumulated sum, > 0.
        alpha: EMA weight of the mean and variance, in (0, 1].
        burn_in: observations learnt before testing (after construction and each alarm).

    Example:
        >>> from lrkit.controllers import Cusum
        >>> d = Cusum(drift=0.5, threshold=8.0, burn_in=10)
        >>> noise = [0.1, -0.1] * 10
        >>> [d.update(1.0 + e) for e in noise].count(True), d.update(3.0)
        (0, True)
    """

    _fields = ("n", "mu", "var", "g")
    _checks: ClassVar[dict[str, Check]] = {**_Detector._checks, "g": non_negative}
    _settings = ("drift", "threshold", *_Detector._settings)

    def __init__(
        self, drift: float = 0.5, threshold: float = 8.0, alpha: float = 0.05, burn_in: int = 20
    ) -> None:
        self.drift = non_negative("Cusum", "drift", drift)
        self.threshold = positive("Cusum", "threshold", threshold)
        super().__init__(alpha, burn_in)

    def reset(self) -> None:
        super().reset()
        self.g = 0.0

    def _test(self, x: float) -> bool:
        sigma = max(math.sqrt(self.var), 1e-3 * abs(self.mu), 1e-12)
        z = (x - self.mu) / sigma
        self.g = max(0.0, self.g + z - self.drift)
        return self.g > self.threshold


class RestartOnShift(_Rewinding):
    """Warm-restart the schedule when a detector sees the training loss shift up.

    Feed it the training loss every step (``scheduler.step(metric=loss)``, or by name:
    ``RestartOnShift(metric="train_loss")`` and ``scheduler.step(train_loss=loss)``). On an
    alarm at step ``a``: ``clock(k) = to + (k - a) / stretch`` and ``scale = peak_factor`` for
    ``k >= a``; an event asks the binding to reset optimizer state when ``reset_optimizer``. No
    new alarm is raised within ``min_interval`` steps of a restart (the detector re-learns the
    new regime).

    Args:
        detector: "cusum" or "page_hinkley".
        threshold: the detector's alarm level (None: 8.0 for cusum, 1.0 for page_hinkley).
        drift: CUSUM's ``drift`` or Page-Hinkley's ``delta`` (None: 0.5 / 0.05).
        alpha: EMA weight of the detector's reference statistics.
        burn_in: observations learnt before testing.
        to: the schedule time restarted from.
        peak_factor: scale after a restart (< 1: a lower peak).
        stretch: replay speed divisor (> 1: slower decay).
        min_interval: steps after a restart during which alarms are ignored (None: burn_in).
        max_restarts: at most this many restarts (None: no limit).
        reset_optimizer: ask the binding to reset optimizer state at each restart.
        groups: param-group indices to reset (None: all).
        target: the hyperparameter modified.
        floor: absolute minimum of the value.
        metric: the name of the metric watched, e.g. ``"train_loss"`` (None: the unnamed
            metric), so that ``scheduler.step(train_loss=loss)`` feeds only this controller.

    Raises:
        ValueError: a bad argument, naming it and its value.

    Example:
        >>> from lrkit.controllers import RestartOnShift
        >>> r = RestartOnShift(burn_in=10, to=0)
        >>> losses = [1.0 + 0.05 * (-1) ** k for k in range(30)] + [3.0] * 5
        >>> for step, loss in enumerate(losses):
        ...     r.observe(step, loss)
        >>> r.num_restarts, r.shift_steps
        (1, [30])
    """

    _state_fields = (
        "detector_state",
        "restarts",
        "num_restarts",
        "last_restart_step",
        "shift_steps",
    )
    _state_checks: ClassVar[Mapping[str, Check]] = {
        "restarts": restart_list,
        "num_restarts": count,
        "last_restart_step": optional_step,
        "shift_steps": step_list,
    }
    _settings_fields = (
        *_Rewinding._settings_fields,
        "detector_settings",
        "to",
        "peak_factor",
        "stretch",
        "min_interval",
        "max_restarts",
        "reset_optimizer",
        "groups",
    )

    def __init__(
        self,
        detector: str = "cusum",
        *,
        threshold: float | None = None,
        drift: float | None = None,
        alpha: float = 0.05,
        burn_in: int = 20,
        to: float = 0,
        peak_factor: float = 1.0,
        stretch: float = 1.0,
        min_interval: int | None = None,
        max_restarts: int | None = None,
        reset_optimizer: bool = False,
        groups: list[int] | None = None,
        target: str = "lr",
        floor: float | None = None,
        metric: str | None = None,
    ) -> None:
        super().__init__(target=target, floor=floor, metric=metric)
        name = "RestartOnShift"
        choice(name, "detector", detector, ("cusum", "page_hinkley"))
        try:
            if detector == "cusum":
                self.detector: _Detector = Cusum(
                    drift=0.5 if drift is None else drift,
                    threshold=8.0 if threshold is None else threshold,
                    alpha=alpha,
                    burn_in=burn_in,
                )
            else:
                self.detector = PageHinkley(
                    delta=0.05 if drift is None else drift,
                    threshold=1.0 if threshold is None else threshold,
                    alpha=alpha,
                    burn_in=burn_in,
                )
        except (ValueError, TypeError) as exc:
            msg = str(exc).replace("Cusum:", f"{name}:").replace("PageHinkley:", f"{name}:")
            raise type(exc)(msg.replace("delta", "drift")) from None
        self.to = non_negative(name, "to", to)
        self.peak_factor = positive(name, "peak_factor", peak_factor)
        self.stretch = positive(name, "stretch", stretch)
        self.min_interval = (
            self.detector.burn_in
            if min_interval is None
            else integer(name, "min_interval", min_interval)
        )
        self.max_restarts = (
            None if max_restarts is None else integer(name, "max_restarts", max_restarts)
        )
        self.reset_optimizer = boolean(name, "reset_optimizer", reset_optimizer)
        self.groups = groups_list(name, groups)
        self.restarts: list[list[float]] = []
        self.num_restarts = 0
        self.last_restart_step: int | None = None
        self.shift_steps: list[int] = []

    @property
    def detector_state(self) -> dict[str, Any]:
        """The detector's statistics (part of :meth:`state_dict`)."""
        return self.detector.state_dict()

    @detector_state.setter
    def detector_state(self, state: dict[str, Any]) -> None:
        self.detector.load_state_dict(state)

    @property
    def detector_settings(self) -> dict[str, Any]:
        """The detector's kind and arguments (part of the settings in :meth:`state_dict`)."""
        return self.detector.settings()

    def _state_check(self, field: str) -> Check:
        if field == "detector_state":
            return self.detector.check_state
        return super()._state_check(field)

    def observe(self, step: int, metric: float) -> None:
        """Feed one training-loss value; restart on an alarm (non-finite values are skipped)."""
        value = self._metric(step, metric)
        if value is None:
            return
        step = int(step)
        alarm = self.detector.update(value)
        if not alarm:
            return
        if self.last_restart_step is not None and step - self.last_restart_step < self.min_interval:
            return
        self.shift_steps.append(step)
        if self.max_restarts is not None and self.num_restarts >= self.max_restarts:
            return
        self._push_restart(step, self.to, self.stretch, self.peak_factor, self.reset_optimizer)
