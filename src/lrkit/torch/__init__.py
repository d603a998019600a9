"""The PyTorch binding (needs ``pip install lrkit[torch]``).

:class:`Scheduler` drives any hyperparameter of any param group from lrkit schedules; it is a
``torch.optim.lr_scheduler.LRScheduler``, so training frameworks accept it.
"""

from lrkit.torch._scheduler import Scheduler

__all__ = ["Scheduler"]
