"""lrkit's exception types: subclasses of the builtins, so ``except ValueError`` still works."""

from __future__ import annotations


class ScheduleValueError(ValueError):
    """An argument has the right type but a value lrkit does not accept."""


class ScheduleTypeError(TypeError):
    """An argument has a type lrkit does not accept."""


class SpecError(ScheduleValueError):
    """A text or dict spec cannot be parsed; the message points at the offending part."""
