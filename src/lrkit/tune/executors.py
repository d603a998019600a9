"""Executors: what runs the search's trials. The search hands an executor typed trials
(:class:`lrkit.tune.records.Trial`) and gets typed results back
(:class:`lrkit.tune.records.RunResult`), in the order they finish; it writes the run files and
moves the progress bar itself, so every executor leaves the same files behind. Each executor
trains a trial with the one function :func:`lrkit.tune._runs.run_trial`.

* :class:`Serial`: in this process, one trial after another.
* :class:`LocalPool`: ``jobs`` spawned worker processes on this machine; each loads the task
  by its name (``"digits"``, ``"module:function"``) once, as it starts.

Another executor (e.g. one on a cluster) implements :class:`Executor`'s one method, ``run``.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, Protocol

import torch

from lrkit.tune._runs import run_trial
from lrkit.tune.records import RunResult, Trial
from lrkit.tune.tasks import Task, load_task


class Executor(Protocol):
    """Runs trials; yields each one's result as it finishes (any order). An exception from a
    trial propagates to the caller (results already yielded stay valid)."""

    def run(self, trials: Sequence[Trial]) -> Iterable[RunResult]:
        """Run ``trials``; yield their results as they finish."""
        ...


class Serial:
    """Runs trials in this process, one after another, on one torch thread (tiny models run
    fastest, and steadiest on a shared machine, on one thread)."""

    def __init__(self, task: Task) -> None:
        self.task = task

    def run(self, trials: Sequence[Trial]) -> Iterator[RunResult]:
        """Train each trial in turn; the caller's torch thread count is restored afterwards."""
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for trial in trials:
                yield run_trial(self.task, trial)
        finally:
            torch.set_num_threads(threads)


_TASKS: dict[str, Task] = {}


def _die_with_parent() -> None:
    """End this worker as soon as the process that started it is gone (even SIGKILLed): on
    Linux the kernel sends SIGKILL (``prctl(PR_SET_PDEATHSIG)``); elsewhere a daemon thread
    checks the parent every 0.2 s."""
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(1, signal.SIGKILL, 0, 0, 0) == 0:  # 1 = PR_SET_PDEATHSIG
                if os.getppid() != parent:  # the parent died before the call
                    os._exit(1)
                return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def worker_gpu(slot: int, gpus: int) -> int | None:
    """The CUDA device a pool worker trains on: worker ``slot`` (0, 1, ... in the order the
    workers start) gets device ``slot % gpus``, so ``jobs`` workers on a machine with ``jobs``
    GPUs train one trial per GPU; None without CUDA or with one GPU (the default device).

    >>> [worker_gpu(s, 2) for s in range(4)], worker_gpu(0, 1)
    ([0, 1, 0, 1], None)
    """
    return slot % gpus if gpus > 1 else None


def _init_worker(task_ref: str, counter: Any = None) -> None:
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
    if counter is not None and torch.cuda.is_available():
        with counter.get_lock():
            slot = counter.value
            counter.value += 1
        gpu = worker_gpu(slot, torch.cuda.device_count())
        if gpu is not None:
            torch.cuda.set_device(gpu)  # trials on "cuda" (no index) go to this worker's GPU
    if task_ref not in _TASKS:
        # An initializer that raises makes the pool respawn the worker forever; a task that
        # fails to load here fails again in _work, where the error reaches the caller.
        with contextlib.suppress(Exception):
            _TASKS[task_ref] = load_task(task_ref)


def _work(args: tuple[str, Trial]) -> RunResult:
    task_ref, trial = args
    if task_ref not in _TASKS:
        _TASKS[task_ref] = load_task(task_ref)
    return run_trial(_TASKS[task_ref], trial)


class LocalPool:
    """``jobs`` spawned worker processes on this machine, for a whole comparison (the range
    test, the comparison and every refinement step share it, so the workers start once). Use it
    as a context manager. Each worker imports torch and loads ``task_ref`` as it starts, so the
    start-up overlaps whatever this process does next (the range test). A batch of one trial runs
    in this process (``task``), which is quicker than a round trip to a worker.

    Workers ignore SIGINT: Ctrl-C reaches the whole process group, and only this process acts on
    it, by terminating the pool (finished runs are already on disk, so ``resume`` continues).
    On a machine with several CUDA devices each worker takes one (:func:`worker_gpu`), so trials
    on ``device="cuda"`` run in parallel one per GPU (a device with an index, ``"cuda:1"``, is
    used as given).
    """

    def __init__(self, jobs: int, task_ref: str, task: Task) -> None:
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 2:
            raise ValueError(f"LocalPool: jobs must be an integer >= 2, got jobs={jobs!r}")
        self.task_ref = task_ref
        self.local = Serial(task)
        ctx = multiprocessing.get_context("spawn")
        counter = ctx.Value("i", 0)
        self._pool: Any = ctx.Pool(jobs, initializer=_init_worker, initargs=(task_ref, counter))

    def run(self, trials: Sequence[Trial]) -> Iterator[RunResult]:
        """Run the trials in the workers (one trial: here); yield results as they finish."""
        if len(trials) <= 1:
            yield from self.local.run(trials)
            return
        yield from self._pool.imap_unordered(_work, [(self.task_ref, t) for t in trials])

    def __enter__(self) -> LocalPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self._pool.close()
        else:
            self._pool.terminate()
        self._pool.join()


@contextlib.contextmanager
def local_executor(jobs: int, task: Task, task_ref: str | None) -> Iterator[Executor]:
    """:class:`Serial` for one job, else a :class:`LocalPool` (which needs the task's name),
    closed on exit (terminated on an exception, Ctrl-C included)."""
    if jobs == 1:
        yield Serial(task)
        return
    if task_ref is None:
        raise ValueError("compare: jobs > 1 needs the task by name ('digits' or 'module:function')")
    with LocalPool(jobs, task_ref, task) as pool:
        yield pool
