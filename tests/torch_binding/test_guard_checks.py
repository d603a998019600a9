"""What the guard checks and how: NaN in a BatchNorm buffer (detected, never snapshotted), the
last good snapshot restored on giving up, every=k, snapshots off the device, one host sync per
judgement, the fused gradient norm against clip_grad_norm_'s."""

from __future__ import annotations

import math

import pytest
import torch

from lrkit.torch import Scheduler
from lrkit.torch._guard_probe import grad_norm
from lrkit.torch.guard import DivergenceError, DivergenceGuard

pytestmark = pytest.mark.usefixtures("one_thread")


def _bn_setup(**kw):
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 1)
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    guard = DivergenceGuard(model, opt, **{"snapshot_every": 2, **kw})
    sched = Scheduler(opt, lr=0.05, controllers=[guard.controller])
    guard.attach(sched)
    return model, opt, sched, guard


def _step(model, opt, sched, guard, *, nan_buffer=False, nan_loss=False):
    x = torch.randn(16, 4)
    loss = model(x).pow(2).mean()
    if nan_loss:
        loss = loss * float("nan")
    loss.backward()
    if nan_buffer:
        with torch.no_grad():
            model[1].running_mean[0] = float("nan")
    ok = guard.check(loss)
    if ok:
        opt.step()
        sched.step()
    opt.zero_grad()
    return ok


def test_nan_in_a_batchnorm_buffer_is_detected_and_not_snapshotted():
    """A NaN written into BatchNorm's running mean (the training loss stays finite) is a bad step;
    the model is rolled back to a snapshot whose buffers are all finite."""
    model, opt, sched, guard = _bn_setup()
    for _ in range(3):
        assert _step(model, opt, sched, guard)
    assert not _step(model, opt, sched, guard, nan_buffer=True)
    assert guard.recoveries[0]["reason"] == "non-finite buffer"
    assert all(torch.isfinite(b).all() for b in guard.snapshot.model.values())
    assert torch.isfinite(model[1].running_mean).all()


def test_nan_buffer_at_a_snapshot_step_is_never_saved():
    """With check_buffers=False a NaN buffer is not judged bad, but a snapshot step still checks
    the whole model and refuses to copy it: the old snapshot is kept (a non-finite parameter or
    buffer is rolled back as 'non-finite parameter' there)."""
    model, opt, sched, guard = _bn_setup(check_buffers=False)
    assert _step(model, opt, sched, guard)  # step 0: snapshot
    assert _step(model, opt, sched, guard)  # step 1
    first = guard.snapshot_step
    with torch.no_grad():
        model[2].weight[0, 0] = float("nan")
    assert not _step(model, opt, sched, guard)  # step 2 would snapshot
    assert guard.recoveries[0]["reason"] in ("non-finite parameter", "non-finite loss")
    assert guard.snapshot_step == first
    assert all(torch.isfinite(v).all() for v in guard.snapshot.model.values())


def test_giving_up_restores_the_last_good_snapshot():
    """After max_retries the guard puts the last good snapshot back (weights, optimizer state,
    scheduler clock) before raising DivergenceError, which names it; guard.snapshot is public."""
    model, opt, sched, guard = _bn_setup(max_retries=1)
    for _ in range(5):
        assert _step(model, opt, sched, guard)
    assert not _step(model, opt, sched, guard, nan_loss=True)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
    with pytest.raises(DivergenceError, match=r"restored the last good snapshot, of step 4") as e:
        _step(model, opt, sched, guard, nan_loss=True)
    assert e.value.snapshot_step == guard.snapshot.step == 4
    assert e.value.reason == "non-finite loss"
    for k, v in model.state_dict().items():
        assert torch.equal(v, guard.snapshot.model[k])
    assert sched.last_epoch == 4


def test_every_k_judges_late_and_rolls_back_to_a_judged_snapshot():
    """With every=4 a NaN at the 6th call is judged at the 8th: the guard rolls back to the
    snapshot of the last judged good call and names the bad call's step."""
    model, opt, sched, guard = _bn_setup(every=4, snapshot_every=2)
    oks = [_step(model, opt, sched, guard, nan_loss=(k == 5)) for k in range(8)]
    assert oks == [True] * 7 + [False]
    assert guard.recoveries[0]["step"] == 5 and guard.recoveries[0]["reason"] == "non-finite loss"
    assert guard.recoveries[0]["snapshot_step"] == 3 == sched.last_epoch  # judged at call 4
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_snapshot_device_cpu():
    """snapshot_device='cpu' keeps the snapshot in host memory and restores from it."""
    model, opt, sched, guard = _bn_setup(snapshot_device="cpu")
    for _ in range(3):
        assert _step(model, opt, sched, guard)
    assert all(t.device.type == "cpu" for t in guard.snapshot.model.values())
    assert not _step(model, opt, sched, guard, nan_loss=True)
    for k, v in model.state_dict().items():
        assert torch.equal(v, guard.snapshot.model[k])


def test_one_host_read_per_judgement(monkeypatch):
    """A judged check reads the device once (loss, norm and buffer check together); calls between
    judgements with every=3 read nothing."""
    model, opt, sched, guard = _bn_setup(every=3, snapshot_every=1000)
    reads = []
    for name in ("item", "tolist", "__float__", "__bool__", "__int__", "numpy"):
        orig = getattr(torch.Tensor, name)

        def counted(self, *a, _orig=orig, _name=name, **k):
            reads.append(_name)
            return _orig(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, counted)
    per_call = []
    for _ in range(6):
        x = torch.randn(16, 4)
        loss = model(x).pow(2).mean()
        loss.backward()
        reads.clear()
        assert guard.check(loss)
        per_call.append(len(reads))
        opt.step()
        sched.step()
        opt.zero_grad()
    # the first call also takes the fallback snapshot (no read)
    assert per_call == [0, 0, 1, 0, 0, 1]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_grad_norm_matches_clip_grad_norm(dtype):
    """The fused norm equals torch.nn.utils.clip_grad_norm_(foreach=True)'s total norm."""
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(n, dtype=dtype)) for n in (3, 100, 7)]
    for p in params:
        p.grad = torch.randn_like(p)
    ours = float(grad_norm(params))
    ref = float(torch.nn.utils.clip_grad_norm_(params, math.inf, foreach=True))
    assert ours == pytest.approx(ref, rel=1e-2 if dtype == torch.bfloat16 else 1e-6)


def test_grad_norm_flags_nan_and_inf():
    """A NaN or inf anywhere in the gradients makes the norm non-finite; no gradient: None."""
    p, q = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2))
    assert grad_norm([p, q]) is None
    p.grad, q.grad = torch.ones(3), torch.tensor([1.0, float("nan")])
    assert math.isnan(float(grad_norm([p, q])))
    q.grad = torch.tensor([1.0, float("inf")])
    assert not math.isfinite(float(grad_norm([p, q])))
