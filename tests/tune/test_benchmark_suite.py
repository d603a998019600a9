"""The benchmark suite (benchmarks/suite.py) and its oracle cache: every task builds, trains a
few finite steps, and is in exactly one half; the cached oracle grid covers every task and
family at 12 or more rates on 3 seeds and its windows are well formed."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

import oracle  # noqa: E402
from suite import SUITE, half  # noqa: E402

from lrkit.tune import Task  # noqa: E402
from lrkit.tune._runs import train_run  # noqa: E402
from lrkit.tune.candidates import builtin_schedule  # noqa: E402


def test_halves_split_the_suite_and_cover_the_optimizers():
    """At least 10 tasks, each in one half; both halves have SGD-like and Adam-like tasks."""
    dev, ev = half("dev"), half("eval")
    assert len(SUITE) >= 10 and set(dev) | set(ev) == set(SUITE) and not set(dev) & set(ev)
    for names in (dev, ev):
        opts = {SUITE[n].optimizer for n in names}
        assert opts & {"SGD", "SGD+momentum"} and opts & {"Adam", "AdamW"}


@pytest.mark.parametrize("name", list(oracle.SUITE))
def test_every_task_builds_and_trains(name):
    """The task is a Task with its documented data, and 5 steps of warmup-cosine at its grid's
    middle rate give a finite validation loss."""
    task = oracle.SUITE[name].make()
    assert isinstance(task, Task) and task.name == name
    cand = builtin_schedule("warmup-cosine", oracle.SUITE[name].grid_low * 2**5, 5)
    res = train_run(task, cand, 0, 5)
    assert math.isfinite(res.val_loss[-1]) and len(res.lr) == 5


def test_oracle_cache_covers_the_suite():
    """Every task (the suite's and the second evaluation set's) and family has at least the 12
    base rates on 3 seeds, its best rate inside its window, and its cliff above the best."""
    cached = oracle.load()
    assert set(cached) == set(oracle.SUITE) and set(SUITE) <= set(oracle.SUITE)
    for name, o in cached.items():
        assert o.half == oracle.SUITE[name].half
        assert set(o.families) == set(oracle.families())
        for fam in o.families.values():
            assert len(fam.cells) >= 12 and all(len(c.losses) == 3 for c in fam.cells)
            assert fam.in_window(fam.best_rate) and fam.cliff > fam.best_rate
