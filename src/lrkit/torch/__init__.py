"""The PyTorch binding (needs ``pip install lrkit[torch]``).

:class:`Scheduler` drives any hyperparameter of any param group from lrkit schedules; it is a
``torch.optim.lr_scheduler.LRScheduler``, so training frameworks accept it.

The range test (``find_lr``, ``FinderResult``) lives in the main job's layer, :mod:`lrkit.tune`;
the two names are still reachable here (imported on first use) for code written before the move.
"""

from typing import Any

from lrkit.torch._device import DeviceScheduler
from lrkit.torch._get_scheduler import get_scheduler
from lrkit.torch._param_groups import describe_groups, find_blocks, param_groups
from lrkit.torch._reset import apply_controller_events, reset_optimizer_state
from lrkit.torch._scheduler import Scheduler
from lrkit.torch._unfreeze import Unfreeze
from lrkit.torch.guard import DivergenceError, DivergenceGuard, GuardController
from lrkit.torch.monitor import Monitor

__all__ = [
    "DeviceScheduler",
    "DivergenceError",
    "DivergenceGuard",
    "FinderResult",
    "GuardController",
    "Monitor",
    "Scheduler",
    "Unfreeze",
    "apply_controller_events",
    "describe_groups",
    "find_blocks",
    "find_lr",
    "get_scheduler",
    "param_groups",
    "reset_optimizer_state",
]

_MOVED = {"find_lr", "FinderResult"}


def __getattr__(name: str) -> Any:
    """``find_lr`` and ``FinderResult`` from :mod:`lrkit.tune.finder`, imported on first use
    (the binding itself does not depend on the main job's layer)."""
    if name in _MOVED:
        from lrkit.tune import finder

        return getattr(finder, name)
    raise AttributeError(f"module 'lrkit.torch' has no attribute {name!r}")
