"""lrkit.torch.Scheduler's clock: real optimizer updates (GradScaler skips, gradient
accumulation), per-call clock for epoch loops, explicit time, and resizing the run."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch.optim.lr_scheduler import StepLR

import lrkit
from lrkit.torch import Scheduler


def _net(seed: int = 0) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(32, 4)
    return x, x.sum(1, keepdim=True)


def test_gradscaler_overflow_skips_do_not_advance_the_clock() -> None:
    """When a real GradScaler skips steps on overflowing gradients the clock stays put.

    The initial loss scale 2**127 makes the scaled gradients overflow float32 for real; the
    scaler skips optimizer.step() and halves its scale until the gradients fit. Whether an
    update happened is read independently from the weights.
    """
    model = _net()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**127)
    sched = lrkit.linear(0.05, 0.0, steps=50)
    s = Scheduler(opt, lr=sched)
    applied = 0
    skipped = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(40):
            x, y = _batch()
            before = model[0].weight.detach().clone()
            loss = torch.nn.functional.mse_loss(model(x), y)
            opt.zero_grad()
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            s.step()
            if torch.equal(before, model[0].weight):
                skipped += 1
            else:
                applied += 1
            assert s.last_epoch == applied
            assert opt.param_groups[0]["lr"] == sched(applied)
    assert skipped > 0 and applied > 0


def test_gradient_accumulation_counts_optimizer_steps() -> None:
    """With 4 micro-batches per update the clock counts updates, even if step() runs each
    micro-batch."""
    for step_every_micro_batch in (False, True):
        model = _net()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        s = Scheduler(opt, lr=lrkit.cosine(0.1, steps=10))
        for i in range(24):
            x, y = _batch()
            (torch.nn.functional.mse_loss(model(x), y) / 4).backward()
            if (i + 1) % 4 == 0:
                opt.step()
                opt.zero_grad()
                s.step()
            elif step_every_micro_batch:
                s.step()
        assert s.last_epoch == 6
        assert opt.param_groups[0]["lr"] == lrkit.cosine(0.1, steps=10)(6)


def test_calls_clock_matches_torch_steplr_stepped_per_epoch() -> None:
    """clock='calls' stepped once per epoch matches torch's StepLR stepped per epoch."""
    opt_a = torch.optim.SGD(_net().parameters(), lr=0.1)
    opt_b = torch.optim.SGD(_net().parameters(), lr=0.1)
    ref = StepLR(opt_a, step_size=3, gamma=0.5)
    s = Scheduler(opt_b, lr=lrkit.step_decay(0.1, steps=3, gamma=0.5), clock="calls")
    for _epoch in range(10):
        assert opt_b.param_groups[0]["lr"] == pytest.approx(opt_a.param_groups[0]["lr"], rel=1e-12)
        for _ in range(5):
            opt_a.step()
            opt_b.step()
        ref.step()
        s.step()


def test_epoch_lengths_bind_with_steps_per_epoch() -> None:
    """A schedule written in epochs, stepped per update, drops at the epoch boundary."""
    opt = torch.optim.SGD(_net().parameters(), lr=0.1)
    s = Scheduler(opt, lr=lrkit.step_decay(0.1, steps="2ep", gamma=0.1), steps_per_epoch=7)
    lrs = []
    for _ in range(20):
        opt.step()
        s.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[12] == 0.1 and lrs[13] == pytest.approx(0.01)


def test_percent_lengths_bind_with_total_steps() -> None:
    """'%' lengths are resolved against total_steps at construction."""
    opt = torch.optim.SGD(_net().parameters(), lr=0.1)
    s = Scheduler(
        opt, lr=lrkit.warmup(lrkit.cosine(1.0, steps="90%"), steps="10%"), total_steps=200
    )
    assert s.schedules["lr"].duration == 200
    s.step(to=20)
    assert opt.param_groups[0]["lr"] == 1.0


def test_step_to_sets_time_explicitly() -> None:
    """step(to=k) jumps to global step k, in both directions."""
    opt = torch.optim.SGD(_net().parameters(), lr=0.1)
    sched = lrkit.cosine(1.0, steps=1000)
    s = Scheduler(opt, lr=sched)
    s.step(to=700)
    assert s.last_epoch == 700 and opt.param_groups[0]["lr"] == sched(700)
    s.set_step(3)
    assert opt.param_groups[0]["lr"] == sched(3)
    with pytest.raises(ValueError, match=r"to must be an integer >= 0, got to=-1"):
        s.step(to=-1)


def test_block_cache_values_equal_direct_evaluation() -> None:
    """Values read from the vectorised block cache equal s(k) evaluated alone, across blocks."""
    opt = torch.optim.SGD(_net().parameters(), lr=0.1)
    sched = lrkit.warmup(lrkit.cosine(1.0, 1e-3, steps=1500), steps=100)
    s = Scheduler(opt, lr=sched, clock="calls")
    for k in range(1, 1700):
        s.step()
        assert opt.param_groups[0]["lr"] == pytest.approx(sched(k), rel=1e-15, abs=0)


def test_resize_keep_holds_absolute_steps() -> None:
    """resize(policy='keep') leaves every step's value; past the end the final value holds."""
    opt = torch.optim.SGD(_net().parameters(), lr=0.1)
    sched = lrkit.cosine(1.0, 0.01, steps=100)
    s = Scheduler(opt, lr=sched, total_steps=100)
    s.step(to=60)
    s.resize(150, policy="keep")
    for k in (60, 99, 100, 149):
        s.step(to=k)
        assert opt.param_groups[0]["lr"] == sched(k)
    assert s.total_steps == 150


def test_resize_rescale_stretches_the_remaining_part() -> None:
    """resize(policy='rescale') at step a: v(t) = s(a + (t - a) * (T_old - a) / (T_new - a))."""
    opt = torch.optim.SGD(_net().parameters(), lr=0.1)
    sched = lrkit.cosine(1.0, 0.01, steps=100)
    s = Scheduler(opt, lr=sched, total_steps=100, on_resize="rescale")
    s.step(to=60)
    before = opt.param_groups[0]["lr"]
    s.resize(160)
    assert opt.param_groups[0]["lr"] == before  # continuous at the resize step
    for t in (0, 30, 60, 61, 100, 159, 160, 200):
        s.step(to=t)
        expected = sched(t) if t < 60 else sched(60 + (t - 60) * (100 - 60) / (160 - 60))
        assert opt.param_groups[0]["lr"] == pytest.approx(expected, rel=1e-12)


def test_resize_errors() -> None:
    """resize needs a policy and, for 'rescale', a length past the current step."""
    opt = torch.optim.SGD(_net().parameters(), lr=0.1)
    s = Scheduler(opt, lr=lrkit.cosine(1.0, steps=100), total_steps=100)
    with pytest.raises(ValueError, match=r"policy must be 'keep' or 'rescale', got policy=None"):
        s.resize(200)
    s.step(to=50)
    with pytest.raises(ValueError, match=r"total_steps must be > the current step 50"):
        s.resize(40, policy="rescale")
    cyc = Scheduler(
        torch.optim.SGD(_net().parameters(), lr=0.1), lr=lrkit.cyclic(0.1, 1.0, steps_up=10)
    )
    with pytest.raises(ValueError, match=r"needs the old run length"):
        cyc.resize(100, policy="rescale")


# ---------------------------------------------------------------------- a clock that never moves
def test_many_calls_without_updates_warn_once_with_the_fix() -> None:
    """step() called IDLE_CALLS times in a row while the optimizer hook saw no update (as under
    a CUDA graph replay) warns once, naming clock='calls'; one call fewer does not warn."""
    from lrkit.torch._clock import IDLE_CALLS

    opt = torch.optim.SGD(_net().parameters(), lr=0.1)
    s = Scheduler(opt, lr=lrkit.cosine(0.1, steps=5000))
    opt.step()
    s.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(IDLE_CALLS - 1):
            s.step()
    with pytest.warns(
        UserWarning, match=r"called 1000 times in a row.*stayed at step 1.*clock='calls'"
    ):
        s.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(2 * IDLE_CALLS):
            s.step()
    assert s.last_epoch == 1


def test_idle_count_restarts_at_each_update_and_ignores_explicit_time() -> None:
    """Updates now and then (gradient accumulation over 8 micro-batches with step() on each),
    step(to=k), and clock='calls' never warn."""
    from lrkit.torch._clock import IDLE_CALLS

    model = _net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    s = Scheduler(opt, lr=lrkit.cosine(0.1, steps=1000))
    calls = Scheduler(torch.optim.SGD(_net().parameters(), lr=0.1), lr=0.1, clock="calls")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for i in range(2 * IDLE_CALLS):
            if i % 8 == 7:
                opt.step()
            s.step()
            calls.step()
        for k in range(IDLE_CALLS + 1):
            s.step(to=k)
    assert calls.last_epoch == 2 * IDLE_CALLS


@pytest.mark.slow
def test_long_gradscaler_back_off_does_not_warn() -> None:
    """A real GradScaler backing off from 2**127 over large gradients skips 100+ steps in a row
    (near its bound of 128, see lrkit.torch._clock): no warning, and the clock moves once
    updates resume."""
    model = _net()
    opt = torch.optim.SGD(model.parameters(), lr=1e-40)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**127)
    s = Scheduler(opt, lr=lrkit.constant(1e-40))
    run = longest = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(130):
            x, y = _batch()
            loss = torch.nn.functional.mse_loss(model(x), y) * 1e36
            opt.zero_grad()
            scaler.scale(loss).backward()
            before = s.last_epoch
            scaler.step(opt)
            scaler.update()
            s.step()
            run = run + 1 if s.last_epoch == before else 0
            longest = max(longest, run)
    assert longest >= 100 and s.last_epoch > 0


@pytest.mark.slow
def test_compiled_optimizer_step_with_tensor_lr_compiles_once() -> None:
    """With lr a tensor, a torch.compile'd optimizer step compiles once, its step hook moves the
    clock, and it reads each rate the Scheduler writes in place (weights as without compile)."""

    def train(compiled: bool) -> tuple[int, Scheduler, list[torch.Tensor], torch.Tensor]:
        torch.manual_seed(0)
        model = torch.nn.Linear(8, 1)
        lr = torch.tensor(0.01)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        sched = Scheduler(opt, lr=lrkit.cosine(0.01, 1e-4, steps=10))
        graphs = [0]

        def counting(gm: torch.fx.GraphModule, inputs: list) -> object:
            graphs[0] += 1
            return gm.forward

        def opt_step() -> None:
            opt.step()

        step = torch.compile(opt_step, backend=counting) if compiled else opt_step
        x = torch.randn(64, 8)
        for _ in range(10):
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x), x.sum(1, keepdim=True)).backward()
            step()
            sched.step()
        assert opt.param_groups[0]["lr"] is lr
        return graphs[0], sched, [p.detach() for p in model.parameters()], lr

    torch._dynamo.reset()
    graphs, sched, weights, lr = train(compiled=True)
    _, _, eager, _ = train(compiled=False)
    assert graphs == 1 and sched.last_epoch == 10
    assert float(lr) == pytest.approx(lrkit.cosine(0.01, 1e-4, steps=10)(10), rel=1e-6)
    for w, e in zip(weights, eager, strict=True):
        torch.testing.assert_close(w, e, rtol=1e-5, atol=1e-6)
