"""One conclusion about a run: :class:`Finding` (what, how bad, where, the numbers, the fix)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["KINDS", "Finding"]

#: Every kind a detector can report, in the order :func:`lrkit.diagnostics.diagnose` breaks
#: ties of severity: root causes before their symptoms.
KINDS = (
    "layer_imbalance",
    "diverged",
    "warmup_too_short",
    "lr_too_high",
    "exploding_gradients",
    "decay_too_early",
    "overfitting",
    "lr_too_low",
    "plateau",
    "not_converged",
    "healthy",
)


@dataclass(frozen=True)
class Finding:
    """A detector's conclusion about a run.

    Args:
        kind: one of :data:`KINDS`.
        severity: in [0, 1]; 0.7 and above is ``"critical"``, 0.4 and above ``"warning"``,
            below that ``"info"``.
        start, end: the steps where it happened (inclusive).
        summary: one sentence saying what is wrong, with the numbers.
        evidence: the numbers the detector judged, ``(name, value)`` pairs.
        advice: what to do, as an lrkit action.
        spec: an lrkit schedule spec implementing the advice, where one fits (else None).

    Raises:
        ValueError: an unknown kind, a severity outside [0, 1], ``end < start``.
    """

    kind: str
    severity: float
    start: int
    end: int
    summary: str
    evidence: tuple[tuple[str, float], ...] = ()
    advice: str = ""
    spec: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Finding: kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if not 0.0 <= float(self.severity) <= 1.0:
            raise ValueError(f"Finding: severity must be in [0, 1], got severity={self.severity!r}")
        if self.end < self.start:
            raise ValueError(
                f"Finding: end must be >= start, got start={self.start}, end={self.end}"
            )
        object.__setattr__(self, "severity", float(self.severity))
        object.__setattr__(
            self, "evidence", tuple((str(k), float(v)) for k, v in dict(self.evidence).items())
        )

    @property
    def level(self) -> str:
        """``"critical"``, ``"warning"`` or ``"info"`` from :attr:`severity`."""
        if self.kind == "healthy":
            return "ok"
        return "critical" if self.severity >= 0.7 else "warning" if self.severity >= 0.4 else "info"

    @property
    def facts(self) -> Mapping[str, float]:
        """The evidence as a dict."""
        return dict(self.evidence)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field plus ``level``."""
        return {
            "kind": self.kind,
            "severity": self.severity,
            "level": self.level,
            "start": self.start,
            "end": self.end,
            "summary": self.summary,
            "evidence": dict(self.evidence),
            "advice": self.advice,
            "spec": self.spec,
        }

    def __str__(self) -> str:
        where = f"step {self.start}" if self.start == self.end else f"steps {self.start}-{self.end}"
        text = f"[{self.level}] {self.kind} ({where}): {self.summary}"
        if self.advice:
            text += f"\n    fix: {self.advice}"
        if self.spec:
            text += f"\n    e.g. {self.spec}"
        return text
