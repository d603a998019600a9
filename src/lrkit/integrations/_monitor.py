"""Attaching :class:`lrkit.torch.Monitor` from a framework callback (shared by the Lightning and
transformers callbacks): what ``diagnostics=`` may be, building the Monitor, and reading the
training loss and validation metrics out of what the framework hands the callback.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union

import torch

from lrkit.torch.monitor import Monitor

__all__ = ["MonitorSpec", "batch_loss", "check_spec", "make_monitor", "val_metrics"]

#: What a callback's ``diagnostics=`` accepts: off, on (default path), a log path, a Monitor.
MonitorSpec = Union[bool, str, "os.PathLike[str]", Monitor]


def check_spec(owner: str, spec: object) -> MonitorSpec:
    """``spec`` validated (a bool, a path or a Monitor).

    Raises:
        TypeError: anything else.
    """
    if isinstance(spec, (bool, str, os.PathLike, Monitor)):
        return spec
    raise TypeError(
        f"{owner}: diagnostics must be True/False, a log file path or an lrkit.torch.Monitor, "
        f"got diagnostics={spec!r}"
    )


def make_monitor(
    spec: MonitorSpec, model: torch.nn.Module, optimizer: torch.optim.Optimizer, default: Path
) -> Monitor | None:
    """The Monitor ``spec`` asks for on ``model``/``optimizer`` (None for False; ``spec``
    itself when it is one); its log goes to ``default`` for True, else to the path given (the
    folder is created)."""
    if spec is False:
        return None
    if isinstance(spec, Monitor):
        return spec
    path = default if spec is True else Path(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    return Monitor(model, optimizer, path=path)


def batch_loss(outputs: Any) -> torch.Tensor | float | None:
    """The training loss in what a training step returned: a tensor, or a mapping's
    ``"loss"`` (None when there is none)."""
    if isinstance(outputs, Mapping):
        outputs = outputs.get("loss")
    if isinstance(outputs, torch.Tensor) and outputs.numel() == 1:
        return outputs.detach()
    if isinstance(outputs, (int, float)) and not isinstance(outputs, bool):
        return float(outputs)
    return None


def val_metrics(
    metrics: Mapping[str, Any], prefixes: tuple[str, ...] = ("val",)
) -> dict[str, float]:
    """The scalar metrics whose name starts with one of ``prefixes`` (non-finite ones kept:
    a blown-up validation loss is evidence), as floats named the
    Monitor's way: ``val/acc`` and ``eval_acc`` become ``val_acc``; ``eval_loss`` becomes
    ``val_loss``."""
    out: dict[str, float] = {}
    for name, v in metrics.items():
        head = next((p for p in prefixes if name.startswith(p)), None)
        if head is None:
            continue
        if isinstance(v, torch.Tensor):
            if v.numel() != 1:
                continue
            v = float(v.detach())
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            continue
        out["val_" + name[len(head) :].lstrip("_/")] = float(v)
    return {k: v for k, v in out.items() if k != "val_"}
