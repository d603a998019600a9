"""lrkit.torch.Scheduler: driving values, the torch scheduler API, construction errors."""

from __future__ import annotations

import json
import math
import warnings

import pytest
import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler, OneCycleLR

import lrkit
from lrkit.torch import Scheduler


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))


def _train_step(model: torch.nn.Module, opt: torch.optim.Optimizer) -> None:
    x = torch.randn(16, 4)
    loss = (model(x) - x.sum(1, keepdim=True)).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()


def test_is_a_torch_lr_scheduler() -> None:
    """Frameworks that check isinstance(s, LRScheduler) accept the Scheduler."""
    opt = torch.optim.SGD(_model().parameters(), lr=0.1)
    s = Scheduler(opt, lr=0.1)
    assert isinstance(s, LRScheduler)
    assert s.optimizer is opt


def test_constructor_writes_step_zero_and_takes_no_step() -> None:
    """The constructor writes s(0) into the groups and leaves the clock at 0."""
    opt = torch.optim.SGD(_model().parameters(), lr=123.0)
    s = Scheduler(opt, lr=lrkit.linear(0.5, 0.0, steps=10))
    assert opt.param_groups[0]["lr"] == 0.5
    assert s.last_epoch == 0
    assert s.get_last_lr() == [0.5]
    assert "initial_lr" not in opt.param_groups[0]


def test_matches_torch_cosine_annealing_step_by_step() -> None:
    """Same learning rates as torch's CosineAnnealingLR over a real loop (to T_max; torch's
    cosine then rises again where lrkit's holds its end value)."""
    model_a, model_b = _model(), _model()
    opt_a = torch.optim.SGD(model_a.parameters(), lr=0.1)
    opt_b = torch.optim.SGD(model_b.parameters(), lr=0.1)
    ref = CosineAnnealingLR(opt_a, T_max=50, eta_min=0.001)
    s = Scheduler(opt_b, lr=lrkit.cosine(0.1, 0.001, steps=50))
    for _ in range(51):
        assert s.get_last_lr()[0] == pytest.approx(ref.get_last_lr()[0], rel=1e-9)
        _train_step(model_a, opt_a)
        ref.step()
        _train_step(model_b, opt_b)
        s.step()


def test_matches_torch_one_cycle_lr_and_momentum() -> None:
    """lr and momentum follow torch's OneCycleLR (cos anneal, three_phase=False) step by step."""
    opt_a = torch.optim.SGD(_model().parameters(), lr=0.1, momentum=0.9)
    opt_b = torch.optim.SGD(_model().parameters(), lr=0.1, momentum=0.9)
    total = 100
    ref = OneCycleLR(opt_a, max_lr=0.1, total_steps=total, pct_start=0.3)
    s = Scheduler(
        opt_b,
        lr=lrkit.one_cycle(0.1, steps=total, pct_start=0.3),
        momentum=lrkit.one_cycle_momentum(steps=total, pct_start=0.3),
    )
    for _ in range(total - 1):
        ga, gb = opt_a.param_groups[0], opt_b.param_groups[0]
        assert gb["lr"] == pytest.approx(ga["lr"], rel=1e-9)
        assert gb["momentum"] == pytest.approx(ga["momentum"], rel=1e-9)
        opt_a.step()
        ref.step()
        opt_b.step()
        s.step()


def test_no_order_warning_in_normal_loop() -> None:
    """The normal loop emits no 'lr_scheduler.step() before optimizer.step()' warning."""
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = Scheduler(opt, lr=lrkit.cosine(0.1, steps=10))
        for _ in range(5):
            _train_step(model, opt)
            s.step()


def test_values_written_in_place_for_every_group() -> None:
    """Every group's dict gets schedule(k) * its lr_mult, the same dict objects."""
    m = _model()
    opt = torch.optim.SGD(
        [
            {"params": m[0].parameters(), "lr_mult": 0.1},
            {"params": m[2].parameters(), "name": "head"},
        ],
        lr=1.0,
    )
    g0, g1 = opt.param_groups
    sched = lrkit.linear(1.0, 0.0, steps=10)
    s = Scheduler(opt, lr=sched, group_mult={"head": 3.0})
    for k in range(12):
        assert g0["lr"] == pytest.approx(sched(k) * 0.1, rel=1e-15)
        assert g1["lr"] == pytest.approx(sched(k) * 3.0, rel=1e-15)
        opt.step()
        s.step()
    assert opt.param_groups[0] is g0


def test_state_is_json_and_weights_only_loadable(tmp_path) -> None:
    """state_dict survives json.dumps and torch.save/torch.load(weights_only=True)."""
    opt = torch.optim.SGD(_model().parameters(), lr=0.1)
    s = Scheduler(opt, lr=lrkit.cosine(0.1, steps=10), total_steps=10)
    for _ in range(3):
        opt.step()
        s.step()
    state = s.state_dict()
    assert json.loads(json.dumps(state)) == state
    torch.save({"sched": state}, tmp_path / "ck.pt")
    loaded = torch.load(tmp_path / "ck.pt", weights_only=True)["sched"]
    opt2 = torch.optim.SGD(_model().parameters(), lr=0.1)
    s2 = Scheduler(opt2, lr=lrkit.cosine(0.1, steps=10), total_steps=10)
    s2.load_state_dict(loaded)
    assert s2.last_epoch == 3
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    assert math.isclose(opt2.param_groups[0]["lr"], lrkit.cosine(0.1, steps=10)(3))


def test_values_at_previews_without_writing() -> None:
    """values_at(k) gives what step(to=k) will write, and leaves the groups alone."""
    m = _model()
    opt = torch.optim.SGD(
        [{"params": m[0].parameters(), "lr_mult": 0.5}, {"params": m[2].parameters()}],
        lr=0.1,
        momentum=0.9,
    )
    s = Scheduler(opt, lr=lrkit.cosine(0.1, steps=10), momentum=[None, 0.8])
    preview = s.values_at(7)
    assert opt.param_groups[0]["lr"] == 0.05
    s.step(to=7)
    assert preview["lr"] == [g["lr"] for g in opt.param_groups]
    assert preview["momentum"] == [None, 0.8]
    assert opt.param_groups[0]["momentum"] == 0.9
    assert s.base_lrs == [0.05, 0.1]


def test_accelerate_style_stepping_with_and_without_total_steps() -> None:
    """Accelerate's AcceleratedScheduler.step loop works: it steps num_processes times per update
    while ``_step_count <= total_steps`` when the attribute exists (accelerate/scheduler.py)."""

    def accelerated_step(s: Scheduler, num_processes: int) -> None:
        # re-typed from huggingface/accelerate src/accelerate/scheduler.py (split_batches=False)
        for _ in range(num_processes):
            if hasattr(s, "total_steps"):
                if s._step_count <= s.total_steps:
                    s.step()
            else:
                s.step()

    sched = lrkit.linear(1.0, 0.0, steps=20)
    for total in (None, 20):
        model = _model()
        opt = torch.optim.SGD(model.parameters(), lr=1.0)
        s = Scheduler(opt, lr=sched, total_steps=total)
        for k in range(1, 25):
            _train_step(model, opt)
            accelerated_step(s, num_processes=2)
            assert s.last_epoch == min(k, total or k), (total, k)
            assert opt.param_groups[0]["lr"] == pytest.approx(sched(s.last_epoch), abs=1e-12)


def test_pickle_and_deepcopy_keep_counting_updates() -> None:
    """A pickled or deep-copied Scheduler (with its optimizer) counts its own optimizer's updates."""
    import copy
    import pickle

    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    s = Scheduler(opt, lr=lrkit.linear(1.0, 0.0, steps=10))
    _train_step(model, opt)
    s.step()
    for clone in (copy.deepcopy(s), pickle.loads(pickle.dumps(s))):
        assert clone.optimizer is not opt
        clone.optimizer.step()
        clone.step()
        assert clone.last_epoch == 2
        assert clone.optimizer.param_groups[0]["lr"] == pytest.approx(0.8)
    s.step()
    assert s.last_epoch == 1  # the clones' updates did not reach the original
