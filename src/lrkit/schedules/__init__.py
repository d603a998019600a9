"""The pure core: schedules as closed-form, composable, serialisable functions of the step."""

from lrkit.schedules._anneal import cosine, interpolate, linear, piecewise
from lrkit.schedules._base import Schedule
from lrkit.schedules._combinators import clip, product, scale, sequence, warmup
from lrkit.schedules._cyclic import cosine_restarts, cyclic
from lrkit.schedules._decay import (
    constant,
    exponential,
    inverse_sqrt,
    multistep_decay,
    polynomial,
    step_decay,
)
from lrkit.schedules._errors import ScheduleTypeError, ScheduleValueError, SpecError
from lrkit.schedules._one_cycle import one_cycle, one_cycle_momentum
from lrkit.schedules._scaling import rescale, scale_for_batch
from lrkit.schedules._spec import as_schedule, from_dict, parse
from lrkit.schedules._time import advance, repeat, shift, stretch
from lrkit.schedules._wsd import wsd

__all__ = [
    "Schedule",
    "ScheduleTypeError",
    "ScheduleValueError",
    "SpecError",
    "advance",
    "as_schedule",
    "clip",
    "constant",
    "cosine",
    "cosine_restarts",
    "cyclic",
    "exponential",
    "from_dict",
    "interpolate",
    "inverse_sqrt",
    "linear",
    "multistep_decay",
    "one_cycle",
    "one_cycle_momentum",
    "parse",
    "piecewise",
    "polynomial",
    "product",
    "repeat",
    "rescale",
    "scale",
    "scale_for_batch",
    "sequence",
    "shift",
    "step_decay",
    "stretch",
    "warmup",
    "wsd",
]
