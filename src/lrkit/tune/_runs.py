"""One training run of a schedule comparison: the candidate type, the run itself (same
initialisation and data order for every schedule, from the seed), its resume key, and the
executor that runs many of them in this process or in worker processes, writing each finished
run atomically. The public names are re-exported by :mod:`lrkit.tune.compare`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import multiprocessing
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lrkit.tools._files import write_json
from lrkit.tune.candidates import Candidate
from lrkit.tune.tasks import Task, load_task


def file_slug(name: str) -> str:
    """A file-name-safe form of a candidate's name: itself when already safe (<= 40 characters
    of letters, digits and dashes), else a cut-down form plus a short hash, so two names never
    share a file."""
    s = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")[:40]
    return s if s == name else f"{s}-{hashlib.sha1(name.encode()).hexdigest()[:6]}"


def run_key(task: str, cand: Candidate, seed: int, steps: int) -> str:
    """A hash of everything that determines a run (used to resume safely)."""
    blob = json.dumps([task, cand.name, cand.spec, cand.plateau, seed, steps], sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def _scheduler(opt: torch.optim.Optimizer, cand: Candidate, steps: int) -> Any:
    from lrkit.torch import Scheduler

    controllers = []
    if cand.plateau is not None:
        from lrkit.controllers import Plateau

        controllers.append(Plateau(**cand.plateau))
    return Scheduler(opt, lr=cand.spec, controllers=controllers, total_steps=steps)


def train_run(task: Task, cand: Candidate, seed: int, steps: int) -> dict[str, Any]:
    """Train ``task``'s model from ``torch.manual_seed(seed)`` for ``steps`` updates under
    ``cand``; returns the run record (curves, final validation loss/accuracy, wall time). The
    caller's torch RNG state is left as it was."""
    with torch.random.fork_rng(devices=[]):
        return _train_run(task, cand, seed, steps)


def _train_run(task: Task, cand: Candidate, seed: int, steps: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    model = task.model()
    model.train()
    opt = task.optimizer(model.parameters(), 1.0)
    sched = _scheduler(opt, cand, steps)
    batches = task.batches(seed)
    every = int(task.eval_every)  # type: ignore[arg-type]  # set by Task.__post_init__
    lrs: list[float] = []
    tr_steps: list[int] = []
    tr_loss: list[float] = []
    va_steps: list[int] = []
    va_loss: list[float] = []
    va_acc: list[float | None] = []
    window: list[float] = []
    diverged = False
    for k in range(steps):
        x, y = next(batches)
        lrs.append(float(opt.param_groups[0]["lr"]))
        loss = task.loss(model(x), y)
        value = float(loss.detach())
        if not math.isfinite(value):
            diverged = True
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        window.append(value)
        if (k + 1) % every == 0 or k + 1 == steps:
            vl, acc = task.evaluate(model)
            tr_steps.append(k + 1)
            tr_loss.append(float(np.mean(window)))
            window = []
            va_steps.append(k + 1)
            va_loss.append(vl)
            va_acc.append(acc)
            if not math.isfinite(vl):
                diverged = True
                break
            if cand.plateau is not None:
                sched.observe(vl)
    final = va_loss[-1] if va_loss and not diverged else math.inf
    return {
        "schedule": cand.name,
        "spec": cand.spec,
        "plateau": cand.plateau,
        "seed": seed,
        "steps": steps,
        "lr": lrs,
        "train": {"step": tr_steps, "loss": tr_loss},
        "val": {"step": va_steps, "loss": va_loss, "acc": va_acc},
        "final_val_loss": final,
        "final_acc": va_acc[-1] if va_acc and not diverged else None,
        "diverged": diverged,
        "wall_s": time.perf_counter() - t0,
    }


_TASKS: dict[str, Task] = {}


def _run_one(
    task: Task, cand: Candidate, seed: int, steps: int, path: Path | None, key: str
) -> dict[str, Any]:
    """Run one (schedule, seed), tag it with its key and write it atomically to ``path``."""
    rec = train_run(task, cand, seed, steps)
    rec["key"] = key
    if path is not None:
        write_json(path, rec)
    return rec


def _worker(
    task_ref: str, cand: Candidate, seed: int, steps: int, path: str, key: str
) -> dict[str, Any]:
    """:func:`_run_one` in a worker (one torch thread, set by :func:`_init_worker`)."""
    if task_ref not in _TASKS:
        _TASKS[task_ref] = load_task(task_ref)
    return _run_one(_TASKS[task_ref], cand, seed, steps, Path(path) if path else None, key)


def load_run(path: Path | None, key: str) -> dict[str, Any] | None:
    if path is None or not path.exists():
        return None
    try:
        rec = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if rec.get("key") != key:
        return None
    if rec.get("final_val_loss") is None:
        rec["final_val_loss"] = math.inf
    return rec


@contextlib.contextmanager
def worker_pool(jobs: int, task_ref: str | None = None) -> Iterator[Any]:
    """One pool of ``jobs`` spawned worker processes for a whole comparison (None for 1 job).
    Each worker imports torch and loads ``task_ref`` as it starts, so the start-up overlaps
    whatever this process does next (the range test).

    Workers ignore SIGINT: Ctrl-C reaches the whole process group, and only this process should
    act on it, by terminating the pool (a ProcessPoolExecutor could hang in its shutdown here).
    Finished runs are already on disk (written atomically), so --resume picks up from there.
    """
    if jobs == 1:
        yield None
        return
    ctx = multiprocessing.get_context("spawn")
    pool = ctx.Pool(jobs, initializer=_init_worker, initargs=(task_ref,))
    try:
        yield pool
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


def execute_runs(
    task: Task, ref: str | None, todo: list[Any], steps: int, pool: Any, bar: Any
) -> list[dict[str, Any]]:
    """Run ``todo`` (``(candidate, seed, key, path)`` tuples) here (``pool`` None) or in the
    worker processes of ``pool`` (from :func:`worker_pool`); each finished run is written to its
    path atomically. Exceptions propagate (the pool's context terminates the workers)."""
    out = []
    if pool is None or len(todo) <= 1:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for cand, seed, key, path in todo:
                rec = _run_one(task, cand, seed, steps, path, key)
                out.append(rec)
                _tick(bar, rec)
        finally:
            torch.set_num_threads(threads)
        return out
    task_ref = ref if ref is not None else task.name  # compare() requires a name for jobs > 1
    args = [
        (task_ref, cand, seed, steps, str(path) if path else "", key)
        for cand, seed, key, path in todo
    ]
    for rec in pool.imap_unordered(_worker_args, args):
        out.append(rec)
        _tick(bar, rec)
    return out


def _init_worker(task_ref: str | None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
    if task_ref is not None and task_ref not in _TASKS:
        # An initializer that raises makes the pool respawn the worker forever; a task that
        # fails to load here fails again in _worker, where the error reaches the caller.
        with contextlib.suppress(Exception):
            _TASKS[task_ref] = load_task(task_ref)


def _worker_args(args: tuple[Any, ...]) -> dict[str, Any]:
    return _worker(*args)


def progress_bar(enabled: bool, total: int, initial: int) -> Any:
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(total=total, initial=initial, desc="runs", unit="run")


def _tick(bar: Any, rec: dict[str, Any]) -> None:
    if bar is not None:
        bar.set_postfix_str(f"{rec['schedule']} seed {rec['seed']}", refresh=False)
        bar.update(1)
