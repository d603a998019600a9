"""The ``clock="updates"`` watch: warn once when ``step()`` keeps finding no optimizer update.

With ``clock="updates"`` the Scheduler's clock moves by the updates counted by a hook on
``optimizer.step``. When the optimizer step runs where Python hooks do not (a CUDA graph
replay), the clock never moves and the schedule silently stays at its value for the last
counted step. A GradScaler also makes ``step()`` find no update, on purpose: it skips the steps
whose gradients overflow and multiplies its scale by ``backoff_factor`` each time. Its longest
run of skips over gradients that are finite unscaled is bounded: the run ends once the scale is
at most 1 (scaling the loss by ``s <= 1`` makes no value of the backward pass larger), and the
scale, a float32, starts below ``2**128`` (beyond it a float32 is inf); so a run is at most 128
skips with the default ``backoff_factor=0.5``, and ``log(2**128) / log(1 / b)`` with factor
``b`` (398 for ``b = 0.8``, 843 for ``b = 0.9``). :data:`IDLE_CALLS` = 1000 calls in a row without an update is
longer than any such run, so it means the hook does not see the updates (or the gradients are
not finite even unscaled).
"""

from __future__ import annotations

import warnings

#: ``step()`` calls in a row that find no optimizer update before :class:`IdleWatch` warns.
IDLE_CALLS = 1000


class IdleWatch:
    """Counts consecutive ``step()`` calls that found no optimizer update; warns once."""

    __slots__ = ("calls", "since", "warned")

    def __init__(self) -> None:
        self.calls = 0
        self.since = 0
        self.warned = False

    def see(self, updates: int, step: int) -> None:
        """Record one ``step()`` call at clock ``step`` that found ``updates`` updates."""
        if updates:
            self.calls = 0
            return
        if self.calls == 0:
            self.since = step
        self.calls += 1
        if self.calls >= IDLE_CALLS and not self.warned:
            self.warned = True
            warnings.warn(
                f"Scheduler: step() was called {self.calls} times in a row but the optimizer's "
                f"step hook saw no update, so with clock='updates' the schedule has stayed at "
                f"step {self.since}. If the optimizer step runs inside a CUDA graph (or "
                f"elsewhere its hooks do not run), build the Scheduler with clock='calls' and "
                f"call step() once per update (see 'torch.compile and CUDA graphs' in the "
                f"README); if every step really is skipped (a GradScaler on inf/NaN gradients), "
                f"check the loss and the gradients.",
                UserWarning,
                stacklevel=4,
            )
