"""An executor on a Ray cluster (``lrkit[ray]``): each trial of a comparison is one Ray task.

:class:`RayExecutor` implements :class:`lrkit.tune.executors.Executor`: ``run(trials)`` submits
one task per trial, with the resources the trial needs (``cpus_per_trial`` CPUs, and
``gpus_per_trial`` GPUs when the trial's device is ``cuda``), and yields each
:class:`~lrkit.tune.records.RunResult` as it finishes (``ray.wait``). The driver (the search)
writes the run files as with the local executors, so ``resume``, the report and the
recommendation do not depend on where the trials ran.

The task travels by its name (``"digits"``, ``"module:function"``), not pickled: each worker loads
it once (:func:`lrkit.tune.tasks.load_task`) and trains the trial with the one
:func:`lrkit.tune._runs.run_trial`. lrkit and the task's module must therefore be importable on
every node; when one is not, ``run`` raises :class:`RayTaskError` with a one-line message that
says so. A worker that dies (process killed, node lost) has its trial resubmitted, up to
``max_retries`` times; an exception raised by the trial itself is not retried (it would fail
again).

Ray is imported when the executor first runs trials, so importing this module needs no Ray.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any

from lrkit.tune.records import RunResult, Trial
from lrkit.tune.tasks import BUILTIN, Task, load_task

__all__ = ["RayExecutor", "RayTaskError"]

_ADDRESS = re.compile(r"^(auto|(ray://)?[A-Za-z0-9_.\-\[\]:]+:\d{1,5})$")


class RayTaskError(RuntimeError):
    """A trial that failed on a Ray worker for a reason other than a lost worker (e.g. the task
    cannot be imported there); the message is one line."""


def _check(name: str, value: object, *, positive: bool) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or value < 0 or (positive and value == 0):  # type: ignore[operator]
        need = "> 0" if positive else ">= 0"
        raise ValueError(f"RayExecutor: {name} must be a number {need}, got {name}={value!r}")
    return float(value)  # type: ignore[arg-type]


class RayExecutor:
    """Runs trials as Ray tasks; use it as a context manager (or call :meth:`close`).

    Args:
        task_ref: the task by name: a built-in (``"digits"``) or ``"module:function"``
            importable on every node (the same name as given to ``compare``).
        address: ``None`` starts a Ray instance on this machine (or joins the one named by
            ``RAY_ADDRESS``); ``"auto"`` joins the cluster started here with ``ray start``;
            ``"HOST:PORT"`` joins that cluster's head. Ignored when Ray is already initialised
            in this process (the caller's session is used and left open).
        cpus_per_trial: CPUs each trial asks for (default 1); torch uses that many threads.
        gpus_per_trial: GPUs each ``cuda`` trial asks for (default 1); a CPU trial asks none.
        max_retries: how often a trial whose worker died is resubmitted (default 3).
        init: more keyword arguments for ``ray.init`` (e.g. ``runtime_env``).

    Raises:
        TypeError: ``task_ref`` is not a string.
        ValueError: a bad ``task_ref``, ``address`` or resource count (the message names it).
    """

    def __init__(
        self,
        task_ref: str,
        address: str | None = None,
        *,
        cpus_per_trial: float = 1,
        gpus_per_trial: float = 1,
        max_retries: int = 3,
        init: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(task_ref, str):
            raise TypeError(
                "RayExecutor: task_ref must be a task name ('digits' or 'module:function'), "
                f"got task_ref={task_ref!r}"
            )
        if task_ref not in BUILTIN and ":" not in task_ref:
            raise ValueError(
                f"RayExecutor: task_ref must be a built-in task ({', '.join(BUILTIN)}) or "
                f"'module:function', got task_ref={task_ref!r}"
            )
        if address is not None and not (isinstance(address, str) and _ADDRESS.match(address)):
            raise ValueError(
                f"RayExecutor: address must be None, 'auto' or 'HOST:PORT', got address={address!r}"
            )
        mr = max_retries
        if isinstance(mr, bool) or not isinstance(mr, int) or mr < 0:
            raise ValueError(
                f"RayExecutor: max_retries must be an integer >= 0, got max_retries={mr!r}"
            )
        self.task_ref = task_ref
        self.address = address
        self.cpus_per_trial = _check("cpus_per_trial", cpus_per_trial, positive=True)
        self.gpus_per_trial = _check("gpus_per_trial", gpus_per_trial, positive=False)
        self.max_retries = mr
        self.init = dict(init or {})
        self._remote: Any = None
        self._owns_ray = False

    def _start(self) -> Any:
        """Import Ray, initialise it unless it already is, and wrap the trial function."""
        try:
            import ray
        except ImportError:  # pragma: no cover - the [ray] extra is installed in CI
            raise ImportError(
                "RayExecutor: needs ray; install it with pip install 'lrkit[ray]'"
            ) from None
        if not ray.is_initialized():
            kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            ray.init(address=self.address, **(kw | self.init))
            self._owns_ray = True
        if self._remote is None:
            self._remote = ray.remote(_ray_trial)
        return ray

    def run(self, trials: Sequence[Trial]) -> Iterator[RunResult]:
        """Submit every trial; yield each result as it finishes (``ray.wait``). Trials still
        pending when the caller stops (an exception, Ctrl-C) are cancelled.

        Raises:
            RayTaskError: a trial failed on its worker (the task cannot be loaded there, or
                training raised); the message is one line and names the trial.
        """
        if not trials:
            return
        ray = self._start()
        pending: dict[Any, Trial] = {}
        for t in trials:
            gpus = self.gpus_per_trial if t.device.startswith("cuda") else 0
            ref = self._remote.options(
                num_cpus=self.cpus_per_trial,
                num_gpus=gpus,
                max_retries=self.max_retries,
                retry_exceptions=False,
            ).remote(self.task_ref, t, self.cpus_per_trial)
            pending[ref] = t
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    trial = pending.pop(ref)
                    yield _result(ray, ref, trial, self.task_ref)
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)

    def close(self) -> None:
        """Shut Ray down if this executor started it (a session it joined is left open)."""
        if self._owns_ray:
            import ray

            ray.shutdown()
            self._owns_ray = False
        self._remote = None

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _result(ray: Any, ref: Any, trial: Trial, task_ref: str) -> RunResult:
    """The trial's result, or a one-line :class:`RayTaskError` for a failed trial."""
    try:
        res = ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = exc.cause if getattr(exc, "cause", None) is not None else exc
        what = f"{trial.candidate.name} seed {trial.seed}"
        if isinstance(cause, ModuleNotFoundError) and (cause.name or "").startswith("lrkit"):
            msg = "lrkit is not importable on the Ray workers (install lrkit on every node)"
        else:
            msg = str(cause).strip().splitlines()[0] if str(cause).strip() else repr(cause)
        raise RayTaskError(
            f"RayExecutor: trial {what} of task {task_ref!r} failed: {msg}"
        ) from None
    if not isinstance(res, RunResult):  # pragma: no cover - defensive: a foreign function
        raise RayTaskError(f"RayExecutor: expected a RunResult, got {type(res).__name__}")
    return res


# ------------------------------------------------------------------------ on the Ray worker
_TASKS: dict[str, Task] = {}


def _ray_trial(task_ref: str, trial: Trial, cpus: float) -> RunResult:
    """Train ``trial`` on a Ray worker: load the task by name (once per worker process) and run
    it with :func:`lrkit.tune._runs.run_trial` on ``cpus`` torch threads. Ray makes the GPUs it
    gave the task visible as ``cuda:0...``, so a ``cuda:N`` trial trains on ``cuda``."""
    import socket

    import torch

    from lrkit.tune._runs import run_trial

    if task_ref not in _TASKS:
        try:
            _TASKS[task_ref] = load_task(task_ref)
        except (ValueError, ImportError) as exc:
            host = socket.gethostname()
            raise RayTaskError(
                f"task {task_ref!r} is not importable on the Ray worker on {host} ({exc}); "
                "its module must be importable on every node (install it there, or ship it "
                "with init={'runtime_env': {'py_modules': [...]}})"
            ) from None
    torch.set_num_threads(max(1, int(cpus)))
    here = dataclasses.replace(trial, device="cuda") if trial.device.startswith("cuda") else trial
    return run_trial(_TASKS[task_ref], here)
