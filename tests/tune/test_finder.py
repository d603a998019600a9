"""The range test on real training (small MLP on digits): restore, optimizers, AMP, divergence."""

from __future__ import annotations

import functools
import random

import numpy as np
import pytest
import torch

import lrkit
from lrkit.tune import probe_rule
from lrkit.tune.finder import FinderResult, RangeTestOptions, find_lr

pytestmark = pytest.mark.usefixtures("one_thread")


def _setup(task, opt_cls=torch.optim.SGD, warm_steps=0, **kw):
    torch.manual_seed(0)
    model = task.model()
    opt = opt_cls(model.parameters(), lr=0.01, **kw)
    batches = task.batches(0)
    for _ in range(warm_steps):  # give the optimizer real state (momentum, Adam moments)
        x, y = next(batches)
        opt.zero_grad()
        task.loss(model(x), y).backward()
        opt.step()
    return model, opt


def _state(model, opt, scaler=None):
    """Everything find_lr must restore, as plain copies."""
    return {
        "params": {k: v.clone() for k, v in model.state_dict().items()},
        "grads": [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        "modes": [m.training for m in model.modules()],
        "opt": {
            k: {n: (t.clone() if torch.is_tensor(t) else t) for n, t in s.items()}
            for k, s in opt.state_dict()["state"].items()
        },
        "groups": [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups],
        "scaler": None if scaler is None else scaler.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "np_rng": np.random.get_state()[1].copy(),
        "py_rng": random.getstate(),
    }


def _assert_same(a, b):
    assert a["params"].keys() == b["params"].keys()
    for k in a["params"]:
        assert torch.equal(a["params"][k], b["params"][k]), k
    for ga, gb in zip(a["grads"], b["grads"], strict=True):
        assert (ga is None and gb is None) or torch.equal(ga, gb)
    assert a["modes"] == b["modes"]
    assert a["opt"].keys() == b["opt"].keys()
    for k in a["opt"]:
        for n in a["opt"][k]:
            x, y = a["opt"][k][n], b["opt"][k][n]
            assert torch.equal(x, y) if torch.is_tensor(x) else x == y
    assert a["groups"] == b["groups"]
    assert a["scaler"] == b["scaler"]
    assert torch.equal(a["torch_rng"], b["torch_rng"])
    assert np.array_equal(a["np_rng"], b["np_rng"])
    assert a["py_rng"] == b["py_rng"]


@pytest.mark.parametrize(
    ("opt_cls", "kw"),
    [
        (torch.optim.SGD, {"momentum": 0.9}),
        (torch.optim.Adam, {}),
        (torch.optim.AdamW, {"weight_decay": 0.01}),
    ],
)
def test_restores_bitwise_after_test(task, opt_cls, kw):
    """After a range test with SGD/Adam/AdamW (with existing state), everything is bitwise as before."""
    model, opt = _setup(task, opt_cls, warm_steps=3, **kw)
    np.random.seed(1)
    random.seed(2)
    before = _state(model, opt)
    res = find_lr(model, opt, task.loss, task.batches(1), start=1e-5, end=10.0, steps=40)
    _assert_same(before, _state(model, opt))
    assert len(res.rates) == len(res.losses) == len(res.smoothed) >= 10
    assert res.rates[0] == pytest.approx(1e-5)
    assert np.all(np.diff(np.log(res.rates)) == pytest.approx(np.log(1e6) / 39))


def test_model_trains_the_same_after_restore(task):
    """Training after find_lr gives exactly the losses of training without it."""

    def train(model, opt):
        out = []
        for x, y in [next(b) for b in [task.batches(5)] for _ in range(5)]:
            opt.zero_grad()
            loss = task.loss(model(x), y)
            loss.backward()
            opt.step()
            out.append(loss.item())
        return out

    model, opt = _setup(task, torch.optim.Adam, warm_steps=2)
    ref = train(model, opt)
    model, opt = _setup(task, torch.optim.Adam, warm_steps=2)
    find_lr(model, opt, task.loss, task.batches(0), steps=20)
    assert train(model, opt) == ref


class _Boom(Exception):
    pass


@pytest.mark.parametrize("exc", [_Boom, KeyboardInterrupt])
def test_restores_after_exception_mid_test(task, exc):
    """An exception (or KeyboardInterrupt) raised by the loss mid-test propagates; state is restored."""
    model, opt = _setup(task, torch.optim.SGD, warm_steps=2, momentum=0.9)
    model.eval()  # a non-default mode must come back too
    next(model.parameters()).grad = torch.ones_like(next(model.parameters()))
    before = _state(model, opt)
    calls = []

    def loss(out, y):
        calls.append(1)
        if len(calls) == 12:
            raise exc("injected")
        return task.loss(out, y)

    with pytest.raises(exc, match="injected"):
        find_lr(model, opt, loss, task.batches(0), steps=30)
    assert len(calls) == 12
    _assert_same(before, _state(model, opt))


def test_stops_early_on_divergence(task):
    """With SGD up to rate 1e3 the loss explodes and the test stops before the last step."""
    model, opt = _setup(task, torch.optim.SGD, momentum=0.9)
    before = _state(model, opt)
    res = find_lr(model, opt, task.loss, task.batches(0), start=1e-4, end=1e3, steps=80)
    assert res.diverged and len(res.rates) < 80
    _assert_same(before, _state(model, opt))
    assert res.rates[0] <= res.suggestion < res.rates[-1]


def _counted(task, seen):
    """The task's batches, appending 1 to ``seen`` for each one read."""
    for b in task.batches(0):
        seen.append(1)
        yield b


def test_gradient_accumulation_counts_batches(task):
    """accumulation_steps=3 uses three batches per update, and restores state."""
    model, opt = _setup(task, torch.optim.AdamW)
    seen: list[int] = []
    data = functools.partial(_counted, task, seen)
    before = _state(model, opt)
    res = find_lr(
        model, opt, task.loss, data(), steps=10, end=1e-2, accumulation_steps=3, rule="minimum/10"
    )
    assert len(res.rates) == 10 and len(seen) == 30 and res.updates == 10
    _assert_same(before, _state(model, opt))


def test_probes_run_below_the_edge_and_count_their_updates(task):
    """The probe rule: PROBES coarse probes a factor 4 apart below the ramp's edge, two refining
    probes either side of the best; every probe is an update count of probe_steps (plus 4
    held-out batches read once), the suggestion is the probe with the lowest held-out loss, and
    the model and optimizer come back bitwise."""
    model, opt = _setup(task, torch.optim.SGD)
    seen: list[int] = []
    data = functools.partial(_counted, task, seen)
    before = _state(model, opt)
    res = find_lr(model, opt, task.loss, data(), steps=30, probe_steps=8)
    n = probe_rule.PROBES + 2
    assert res.method == "probe" and len(res.probe_rates) == n
    assert res.updates == len(res.rates) + n * 8
    assert len(seen) == 4 + res.updates
    coarse = probe_rule.probe_rates(float(res.rates[-1]))
    assert set(coarse) <= set(res.probe_rates.tolist())
    assert res.suggestion == res.probe_rates[int(np.argmin(res.probe_losses))]
    assert res.alternatives["probe"] == res.suggestion
    _assert_same(before, _state(model, opt))
    back = FinderResult.from_dict(res.to_dict())
    assert np.array_equal(back.probe_rates, res.probe_rates) and back.updates == res.updates


def test_mixed_precision_with_grad_scaler(task):
    """bfloat16 autocast with a GradScaler runs, gives finite losses, and restores the scaler."""
    model, opt = _setup(task, torch.optim.AdamW)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    before = _state(model, opt, scaler)
    res = find_lr(
        model,
        opt,
        task.loss,
        task.batches(0),
        steps=30,
        scaler=scaler,
        autocast_dtype=torch.bfloat16,
    )
    assert np.all(np.isfinite(res.losses[:10]))
    _assert_same(before, _state(model, opt, scaler))


def test_linear_mode_and_group_ratios(task):
    """mode='linear' spaces rates evenly; groups keep their lr ratio during the test."""
    torch.manual_seed(0)
    model = task.model()
    first, last = next(iter(model.children())), list(model.children())[-1]
    opt = torch.optim.SGD(
        [{"params": first.parameters(), "lr": 0.1}, {"params": last.parameters(), "lr": 0.01}]
    )
    seen = []

    def loss(out, y):
        seen.append([g["lr"] for g in opt.param_groups])
        return task.loss(out, y)

    res = find_lr(model, opt, loss, task.batches(0), start=1e-3, end=1e-2, steps=10, mode="linear")
    assert np.allclose(np.diff(res.rates), 1e-3)
    assert all(b == pytest.approx(a / 10) for a, b in seen)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.01]


def test_result_helpers_and_round_trip(task, tmp_path):
    """The suggestion feeds schedules; to_dict/from_dict round-trips; plot writes a PNG."""
    model, opt = _setup(task)
    res = find_lr(model, opt, task.loss, task.batches(0), steps=40)
    assert res.one_cycle(steps=100)(29) == pytest.approx(res.suggestion)
    assert res.cosine(steps=100)(0) == pytest.approx(res.suggestion)
    assert res.warmup_cosine(100).duration == 100
    wsd = res.wsd(100)
    assert wsd(50) == res.suggestion and wsd.duration == 100
    back = FinderResult.from_dict(res.to_dict())
    assert back.suggestion == res.suggestion and np.array_equal(back.rates, res.rates)
    assert isinstance(res.one_cycle(steps=10), lrkit.Schedule)
    res.plot(tmp_path / "f.png")
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"start": 0.0}, "start must be a finite number > 0"),
        ({"start": 1.0, "end": 0.5}, "start must be < end"),
        ({"steps": 2}, "steps must be an integer >= 3"),
        ({"mode": "cos"}, "mode must be 'exp' or 'linear'"),
        ({"accumulation_steps": 0}, "accumulation_steps must be an integer >= 1"),
        ({"diverge_factor": 1.0}, "diverge_factor must be > 1"),
        ({"smooth": 1.0}, "beta must be a number in"),
        ({"rule": "median"}, "rule must be one of"),
        ({"probe_steps": 4}, "probe_steps must be an integer >= 5"),
    ],
)
def test_argument_errors(task, kw, match):
    """Bad arguments raise ValueError naming the argument, before any training."""
    model, opt = _setup(task)
    with pytest.raises(ValueError, match=match):
        find_lr(model, opt, task.loss, task.batches(0), **kw)


def test_settings_as_one_options_record(task):
    """find_lr takes its settings as keywords or as one RangeTestOptions (same result), not
    both; an unknown keyword is a TypeError listing the known ones."""
    model, opt = _setup(task)
    opts = RangeTestOptions(steps=20, rule="valley")
    a = find_lr(model, opt, task.loss, task.batches(0), opts)
    b = find_lr(model, opt, task.loss, task.batches(0), steps=20, rule="valley")
    assert a.suggestion == b.suggestion and a.method == "valley"
    with pytest.raises(TypeError, match="not both"):
        find_lr(model, opt, task.loss, task.batches(0), opts, steps=20)
    with pytest.raises(TypeError, match=r"unknown setting 'stepz'; known: .*steps"):
        find_lr(model, opt, task.loss, task.batches(0), stepz=20)


def test_bad_batch_type(task):
    """A batch that is not an (inputs, targets) pair is a TypeError telling to pass forward=."""
    model, opt = _setup(task)
    with pytest.raises(TypeError, match="forward=fn"):
        find_lr(model, opt, task.loss, [torch.zeros(2, 64)], steps=5)


def test_used_up_generator_is_reported(task):
    """A finite generator that runs out mid-test raises a clear ValueError (and restores state)."""
    model, opt = _setup(task)
    before = _state(model, opt)
    gen = (b for _, b in zip(range(5), task.batches(0), strict=False))
    with pytest.raises(ValueError, match="used-up generator"):
        find_lr(model, opt, task.loss, gen, steps=20)
    _assert_same(before, _state(model, opt))
