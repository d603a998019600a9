"""Accelerate's scheduler convention, read without importing Accelerate.

Accelerate's ``AcceleratedScheduler`` (what ``accelerator.prepare(scheduler)`` returns) calls the
scheduler's ``step()`` ``num_processes`` times per optimizer update when the batches are not
split (``split_batches=False``, its default) and it steps with the optimizer
(``step_scheduler_with_optimizer=True``, its default): its guide sizes a schedule in batches
counted *before* the data is split across the processes (``len(train_dataloader) * epochs``
before ``prepare``), and torch's schedulers, which count calls, then end on the last update.

lrkit's ``clock="updates"`` counts each process's real optimizer updates, so the extra calls
would not move it and such a schedule would end halfway (with 2 processes). When the caller of
``Scheduler.step()`` is that wrapper, :func:`updates_per_update` gives the number of schedule
steps one optimizer update is worth under Accelerate's convention (``num_processes``), so the
schedule ends where Accelerate's guide expects, as torch's would.
"""

from __future__ import annotations

import sys
from types import FrameType

#: The module of Accelerate's scheduler wrapper: while it is not imported, no caller can be it.
WRAPPER_MODULE = "accelerate.scheduler"


def updates_per_update(caller: FrameType | None) -> int:
    """``num_processes`` when ``caller`` is ``AcceleratedScheduler.step`` stepping with the
    optimizer on unsplit batches; 1 otherwise (or when Accelerate is not loaded)."""
    if caller is None or caller.f_globals.get("__name__") != WRAPPER_MODULE:
        return 1
    wrapper = caller.f_locals.get("self")
    if wrapper is None or getattr(wrapper, "split_batches", True):
        return 1
    if not getattr(wrapper, "step_with_optimizer", False):
        return 1
    state = sys.modules.get("accelerate.state")
    if state is None:
        return 1
    try:
        return max(1, int(state.AcceleratorState().num_processes))
    except Exception:  # an uninitialised state: no processes to count
        return 1
