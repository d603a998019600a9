"""DeviceScheduler: the step counter and the lr live on the device, computed there."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lrkit
from lrkit.torch._device import DeviceScheduler

SPEC = "warmup(cosine(0.05, 0.001, steps=20), steps=5) * multistep_decay(1.0, milestones=[10])"


def _setup() -> tuple[torch.nn.Module, torch.optim.Optimizer, DeviceScheduler]:
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return model, opt, DeviceScheduler(opt, SPEC)


def _train(model: torch.nn.Module, opt: torch.optim.Optimizer, update: object, n: int) -> list:
    x, y = torch.randn(32, 8, generator=torch.Generator().manual_seed(1)), torch.ones(32, 1)
    lrs = []
    for _ in range(n):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        update()  # type: ignore[operator]
        lrs.append(opt.param_groups[0]["lr"].item())
    return lrs


def test_lr_is_a_device_tensor_following_the_schedule() -> None:
    """Each update's lr is the schedule's value (float64, rounded once to float32), past the end too."""
    model, opt, sched = _setup()
    lr = opt.param_groups[0]["lr"]
    assert isinstance(lr, torch.Tensor) and lr.shape == () and lr.dtype == torch.float32

    def update() -> None:
        opt.step()
        sched.step()

    lrs = _train(model, opt, update, 40)
    want = lrkit.parse(SPEC)(np.arange(1, 41)).astype(np.float32)
    assert np.array_equal(np.array(lrs, dtype=np.float32), want)
    assert opt.param_groups[0]["lr"] is lr  # updated in place (what a CUDA graph needs)
    assert sched.last_step == 40


def test_resume_and_group_mult() -> None:
    """state_dict/load_state_dict resume at the step; lr_mult scales a group."""
    model, _, sched = _setup()
    sched.set_step(12)
    state = sched.state_dict()
    assert state["step"] == 12
    opt2 = torch.optim.SGD(
        [{"params": [model.weight], "lr_mult": 10.0}, {"params": [model.bias]}], lr=0.1
    )
    other = DeviceScheduler(opt2, SPEC)
    other.load_state_dict(state)
    v = lrkit.parse(SPEC)(12)
    assert other.get_last_lr()[0].item() == pytest.approx(10 * v, rel=1e-6)
    assert other.get_last_lr()[1].item() == pytest.approx(v, rel=1e-6)
    with pytest.raises(ValueError, match="not this one"):
        DeviceScheduler(opt2, "constant(0.1)").load_state_dict(state)
    with pytest.raises(TypeError, match=r"torch\.optim\.Optimizer"):
        DeviceScheduler(object(), SPEC)  # type: ignore[arg-type]


@pytest.mark.slow
def test_compiled_update_matches_eager_exactly() -> None:
    """sched.step compiled with fullgraph=True (inside a compiled update) gives the eager run's
    lrs and weights bit for bit, without recompiling as the lr changes."""
    model, opt, sched = _setup()

    def eager() -> None:
        opt.step()
        sched.step()

    lrs = _train(model, opt, eager, 30)
    model2, opt2, sched2 = _setup()
    torch._dynamo.reset()
    step = torch.compile(sched2.step, fullgraph=True)

    @torch.compile
    def compiled() -> None:
        opt2.step()
        step()

    assert _train(model2, opt2, compiled, 30) == lrs
    assert torch.equal(model.weight, model2.weight) and torch.equal(model.bias, model2.bias)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] <= 4
