"""DivergenceGuard: fault injection on real small training runs (NaN loss, spike, exploding
gradient), recovery to a finite loss close to an unfaulted run, and the give-up error."""

from __future__ import annotations

import math

import pytest
import torch

import lrkit
from lrkit.controllers import Plateau
from lrkit.torch import Scheduler
from lrkit.torch.guard import DivergenceError, DivergenceGuard

pytestmark = pytest.mark.usefixtures("one_thread")

STEPS = 160


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 8, generator=g)
    w = torch.randn(8, 1, generator=g)
    y = torch.tanh(x @ w) + 0.05 * torch.randn(256, 1, generator=g)
    return x, y


def _run(
    fault=None,
    fault_step=70,
    guard_kwargs=None,
    use_guard=True,
    steps=STEPS,
    opt="adam",
    grad_mult=1e30,
):
    """Train a small MLP (Adam or SGD with momentum) on a warmup-cosine schedule; inject ``fault``
    once at ``fault_step`` (``"explode"`` multiplies the gradients by ``grad_mult``).

    Returns (final full-batch loss, guard, {step: lr written for it (last write wins)}, model).
    """
    torch.manual_seed(0)
    x, y = _data()
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    opt = (
        torch.optim.Adam(model.parameters(), lr=1e-2)
        if opt == "adam"
        else torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)
    )
    kw = dict(snapshot_every=10, spike_factor=10.0, rewarm_steps=10, max_retries=3)
    kw.update(guard_kwargs or {})
    guard = DivergenceGuard(model, opt, **kw)
    sched = Scheduler(
        opt,
        lr=lrkit.warmup(lrkit.cosine(2e-2, 1e-3, steps=steps - 10), steps=10),
        controllers=[guard.controller] if use_guard else [],
    )
    guard.attach(sched) if use_guard else None
    injected = False
    lrs = {}
    g = torch.Generator().manual_seed(1)
    for _ in range(steps * 3):
        if sched.last_epoch >= steps:
            break
        idx = torch.randint(0, 256, (32,), generator=g)
        loss = torch.nn.functional.mse_loss(model(x[idx]), y[idx])
        if fault in ("nan", "spike") and not injected and sched.last_epoch == fault_step:
            injected = True
            if fault == "nan":
                loss = loss * float("nan")
            elif fault == "spike":
                loss = loss * 1e4
        loss.backward()
        if fault == "explode" and injected is False and sched.last_epoch == fault_step:
            injected = True
            for p in model.parameters():
                p.grad.mul_(grad_mult)
        if not use_guard or guard.check(loss):
            opt.step()
            sched.step()
            lrs[sched.last_epoch] = opt.param_groups[0]["lr"]
        opt.zero_grad()
    with torch.no_grad():
        final = torch.nn.functional.mse_loss(model(x), y).item()
    return final, guard, lrs, model


@pytest.fixture(scope="module")
def clean_losses():
    out = {}
    for opt in ("adam", "sgd"):
        final, guard, _, _ = _run(None, opt=opt)
        assert guard.recoveries == []
        out[opt] = final
    return out


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fault", "opt", "extra", "mult", "reason"),
    [
        ("nan", "adam", None, 0, ("non-finite loss",)),
        ("spike", "adam", None, 0, ("loss spike",)),
        # x1e30 overflows the float32 gradient norm: caught at once as non-finite
        ("explode", "sgd", None, 1e30, ("non-finite gradient",)),
        # x1e4 without a gradient test: seen one step later, in the ruined loss
        ("explode", "sgd", dict(check_grads=False), 1e4, ("loss spike", "non-finite loss")),
        ("explode", "adam", dict(grad_spike_factor=100.0), 1e6, ("gradient spike",)),
    ],
)
def test_guard_recovers_from_injected_fault(fault, opt, extra, mult, reason, clean_losses):
    """A NaN loss, a loss spike or an exploding gradient is rolled back; training ends finite and
    close to the unfaulted run."""
    clean_loss = clean_losses[opt]
    final, guard, _, model = _run(fault, guard_kwargs=extra, opt=opt, grad_mult=mult)
    assert len(guard.recoveries) >= 1
    first = guard.recoveries[0]
    assert first["reason"] in reason and first["step"] in (70, 71)
    assert first["snapshot_step"] <= first["step"]
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert math.isfinite(final)
    assert final < 1.5 * clean_loss + 0.01, (final, clean_loss)


@pytest.mark.slow
def test_explosion_unguarded_really_diverges(clean_losses):
    """Without the guard the injected gradient explosion ruins the SGD run (the fault is real)."""
    final, _, _, _ = _run("explode", use_guard=False, opt="sgd")
    assert not math.isfinite(final) or final > 10 * clean_losses["sgd"]


def test_weights_after_recovery_equal_the_snapshot():
    """Right after a rollback the weights are exactly those of the last good snapshot."""
    torch.manual_seed(0)
    x, y = _data()
    model = torch.nn.Linear(8, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    guard = DivergenceGuard(model, opt, snapshot_every=5)
    sched = Scheduler(opt, lr=0.05, controllers=[guard.controller])
    guard.attach(sched)
    for _ in range(12):
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        assert guard.check(loss)
        opt.step()
        sched.step()
        opt.zero_grad()
    snap_step = guard.snapshot_step
    assert snap_step == 10
    expected = {k: v.clone() for k, v in guard.snapshot.model.items()}
    loss = torch.nn.functional.mse_loss(model(x), y) * float("nan")
    loss.backward()
    assert guard.check(loss) is False
    for k, v in model.state_dict().items():
        assert torch.equal(v, expected[k]) and torch.isfinite(v).all()
    assert sched.last_epoch == snap_step
    # lr halved and re-warming from 10% of the halved level
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05 * 0.5 * 0.1)


def test_rewarm_reaches_the_reduced_level():
    """After a recovery the lr ramps linearly back to lr_factor times the schedule's value."""
    torch.manual_seed(0)
    _, guard, lrs, _ = _run("nan", guard_kwargs=dict(rewarm_steps=10, lr_factor=0.5))
    snap = guard.recoveries[0]["snapshot_step"]
    sched = lrkit.warmup(lrkit.cosine(2e-2, 1e-3, steps=STEPS - 10), steps=10)
    for k in (snap + 10, snap + 30):
        assert lrs[k] == pytest.approx(0.5 * sched(k), rel=1e-9)
    k = snap + 5
    assert lrs[k] == pytest.approx(0.5 * sched(k) * (0.1 + 0.9 * 0.5), rel=1e-9)


def test_retries_exhausted_raise_a_clear_error():
    """A loss that is always NaN from step 30 ends with DivergenceError naming reason and step."""
    torch.manual_seed(0)
    x, y = _data()
    model = torch.nn.Linear(8, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    guard = DivergenceGuard(model, opt, snapshot_every=10, max_retries=2)
    sched = Scheduler(opt, lr=0.05, controllers=[guard.controller])
    guard.attach(sched)
    with pytest.raises(DivergenceError, match=r"gave up at step \d+: non-finite loss") as err:
        for _ in range(200):
            loss = torch.nn.functional.mse_loss(model(x), y)
            if sched.last_epoch >= 25:
                loss = loss * float("nan")
            loss.backward()
            if guard.check(loss):
                opt.step()
                sched.step()
            opt.zero_grad()
    msg = str(err.value)
    assert "max_retries=2" in msg and "last good snapshot, of step 20" in msg
    assert len(guard.recoveries) == 2


def test_guard_restores_controller_state():
    """A rollback also restores the other controllers' state (a Plateau's counters)."""
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    guard = DivergenceGuard(model, opt, snapshot_every=3)
    plateau = Plateau(patience=100)
    sched = Scheduler(opt, lr=0.1, controllers=[plateau, guard.controller])
    guard.attach(sched)
    for k in range(4):
        loss = model(torch.ones(1, 2)).pow(2).sum()
        loss.backward()
        assert guard.check(loss)
        opt.step()
        sched.step(metric=1.0 - 0.1 * k)
        opt.zero_grad()
    evals_at_snapshot = 3
    loss = model(torch.ones(1, 2)).pow(2).sum() * float("inf")
    loss.backward()
    assert not guard.check(loss)
    assert plateau.num_evals == evals_at_snapshot


def test_no_scheduler_scales_group_lrs():
    """Without a Scheduler the guard restores and multiplies the groups' lr by lr_factor."""
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    guard = DivergenceGuard(model, opt, lr_factor=0.25)
    loss = model(torch.ones(1, 2)).sum() * float("nan")
    loss.backward()
    assert not guard.check(loss)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.025)


def test_attach_requires_the_controller():
    """Attaching a scheduler that lacks guard.controller raises ValueError saying what to do."""
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = Scheduler(opt, lr=0.1)
    with pytest.raises(ValueError, match=r"controllers=\[\.\.\., guard\.controller\]"):
        DivergenceGuard(model, opt, sched)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(snapshot_every=0), "snapshot_every=0"),
        (dict(spike_factor=0.0), "spike_factor must be > 0, got spike_factor=0.0"),
        (dict(every=0), "every=0"),
        (dict(spike_floor_frac=1.5), "spike_floor_frac=1.5"),
        (dict(spike_min_delta=-1.0), "spike_min_delta=-1.0"),
        (dict(window=0), "window=0"),
        (dict(lr_factor=0.0), "lr_factor=0.0"),
        (dict(max_retries=-1), "max_retries=-1"),
        (dict(rewarm_start=0.0), "rewarm_start=0.0"),
        (dict(grad_spike_factor=-0.5), "grad_spike_factor=-0.5"),
    ],
)
def test_bad_arguments(kwargs, match):
    """Bad guard arguments raise ValueError naming the argument and value."""
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=match):
        DivergenceGuard(model, opt, **kwargs)
