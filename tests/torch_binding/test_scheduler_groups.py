"""lrkit.torch.Scheduler and param groups: multipliers, per-group schedules, added groups,
Adam's betas, tensor values, and errors at construction."""

from __future__ import annotations

import pytest
import torch

import lrkit
from lrkit.torch import Scheduler


def _net(seed: int = 0) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))


def _loss(model: torch.nn.Module) -> torch.Tensor:
    x = torch.randn(16, 4)
    return (model(x) - x[:, :1]).pow(2).mean()


def test_per_group_schedules_as_list_and_none_leaves_group_alone() -> None:
    """A list gives one schedule per group; None leaves that group's value untouched."""
    m = _net()
    opt = torch.optim.SGD(
        [{"params": m[0].parameters()}, {"params": m[2].parameters(), "lr": 7.0}], lr=1.0
    )
    a, b = lrkit.linear(1.0, 0.0, steps=4), lrkit.constant(0.25)
    s = Scheduler(opt, lr=[a, None], weight_decay=[None, b])
    for k in range(6):
        assert opt.param_groups[0]["lr"] == a(k)
        assert opt.param_groups[1]["lr"] == 7.0
        assert opt.param_groups[1]["weight_decay"] == 0.25
        assert opt.param_groups[0]["weight_decay"] == 0.0
        opt.step()
        s.step()


def test_per_group_schedules_by_name_and_group_mult_dict() -> None:
    """A dict by group name picks each group's schedule; group_mult dicts scale per name."""
    m = _net()
    opt = torch.optim.AdamW(
        [
            {"params": m[0].parameters(), "name": "body"},
            {"params": m[2].parameters(), "name": "head"},
        ],
        lr=1.0,
        weight_decay=0.1,
    )
    body, head = lrkit.cosine(1e-3, steps=10), lrkit.linear(1e-2, 0.0, steps=10)
    s = Scheduler(
        opt,
        lr={"body": body, "head": head},
        weight_decay=0.05,
        group_mult={"body": 0.5, "head": {"lr": 2.0, "weight_decay": 0.0}},
    )
    for k in range(12):
        g_body, g_head = opt.param_groups
        assert g_body["lr"] == pytest.approx(body(k) * 0.5, rel=1e-15)
        assert g_head["lr"] == pytest.approx(head(k) * 2.0, rel=1e-15, abs=0)
        assert g_body["weight_decay"] == 0.05
        assert g_head["weight_decay"] == 0.0
        opt.step()
        s.step()


def test_one_schedule_shared_by_groups_is_one_drive() -> None:
    """Groups sharing a schedule are driven by one evaluation per step, not one per group."""
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in range(16)]
    opt = torch.optim.SGD(
        [{"params": [p], "lr_mult": 1 + i % 3} for i, p in enumerate(params)], lr=1.0
    )
    sched = lrkit.cosine(1.0, steps=20)
    s = Scheduler(opt, lr=sched)
    assert len(s._drives) == 1
    for k in range(25):
        for i, g in enumerate(opt.param_groups):
            assert g["lr"] == pytest.approx(sched(k) * (1 + i % 3), rel=1e-15, abs=1e-300)
        opt.step()
        s.step()


def test_progressive_unfreezing_added_groups_are_driven() -> None:
    """Groups added with add_param_group mid-run get the schedule at the current step."""
    m = _net()
    for p in m[0].parameters():
        p.requires_grad_(False)
    opt = torch.optim.SGD([{"params": m[2].parameters(), "name": "head"}], lr=1.0, momentum=0.9)
    sched = lrkit.warmup(lrkit.cosine(0.1, 1e-4, steps=30), steps=5)
    s = Scheduler(opt, lr=sched, group_mult={"body": 0.1})
    for k in range(40):
        if k == 10:
            for p in m[0].parameters():
                p.requires_grad_(True)
            opt.add_param_group({"params": list(m[0].parameters()), "name": "body"})
        loss = _loss(m)
        opt.zero_grad()
        loss.backward()
        opt.step()
        s.step()
        assert opt.param_groups[0]["lr"] == pytest.approx(sched(k + 1), rel=1e-15)
        if k >= 10:
            assert opt.param_groups[1]["lr"] == pytest.approx(sched(k + 1) * 0.1, rel=1e-15)
    assert len(s.get_last_lr()) == 2


def test_added_group_with_list_spec_raises_clearly() -> None:
    """A group added when schedules were given as a positional list is an error naming it."""
    m = _net()
    opt = torch.optim.SGD([{"params": m[2].parameters()}], lr=1.0)
    s = Scheduler(opt, lr=[0.1])
    opt.add_param_group({"params": list(m[0].parameters()), "name": "body"})
    opt.step()
    with pytest.raises(ValueError, match=r"param group 1 \('body'\) was added"):
        s.step()


def test_optimizer_load_state_dict_replacing_groups_is_followed() -> None:
    """After optimizer.load_state_dict (new group dicts) the scheduler writes the new dicts."""
    m = _net()
    opt = torch.optim.SGD(m.parameters(), lr=1.0)
    sched = lrkit.linear(1.0, 0.0, steps=10)
    s = Scheduler(opt, lr=sched)
    opt.step()
    s.step()
    opt.load_state_dict(opt.state_dict())
    opt.step()
    s.step()
    assert opt.param_groups[0]["lr"] == sched(2)


def test_adam_beta1_and_momentum_map_to_betas0() -> None:
    """beta1 drives Adam's betas[0], keeping betas[1]; momentum maps there too for Adam."""
    m = _net()
    opt = torch.optim.Adam(m.parameters(), lr=1e-3, betas=(0.9, 0.98))
    b1 = lrkit.linear(0.95, 0.85, steps=10)
    s = Scheduler(opt, beta1=b1)
    for k in range(3):
        assert opt.param_groups[0]["betas"] == (b1(k), 0.98)
        loss = _loss(m)
        opt.zero_grad()
        loss.backward()
        opt.step()
        s.step()
    opt2 = torch.optim.Adam(_net().parameters(), lr=1e-3, betas=(0.9, 0.98))
    Scheduler(opt2, momentum=b1)
    assert opt2.param_groups[0]["betas"] == (0.95, 0.98)


def test_tensor_lr_is_filled_in_place() -> None:
    """A tensor lr (capturable/compiled setups) is updated with fill_, not replaced."""
    m = _net()
    opt = torch.optim.Adam(m.parameters(), lr=torch.tensor(0.01))
    lr_tensor = opt.param_groups[0]["lr"]
    sched = lrkit.linear(0.01, 0.0, steps=10)
    s = Scheduler(opt, lr=sched)
    opt.step()
    s.step()
    assert opt.param_groups[0]["lr"] is lr_tensor
    assert lr_tensor.item() == pytest.approx(sched(1))
    assert isinstance(s.get_last_lr()[0], torch.Tensor)


@pytest.mark.parametrize(
    ("make_opt", "kwargs", "match"),
    [
        (
            lambda p: torch.optim.SGD(p, lr=0.1),
            {"beta1": 0.9},
            r"beta1 drives betas\[0\].*no 'betas'",
        ),
        (lambda p: torch.optim.SGD(p, lr=0.1), {"eps": 1e-8}, r"cannot drive 'eps': param group 0"),
        (lambda p: torch.optim.SGD(p, lr=0.1), {}, r"give at least one schedule"),
        (lambda p: torch.optim.SGD(p, lr=0.1), {"lr": [0.1, 0.2]}, r"lr has 2 per-group schedules"),
        (lambda p: torch.optim.SGD(p, lr=0.1), {"lr": {"head": 0.1}}, r"not among them"),
        (lambda p: torch.optim.Adam(p), {"momentum": 0.9, "beta1": 0.9}, r"both drive"),
        (
            lambda p: torch.optim.SGD(p, lr=0.1),
            {"lr": lrkit.cosine(1.0, steps="10%")},
            r"pass total_steps=",
        ),
        (
            lambda p: torch.optim.SGD(p, lr=0.1),
            {"lr": lrkit.cosine(1.0, steps="2ep"), "total_steps": 10},
            r"steps_per_epoch",
        ),
        (
            lambda p: torch.optim.SGD(p, lr=0.1),
            {"lr": 0.1, "total_steps": 0},
            r"total_steps must be a positive integer, got total_steps=0",
        ),
        (
            lambda p: torch.optim.SGD(p, lr=0.1),
            {"lr": 0.1, "clock": "epochs"},
            r"clock must be 'updates' or 'calls'",
        ),
        (
            lambda p: torch.optim.SGD([{"params": p, "lr_mult": -1.0}], lr=0.1),
            {"lr": 0.1},
            r"lr_mult for lr in param group 0 must be a finite number >= 0",
        ),
    ],
)
def test_construction_errors_name_the_argument(make_opt, kwargs, match) -> None:
    """Bad arguments fail at construction with a message naming the argument and value."""
    opt = make_opt(list(_net().parameters()))
    with pytest.raises(ValueError, match=match):
        Scheduler(opt, **kwargs)


def test_type_errors() -> None:
    """A non-optimizer or a non-schedule value is a TypeError."""
    with pytest.raises(TypeError, match=r"must be a torch\.optim\.Optimizer"):
        Scheduler(object(), lr=0.1)  # type: ignore[arg-type]
    opt = torch.optim.SGD(_net().parameters(), lr=0.1)
    with pytest.raises(TypeError, match=r"lr must be a Schedule"):
        Scheduler(opt, lr=object())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lr": -0.1}, r"lr=constant\(-0\.1\) is negative \(-0\.1 at step 0\)"),
        (
            {"lr": lrkit.linear(0.1, -0.1, steps=10)},
            r"lr=linear\(0\.1, -0\.1, steps=10\) is negative \(-0\.0199\d* at step 6\)",
        ),
        (
            {"lr": 0.1, "momentum": lrkit.cyclic(-0.5, 0.9, steps_up=4)},
            r"momentum=cyclic.* is negative \(-0\.5 at step 0\)",
        ),
        ({"lr": [0.1, -1.0]}, r"lr\[1\]=constant\(-1\.0\) is negative"),
    ],
)
def test_negative_values_rejected_at_construction(kwargs, match) -> None:
    """A schedule that would write a negative lr/momentum/weight decay fails when built."""
    net = _net()
    opt = torch.optim.SGD(
        [{"params": net[0].parameters()}, {"params": net[2].parameters()}], lr=0.1, momentum=0.9
    )
    with pytest.raises(ValueError, match=match):
        Scheduler(opt, **kwargs)
