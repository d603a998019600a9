"""The executor seam: trials go to an executor as typed records, typed results come back; the
serial and the local-pool executors train a trial with the same code and give the same result,
and compare accepts any executor."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

import pytest

from lrkit.tune import compare
from lrkit.tune._runs import run_key
from lrkit.tune.candidates import builtin_schedule
from lrkit.tune.executors import Executor, LocalPool, Serial
from lrkit.tune.records import RunResult, Trial

pytestmark = pytest.mark.usefixtures("one_thread")


def _trials(n_seeds: int, steps: int = 12) -> list[Trial]:
    cand = builtin_schedule("cosine", 0.05, steps)
    return [Trial(cand, s, steps, run_key("digits", cand, s, steps)) for s in range(n_seeds)]


class Reversed:
    """A third-party executor: runs the trials last to first (results arrive out of order) and
    counts them."""

    def __init__(self, inner: Executor) -> None:
        self.inner, self.seen = inner, 0

    def run(self, trials: Sequence[Trial]) -> Iterator[RunResult]:
        """Run the trials in reverse order."""
        self.seen += len(trials)
        yield from self.inner.run(list(trials)[::-1])


def test_serial_returns_typed_results_tagged_with_the_key(task):
    """Serial yields one RunResult per trial, carrying the trial's key and seed."""
    trials = _trials(2)
    out = list(Serial(task).run(trials))
    assert [type(r) for r in out] == [RunResult, RunResult]
    assert [(r.key, r.seed) for r in out] == [(t.key, t.seed) for t in trials]


@pytest.mark.slow
def test_local_pool_gives_the_serial_results(task):
    """Two worker processes give bitwise the results of this process (same code path)."""
    trials = _trials(3)
    here = {r.key: r.val_loss for r in Serial(task).run(trials)}
    with LocalPool(2, "digits", task) as pool:
        there = {r.key: r.val_loss for r in pool.run(trials)}
    assert there == here


def test_local_pool_needs_two_jobs(task):
    """A pool of one process is refused (Serial is that)."""
    with pytest.raises(ValueError, match="LocalPool: jobs must be an integer >= 2, got jobs=1"):
        LocalPool(1, "digits", task)


def test_compare_with_a_custom_executor_matches_the_default(task, tmp_path):
    """compare hands every trial to the executor it is given; out-of-order results change
    nothing: same runs, same summary, same recommendation, and the run files are written."""
    kw = dict(
        schedules=["constant", "cosine"],
        seeds=2,
        steps=12,
        peak=0.05,
        progress=False,
        search="grid",
    )
    ref = compare("digits", **kw, refine=False)
    custom = Reversed(Serial(task))
    got = compare("digits", **kw, refine=False, executor=custom, out=tmp_path)
    assert custom.seen == 4
    assert [r.val_loss for r in got.runs] == [r.val_loss for r in ref.runs]
    assert got.summary == tuple(
        dataclasses.replace(r, wall_s_mean=g.wall_s_mean)
        for r, g in zip(ref.summary, got.summary, strict=True)
    )
    assert got.recommendation == ref.recommendation
    assert len(list((tmp_path / "runs").glob("*.json"))) == 4


def test_executor_and_jobs_are_exclusive(task):
    """jobs > 1 with an executor is refused before any training."""
    with pytest.raises(ValueError, match="give jobs or executor, not both"):
        compare("digits", peak=0.1, jobs=2, executor=Serial(task))
