"""Reactive controllers (plateau, restarts, bumps, shift detection): numpy-only state machines
that multiply a schedule's value, or rewind its clock, from observed metrics.

See ``docs/controllers.md`` and the protocol in :mod:`lrkit.controllers._base`.
"""

from lrkit.controllers._base import Controller, ControllerWarning
from lrkit.controllers.plateau import Plateau, PlateauDetector

__all__ = [
    "Controller",
    "ControllerWarning",
    "Plateau",
    "PlateauDetector",
]
