"""A second evaluation set for lrkit's range test and search: the 7 tasks of
``benchmarks/diagnose_fresh.py`` (moons MLP with SGD, circles MLP with Adam, iris MLP with
SGD+momentum, sparse regression with AdamW, running-sign LSTM with Adam, reversing transformer
with AdamW, character GRU on ``calendar``'s source with Adam) as :class:`lrkit.tune.Task`s.

They were made for the diagnostics benchmark after the range-test rule and the search defaults
were frozen; neither was ever developed or tuned on them, so they are a fresh evaluation set
for ``benchmarks/tune_quality.py`` (half ``"eval2"``). Their oracle grid is computed by
``benchmarks/oracle.py`` like the suite's.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import diagnose_fresh as df
from suite import SuiteTask

from lrkit.tune import Task


def make(name: str) -> Task:
    """The fresh task ``name`` as a Task: the same data, model, optimizer, loss, steps and batch
    size as the diagnostics benchmark; accuracy for the classification tasks."""
    data, model, opt, loss, steps, batch = df.SPECS[name]
    train, val = data()
    return Task(
        name,
        model,
        df.OPTIMIZERS[opt],
        loss,
        train,
        val,
        batch_size=batch,
        steps=steps,
        accuracy=not val[1].is_floating_point(),
    )


FRESH: dict[str, SuiteTask] = {
    name: SuiteTask(name, "eval2", spec[2], functools.partial(make, name))
    for name, spec in df.SPECS.items()
}
