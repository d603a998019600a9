"""What every stage of a comparison shares (:class:`Search`): the task, the seeds and budget, the
executor, the report folder and the progress bar; and the one loop that turns candidates into
finished runs: reuse what the folder already holds (with ``resume``), hand the rest to the
executor as trials, write each result as it comes back. A search (grid or halving) returns an
:class:`Outcome`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lrkit.tune._runs import file_slug, load_run, run_key, save_run
from lrkit.tune.candidates import Candidate
from lrkit.tune.executors import Executor
from lrkit.tune.halving import SearchPath
from lrkit.tune.records import PeakRefinement, RunResult, SummaryRow, Trial
from lrkit.tune.tasks import Task


@dataclass(frozen=True)
class Search:
    """The context of one comparison: ``task`` (named ``name`` in run keys), ``seeds``, the
    ``steps`` per run, the ``executor``, the report ``folder`` (None: nothing written),
    ``resume`` (reuse finished runs found there), the progress ``bar`` (None: silent) and the
    task's ``fingerprint`` (part of every run's key), the ``device`` trials train on and the
    halving search's ``rung`` (None: the grid search). A rung of the halving search is this
    search with its own ``steps`` (horizon), ``seeds`` and ``rung``
    (:func:`dataclasses.replace`)."""

    task: Task
    name: str
    seeds: tuple[int, ...]
    steps: int
    executor: Executor
    folder: Path | None
    resume: bool
    bar: Any = None
    fingerprint: str = ""
    device: str = "cpu"
    rung: int | None = None

    def trial(self, cand: Candidate, seed: int, stem: str) -> Trial:
        """The trial of ``cand`` with ``seed``; saved as ``<folder>/runs/<stem>-seed<seed>.json``."""
        path = self.folder / "runs" / f"{stem}-seed{seed}.json" if self.folder else None
        key = run_key(self.name, cand, seed, self.steps, self.fingerprint, self.device)
        return Trial(cand, seed, self.steps, key, path, self.device, self.rung)

    def results(self, cands: Sequence[tuple[Candidate, str]]) -> list[RunResult]:
        """Every (candidate, seed) run, in candidate then seed order; ``cands`` pairs each
        candidate with its file stem (:meth:`trial`). Finished runs in the folder are reused
        with ``resume`` (and counted on the progress bar); the others run on the executor,
        each written as it finishes."""
        trials = [self.trial(c, s, stem) for c, stem in cands for s in self.seeds]
        got: dict[str, RunResult] = {}
        todo: dict[str, Trial] = {}
        for t in trials:
            done = load_run(t.path, t.key) if self.resume else None
            if done is None:
                todo[t.key] = t
            else:
                got[t.key] = done
        if self.bar is not None and got:
            self.bar.update(len(got))
        for res in self.executor.run(list(todo.values())):
            save_run(todo[res.key], res)
            got[res.key] = res
            if self.bar is not None:
                self.bar.set_postfix_str(f"{res.schedule} seed {res.seed}", refresh=False)
                self.bar.update(1)
        return [got[t.key] for t in trials]


@dataclass(frozen=True)
class Outcome:
    """What a search found: the grid search's runs and summary at the common peak, its choice
    there (``common_recommendation``), the refinements and the final choice; or the halving
    search's last rung (``runs``, ``summary``), its ``path`` and the earlier rungs' runs
    (``rung_runs``), with ``common_recommendation`` the final choice and no refinements."""

    runs: tuple[RunResult, ...]
    summary: tuple[SummaryRow, ...]
    target: float | None
    common_recommendation: str
    refinements: tuple[PeakRefinement, ...]
    recommendation: str
    reasoning: str
    path: SearchPath | None = None
    rung_runs: tuple[RunResult, ...] = ()


def main_stem(cand: Candidate) -> str:
    """The file stem of a run at the common peak: the candidate's name, made file-safe."""
    return file_slug(cand.name)


def refine_stem(cand: Candidate, rate: float) -> str:
    """The file stem of a refinement run: ``refine/<name>-<rate>``."""
    return f"refine/{file_slug(cand.name)}-{rate:.6g}"


def rung_stem(family: str, rung: int, rate: float | None) -> str:
    """The file stem of a halving run: ``rung<k>/<family>-<rate>`` (``rung<k>/<family>`` for a
    family that does not use the rate)."""
    rate_part = "" if rate is None else f"-{rate:.6g}"
    return f"rung{rung}/{file_slug(family)}{rate_part}"


def progress_bar(enabled: bool, total: int, initial: int) -> Any:
    """A tqdm bar over ``total`` runs, ``initial`` of them done (None when disabled or without
    tqdm). The search sets ``total`` to the most runs it can take, so it is known from the
    start, and lowers it to what was done when it ends early (fewer refinement steps)."""
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(total=total, initial=initial, desc="runs", unit="run")
