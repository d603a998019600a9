"""What a learning-rate range test found (:class:`FinderResult`), as a record: the curve, the
suggested rate with its rule and confidence, and the schedules of :mod:`lrkit.tune.recipes` at
that rate. :func:`lrkit.tune.find_lr` makes one.

numpy and the standard library only (matplotlib imported by :meth:`FinderResult.plot`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import lrkit
from lrkit.tune import recipes
from lrkit.tune import rules as _suggest


@dataclass(frozen=True)
class FinderResult:
    """What a range test found: the curve, the suggestion and the alternatives.

    ``rates[i]`` is the rate of update ``i`` (of the first parameter group) and ``losses[i]`` the
    loss of its batch, before the update; ``smoothed`` is their debiased moving average. With
    the probe rule, ``probe_rates[j]`` is the peak of short run ``j`` and ``probe_losses[j]``
    its held-out loss (inf: it diverged). ``updates`` counts every optimizer update the test
    made (its cost).
    """

    rates: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    suggestion: float
    method: str
    confidence: float
    alternatives: dict[str, float] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()
    diverged: bool = False
    probe_rates: np.ndarray = field(default_factory=lambda: np.zeros(0))
    probe_losses: np.ndarray = field(default_factory=lambda: np.zeros(0))
    updates: int = 0

    @property
    def confidence_label(self) -> str:
        """``"high"``, ``"medium"`` or ``"low"``."""
        return _suggest.Suggestion(self.suggestion, self.method, self.confidence).confidence_label

    def recipe(self, name: str, total_steps: int | str, **options: Any) -> lrkit.Schedule:
        """Recipe ``name`` of :mod:`lrkit.tune.recipes` at the suggested rate:
        ``recipes.get(name, peak=suggestion, total_steps=total_steps, **options)``."""
        return recipes.get(name, peak=self.suggestion, total_steps=total_steps, **options)

    def one_cycle(self, steps: int | str, **kwargs: Any) -> lrkit.Schedule:
        """A one-cycle schedule peaking at the suggested rate (the ``one-cycle`` recipe)."""
        return self.recipe("one-cycle", steps, **kwargs)

    def cosine(self, steps: int | str, *, end_factor: float = 0.0) -> lrkit.Schedule:
        """Cosine from the suggested rate to ``end_factor * suggestion`` (the ``cosine``
        recipe)."""
        return self.recipe("cosine", steps, end_factor=end_factor)

    def warmup_cosine(
        self, steps: int, *, warmup_steps: int | None = None, end_factor: float = 0.0
    ) -> lrkit.Schedule:
        """Linear warmup (default ``max(1, round(0.05 * steps))``) into a cosine from the
        suggested rate (the ``warmup-cosine`` recipe); ``steps`` counts both phases."""
        return self.recipe("warmup-cosine", steps, warmup_steps=warmup_steps, end_factor=end_factor)

    def wsd(
        self, steps: int, *, decay_frac: float = 0.2, warmup_frac: float = 0.05
    ) -> lrkit.Schedule:
        """Warmup-stable-decay at the suggested rate over ``steps`` updates in all (the ``wsd``
        recipe: warmup ``max(1, round(warmup_frac * steps))``)."""
        return self.recipe("wsd", steps, decay_frac=decay_frac, warmup_frac=warmup_frac)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (curves as lists)."""
        return {
            "rates": self.rates.tolist(),
            "losses": [float(x) if math.isfinite(x) else None for x in self.losses],
            "smoothed": [float(x) if math.isfinite(x) else None for x in self.smoothed],
            "suggestion": self.suggestion,
            "method": self.method,
            "confidence": self.confidence,
            "alternatives": dict(self.alternatives),
            "reasons": list(self.reasons),
            "diverged": self.diverged,
            "probe_rates": self.probe_rates.tolist(),
            "probe_losses": [float(x) if math.isfinite(x) else None for x in self.probe_losses],
            "updates": self.updates,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FinderResult:
        """Inverse of :meth:`to_dict`."""
        nan = float("nan")
        return cls(
            rates=np.asarray(d["rates"], dtype=float),
            losses=np.asarray([nan if x is None else x for x in d["losses"]], dtype=float),
            smoothed=np.asarray([nan if x is None else x for x in d["smoothed"]], dtype=float),
            suggestion=float(d["suggestion"]),
            method=str(d["method"]),
            confidence=float(d["confidence"]),
            alternatives={k: float(v) for k, v in d["alternatives"].items()},
            reasons=tuple(d.get("reasons", ())),
            diverged=bool(d.get("diverged", False)),
            probe_rates=np.asarray(d.get("probe_rates", []), dtype=float),
            probe_losses=np.asarray(
                [math.inf if x is None else x for x in d.get("probe_losses", [])], dtype=float
            ),
            updates=int(d.get("updates", len(d["rates"]))),
        )

    def plot(self, path: str | None = None) -> Any:
        """Plot loss vs rate (log x) with the suggestion marked; save to ``path`` if given.

        Returns the matplotlib figure (matplotlib is imported here, lazily).
        """
        from lrkit.tune.report import plot_range_test

        return plot_range_test(self, path)
