"""lrkit.torch.Scheduler checkpoints: exact resume, replayed resizes, and clear errors when a
checkpoint does not fit the scheduler it is loaded into."""

from __future__ import annotations

import json

import pytest
import torch
from torch.optim.lr_scheduler import CosineAnnealingLR

import lrkit
from lrkit.torch import Scheduler

SCHED = lrkit.warmup(lrkit.cosine(0.1, 1e-4, steps="90%"), steps="10%")


def _setup(total: int = 100, **kw):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=1.0, momentum=0.9)
    s = Scheduler(
        opt, lr=SCHED, momentum=lrkit.linear(0.95, 0.85, steps=total), total_steps=total, **kw
    )
    return model, opt, s


def _run(opt, s, n: int) -> list[float]:
    out = []
    for _ in range(n):
        opt.step()
        s.step()
        out.append(opt.param_groups[0]["lr"])
    return out


def test_resume_continues_identically() -> None:
    """A fresh optimizer and scheduler loaded mid-run continue with the same values."""
    _, opt, s = _setup()
    full = _run(opt, s, 80)
    _, opt1, s1 = _setup()
    first = _run(opt1, s1, 30)
    state = json.loads(json.dumps(s1.state_dict()))
    _, opt2, s2 = _setup()
    s2.load_state_dict(state)
    assert opt2.param_groups[0]["lr"] == first[-1]
    assert first + _run(opt2, s2, 50) == full


def test_pending_update_survives_checkpoint() -> None:
    """A checkpoint taken between optimizer.step() and scheduler.step() keeps that update."""
    _, opt1, s1 = _setup()
    _run(opt1, s1, 5)
    opt1.step()
    state = s1.state_dict()
    _, _opt2, s2 = _setup()
    s2.load_state_dict(state)
    s2.step()
    assert s2.last_epoch == 6


def test_resizes_are_replayed_on_load() -> None:
    """A run resized with 'rescale' and checkpointed resumes on the resized schedule."""
    _, opt1, s1 = _setup()
    _run(opt1, s1, 40)
    s1.resize(200, policy="rescale")
    _run(opt1, s1, 10)
    state = s1.state_dict()
    rest1 = _run(opt1, s1, 30)
    _, opt2, s2 = _setup(total=100)
    s2.load_state_dict(state)
    assert s2.total_steps == 200
    assert _run(opt2, s2, 30) == rest1


def test_total_steps_mismatch_raises_or_follows_on_resize() -> None:
    """A checkpoint for another run length raises, unless on_resize says what to do."""
    _, opt1, s1 = _setup(total=100)
    _run(opt1, s1, 40)
    state = s1.state_dict()
    torch.manual_seed(0)
    opt2 = torch.optim.SGD(torch.nn.Linear(3, 1).parameters(), lr=1.0, momentum=0.9)
    mom = lrkit.linear(0.95, 0.85, steps=100)
    s2 = Scheduler(opt2, lr=SCHED, momentum=mom, total_steps=160)
    with pytest.raises(
        ValueError, match=r"total_steps=100 but this scheduler was built with total_steps=160"
    ):
        s2.load_state_dict(state)
    s3 = Scheduler(opt2, lr=SCHED, momentum=mom, total_steps=160, on_resize="rescale")
    s3.load_state_dict(state)
    assert s3.total_steps == 160
    ref = s1.schedules["lr"]
    s3.step(to=100)
    assert opt2.param_groups[0]["lr"] == pytest.approx(ref(40 + 60 * 60 / 120), rel=1e-12)


def test_schedule_mismatch_is_detected() -> None:
    """Loading a checkpoint made with other schedules raises; strict=False keeps ours."""
    _, opt1, s1 = _setup()
    _run(opt1, s1, 10)
    state = s1.state_dict()
    torch.manual_seed(0)
    opt2 = torch.optim.SGD(torch.nn.Linear(3, 1).parameters(), lr=1.0, momentum=0.9)
    other = lrkit.cosine(0.2, steps=100)
    s2 = Scheduler(opt2, lr=other, momentum=lrkit.linear(0.95, 0.85, steps=100), total_steps=100)
    with pytest.raises(ValueError, match=r"other schedules \(lr: checkpoint"):
        s2.load_state_dict(state)
    with pytest.warns(UserWarning, match="keeping this scheduler's schedules"):
        s2.load_state_dict(state, strict=False)
    assert s2.last_epoch == 10 and opt2.param_groups[0]["lr"] == other(10)


def test_foreign_state_is_rejected() -> None:
    """A torch scheduler's state_dict is not mistaken for an lrkit one."""
    _, _opt, s = _setup()
    torch_state = CosineAnnealingLR(
        torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1), T_max=5
    ).state_dict()
    with pytest.raises(ValueError, match=r"not a state saved by lrkit\.torch\.Scheduler"):
        s.load_state_dict(torch_state)


def test_state_contents_are_small_and_plain() -> None:
    """The state holds step, run, specs, per-group info and controllers; no tensors."""
    _, opt, s = _setup()
    _run(opt, s, 3)
    state = s.state_dict()
    assert state["step"] == 3 and state["total_steps"] == 100
    assert lrkit.from_dict(state["schedules"]["lr"]) == SCHED
    assert state["groups"] == [{"name": None, "mult": {"lr": 1.0, "momentum": 1.0}}]
    assert state["controllers"] == []
    assert len(json.dumps(state)) < 2000
