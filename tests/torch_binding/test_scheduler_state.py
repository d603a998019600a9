"""lrkit.torch.Scheduler checkpoints: exact resume, replayed resizes, and clear errors when a
checkpoint does not fit the scheduler it is loaded into."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tests import strategies as S
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


# ---------------------------------------------------------------------- validating, atomic loads
def _with_controllers(factor: float = 0.5) -> tuple[torch.optim.Optimizer, Scheduler]:
    """A scheduler with a plateau, manual restarts, a shift detector and a guard controller."""
    from lrkit.controllers import Plateau, RestartOnShift, Restarts
    from lrkit.torch.guard import GuardController

    torch.manual_seed(0)
    opt = torch.optim.SGD(torch.nn.Linear(3, 1).parameters(), lr=1.0, momentum=0.9)
    ctls = [
        Plateau(factor=factor, patience=1),
        Restarts(),
        RestartOnShift(burn_in=3),
        GuardController(),
    ]
    s = Scheduler(
        opt,
        lr=SCHED,
        momentum=lrkit.linear(0.95, 0.85, steps=100),
        total_steps=100,
        controllers=ctls,
    )
    return opt, s


def _run_metrics(opt: torch.optim.Optimizer, s: Scheduler, n: int) -> None:
    for k in range(n):
        opt.step()
        s.step(metric=1.0 + 0.1 * (k % 3) + (3.0 if k > 12 else 0.0))


def _everything(opt: torch.optim.Optimizer, s: Scheduler) -> tuple:
    """All a load could change: the scheduler's state (controllers included), the values in the
    param groups, and the bound schedules."""
    groups = [(g["lr"], g["momentum"]) for g in opt.param_groups]
    return json.dumps(s.state_dict(), sort_keys=True), groups, s.schedules


def _checkpoint() -> dict:
    opt, s = _with_controllers()
    _run_metrics(opt, s, 20)
    s._controllers[1].restart(to=5, at=22)
    return json.loads(json.dumps(s.state_dict()))


def test_refused_load_changes_nothing() -> None:
    """A checkpoint refused by its last controller leaves clock, values and controllers as they
    were (before: the clock moved, the values did not)."""
    state = _checkpoint()
    state["controllers"][3]["kind"] = "Plateau"
    opt, s = _with_controllers()
    _run_metrics(opt, s, 4)
    before = _everything(opt, s)
    with pytest.raises(ValueError, match=r"controllers\[3\].*not a GuardController state"):
        s.load_state_dict(state)
    assert _everything(opt, s) == before


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            ("controllers", 0, "num_reductions"),
            -1,
            r"num_reductions must be an integer >= 0, got num_reductions=-1",
        ),
        (
            ("controllers", 3, "recovery_step"),
            float("nan"),
            r"recovery_step must be finite, got recovery_step=nan",
        ),
        (
            ("resizes",),
            [[10, 200, "bogus"]],
            r"resizes\[0\]\[2\] \(policy\) must be one of 'keep', 'rescale'.*'bogus'",
        ),
        (("step",), 1.7, r"step must be an integer, got step=1.7"),
        (("pending",), -2, r"pending must be an integer >= 0, got pending=-2"),
        (("total_steps",), 0, r"total_steps must be an integer >= 1, got total_steps=0"),
        (
            ("controllers", 1, "restarts"),
            [[22, 5.0, 0.0, 1.0]],
            r"restarts\[0\]\[2\] \(stretch\) must be > 0",
        ),
        (
            ("controllers", 2, "detector_state", "g"),
            float("inf"),
            r"detector_state\['g'\] must be finite",
        ),
        (("controllers", 0, "version"), 99, r"unknown state version, got version=99"),
    ],
)
def test_bad_values_are_refused_naming_key_and_value(path, value, message) -> None:
    """Each corrupted value found by the reliability probe raises, naming the key and the value,
    and changes nothing (before: accepted; num_reductions=-1 lifted lr above the peak)."""
    state = _checkpoint()
    node = state
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    opt, s = _with_controllers()
    before = _everything(opt, s)
    with pytest.raises((ValueError, TypeError), match=message):
        s.load_state_dict(state)
    assert _everything(opt, s) == before
    assert opt.param_groups[0]["lr"] <= 0.1  # the schedule's peak


def test_missing_and_unknown_keys_are_refused() -> None:
    """A state without one of the scheduler's keys, or with one it does not know, is refused."""
    _opt, s = _with_controllers()
    state = _checkpoint()
    del state["pending"]
    with pytest.raises(ValueError, match=r"state lacks \['pending'\]"):
        s.load_state_dict(state)
    state = _checkpoint()
    state["controllers"][0]["num_reductionz"] = 1
    with pytest.raises(ValueError, match=r"has unknown keys \['num_reductionz'\]"):
        s.load_state_dict(state)


def test_controller_settings_mismatch_raises_or_warns() -> None:
    """A Plateau checkpoint made with factor=0.5 is refused by Plateau(factor=0.01) (before:
    loaded silently); strict=False warns, keeps factor=0.01 and takes the state."""
    state = _checkpoint()
    assert state["controllers"][0]["num_reductions"] > 0
    opt, s = _with_controllers(factor=0.01)
    before = _everything(opt, s)
    with pytest.raises(ValueError, match=r"other settings \(factor: checkpoint 0.5, here 0.01\)"):
        s.load_state_dict(state)
    assert _everything(opt, s) == before
    with pytest.warns(UserWarning, match=r"keeping this controller's settings \(strict=False\)"):
        s.load_state_dict(state, strict=False)
    plateau = s._controllers[0]
    assert (
        plateau.factor == 0.01
        and plateau.num_reductions == state["controllers"][0]["num_reductions"]
    )
    assert s.last_epoch == state["step"]


def test_foreign_controller_failure_is_rolled_back() -> None:
    """A user's controller whose own load_state_dict raises late is undone with the rest."""

    class Picky:
        target, floor = "lr", None

        def __init__(self) -> None:
            self.n = 0

        def clock(self, step: float) -> float:
            return step

        def scale(self, step: int) -> float:
            return 0.5**self.n

        def observe(self, step: int, metric: float) -> None:
            self.n += 1

        def state_dict(self) -> dict:
            return {"n": self.n}

        def load_state_dict(self, state: dict) -> None:
            self.n = state["n"]
            if self.n > 100:
                raise ValueError("Picky: n too large")

    from lrkit.controllers import Plateau

    opt = torch.optim.SGD(torch.nn.Linear(3, 1).parameters(), lr=1.0)
    s = Scheduler(opt, lr=SCHED, total_steps=100, controllers=[Plateau(), Picky()])
    for _ in range(3):
        opt.step()
        s.step(metric=1.0)
    state = s.state_dict()
    state["step"], state["controllers"][1]["n"] = 50, 101
    before = json.dumps(s.state_dict()), opt.param_groups[0]["lr"], s._controllers[1].n
    with pytest.raises(ValueError, match="n too large"):
        s.load_state_dict(state)
    assert (json.dumps(s.state_dict()), opt.param_groups[0]["lr"], s._controllers[1].n) == before


_HOSTILE = [
    float("nan"),
    float("inf"),
    -float("inf"),
    -1,
    1.7,
    0,
    -0.0,
    None,
    "x",
    True,
    [],
    {},
    10**20,
    2.5e300,
    [1, 2],
    {"a": 1},
]


@st.composite
def corrupted(draw, state: dict) -> dict:
    """``state`` with one node replaced by a hostile value, deleted, or given an unknown key."""
    return draw(S.corrupted_state(state, _HOSTILE))


_VALID = _checkpoint()


@pytest.mark.slow
@settings(max_examples=max(300, settings.default.max_examples))
@given(state=corrupted(_VALID))
def test_corrupted_state_loads_exactly_or_changes_nothing(state) -> None:
    """A state with one random corruption either loads exactly (its state_dict comes back) or
    raises ValueError/TypeError with the scheduler, its controllers and its values unchanged."""
    opt, s = _with_controllers()
    _run_metrics(opt, s, 4)
    before = _everything(opt, s)
    try:
        s.load_state_dict(state)
    except (ValueError, TypeError):
        assert _everything(opt, s) == before
        return
    after = s.state_dict()
    # writing the values at the loaded step shows it (and the rewound clocks) to the
    # controllers: their last_step can only grow; "groups" is rebuilt from the optimizer
    for mine, saved in zip(after["controllers"], state["controllers"], strict=True):
        assert mine.pop("last_step") >= saved.pop("last_step")
    del after["groups"], state["groups"]
    assert after == state
    opt.step()
    s.step(metric=1.0)
