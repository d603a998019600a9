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
import warnings
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


def run_key(
    task: str, cand: Candidate, seed: int, steps: int, fingerprint: str = "", device: str = "cpu"
) -> str:
    """A hash of everything that determines a run (used to resume safely): the task's name and
    ``fingerprint`` (:func:`lrkit.tune.fingerprint.task_fingerprint`: its code, data and
    lrkit's version), the candidate, the seed, the budget and the device (numbers differ
    slightly across devices)."""
    blob = json.dumps(
        [task, fingerprint, cand.name, cand.spec, cand.plateau, seed, steps, device],
        sort_keys=True,
    )
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def _scheduler(opt: torch.optim.Optimizer, cand: Candidate, steps: int) -> Any:
    from lrkit.torch import Scheduler

    controllers = []
    if cand.plateau is not None:
        from lrkit.controllers import Plateau

        controllers.append(Plateau(**cand.plateau))
    return Scheduler(opt, lr=cand.spec, controllers=controllers, total_steps=steps)


def train_run(task: Task, cand: Candidate, seed: int, steps: int, device: str = "cpu") -> RunResult:
    """Train ``task``'s model from ``torch.manual_seed(seed)`` for ``steps`` updates under
    ``cand``; returns the run record (curves, final validation loss/accuracy, wall time). The
    caller's torch RNG state is left as it was."""
    with torch.random.fork_rng(devices=[]):
        return _train_run(task, cand, seed, steps, torch.device(device))


def _train_run(
    task: Task, cand: Candidate, seed: int, steps: int, device: torch.device
) -> RunResult:
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    model = task.model().to(device)  # initialised on the CPU: the same weights on any device
    model.train()
    opt = task.optimizer(model.parameters(), 1.0)
    sched = _scheduler(opt, cand, steps)
    start_loss, _ = task.evaluate(model)
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
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
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
    reason = _diverged_reason(task, diverged, va_loss, va_acc, start_loss)
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
        final_val_loss=va_loss[-1] if not reason else math.inf,
        final_acc=va_acc[-1] if not reason else None,
        diverged=bool(reason),
        wall_s=time.perf_counter() - t0,
        start_val_loss=start_loss,
        reason=reason,
    )


#: How far above the majority-class accuracy a run must end not to count as at chance level.
CHANCE_MARGIN = 0.02


def _diverged_reason(
    task: Task,
    stopped: bool,
    val_loss: list[float],
    val_acc: list[float | None],
    start: float,
) -> str:
    """Why a run counts as diverged ("" when it does not): a non-finite loss (training stopped
    there), a final validation loss at or above the initialised model's (``start``: it learnt
    nothing or blew up), or a final accuracy within :data:`CHANCE_MARGIN` of always predicting
    the most frequent target."""
    if stopped or not val_loss:
        return "the loss became non-finite"
    final = val_loss[-1]
    if math.isfinite(start) and final >= start:
        return f"final validation loss {final:.4g} >= the initial model's {start:.4g}"
    chance, acc = task.chance_accuracy, val_acc[-1]
    if chance is not None and acc is not None and acc <= chance + CHANCE_MARGIN:
        return f"chance level: accuracy {acc:.3f} <= {chance:.3f} (always the most frequent target)"
    return ""


def run_trial(task: Task, trial: Trial) -> RunResult:
    """Train ``trial`` on ``task``: :func:`train_run`, tagged with the trial's key. The one
    place a trial is run, whichever executor runs it."""
    res = train_run(task, trial.candidate, trial.seed, trial.steps, trial.device)
    return dataclasses.replace(res, key=trial.key)


def save_run(trial: Trial, result: RunResult) -> None:
    """Write ``result`` to the trial's file atomically (nothing when it has none)."""
    if trial.path is not None:
        write_json(trial.path, result.to_json())


class ResumeWarning(UserWarning):
    """A saved run (or range test) that cannot be reused and is redone."""


def load_run(path: Path | None, key: str) -> RunResult | None:
    """The finished run saved at ``path`` if it is valid and the run ``key`` names, else None
    (nothing there), or None with a one-line :class:`ResumeWarning` naming the file when it is
    unreadable, invalid or edited (:meth:`RunResult.from_json`) or stale (made with other
    settings, task code or data, or another lrkit version)."""
    if path is None or not path.exists():
        return None
    try:
        rec = RunResult.from_json(json.loads(path.read_text()))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecordError) as exc:
        why = str(exc) if isinstance(exc, RecordError) else f"unreadable ({exc})"
        warnings.warn(f"resume: retraining {path}: {why}", ResumeWarning, stacklevel=2)
        return None
    if rec.key != key:
        warnings.warn(
            f"resume: retraining {path}: stale (made with other settings, task code or data, "
            "or another lrkit version)",
            ResumeWarning,
            stacklevel=2,
        )
        return None
    return rec
