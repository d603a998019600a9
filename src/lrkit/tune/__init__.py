"""The main job: which learning-rate schedule, at which peak, for this task?

The range test's rules (:mod:`lrkit.tune.rules`), the table of candidate recipes
(:mod:`lrkit.tune.recipes`) and the summaries (:mod:`lrkit.tune.summary`) need numpy only; the
range test on a model (:func:`find_lr`), the tasks (:mod:`lrkit.tune.tasks`) and the search
(:func:`compare`) need torch and are imported on first use, so ``import lrkit.tune`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Comparison",
    "FinderResult",
    "Task",
    "compare",
    "find_lr",
    "load_task",
]

#: Public names that need torch, and the submodule that defines each.
_LAZY = {
    "Comparison": "lrkit.tune.comparison",
    "compare": "lrkit.tune.search",
    "FinderResult": "lrkit.tune.finder",
    "find_lr": "lrkit.tune.finder",
    "Task": "lrkit.tune.tasks",
    "load_task": "lrkit.tune.tasks",
}


def __getattr__(name: str) -> Any:
    """Import the torch-side names on first use."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lrkit.tune' has no attribute {name!r}")
