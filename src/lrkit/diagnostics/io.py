"""Training logs on disk: the columns, an append-and-flush writer, and a reader for CSV,
JSON-lines and TensorBoard event folders.

**Columns** (one row per optimizer step; validation rows carry only ``step`` and ``val_*``):

=====================  ==========================================================
``step``               optimizer updates made before this one, from 0 (required)
``loss``               training loss of that update
``lr`` / ``lr/<g>``    learning rate (of param group ``g``); likewise ``momentum``,
                       ``beta1``, ``beta2``, ``weight_decay``
``val_loss``           validation loss (``val_<metric>`` for other metrics)
``grad_norm``          global gradient norm (``grad_norm/<g>`` per group); ``inf``
                       when not finite, empty when not sampled
``ratio/<layer>``      update-to-weight ratio ``||Δw|| / ||w||`` of a layer
``group_ratio/<g>``    the same over a group's parameters
``grad_update_cos``    ``cos(Δw_k, -g_{k+1})``: a sampled update against the next
                       step's descent direction (``/<g>`` per group); > 0 while the
                       loss keeps falling along the steps, < 0 when they overshoot
=====================  ==========================================================

The reader also accepts what other tools write under other names (case-insensitive): HF
Trainer's ``train/loss``, ``train/learning_rate``, ``eval/loss``, ``train/grad_norm``;
Lightning's ``train_loss``, ``lr-<Optimizer>[/pg<i>]``, ``val_loss``; ``loss/train``,
``loss/val``. TensorBoard folders are read with tensorboard's ``EventAccumulator`` (imported
only then; ``pip install lrkit[tensorboard]``).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from lrkit.diagnostics._log import RunLog

__all__ = ["LogWriter", "canonical", "read_log", "read_rows"]

_LOSS = {"loss", "train/loss", "train_loss", "training_loss", "loss/train", "train_loss_step"}
_VAL = {
    "val_loss",
    "val/loss",
    "eval/loss",
    "eval_loss",
    "loss/val",
    "valid_loss",
    "validation_loss",
}
_LR = {"lr", "learning_rate", "train/learning_rate", "train/lr"}
_GRAD = {"grad_norm", "train/grad_norm"}
_LIGHTNING_LR = re.compile(r"^lr-[^/]+(?:/pg(\d+))?$")


def canonical(name: str) -> str | None:
    """The documented column for a tag or column ``name`` (None: not one lrkit reads).

    >>> canonical("train/learning_rate"), canonical("lr-AdamW/pg2"), canonical("eval/loss")
    ('lr', 'lr/2', 'val_loss')
    """
    low = name.strip().lower()
    if low in _LOSS:
        return "loss"
    if low in _VAL:
        return "val_loss"
    if low in _LR:
        return "lr"
    if low in _GRAD:
        return "grad_norm"
    m = _LIGHTNING_LR.match(low)
    if m:
        return "lr" if m.group(1) in (None, "0") else f"lr/{m.group(1)}"
    head = low.partition("/")[0]
    if low == "step" or head in (
        "lr",
        "momentum",
        "beta1",
        "beta2",
        "weight_decay",
        "grad_norm",
        "ratio",
        "group_ratio",
        "grad_update_cos",
    ):
        return name.strip()
    if low.startswith(("val_", "val/")):
        return name.strip()
    if low.startswith("eval/"):
        return "val_" + name.strip()[5:]
    return None


def _plain(v: Any) -> Any:
    return None if isinstance(v, float) and math.isnan(v) else v


class LogWriter:
    """Append rows to a CSV or JSON-lines file, flushed after every :meth:`write`.

    A crash loses nothing that was written. An existing file is appended to (a CSV's header is
    written only when the file is new or empty). CSV columns are fixed by ``columns``; a row
    with another key raises, naming it (use JSON lines for free-form rows). NaN is written as
    an empty cell (CSV) or ``null`` (JSON), infinities as ``inf`` / ``Infinity``.

    Args:
        path: the file; its suffix chooses the format (``.csv``; ``.jsonl``, ``.json``,
            ``.ndjson``) unless ``format`` is given.
        columns: the CSV header (needed for CSV, ignored for JSON lines).
        format: ``"csv"`` or ``"jsonl"``.

    Raises:
        ValueError: an unknown format, CSV without columns.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        columns: Sequence[str] | None = None,
        *,
        format: str | None = None,
    ) -> None:
        self.path = Path(path)
        fmt = format or _format_of(self.path)
        if fmt not in ("csv", "jsonl"):
            raise ValueError(f"LogWriter: format must be 'csv' or 'jsonl', got format={fmt!r}")
        if fmt == "csv" and not columns:
            raise ValueError("LogWriter: a CSV log needs its columns, got columns=None")
        self.format = fmt
        self.columns = list(columns or [])
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._file: IO[str] | None = open(self.path, "a", newline="", encoding="utf-8")  # noqa: SIM115
        if fmt == "csv":
            self._csv = csv.DictWriter(self._file, fieldnames=self.columns, lineterminator="\n")
            if new:
                self._csv.writeheader()
                self._file.flush()

    def write(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Append ``rows`` and flush the file."""
        if self._file is None:
            raise ValueError(f"LogWriter: {self.path} is closed")
        for row in rows:
            if self.format == "csv":
                extra = [k for k in row if k not in self.columns]
                if extra:
                    raise ValueError(
                        f"LogWriter: {self.path} has no column {extra[0]!r} (columns: "
                        f"{', '.join(self.columns)}); declare it or write JSON lines"
                    )
                self._csv.writerow(
                    {k: "" if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
                )
            else:
                self._file.write(json.dumps({k: _plain(v) for k, v in row.items()}) + "\n")
        self._file.flush()

    def close(self) -> None:
        """Close the file (later writes raise)."""
        if self._file is not None:
            self._file.close()
            self._file = None


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    return (
        "csv" if suffix == ".csv" else "jsonl" if suffix in (".jsonl", ".json", ".ndjson") else ""
    )


def _renamed(row: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        c = canonical(str(k))
        if c is not None and c not in out:
            out[c] = v
    return out


def read_rows(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The rows of a CSV / JSON-lines log or a TensorBoard event folder, columns renamed to the
    documented ones (see the module docstring; unknown columns dropped).

    Raises:
        ValueError: a missing path, an unknown suffix, a folder without event files.
    """
    p = Path(path)
    if not p.exists():
        raise ValueError(f"read_log: no such file or folder: {str(p)!r}")
    if p.is_dir():
        return _tensorboard_rows(p)
    fmt = _format_of(p)
    text = p.read_text(encoding="utf-8")
    if fmt == "csv":
        rows: list[dict[str, Any]] = list(csv.DictReader(io.StringIO(text)))
    elif fmt == "jsonl":
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    else:
        raise ValueError(
            f"read_log: cannot tell the format of {str(p)!r}: use .csv, .jsonl or a TensorBoard "
            "folder"
        )
    return [_renamed(r) for r in rows]


def read_log(path: str | os.PathLike[str]) -> RunLog:
    """A :class:`RunLog` from a CSV / JSON-lines file or a TensorBoard event folder.

    Raises:
        ValueError: as :func:`read_rows`, or no training loss in the log.
    """
    rows = read_rows(path)
    try:
        return RunLog.from_rows(rows)
    except ValueError as exc:
        raise ValueError(f"read_log: {path}: {exc}") from None


def _tensorboard_rows(folder: Path) -> list[dict[str, Any]]:
    files = sorted(folder.rglob("events.out.tfevents*"))
    if not files:
        raise ValueError(f"read_log: no TensorBoard event file under {str(folder)!r}")
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError as exc:  # pragma: no cover - tensorboard is a test dependency
        raise ValueError(
            "read_log: reading TensorBoard folders needs tensorboard: pip install "
            "lrkit[tensorboard]"
        ) from exc
    by_step: dict[int, dict[str, Any]] = {}
    for run in sorted({f.parent for f in files}):
        acc = EventAccumulator(str(run), size_guidance={"scalars": 0})
        acc.Reload()
        prefix = "" if run == folder else run.relative_to(folder).as_posix() + "/"
        for tag in acc.Tags().get("scalars", []):
            name = canonical(tag) or canonical(prefix + tag)
            if name is None:
                continue
            for ev in acc.Scalars(tag):
                by_step.setdefault(int(ev.step), {"step": int(ev.step)}).setdefault(name, ev.value)
    return [by_step[s] for s in sorted(by_step)]
