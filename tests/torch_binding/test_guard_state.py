"""DivergenceGuard.state_dict/load_state_dict: a run stopped at any step and resumed from its last
checkpoint (fresh objects) decides as the uninterrupted run, bitwise, through a NaN, a x100 spike
and a NaN in a BatchNorm buffer; a refused load changes nothing; other settings raise."""

from __future__ import annotations

import copy
import io
import json
import math

import pytest
import torch

import lrkit
from lrkit.controllers import Plateau
from lrkit.torch import Scheduler
from lrkit.torch.guard import DivergenceGuard

pytestmark = pytest.mark.usefixtures("one_thread")

ITERS = 60
FAULTS = {17: "nan", 29: "spike", 41: "buffer"}  # by loop iteration (restored on resume)


def _build(every=1, **kw):
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 16), torch.nn.BatchNorm1d(16), torch.nn.Tanh(), torch.nn.Linear(16, 1)
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    guard = DivergenceGuard(
        model, opt, snapshot_every=5, rewarm_steps=4, min_history=5, every=every, **kw
    )
    plateau = Plateau(factor=0.5, patience=3)
    sched = Scheduler(
        opt,
        lr=lrkit.warmup(lrkit.cosine(2e-2, 1e-3, steps=50), steps=5),
        controllers=[plateau, guard.controller],
    )
    guard.attach(sched)
    return model, opt, sched, guard


def _checkpoint(model, opt, sched, guard, it, log):
    """A checkpoint as a user writes it, through torch.save(weights_only=True) bytes."""
    buf = io.BytesIO()
    state = {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "guard": guard.state_dict(),
        "it": it,
        "log": log,
    }
    torch.save(state, buf)
    return buf.getvalue()


def _train(every=1, resume=None, keep=None):
    """Run ITERS loop iterations (data and faults keyed by iteration); returns the final state.

    ``resume``: checkpoint bytes to start from; ``keep``: a dict filled with the checkpoint bytes
    written at the end of each iteration."""
    model, opt, sched, guard = _build(every)
    it, log = 0, []
    if resume is not None:
        state = torch.load(io.BytesIO(resume), weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        guard.load_state_dict(state["guard"])
        it, log = state["it"], state["log"]
    w = torch.Generator().manual_seed(7)
    true_w = torch.randn(4, 1, generator=w)
    while it < ITERS:
        gen = torch.Generator().manual_seed(1000 + it)
        x = torch.randn(32, 4, generator=gen)
        y = torch.tanh(x @ true_w)
        loss = torch.nn.functional.mse_loss(model(x), y)
        fault = FAULTS.get(it)
        if fault == "nan":
            loss = loss * float("nan")
        elif fault == "spike":
            loss = loss * 100
        loss.backward()
        if fault == "buffer":  # after backward: BatchNorm saved the buffer for it
            with torch.no_grad():
                model[1].running_var[3] = float("nan")
        ok = guard.check(loss)
        if ok:
            opt.step()
            sched.step(metric=loss.item() if math.isfinite(loss.item()) else None)
        opt.zero_grad()
        log.append([it, ok, sched.last_epoch, opt.param_groups[0]["lr"]])
        it += 1
        if keep is not None:
            keep[it] = _checkpoint(model, opt, sched, guard, it, log)
    return {
        "model": {k: v.clone() for k, v in model.state_dict().items()},
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "recoveries": guard.recoveries,
        "log": log,
    }


def _same(a, b):
    assert a["log"] == b["log"]
    assert json.dumps(a["recoveries"]) == json.dumps(b["recoveries"])  # NaN values compare
    assert a["scheduler"] == b["scheduler"]
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    for pid, s in a["optimizer"]["state"].items():
        for name, t in s.items():
            assert torch.equal(t, b["optimizer"]["state"][pid][name]), (pid, name)


@pytest.mark.slow
@pytest.mark.parametrize("every", [1, 3])
def test_resume_from_any_iteration_is_bitwise_equal(every):
    """Stopping after any iteration and resuming from that checkpoint into fresh objects gives the
    uninterrupted run's weights, optimizer state, lrs and guard decisions, bitwise (faults
    included: a NaN loss, a x100 spike, a NaN BatchNorm buffer)."""
    keep: dict[int, bytes] = {}
    ref = _train(every, keep=keep)
    reasons = [r["reason"] for r in ref["recoveries"]]
    assert reasons == ["non-finite loss", "loss spike", "non-finite buffer"]
    for stop in range(1, ITERS, 4 if every == 1 else 5):
        _same(_train(every, resume=keep[stop]), ref)


def test_state_is_json_but_the_snapshot():
    """All of the state but the snapshot's tensors goes through json; a fresh guard and its
    checkpoint round-trip to an equal state."""
    model, opt, sched, guard = _build()
    for _ in range(7):
        loss = model(torch.randn(8, 4)).pow(2).mean()
        loss.backward()
        assert guard.check(loss)
        opt.step()
        sched.step()
        opt.zero_grad()
    state = guard.state_dict()
    plain = {k: v for k, v in state.items() if k != "snapshot"}
    assert json.loads(json.dumps(plain)) == plain
    assert state["format"] == "lrkit.torch.DivergenceGuard/1"
    assert state["snapshot"]["step"] == 5 and len(state["losses"]) == 7
    _, _, s2, g2 = _build()
    s2.load_state_dict(sched.state_dict())
    g2.load_state_dict(state)
    again = g2.state_dict()
    assert {k: v for k, v in again.items() if k != "snapshot"} == plain
    for k, v in state["snapshot"]["model"].items():
        assert torch.equal(v, again["snapshot"]["model"][k])


def _trained_guard():
    model, opt, sched, guard = _build()
    for _ in range(12):
        loss = model(torch.randn(8, 4)).pow(2).mean()
        loss.backward()
        guard.check(loss)
        opt.step()
        sched.step()
        opt.zero_grad()
    return model, opt, sched, guard


def _corrupt(state, path, value):
    bad = copy.deepcopy(state)
    d = bad
    for p in path[:-1]:
        d = d[p]
    d[path[-1]] = value
    return bad


@pytest.mark.parametrize(
    ("path", "value", "match"),
    [
        (("format",), "other/1", "not a state saved by DivergenceGuard"),
        (("calls",), -1, "calls must be an integer >= 0"),
        (("calls",), 1.7, "calls must be an integer"),
        (("losses",), [1.0, float("nan")], r"losses\[1\] must be finite"),
        (("losses",), [0.1] * 51, r"len\(losses\) must be <= window=50"),
        (("pending",), [[3, 0.1, 0.2]], r"len\(pending\) must be < every=1"),
        (("recoveries",), [{"step": 3}], r"recoveries\[0\] has keys"),
        (("controller", "recoveries"), 2, "the number of recoveries, 0"),
        (("controller", "recovery_step"), 3, "None exactly when there is no recovery"),
        (("settings", "window"), 0, "bad settings in the checkpoint"),
        (("settings", "max_retries"), -1, "bad settings in the checkpoint"),
        (("settings", "bogus"), 1, "unknown"),
        (("snapshot", "step"), -2, "snapshot\\['step'\\] must be an integer >= 0"),
        (("snapshot", "model", "0.weight"), torch.zeros(3, 3), "of shape"),
        (("snapshot", "model", "1.running_var"), torch.full((16,), float("nan")), "finite"),
        (("snapshot", "optimizer", "param_groups"), [], "param_groups"),
        (("snapshot", "scheduler", "step"), 99, "the snapshot's step"),
        (("snapshot", "lrs"), [0.1], "without a scheduler"),
    ],
)
def test_a_refused_load_changes_nothing(path, value, match):
    """A bad key, type, range, non-finite value or a snapshot that does not fit this model is
    refused with an error naming it, and the guard's state is exactly as before."""
    _, _, _, guard = _trained_guard()
    good = guard.state_dict()
    other = _trained_guard()[3].state_dict()  # same run again: an equal state
    bad = _corrupt(good, path, value)
    before = guard.state_dict()
    with pytest.raises((ValueError, TypeError), match=match):
        guard.load_state_dict(bad)
    after = guard.state_dict()
    assert {k: v for k, v in after.items() if k != "snapshot"} == {
        k: v for k, v in before.items() if k != "snapshot"
    }
    assert after["snapshot"]["model"] is before["snapshot"]["model"]
    assert other["calls"] == good["calls"]


def test_other_settings_raise_unless_not_strict():
    """A checkpoint made with other settings raises naming them; strict=False warns, keeps this
    guard's settings and takes the counters and windows."""
    _, _, _, guard = _trained_guard()
    state = guard.state_dict()
    _, _, _, g2 = _build(spike_factor=6.0)
    with pytest.raises(ValueError, match=r"spike_factor: checkpoint 21\.0, here 6\.0"):
        g2.load_state_dict(state)
    assert g2.state_dict()["calls"] == 0
    with pytest.warns(UserWarning, match="keeping this guard's"):
        g2.load_state_dict(state, strict=False)
    assert g2.spike_factor == 6.0 and g2.state_dict()["calls"] == state["calls"]
    assert g2.state_dict()["settings"]["spike_factor"] == 6.0


def test_loading_a_scheduler_snapshot_needs_the_scheduler_attached():
    """A guard without its scheduler refuses a state whose snapshot holds a scheduler state."""
    _, _, _, guard = _trained_guard()
    state = guard.state_dict()
    model, opt, _, _ = _build()
    bare = DivergenceGuard(model, opt, snapshot_every=5, rewarm_steps=4, min_history=5)
    with pytest.raises(ValueError, match="attach the scheduler before loading"):
        bare.load_state_dict(state)
