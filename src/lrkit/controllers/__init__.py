"""Reactive controllers (plateau, restarts, bumps, shift detection): numpy-only state machines
that multiply a schedule's value, or rewind its clock, from observed metrics.

See ``docs/controllers.md`` and the protocol in :mod:`lrkit.controllers._base`.
"""

from lrkit.controllers._base import Controller, ControllerWarning
from lrkit.controllers.plateau import Plateau, PlateauDetector
from lrkit.controllers.restarts import RestartOnPlateau, Restarts
from lrkit.controllers.shift import Cusum, PageHinkley, RestartOnShift

__all__ = [
    "Controller",
    "ControllerWarning",
    "Cusum",
    "PageHinkley",
    "Plateau",
    "PlateauDetector",
    "RestartOnPlateau",
    "RestartOnShift",
    "Restarts",
]
