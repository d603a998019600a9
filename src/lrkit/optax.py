"""lrkit schedules for optax / JAX: ``lrkit.optax.schedule(s)``; see
:mod:`lrkit.integrations.optax` (``pip install lrkit[jax]``)."""

from lrkit.integrations.optax import OptaxSchedule, schedule

__all__ = ["OptaxSchedule", "schedule"]
