"""The search behind ``lrkit compare`` (:func:`compare`): compare learning-rate schedules on one
task: same model, same initialisation, same data order, equal step budget, several seeds.

A comparison finds the peak rate with the range test (:func:`lrkit.tune.find_lr`) unless one is
given, hands its trials to an executor (:mod:`lrkit.tune.executors`: this process, or ``jobs``
worker processes) and writes each finished run atomically under ``<out>/runs/`` so an
interrupted comparison resumes without redoing them. Schedules differ in the peak they tolerate
(a warmup or a short decay phase moves it), so one common peak can favour the wrong one; two
searches deal with it:

* ``"halving"`` (the default): successive halving over (schedule x rate) around the peak, within
  a budget of full-run equivalents (:mod:`lrkit.tune.halving`, :mod:`._halving_runs`): many
  short runs on one seed, the best few at full length on every seed.
* ``"grid"`` (:mod:`._grid_runs`): every schedule at the common peak on every seed, then the
  peaks of the best few refined by factor steps (:mod:`._refine_runs`); the best of them, each
  at its own peak, is recommended.
"""

from __future__ import annotations

import contextlib
import json
import math
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lrkit.tools._files import write_json
from lrkit.tune._grid_runs import grid_most_runs, grid_search
from lrkit.tune._halving_runs import halving_plan, halving_search
from lrkit.tune._refine_runs import RefineOptions
from lrkit.tune._runs import ResumeWarning, run_key, train_run
from lrkit.tune._search import Search, progress_bar
from lrkit.tune.candidates import (
    DEFAULT_SCHEDULES,
    Candidate,
    builtin_schedule,
    candidates,
    length_notes,
    spec_schedule,
)
from lrkit.tune.comparison import Comparison
from lrkit.tune.executors import Executor, local_executor
from lrkit.tune.fingerprint import task_fingerprint
from lrkit.tune.halving import HalvingOptions
from lrkit.tune.options import CompareOptions
from lrkit.tune.range_test import FinderResult
from lrkit.tune.tasks import Task, load_task, resolve_device

__all__ = [
    "DEFAULT_SCHEDULES",
    "Candidate",
    "CompareOptions",
    "Comparison",
    "HalvingOptions",
    "RefineOptions",
    "builtin_schedule",
    "candidates",
    "compare",
    "run_key",
    "spec_schedule",
    "train_run",
]


def compare(
    task: str | Task | None = None, options: CompareOptions | None = None, /, **settings: Any
) -> Comparison:
    """Compare schedules on ``task`` and recommend one.

    Settings are given as keywords (or as a :class:`CompareOptions`, not both):

    * ``schedules``: built-in recipe names (:data:`DEFAULT_SCHEDULES`, see
      :mod:`lrkit.tune.recipes`) and/or spec texts using ``peak``.
    * ``seeds``: a count (seeds ``0..n-1``, default 3) or the seeds.
    * ``steps``: the step budget per run (default: the task's).
    * ``peak``: the peak rate (the centre of the rates the halving search tries); None runs
      the range test (on the seed-0 model) to find it.
    * ``target``: the validation loss for "steps to target" (default: the median of the
      schedules' mean final losses).
    * ``jobs``: worker processes (1: in this process).
    * ``out``: the report folder; finished runs go to ``out/runs/`` (needed for ``resume``).
    * ``resume``: reuse the finished runs (and range test) found in ``out`` with the same
      settings.
    * ``search``: ``"halving"`` (default) or ``"grid"``.

      ``"halving"``: successive halving over (schedule x rate) (:mod:`lrkit.tune.halving`).
      Rung 0 trains every schedule at ``n_rates`` rates ``peak * factor**j`` (``j`` from
      ``-(n_rates-1)/2`` to ``(n_rates-1)/2``; ``factor`` 2) for ``steps / eta**2`` steps
      (``eta`` 3; at least 10) on the first seed, the schedule rebuilt for that length; a
      schedule whose best rate is at an edge of its range gets up to 3 more rates on that side
      while they keep improving; the best ``ceil(n / eta)`` configurations (never a diverged
      one) go on to ``steps / eta`` steps, the best third of those to the full ``steps`` on
      every seed, and the one with the lowest mean final validation loss there is recommended
      (a diverged seed counts as infinitely bad). ``budget`` (full-run equivalents, the range
      test included; default :data:`lrkit.tune.halving.DEFAULT_BUDGET`, 25) sets ``n_rates``:
      the largest of 3, 5, 7, 9 whose worst case (without extensions) fits; given
      ``n_rates`` (odd), the budget is only checked when given too. Runs go to
      ``out/runs/rung<k>/``. The path is :attr:`Comparison.search_path`.

      ``"grid"``: every schedule at the common peak on every seed, then the refinement below.
    * ``refine`` (grid only; default True): after the comparison, tune the peaks of the ``refine_top``
      (3) schedules with the lowest mean final validation loss at the common peak: train each at
      ``peak / refine_factor`` and ``peak * refine_factor`` (factor 2; same seeds, budget and
      initialisation) and, while its mean final validation loss keeps falling, step on in that
      direction, at most ``refine_steps`` (2) steps from the peak
      (:func:`lrkit.tune.rules.refine_peak`); then recommend the best of them, each at its own
      refined peak (:attr:`Comparison.refined_peak`, :attr:`Comparison.recommended_spec`). Cost
      per refined schedule: ``refine_steps + 1`` extra rates at most (3 by default), each over
      every seed; 2 when the peak is already the best of three. A spec text without ``peak``
      does not use the rate, is not retrained and does not count.
    * ``device``: where each trial's model and data go (default: the task's ``device``, else
      ``"cuda"`` when CUDA is available, else ``"cpu"``); the range test runs there too.
    * ``executor``: what runs the trials (:class:`lrkit.tune.executors.Executor`; default:
      this process, or a local pool of ``jobs`` processes). The run files, the summary and the
      recommendation do not depend on it.
    * ``progress`` (True): progress bars; ``finder_steps`` (100): updates of the range test.

    Raises:
        ValueError: bad seeds/steps/jobs/peak/refine/halving settings, settings of the other
            search, a budget too small for 3 rates per schedule (the message names the
            minimum), a device that is not here, ``resume`` without ``out``,
            ``jobs > 1`` with a Task object, unknown schedules or bad specs.
        TypeError: an unknown setting, or both ``options`` and settings.
    """
    if options is not None and settings:
        raise TypeError("compare: give options or keyword settings, not both")
    opts = options if options is not None else CompareOptions.from_settings(**settings)
    t0 = time.perf_counter()
    ref = task if isinstance(task, str) else None
    the_task = load_task(task)
    name = ref or the_task.name
    n_steps = the_task.steps if opts.steps is None else opts.steps
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 10:
        raise ValueError(f"compare: steps must be an integer >= 10, got steps={n_steps!r}")
    if opts.jobs > 1 and ref is None:
        raise ValueError("compare: jobs > 1 needs the task by name ('digits' or 'module:function')")
    candidates(opts.schedules, 1.0, n_steps)  # unknown names and bad specs fail before training
    the_plan = halving_plan(opts, n_steps) if opts.search == "halving" else None  # a low budget too
    if opts.out is not None:
        check_folder(opts.out)
    device = resolve_device(opts.device if opts.device is not None else the_task.device)
    notes = length_notes(opts.schedules, n_steps)
    for note in notes:
        warnings.warn(f"compare: {note}", UserWarning, stacklevel=2)

    # One executor serves the comparison and the refinement (a pool per batch would pay the
    # worker start-up again for each refinement step). It starts first, so that the workers
    # import torch and load the task while the range test runs here.
    n_cands = len(opts.schedules or DEFAULT_SCHEDULES)
    most = grid_most_runs(opts, n_cands) if the_plan is None else the_plan.most_runs
    bar = progress_bar(opts.progress, most + (opts.peak is None), 0)  # the range test: one
    try:
        with _executor(opts, the_task, ref) as executor:
            finder = None
            if opts.peak is None:
                where = _FinderPlace(name, opts.out, opts.resume, opts.finder_steps, device)
                finder = _find_peak(the_task, where)
                if bar is not None:
                    bar.set_postfix_str("range test", refresh=False)
                    bar.update(1)
            the_peak = float(opts.peak) if opts.peak is not None else float(finder.suggestion)  # type: ignore[union-attr]
            cands = candidates(opts.schedules, the_peak, n_steps)
            search = Search(
                the_task,
                name,
                opts.seeds,
                n_steps,
                executor,
                opts.out,
                opts.resume,
                bar,
                task_fingerprint(the_task),
                device,
            )
            if the_plan is None:
                out = grid_search(search, cands, the_peak, opts)
            else:
                out = halving_search(search, the_plan, cands, the_peak, opts)
        if bar is not None:  # fewer runs than the most possible
            bar.total = bar.n
    finally:
        if bar is not None:
            bar.close()
    return Comparison(
        task=name,
        peak=the_peak,
        steps=n_steps,
        seeds=opts.seeds,
        candidates=tuple(cands),
        runs=out.runs,
        finder=finder,
        summary=out.summary,
        recommendation=out.recommendation,
        reasoning=out.reasoning,
        target=out.target,
        wall_s=time.perf_counter() - t0,
        refinements=out.refinements,
        common_recommendation=out.common_recommendation,
        finder_steps=opts.finder_steps if finder is not None else 0,
        notes=tuple(notes),
        device=device,
        search_path=out.path,
        rung_runs=out.rung_runs,
    )


@contextlib.contextmanager
def _executor(opts: CompareOptions, task: Task, ref: str | None) -> Iterator[Executor]:
    """The caller's executor (left open: it is theirs), else the local one for ``opts.jobs``."""
    if opts.executor is not None:
        yield opts.executor
        return
    with local_executor(opts.jobs, task, ref) as executor:
        yield executor


def check_folder(folder: Path) -> None:
    """Make ``folder`` (and ``runs/`` in it) and check that a file can be written there, so an
    unwritable report folder fails before any training.

    Raises:
        ValueError: the folder cannot be made or written to (the message names it).
    """
    try:
        (folder / "runs").mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise ValueError(
            f"compare: out must be a folder that can be written, got out={str(folder)!r} "
            f"({exc.strerror or exc})"
        ) from None


@dataclass(frozen=True)
class _FinderPlace:
    """Where and how the range test runs: the task's ``name``, the report ``folder``, whether
    to ``resume`` from its ``finder.json``, the updates ``steps`` and the ``device``."""

    name: str
    folder: Path | None
    resume: bool
    steps: int = 100
    device: str = "cpu"


def _find_peak(task: Task, where: _FinderPlace) -> FinderResult:
    """The range test on the seed-0 model (on ``where.device``), or the saved one on resume."""
    from lrkit.tune.finder import PROBE_STEPS, find_lr

    n, dev = where.steps, torch.device(where.device)
    path = where.folder / "finder.json" if where.folder else None
    tag = {"task": where.name, "steps": n, "fingerprint": task_fingerprint(task)}
    tag["device"] = where.device
    tag["rule"] = f"probe {PROBE_STEPS} val"
    if where.resume and path is not None and path.exists():
        saved = _load_finder(path, tag)
        if saved is not None:
            return saved
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = task.model().to(dev)
    model.train()
    batches = ((x.to(dev), y.to(dev)) for x, y in task.batches(0))
    opt = task.optimizer(model.parameters(), 1e-3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        res = find_lr(model, opt, task.loss, batches, steps=n, val_data=task.val_batches(dev))
    finally:
        torch.set_num_threads(threads)
    if path is not None:
        write_json(path, {**tag, **res.to_dict()})
    return res


def _load_finder(path: Path, tag: dict[str, Any]) -> FinderResult | None:
    """The range test saved at ``path`` if it was made with ``tag`` (task, steps, task
    fingerprint) and reads back whole; else None with a one-line warning naming the file."""
    try:
        d = json.loads(path.read_text())
        if any(d.get(k) != v for k, v in tag.items()):
            why = "stale (made with other settings, task code or data, or another lrkit version)"
        else:
            res = FinderResult.from_dict(d)
            if math.isfinite(res.suggestion) and res.suggestion > 0:
                return res
            why = f"suggestion {res.suggestion!r} is not a rate"
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        why = f"unreadable ({type(exc).__name__}: {exc})"
    warnings.warn(f"resume: rerunning the range test, {path}: {why}", ResumeWarning, stacklevel=3)
    return None
