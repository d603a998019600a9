"""The PyTorch binding (needs ``pip install lrkit[torch]``).

:class:`Scheduler` drives any hyperparameter of any param group from lrkit schedules; it is a
``torch.optim.lr_scheduler.LRScheduler``, so training frameworks accept it.
"""

from lrkit.torch._device import DeviceScheduler
from lrkit.torch._reset import apply_controller_events, reset_optimizer_state
from lrkit.torch._scheduler import Scheduler
from lrkit.torch.finder import FinderResult, find_lr
from lrkit.torch.guard import DivergenceError, DivergenceGuard, GuardController

__all__ = [
    "DeviceScheduler",
    "DivergenceError",
    "DivergenceGuard",
    "FinderResult",
    "GuardController",
    "Scheduler",
    "apply_controller_events",
    "find_lr",
    "reset_optimizer_state",
]
