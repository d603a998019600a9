"""The guard's spike rule: right for negative, zero and tiny losses (the reported misfires), shift-
and scale-invariant, and still catching real spikes; a Gaussian-NLL run is not killed by it."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import lrkit
from lrkit.torch import Scheduler
from lrkit.torch._guard_spike import is_spike
from lrkit.torch.guard import DivergenceGuard

pytestmark = pytest.mark.usefixtures("one_thread")

RULE = dict(factor=10.0, floor_frac=0.1, min_delta=1e-8, min_history=5)


def _guard(**kw):
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    return DivergenceGuard(model, opt, check_grads=False, **kw)


def test_ten_zero_losses_then_a_nano_loss_is_not_a_spike():
    """After ten losses of 0.0, a loss of 1e-9 is judged good (it was a 'spike' before)."""
    guard = _guard()
    for _ in range(10):
        assert guard.check(0.0)
    assert guard.check(1e-9)
    assert guard.recoveries == []


def test_negative_losses_with_noise_are_not_spikes():
    """Ordinary negative losses (a median of -5) are never spikes (before: every one was)."""
    guard = _guard()
    g = torch.Generator().manual_seed(0)
    for v in (-5.0 + 0.2 * torch.randn(60, generator=g)).tolist():
        assert guard.check(v)
    assert guard.recoveries == []


def test_a_real_spike_above_negative_losses_is_caught():
    """A jump of 100x the loss magnitude above negative losses is a loss spike."""
    guard = _guard()
    for k in range(20):
        assert guard.check(-5.0 + 0.01 * (k % 3))
    assert not guard.check(-5.0 + 100 * 5.0)
    assert guard.recoveries[0]["reason"] == "loss spike"


@pytest.mark.parametrize(
    ("value", "history", "spike"),
    [
        (1e-9, [0.0] * 10, False),
        (1e-3, [0.0] * 10, True),  # a rise above spike_min_delta from an exact zero
        (-4.0, [-5.0, -5.1, -4.9, -5.0, -5.05], False),  # within 10 x 0.5 (floor 0.1 x |m|)
        (1.0, [-5.0, -5.1, -4.9, -5.0, -5.05], True),
        (2.0, [1.0, 1.1, 0.9, 1.0, 1.05], False),  # a doubling in a quiet run: 1 < 10 x 0.1
        (2.2, [1.0, 1.1, 0.9, 1.0, 1.05], True),
        (100.0, [1.0, 1.1, 0.9, 1.0, 1.05], True),
        (100.0, [1.0, 1.1, 0.9, 1.0], False),  # shorter than min_history
        (math.inf, [1.0] * 10, False),  # non-finite: judged apart
    ],
)
def test_rule_table(value, history, spike):
    """The rule on hand-checked cases (median m, robust scale max(1.4826 MAD, 0.1 median|h|))."""
    assert is_spike(value, history, **RULE) is spike


quarters = st.integers(min_value=-400, max_value=400).map(lambda i: i / 4)


@given(st.lists(quarters, min_size=5, max_size=30), quarters, quarters)
def test_rule_ignores_a_shift_when_the_floor_is_off(history, value, shift):
    """With floor_frac=0 the rule depends on differences only: adding a constant changes nothing
    (values on a quarter grid, so the sums are exact)."""
    kw = dict(RULE, floor_frac=0.0)
    moved = [h + shift for h in history]
    assert is_spike(value, history, **kw) == is_spike(value + shift, moved, **kw)


@given(st.lists(quarters, min_size=5, max_size=30), quarters, st.sampled_from([0.25, 2.0, 8.0]))
def test_rule_is_scale_free(history, value, c):
    """Multiplying losses and min_delta by a power of two changes nothing (any sign of loss)."""
    kw = dict(RULE)
    scaled = dict(kw, min_delta=kw["min_delta"] * c)
    assert is_spike(value, history, **kw) == is_spike(value * c, [h * c for h in history], **scaled)


def _nll_run(steps=120, spike_at=None):
    """A heteroscedastic regression trained with Gaussian NLL (losses go negative), guarded."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(512, 1, generator=g) * 6 - 3
    y = torch.sin(x) + 0.02 * torch.randn(512, 1, generator=g)
    model = torch.nn.Sequential(torch.nn.Linear(1, 32), torch.nn.Tanh(), torch.nn.Linear(32, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    guard = DivergenceGuard(model, opt, snapshot_every=10, max_retries=2)
    sched = Scheduler(opt, lr=lrkit.cosine(1e-2, 1e-4, steps=steps), controllers=[guard.controller])
    guard.attach(sched)
    losses = []
    spiked = False
    while sched.last_epoch < steps:
        idx = torch.randint(0, 512, (64,), generator=g)
        out = model(x[idx])
        loss = torch.nn.functional.gaussian_nll_loss(out[:, :1], y[idx], out[:, 1:].exp())
        if spike_at is not None and sched.last_epoch == spike_at and not spiked:
            spiked = True
            loss = loss + 100 * loss.detach().abs()
        loss.backward()
        if guard.check(loss):
            opt.step()
            sched.step()
            losses.append(loss.item())
        opt.zero_grad()
    return losses, guard


@pytest.mark.slow
def test_gaussian_nll_run_with_negative_losses_trains_without_recovery():
    """A Gaussian-NLL run whose losses go well below 0 ends with no recovery (it used to die with
    DivergenceError); a +100|loss| spike injected in it is still caught."""
    losses, guard = _nll_run()
    assert min(losses) < -2.0 and losses[-1] < 0
    assert guard.recoveries == []
    _, guard = _nll_run(spike_at=80)
    assert [(r["reason"], r["step"]) for r in guard.recoveries] == [("loss spike", 80)]
