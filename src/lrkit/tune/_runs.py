"""One training run of a schedule comparison: the run itself (same initialisation and data order
for every schedule, from the seed), its resume key, and its run file (written atomically, read
back validated). The executors that run many trials are in :mod:`lrkit.tune.executors`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lrkit.tools._files import write_json
from lrkit.tune.candidates import Candidate
from lrkit.tune.records import RecordError, RunResult, Trial
from lrkit.tune.tasks import Task


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


def train_run(task: Task, cand: Candidate, seed: int, steps: int) -> RunResult:
    """Train ``task``'s model from ``torch.manual_seed(seed)`` for ``steps`` updates under
    ``cand``; returns the run record (curves, final validation loss/accuracy, wall time). The
    caller's torch RNG state is left as it was."""
    with torch.random.fork_rng(devices=[]):
        return _train_run(task, cand, seed, steps)


def _train_run(task: Task, cand: Candidate, seed: int, steps: int) -> RunResult:
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
    return RunResult(
        schedule=cand.name,
        spec=cand.spec,
        plateau=cand.plateau,
        seed=seed,
        steps=steps,
        lr=tuple(lrs),
        train_step=tuple(tr_steps),
        train_loss=tuple(tr_loss),
        val_step=tuple(va_steps),
        val_loss=tuple(va_loss),
        val_acc=tuple(va_acc),
        final_val_loss=va_loss[-1] if va_loss and not diverged else math.inf,
        final_acc=va_acc[-1] if va_acc and not diverged else None,
        diverged=diverged,
        wall_s=time.perf_counter() - t0,
    )


def run_trial(task: Task, trial: Trial) -> RunResult:
    """Train ``trial`` on ``task``: :func:`train_run`, tagged with the trial's key. The one
    place a trial is run, whichever executor runs it."""
    res = train_run(task, trial.candidate, trial.seed, trial.steps)
    return dataclasses.replace(res, key=trial.key)


def save_run(trial: Trial, result: RunResult) -> None:
    """Write ``result`` to the trial's file atomically (nothing when it has none)."""
    if trial.path is not None:
        write_json(trial.path, result.to_json())


def load_run(path: Path | None, key: str) -> RunResult | None:
    """The finished run saved at ``path`` if it is the run ``key`` names, else None."""
    if path is None or not path.exists():
        return None
    try:
        rec = RunResult.from_json(json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError, RecordError):
        return None
    return rec if rec.key == key else None
