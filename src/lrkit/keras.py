"""lrkit schedules and controllers for Keras 3: ``lrkit.keras.schedule(s)``,
``lrkit.keras.controllers(lr, [Plateau(...)])``; see :mod:`lrkit.integrations.keras`
(``pip install lrkit[keras]``). Keras is imported on first use."""

from lrkit.integrations.keras import controllers, register, schedule

__all__ = ["controllers", "register", "schedule"]
