"""Controllers driven by lrkit.torch.Scheduler: plateau on warmup-cosine against torch, resume
from a checkpoint, optimizer-state reset on restart, faster recovery with restart-on-shift."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest
import torch

import lrkit
from lrkit.controllers import Plateau, RestartOnPlateau, Restarts
from lrkit.torch import Scheduler
from lrkit.torch.guard import apply_controller_events


def _param_opt(lr=1.0, cls=torch.optim.SGD, **kw):
    return cls([torch.nn.Parameter(torch.zeros(3))], lr=lr, **kw)


def test_plateau_on_warmup_cosine_matches_torch_factor_per_step():
    """Scheduler(lr=warmup-cosine, controllers=[Plateau]) writes schedule(k) times the factor
    torch's ReduceLROnPlateau reaches on the same metrics, at every step."""
    sched_fn = lrkit.warmup(lrkit.cosine(0.1, 0.001, steps=270), steps=30)
    opt = _param_opt()
    plateau = Plateau(factor=0.5, patience=2, cooldown=1)
    sched = Scheduler(opt, lr=sched_fn, controllers=[plateau])
    ref_opt = _param_opt(lr=1.0)
    ref = torch.optim.lr_scheduler.ReduceLROnPlateau(ref_opt, factor=0.5, patience=2, cooldown=1)
    for k in range(1, 301):
        opt.step()
        if k % 10 == 0:  # a validation metric every 10 steps, flat after step 100
            metric = max(1.0 - k / 100, 0.0) + 0.001 * ((k // 10) % 2)
            sched.step(metric=metric)
            ref.step(metric)
        else:
            sched.step()
        want = sched_fn(k) * ref_opt.param_groups[0]["lr"]
        assert opt.param_groups[0]["lr"] == pytest.approx(want, rel=1e-12), k
    assert plateau.num_reductions >= 3


def _make(seed_ctls=None):
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    ctls = [
        Plateau(factor=0.5, patience=3, smoothing=0.3),
        RestartOnPlateau(patience=5, to=10, peak_factor=0.7, cooldown=2),
        Restarts(),
    ]
    sched = Scheduler(
        opt, lr=lrkit.warmup(lrkit.cosine(0.1, 0.001, steps=180), steps=20), controllers=ctls
    )
    return model, opt, sched, ctls


def _metric(k):
    return 1.0 / (1 + k / 20) + 0.05 * ((k * 7919) % 13) / 13


def test_resume_from_checkpoint_makes_the_same_decisions():
    """A run killed at step 90 and resumed from a JSON checkpoint writes the same lr at every
    later step as the uninterrupted run (plateau, restart-on-plateau and a manual bump)."""

    def drive(model, opt, sched, ctls, start, stop, out):
        for k in range(start, stop):
            opt.step()
            sched.step(metric=_metric(k))
            if k == 120:
                ctls[2].bump(factor=2.0, steps=15)
            out[k] = opt.param_groups[0]["lr"]

    full: dict[int, float] = {}
    m, o, s, c = _make()
    drive(m, o, s, c, 0, 200, full)

    part: dict[int, float] = {}
    m, o, s, c = _make()
    drive(m, o, s, c, 0, 90, part)
    checkpoint = json.loads(json.dumps(s.state_dict(), allow_nan=False))
    m2, o2, s2, c2 = _make()
    s2.load_state_dict(checkpoint)
    drive(m2, o2, s2, c2, 90, 200, part)
    assert part == full
    assert c2[0].num_reductions >= 1 and c2[1].num_restarts >= 1 and c2[2].num_bumps == 1


def test_restart_with_reset_optimizer_drops_adam_state():
    """A restart asking for an optimizer reset drops Adam's moments of the chosen groups only."""
    a, b = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.Adam([{"params": [a]}, {"params": [b]}], lr=0.1)
    r = Restarts(reset_optimizer=True, groups=[0])
    sched = Scheduler(opt, lr=0.1, controllers=[r])
    for _ in range(3):
        (a.sum() + b.sum()).backward()
        opt.step()
        sched.step()
    assert a in opt.state and b in opt.state
    r.restart(to=0)
    events = apply_controller_events(opt, sched)
    assert [e["kind"] for e in events] == ["restart"]
    assert a not in opt.state and b in opt.state
    (a.sum() + b.sum()).backward()
    opt.step()  # Adam re-creates the state lazily
    assert int(opt.state[a]["step"]) == 1 and int(opt.state[b]["step"]) == 4


def _shift_run(restart, seed):
    """The example's own run (examples/controllers_restart_on_shift.py): shift at step 420 of 600."""
    example = Path(__file__).resolve().parents[2] / "examples" / "controllers_restart_on_shift.py"
    return runpy.run_path(str(example))["run"](restart, seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_restart_on_shift_recovers_faster_than_without(seed):
    """After a mid-run change of the target the mean loss over the next 80 steps is at least 2x
    lower with RestartOnShift than on the plain decayed schedule; the restart is within 5 steps."""
    plain, _ = _shift_run(False, seed)
    restarted, shift_steps = _shift_run(True, seed)
    assert shift_steps and 420 <= shift_steps[0] <= 425
    before = sum(restarted[340:420]) / 80
    assert before == pytest.approx(sum(plain[340:420]) / 80), "identical runs before the shift"
    a = sum(plain[420:500]) / 80
    b = sum(restarted[420:500]) / 80
    assert a > 2.0 * b, (a, b)
