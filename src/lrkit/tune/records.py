"""The records passed between the stages of the main job: a trial to run, the result of a run, a
summary row, a rate tried by the peak refinement and a refinement. Each is a frozen dataclass;
JSON exists only at the edges (run files, ``results.json``, CSV), through ``to_json`` and the
validating ``from_json``.

numpy and the standard library only.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lrkit.tools._files import _plain
from lrkit.tune.candidates import Candidate

#: Version of the run-file layout; a file with another version is retrained, never reused.
RUN_SCHEMA = 2


class RecordError(ValueError):
    """A run file (or other JSON record) that does not hold what it should."""


@dataclass(frozen=True)
class Trial:
    """One training run to do: a candidate schedule, a seed and a step budget (for a rung of
    the halving search, the rung's horizon), with the key that identifies its result
    (:func:`lrkit.tune._runs.run_key`), the file it is saved to (None: not saved), the device
    it trains on (model and batches are moved there) and the halving search's ``rung`` it
    belongs to (None: the grid search)."""

    candidate: Candidate
    seed: int
    steps: int
    key: str
    path: Path | None = None
    device: str = "cpu"
    rung: int | None = None


@dataclass(frozen=True)
class RunResult:
    """What one run produced: the rate applied at every update (first parameter group), the
    mean training loss and the validation loss/accuracy every ``eval_every`` updates, the final
    validation loss (``inf`` when the run diverged) and accuracy, the wall time, the validation
    loss of the initialised model (``start_val_loss``) and, for a diverged run, why it counts as
    diverged (``reason``: a non-finite loss, no better than the start, or chance level)."""

    schedule: str
    spec: str
    plateau: Mapping[str, Any] | None
    seed: int
    steps: int
    lr: tuple[float, ...]
    train_step: tuple[int, ...]
    train_loss: tuple[float, ...]
    val_step: tuple[int, ...]
    val_loss: tuple[float, ...]
    val_acc: tuple[float | None, ...]
    final_val_loss: float
    final_acc: float | None
    diverged: bool
    wall_s: float
    key: str = ""
    start_val_loss: float = math.nan
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        """The run file's content (plain JSON types; non-finite numbers written as null), with a
        checksum of the rest (:func:`checksum`), so an edited file is noticed."""
        d = self._content()
        return {**d, "checksum": checksum(d)}

    def _content(self) -> dict[str, Any]:
        return {
            "schema": RUN_SCHEMA,
            "key": self.key,
            "schedule": self.schedule,
            "spec": self.spec,
            "plateau": dict(self.plateau) if self.plateau is not None else None,
            "seed": self.seed,
            "steps": self.steps,
            "lr": list(self.lr),
            "train": {"step": list(self.train_step), "loss": list(self.train_loss)},
            "val": {
                "step": list(self.val_step),
                "loss": list(self.val_loss),
                "acc": list(self.val_acc),
            },
            "final_val_loss": self.final_val_loss if math.isfinite(self.final_val_loss) else None,
            "final_acc": self.final_acc,
            "diverged": self.diverged,
            "start_val_loss": self.start_val_loss,
            "reason": self.reason,
            "wall_s": self.wall_s,
        }

    @classmethod
    def from_json(cls, d: object) -> RunResult:
        """The inverse of :meth:`to_json`, validated: the schema version, every field's type,
        finite numbers where a finished run has them, and a final loss that agrees with the
        curve (``final_val_loss`` is the last validation loss, or null for a diverged run).

        Raises:
            RecordError: anything else (the message names the field).
        """
        if not isinstance(d, Mapping):
            raise RecordError(f"run file: expected an object, got {type(d).__name__}")
        if d.get("schema") != RUN_SCHEMA:
            raise RecordError(f"run file: schema must be {RUN_SCHEMA}, got {d.get('schema')!r}")
        train, val = _obj(d, "train"), _obj(d, "val")
        diverged = _bool(d, "diverged")
        val_loss = _floats(val, "loss", "val.loss", finite=False, nullable=True)
        final = d.get("final_val_loss")
        if diverged:
            if final is not None or not isinstance(d.get("reason"), str) or not d["reason"]:
                raise RecordError(
                    "run file: a diverged run must have final_val_loss=null and a reason"
                )
            final_loss = math.inf
        else:
            final_loss = _finite(final, "final_val_loss")
            if not val_loss or val_loss[-1] != final_loss or not all(map(math.isfinite, val_loss)):
                raise RecordError(
                    "run file: final_val_loss must be the last (finite) validation loss, "
                    f"got final_val_loss={final!r}"
                )
        acc = d.get("final_acc")
        if acc is not None and not (_is_num(acc) and 0.0 <= acc <= 1.0):
            raise RecordError(f"run file: final_acc must be null or in [0, 1], got {acc!r}")
        plateau = d.get("plateau")
        if plateau is not None and not isinstance(plateau, Mapping):
            raise RecordError(f"run file: plateau must be null or an object, got {plateau!r}")
        accs = val.get("acc")
        if not isinstance(accs, list) or not all(a is None or _is_num(a) for a in accs):
            raise RecordError("run file: val.acc must be a list of numbers or nulls")
        out = cls(
            schedule=_str(d, "schedule"),
            spec=_str(d, "spec"),
            plateau=dict(plateau) if plateau is not None else None,
            seed=_int(d, "seed"),
            steps=_int(d, "steps"),
            lr=_floats(d, "lr", "lr", finite=True),
            train_step=_ints(train, "step", "train.step"),
            train_loss=_floats(train, "loss", "train.loss", finite=False),
            val_step=_ints(val, "step", "val.step"),
            val_loss=val_loss,
            val_acc=tuple(None if a is None else float(a) for a in accs),
            final_val_loss=final_loss,
            final_acc=None if acc is None else float(acc),
            diverged=diverged,
            wall_s=_finite(d.get("wall_s"), "wall_s"),
            key=_str(d, "key"),
            start_val_loss=_finite(d.get("start_val_loss"), "start_val_loss"),
            reason=_str(d, "reason"),
        )
        if d.get("checksum") != checksum({k: v for k, v in d.items() if k != "checksum"}):
            raise RecordError("run file: checksum does not match its content (edited?)")
        return out


@dataclass(frozen=True)
class SummaryRow:
    """One schedule's aggregate over its seeds at the common peak: the mean and sample standard
    deviation (None for one seed) of the final validation loss over the seeds that did not
    diverge, how many diverged, the mean final accuracy (None when the task reports none), the
    mean wall time, and the mean first step at or below the target loss (None when no seed got
    there) with how many seeds got there."""

    schedule: str
    spec: str
    seeds: int
    diverged: int
    val_loss_mean: float
    val_loss_std: float | None
    acc_mean: float | None
    wall_s_mean: float
    steps_to_target: float | None = None
    reached_target: int = 0

    def to_json(self) -> dict[str, Any]:
        """A flat JSON/CSV row."""
        return {
            "schedule": self.schedule,
            "spec": self.spec,
            "seeds": self.seeds,
            "diverged": self.diverged,
            "val_loss_mean": self.val_loss_mean,
            "val_loss_std": self.val_loss_std,
            "acc_mean": self.acc_mean,
            "wall_s_mean": self.wall_s_mean,
            "steps_to_target": self.steps_to_target,
            "reached_target": self.reached_target,
        }


@dataclass(frozen=True)
class RateTrial:
    """One rate tried by the peak refinement: the rate, its ratio to the common peak, the mean
    final validation loss over the seeds (``inf`` when any seed diverged), its sample standard
    deviation over the finite ones (None for fewer than two), how many seeds diverged, and the
    candidate's spec at that rate."""

    peak: float
    ratio: float
    val_loss_mean: float
    val_loss_std: float | None
    diverged: int
    seeds: int
    spec: str

    def to_json(self) -> dict[str, Any]:
        """A flat JSON row."""
        return {
            "peak": self.peak,
            "ratio": self.ratio,
            "val_loss_mean": self.val_loss_mean,
            "val_loss_std": self.val_loss_std,
            "diverged": self.diverged,
            "seeds": self.seeds,
            "spec": self.spec,
        }


@dataclass(frozen=True)
class PeakRefinement:
    """One schedule's peak refinement: the factor and step bound, the common (range-test) peak
    and the refined one, the signed number of factor steps between them, every rate tried
    (ascending, the common peak included) and the refinement's own runs. ``fixed``: the
    schedule's spec does not use the peak, so nothing was trained."""

    schedule: str
    factor: float
    max_steps: int
    peak: float
    refined_peak: float
    steps: int
    fixed: bool
    spec: str
    plateau: Mapping[str, Any] | None
    trials: tuple[RateTrial, ...]
    runs: tuple[RunResult, ...] = field(default=())

    @property
    def at_refined(self) -> RateTrial:
        """The trial at the refined peak."""
        return next(t for t in self.trials if t.peak == self.refined_peak)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready, runs included."""
        return {
            "schedule": self.schedule,
            "factor": self.factor,
            "max_steps": self.max_steps,
            "peak": self.peak,
            "refined_peak": self.refined_peak,
            "steps": self.steps,
            "fixed": self.fixed,
            "spec": self.spec,
            "plateau": dict(self.plateau) if self.plateau is not None else None,
            "trials": [t.to_json() for t in self.trials],
            "runs": [r.to_json() for r in self.runs],
        }


# ---------------------------------------------------------------------------- validation
def checksum(content: Mapping[str, Any]) -> str:
    """SHA-256 of ``content`` as canonical JSON (sorted keys, non-finite numbers as null)."""
    blob = json.dumps(_plain(content), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def _is_num(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _obj(d: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    v = d.get(name)
    if not isinstance(v, Mapping):
        raise RecordError(f"run file: {name} must be an object, got {v!r}")
    return v


def _str(d: Mapping[str, Any], name: str) -> str:
    v = d.get(name)
    if not isinstance(v, str):
        raise RecordError(f"run file: {name} must be a string, got {name}={v!r}")
    return v


def _int(d: Mapping[str, Any], name: str) -> int:
    v = d.get(name)
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise RecordError(f"run file: {name} must be an integer >= 0, got {name}={v!r}")
    return v


def _bool(d: Mapping[str, Any], name: str) -> bool:
    v = d.get(name)
    if not isinstance(v, bool):
        raise RecordError(f"run file: {name} must be true or false, got {name}={v!r}")
    return v


def _finite(v: object, name: str) -> float:
    if not _is_num(v) or not math.isfinite(float(v)):  # type: ignore[arg-type]
        raise RecordError(f"run file: {name} must be a finite number, got {name}={v!r}")
    return float(v)  # type: ignore[arg-type]


def _floats(
    d: Mapping[str, Any], key: str, name: str, *, finite: bool, nullable: bool = False
) -> tuple[float, ...]:
    """A list of numbers; with ``nullable`` a null (how JSON holds NaN/inf) reads as NaN."""
    v = d.get(key)
    if not isinstance(v, list) or not all(_is_num(x) or (nullable and x is None) for x in v):
        raise RecordError(f"run file: {name} must be a list of numbers")
    out = tuple(math.nan if x is None else float(x) for x in v)
    if finite and not all(math.isfinite(x) for x in out):
        raise RecordError(f"run file: {name} must be finite")
    return out


def _ints(d: Mapping[str, Any], key: str, name: str) -> tuple[int, ...]:
    v = d.get(key)
    if not isinstance(v, list) or not all(
        isinstance(x, int) and not isinstance(x, bool) for x in v
    ):
        raise RecordError(f"run file: {name} must be a list of integers")
    return tuple(v)


def finite_losses(runs: Sequence[RunResult]) -> list[float]:
    """The final validation losses of the runs that did not diverge."""
    return [r.final_val_loss for r in runs if math.isfinite(r.final_val_loss)]
