"""Restarts and bumps: raise a hyperparameter mid-training, then let it decay again.

- :class:`Restarts`: a manual API for when new data arrives or layers are unfrozen.
  ``restart(to=...)`` rewinds the schedule's clock to ``to`` (optionally with a lower peak and a
  slower decay); ``bump(factor=..., steps=...)`` multiplies the value by ``factor`` that decays
  back to 1 over ``steps``.
- :class:`RestartOnPlateau`: a warm restart whenever a monitored metric plateaus (the detection
  rules of :class:`lrkit.controllers.PlateauDetector`).

A restart at step ``a`` to clock ``to`` with ``stretch`` ``r`` and ``peak_factor`` ``p`` makes,
for every step ``k >= a`` (until the next restart)::

    clock(k) = to + (k - a) / r          scale(k) = p

so the schedule replays from ``to`` at ``1/r`` of its speed, ``p`` times lower. A bump at ``a``
with ``factor`` ``f`` over ``steps`` ``n`` multiplies the scale by
``1 + (f - 1) * w((k - a) / n)`` for ``a <= k < a + n``, with ``w(u) = (1 + cos(pi u)) / 2``
(``shape="cosine"``) or ``1 - u`` (``"linear"``). Either can ask the binding to reset the
optimizer's state (Adam moments, momentum buffers) of some param groups through an event (see
:mod:`lrkit.controllers._base`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

from lrkit.controllers._base import Controller, groups_list, integer
from lrkit.controllers._state import Check, bump_list, count, optional_step, restart_list
from lrkit.controllers.plateau import PlateauDetector
from lrkit.schedules._check import boolean, choice, in_range, non_negative, positive

__all__ = ["RestartOnPlateau", "Restarts"]


def _restart_clock(restarts: list[list[float]], step: float) -> float:
    """The clock at ``step`` under the latest restart ``[at, to, stretch, peak]`` with at <= step."""
    for at, to, stretch, _ in reversed(restarts):
        if step >= at:
            return to + (step - at) / stretch
    return float(step)


def _restart_peak(restarts: list[list[float]], step: float) -> float:
    for at, _, _, peak in reversed(restarts):
        if step >= at:
            return peak
    return 1.0


def _bump_mult(bumps: list[list[Any]], step: float) -> float:
    out = 1.0
    for at, factor, steps, shape in bumps:
        u = (step - at) / steps
        if 0.0 <= u < 1.0:
            w = 0.5 * (1.0 + math.cos(math.pi * u)) if shape == "cosine" else 1.0 - u
            out *= 1.0 + (factor - 1.0) * w
    return out


class _Rewinding(Controller):
    """Base of the restarting controllers: the restarts ``[at, to, stretch, peak]`` kept in
    ``restarts``, the clock and scale they give, and the bookkeeping of a new restart."""

    restarts: list[list[float]]
    num_restarts: int
    last_restart_step: int | None
    groups: list[int] | None

    def clock(self, step: float) -> float:
        """``to + (step - a) / stretch`` after the latest restart at ``a``, else ``step``."""
        self._seen(step)
        return _restart_clock(self.restarts, step)

    def scale(self, step: int) -> float:
        """The latest restart's peak factor, else 1."""
        self._seen(step)
        return _restart_peak(self.restarts, step)

    def _push_restart(self, at: int, to: float, stretch: float, peak: float, reset: bool) -> None:
        """Record a restart at step ``at`` (replacing any from ``at`` on) and emit its event."""
        self.restarts = [r for r in self.restarts if r[0] < at] + [[at, to, stretch, peak]]
        self.num_restarts += 1
        self.last_restart_step = at
        self._emit("restart", at, reset_optimizer=reset, groups=self.groups)


class Restarts(_Rewinding):
    """Manual restarts and bumps of one hyperparameter (see the module docstring).

    Args:
        target: the hyperparameter modified ("lr", ...).
        floor: absolute minimum of the value.
        reset_optimizer: default for every restart/bump: ask the binding to reset optimizer state.
        groups: param-group indices whose optimizer state is reset (None: all).

    Example:
        >>> from lrkit.controllers import Restarts
        >>> s = linear(1.0, 0.0, steps=100)
        >>> r = Restarts()
        >>> r.restart(to=20, at=50, stretch=2.0)
        >>> [round(s(r.clock(k)) * r.scale(k), 3) for k in (49, 50, 52)]
        [0.51, 0.8, 0.79]
        >>> r.bump(factor=2.0, steps=10, at=60)
        >>> round(r.scale(60), 3), round(r.scale(65), 3), r.scale(70)
        (2.0, 1.5, 1.0)
    """

    _state_fields = ("restarts", "bumps", "num_restarts", "num_bumps", "last_restart_step")
    _state_checks: ClassVar[Mapping[str, Check]] = {
        "restarts": restart_list,
        "bumps": bump_list,
        "num_restarts": count,
        "num_bumps": count,
        "last_restart_step": optional_step,
    }
    _settings_fields = (*Controller._settings_fields, "reset_optimizer", "groups")

    def __init__(
        self,
        target: str = "lr",
        floor: float | None = None,
        *,
        reset_optimizer: bool = False,
        groups: list[int] | None = None,
    ) -> None:
        super().__init__(target=target, floor=floor)
        self.reset_optimizer = boolean("Restarts", "reset_optimizer", reset_optimizer)
        self.groups = groups_list("Restarts", groups)
        self.restarts: list[list[float]] = []
        self.bumps: list[list[Any]] = []
        self.num_restarts = 0
        self.num_bumps = 0
        self.last_restart_step: int | None = None

    # ------------------------------------------------------------------ protocol
    def scale(self, step: int) -> float:
        """The latest restart's ``peak_factor`` times the active bumps' multipliers."""
        self._seen(step)
        return _restart_peak(self.restarts, step) * _bump_mult(self.bumps, step)

    # ------------------------------------------------------------------ API
    def _at(self, at: int | None, name: str) -> int:
        if at is None:
            return self.last_step + 1
        return integer(f"Restarts.{name}", "at", at)

    def restart(
        self,
        to: float = 0,
        *,
        at: int | None = None,
        peak_factor: float = 1.0,
        stretch: float = 1.0,
        reset_optimizer: bool | None = None,
    ) -> None:
        """Rewind the schedule's clock to ``to`` from step ``at`` on.

        Args:
            to: the schedule time to restart from (0: from the start, warmup included).
            at: the first optimizer step affected (None: the next step the binding computes,
                i.e. one after the last step this controller was shown).
            peak_factor: multiplier on the replayed schedule (< 1 for a lower peak).
            stretch: replay ``stretch`` times slower (> 1: a slower decay).
            reset_optimizer: reset optimizer state (None: the constructor's default).

        Raises:
            ValueError: ``to`` < 0, ``peak_factor`` or ``stretch`` not > 0, ``at`` < 0.
        """
        to_f = non_negative("Restarts.restart", "to", to)
        peak = positive("Restarts.restart", "peak_factor", peak_factor)
        st = positive("Restarts.restart", "stretch", stretch)
        reset = self._reset_flag("restart", reset_optimizer)
        a = self._at(at, "restart")
        self._push_restart(a, to_f, st, peak, reset)

    def bump(
        self,
        factor: float = 2.0,
        steps: int = 1000,
        *,
        at: int | None = None,
        shape: str = "cosine",
        reset_optimizer: bool | None = None,
    ) -> None:
        """Multiply the value by ``factor`` at step ``at``, decaying back to 1 over ``steps``.

        Args:
            factor: the multiplier at ``at`` (> 0; > 1 raises the value).
            steps: steps over which the multiplier returns to 1 (>= 1).
            at: first step affected (None: the next step the binding computes).
            shape: "cosine" or "linear" return to 1.
            reset_optimizer: reset optimizer state (None: the constructor's default).

        Raises:
            ValueError: a bad argument, naming it and its value.
        """
        f = positive("Restarts.bump", "factor", factor)
        n = integer("Restarts.bump", "steps", steps, low=1)
        sh = choice("Restarts.bump", "shape", shape, ("cosine", "linear"))
        reset = self._reset_flag("bump", reset_optimizer)
        a = self._at(at, "bump")
        self.bumps = [b for b in self.bumps if b[0] + b[2] > a] + [[a, f, n, sh]]
        self.num_bumps += 1
        self._emit("bump", a, reset_optimizer=reset, groups=self.groups)

    def _reset_flag(self, name: str, value: bool | None) -> bool:
        if value is None:
            return self.reset_optimizer
        return boolean(f"Restarts.{name}", "reset_optimizer", value)


class RestartOnPlateau(_Rewinding, PlateauDetector):
    """A warm restart (clock rewound to ``to``) each time a monitored metric plateaus.

    Detection as :class:`~lrkit.controllers.PlateauDetector` (same rules and options); on a
    plateau at step ``a``, restart ``i`` (from 0) sets ``clock(k) = to + (k - a) / stretch`` and
    ``scale = peak_factor * peak_decay ** i`` for ``k >= a``, forgets the best value (the
    restarted run is judged afresh) and, if ``reset_optimizer``, emits an event asking the binding
    to reset optimizer state. After ``max_restarts`` restarts it stops acting.

    Args:
        mode, patience, threshold, threshold_mode, cooldown, target, floor, rule, min_delta,
            accumulation_size, smoothing, judge, window, metric: see :class:`PlateauDetector`.
        to: the schedule time restarted from.
        peak_factor: the scale after the first restart.
        peak_decay: each later restart's scale is multiplied by this (in (0, 1]).
        stretch: replay speed divisor (> 1: slower decay after each restart).
        max_restarts: at most this many restarts (None: no limit).
        reset_optimizer: ask the binding to reset optimizer state at each restart.
        groups: param-group indices to reset (None: all).

    Raises:
        ValueError: a bad argument, naming it and its value.

    Example:
        >>> from lrkit.controllers import RestartOnPlateau
        >>> r = RestartOnPlateau(patience=1, to=0, peak_factor=0.5)
        >>> for step, loss in enumerate([1.0, 0.8, 0.8, 0.8]):
        ...     r.observe(step * 10, loss)
        >>> r.num_restarts, r.last_restart_step, r.clock(35), r.scale(35)
        (1, 30, 5.0, 0.5)
    """

    _state_fields = (
        *PlateauDetector._detector_fields,
        "restarts",
        "num_restarts",
        "last_restart_step",
    )
    _state_checks: ClassVar[Mapping[str, Check]] = {
        **PlateauDetector._detector_checks,
        "restarts": restart_list,
        "num_restarts": count,
        "last_restart_step": optional_step,
    }
    _settings_fields = (
        *PlateauDetector._detector_settings,
        "to",
        "peak_factor",
        "peak_decay",
        "stretch",
        "max_restarts",
        "reset_optimizer",
        "groups",
    )

    def __init__(
        self,
        mode: str = "min",
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        *,
        to: float = 0,
        peak_factor: float = 1.0,
        peak_decay: float = 1.0,
        stretch: float = 1.0,
        max_restarts: int | None = None,
        reset_optimizer: bool = False,
        groups: list[int] | None = None,
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
        name = "RestartOnPlateau"
        self.to = non_negative(name, "to", to)
        self.peak_factor = positive(name, "peak_factor", peak_factor)
        self.peak_decay = in_range(name, "peak_decay", peak_decay, 0.0, 1.0, low_open=True)
        self.stretch = positive(name, "stretch", stretch)
        self.max_restarts = (
            None if max_restarts is None else integer(name, "max_restarts", max_restarts)
        )
        self.reset_optimizer = boolean(name, "reset_optimizer", reset_optimizer)
        self.groups = groups_list(name, groups)
        self.restarts: list[list[float]] = []
        self.num_restarts = 0
        self.last_restart_step: int | None = None

    def _can_act(self) -> bool:
        return self.max_restarts is None or self.num_restarts < self.max_restarts

    def _act(self, step: int) -> None:
        if not self._can_act():
            return
        peak = self.peak_factor * self.peak_decay**self.num_restarts
        self._push_restart(step, self.to, self.stretch, peak, self.reset_optimizer)
        self.best = None
        self._recent = []
