"""The recorded series of one training run, as one frozen record: :class:`RunLog`.

A log has one row per optimizer step (``steps``, ``loss``, the hyperparameters of each group)
and, sampled on some steps only, gradient norms and update-to-weight ratios (``NaN`` on the
steps where they were not measured). Validation metrics have their own steps. Everything is a
numpy array; :meth:`RunLog.from_rows` builds one from flat dicts (a CSV or JSON-lines file, see
:mod:`lrkit.diagnostics.io` for the columns).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

__all__ = ["RunLog"]


def _floats(owner: str, name: str, values: Any, n: int | None = None) -> np.ndarray:
    arr = np.array(values, dtype=np.float64)  # a copy: the caller's array stays writable
    if arr.ndim != 1:
        raise ValueError(f"{owner}: {name} must be one-dimensional, got shape {arr.shape}")
    if n is not None and len(arr) != n:
        raise ValueError(f"{owner}: {name} must have one value per step ({n}), got {len(arr)}")
    arr.setflags(write=False)
    return arr


def _series(owner: str, name: str, values: Mapping[str, Any], n: int) -> Mapping[str, np.ndarray]:
    if not isinstance(values, Mapping):
        raise TypeError(f"{owner}: {name} must be a dict of series by name, got {values!r}")
    return MappingProxyType(
        {str(k): _floats(owner, f"{name}[{k!r}]", v, n) for k, v in values.items()}
    )


@dataclass(frozen=True, eq=False)
class RunLog:
    """What one run recorded, step by step (frozen; arrays are read-only).

    Args:
        steps: the optimizer step of each row (strictly increasing integers).
        loss: the training loss at each step (``NaN``/``inf`` where it was not finite).
        hparams: each scheduled hyperparameter by name (``"lr"``, ``"momentum"``, ...), per
            group: ``hparams["lr"]["head"]`` is that group's rate at each step. The first group
            listed is the *main* group (its rate is :attr:`lr`).
        val_steps: the steps at which validation ran.
        val: validation metrics at ``val_steps`` by name; ``"val_loss"`` is the one judged.
        grad_norm: the global gradient norm (``NaN`` where not sampled), or None.
        group_grad_norm: the gradient norm of each group, same convention.
        ratio: the update-to-weight ratio ``||Δw|| / ||w||`` of each layer (a module that owns
            parameters), ``NaN`` where not sampled.
        group_ratio: the same ratio over each group's parameters.
        grad_update_cos: ``cos(Δw_k, -g_{k+1})``, the cosine between a sampled update and the
            next step's descent direction (``NaN`` where not sampled), or None: positive while
            the loss keeps falling along the steps taken, negative when they overshoot.
        group_grad_update_cos: the same per group.

    Raises:
        ValueError: lengths that disagree, steps not strictly increasing, no step.
    """

    steps: np.ndarray
    loss: np.ndarray
    hparams: Mapping[str, Mapping[str, np.ndarray]] = field(default_factory=dict)
    val_steps: np.ndarray = field(default_factory=lambda: np.zeros(0))
    val: Mapping[str, np.ndarray] = field(default_factory=dict)
    grad_norm: np.ndarray | None = None
    group_grad_norm: Mapping[str, np.ndarray] = field(default_factory=dict)
    ratio: Mapping[str, np.ndarray] = field(default_factory=dict)
    group_ratio: Mapping[str, np.ndarray] = field(default_factory=dict)
    grad_update_cos: np.ndarray | None = None
    group_grad_update_cos: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        owner = "RunLog"
        steps = _floats(owner, "steps", self.steps)
        if len(steps) == 0:
            raise ValueError(f"{owner}: steps must not be empty")
        if not np.all(np.isfinite(steps)) or np.any(np.diff(steps) <= 0):
            raise ValueError(f"{owner}: steps must be finite and strictly increasing")
        n = len(steps)
        put = object.__setattr__
        put(self, "steps", steps)
        put(self, "loss", _floats(owner, "loss", self.loss, n))
        if not isinstance(self.hparams, Mapping):
            raise TypeError(f"{owner}: hparams must be a dict by name, got {self.hparams!r}")
        put(
            self,
            "hparams",
            MappingProxyType(
                {str(k): _series(owner, f"hparams[{k!r}]", v, n) for k, v in self.hparams.items()}
            ),
        )
        vs = _floats(owner, "val_steps", self.val_steps)
        put(self, "val_steps", vs)
        put(self, "val", _series(owner, "val", self.val, len(vs)))
        for name in ("grad_norm", "grad_update_cos"):
            if getattr(self, name) is not None:
                put(self, name, _floats(owner, name, getattr(self, name), n))
        for name in ("group_grad_norm", "ratio", "group_ratio", "group_grad_update_cos"):
            put(self, name, _series(owner, name, getattr(self, name), n))

    # ------------------------------------------------------------------ views
    def __len__(self) -> int:
        return len(self.steps)

    @property
    def lr(self) -> np.ndarray | None:
        """The main group's learning rate at each step (None when the log has no rate)."""
        groups = self.hparams.get("lr")
        if not groups:
            return None
        return next(iter(groups.values()))

    @property
    def val_loss(self) -> np.ndarray | None:
        """The validation loss at :attr:`val_steps` (None when not recorded)."""
        return self.val.get("val_loss")

    @property
    def total_steps(self) -> int:
        """The length of the run in steps: last step - first step + 1."""
        return int(self.steps[-1] - self.steps[0]) + 1

    # ------------------------------------------------------------------ building
    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]]) -> RunLog:
        """A log from flat dicts (CSV rows or JSON lines) with the documented columns.

        Rows sharing a step are merged (a training row and a validation row); a column absent
        from a row is ``NaN`` there. Columns: ``step``; ``loss``; ``lr`` or ``lr/<group>`` (any
        hyperparameter ``<name>/<group>``: ``momentum/head``); ``val_loss`` and ``val_<metric>``
        (or ``val/<metric>``); ``grad_norm``, ``grad_norm/<group>``; ``ratio/<layer>``,
        ``group_ratio/<group>``; ``grad_update_cos``, ``grad_update_cos/<group>``. Unknown
        columns are ignored.

        Raises:
            ValueError: a row without a step, or no training row.
        """
        merged: dict[float, dict[str, float]] = {}
        for i, row in enumerate(rows):
            s = _num(row.get("step"))
            if s is None or not math.isfinite(s):
                raise ValueError(f"RunLog.from_rows: row {i} has no step, got {dict(row)!r}")
            dst = merged.setdefault(s, {})
            for k, v in row.items():
                x = _num(v)
                if k != "step" and x is not None:
                    dst[str(k)] = x
        return _assemble(merged)


_HPARAMS = ("lr", "momentum", "beta1", "beta2", "weight_decay")


def _num(v: Any) -> float | None:
    if v is None or v == "":
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _assemble(merged: dict[float, dict[str, float]]) -> RunLog:
    train = sorted(s for s, r in merged.items() if "loss" in r)
    if not train:
        raise ValueError("RunLog.from_rows: no row with a training loss ('loss' column)")
    keys: list[str] = []
    for s in sorted(merged):
        keys += [k for k in merged[s] if k not in keys]

    def col(name: str, steps: list[float]) -> np.ndarray:
        return np.array([merged[s].get(name, np.nan) for s in steps], dtype=np.float64)

    hparams: dict[str, dict[str, np.ndarray]] = {}
    group_grad: dict[str, np.ndarray] = {}
    ratio: dict[str, np.ndarray] = {}
    group_ratio: dict[str, np.ndarray] = {}
    group_cos: dict[str, np.ndarray] = {}
    val_keys: list[tuple[str, str]] = []
    for k in keys:
        head, _, tail = k.partition("/")
        if head in _HPARAMS:
            hparams.setdefault(head, {})[tail or "0"] = col(k, train)
        elif head == "grad_norm" and tail:
            group_grad[tail] = col(k, train)
        elif head == "ratio" and tail:
            ratio[tail] = col(k, train)
        elif head == "group_ratio" and tail:
            group_ratio[tail] = col(k, train)
        elif head == "grad_update_cos" and tail:
            group_cos[tail] = col(k, train)
        elif head == "val" and tail:
            val_keys.append((k, tail if tail.startswith("val_") else f"val_{tail}"))
        elif k.startswith("val_") and not tail:
            val_keys.append((k, k))
    val_steps = sorted(s for s in merged if any(k in merged[s] for k, _ in val_keys))
    return RunLog(
        steps=np.asarray(train),
        loss=col("loss", train),
        hparams=hparams,
        val_steps=np.asarray(val_steps, dtype=np.float64),
        val={name: col(k, val_steps) for k, name in val_keys},
        grad_norm=col("grad_norm", train) if "grad_norm" in keys else None,
        group_grad_norm=group_grad,
        ratio=ratio,
        group_ratio=group_ratio,
        grad_update_cos=col("grad_update_cos", train) if "grad_update_cos" in keys else None,
        group_grad_update_cos=group_cos,
    )
