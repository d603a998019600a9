"""The fingerprint of a task, so that ``compare --resume`` never reuses a run made with other
code or data: a hash of the source files that define the task's model, optimizer and loss (for
functions of torch itself, torch's version), its settings (batch size, evaluation interval,
accuracy), the shapes, dtypes and bytes of its training and validation tensors, and lrkit's
version.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
from typing import Any

import torch

import lrkit
from lrkit.tune.tasks import Task


def _source_of(obj: Any) -> str:
    """A stable description of the code behind ``obj``: the hash of its module's source file,
    or the module's name and version for installed libraries (torch) and built-ins."""
    while isinstance(obj, functools.partial):
        obj = obj.func
    target = obj if inspect.isclass(obj) or inspect.isroutine(obj) else type(obj)
    module = inspect.getmodule(target)
    name = getattr(module, "__name__", "?")
    if name.split(".")[0] == "torch":
        return f"torch {torch.__version__}"
    try:
        path = inspect.getsourcefile(target)
    except TypeError:  # built-in
        path = None
    if path is None:
        return f"{name} (no source)"
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return f"{name} (unreadable source)"


def _tensor_digest(t: torch.Tensor) -> list[Any]:
    """Shape, dtype and a hash of the bytes of a tensor."""
    data = t.detach().to("cpu").contiguous()
    digest = hashlib.sha256(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return [list(data.shape), str(data.dtype), digest.hexdigest()]


def task_fingerprint(task: Task) -> str:
    """A 16-hex-digit hash of the task's code, settings and data and of lrkit's version.

    Computed once per task object (cached on it): hashing the data reads every byte once.

    >>> from lrkit.tune.tasks import load_task
    >>> len(task_fingerprint(load_task("digits")))
    16
    """
    cached = task.__dict__.get("_lrkit_fingerprint")
    if isinstance(cached, str):
        return cached
    blob = {
        "lrkit": lrkit.__version__,
        "code": [_source_of(f) for f in (task.model, task.optimizer, task.loss)],
        "settings": [task.batch_size, task.eval_every, task.accuracy],
        "data": [_tensor_digest(t) for t in (*task.train, *task.val)],
    }
    out = hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:16]
    task.__dict__["_lrkit_fingerprint"] = out
    return out
