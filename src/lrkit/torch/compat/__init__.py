"""Drop-in replacements for ``torch.optim.lr_scheduler``, computed in closed form by lrkit.

Change one import line::

    from lrkit.torch.compat import CosineAnnealingLR   # was: from torch.optim.lr_scheduler ...

Each class has torch's name and constructor signature and produces the same learning rates
(and momentum / beta1 where torch cycles them) for the same calls, from lrkit schedules driven
by :class:`lrkit.torch.Scheduler`. Deliberate differences, documented on each class: OneCycleLR
holds its final values past ``total_steps`` instead of raising; ReduceLROnPlateau can be placed
inside SequentialLR and ChainedScheduler; ``state_dict`` / ``load_state_dict`` resume exactly,
SequentialLR included.
"""

from lrkit.torch.compat._anneal import CosineAnnealingLR, CosineAnnealingWarmRestarts
from lrkit.torch.compat._compose import ChainedScheduler, SequentialLR
from lrkit.torch.compat._cyclic import CyclicLR, OneCycleLR
from lrkit.torch.compat._decay import (
    ConstantLR,
    ExponentialLR,
    LinearLR,
    MultiStepLR,
    PolynomialLR,
    StepLR,
)
from lrkit.torch.compat._lambda import LambdaLR, MultiplicativeLR
from lrkit.torch.compat._plateau import ReduceLROnPlateau

__all__ = [
    "ChainedScheduler",
    "ConstantLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "CyclicLR",
    "ExponentialLR",
    "LambdaLR",
    "LinearLR",
    "MultiStepLR",
    "MultiplicativeLR",
    "OneCycleLR",
    "PolynomialLR",
    "ReduceLROnPlateau",
    "SequentialLR",
    "StepLR",
]
