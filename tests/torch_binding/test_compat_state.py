"""lrkit.torch.compat: ReduceLROnPlateau against torch on random metrics, the plateau inside
containers (a deliberate difference), and exact resume from state_dict for every class."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from tests.torch_binding.test_compat import CASES, assert_same, make_opt, values
from torch.optim import lr_scheduler as T

from lrkit.torch import compat as C

PLATEAU_ARGS = st.fixed_dictionaries(
    {
        "mode": st.sampled_from(["min", "max"]),
        "factor": st.sampled_from([0.1, 0.5, 0.8]),
        "patience": st.integers(0, 3),
        "threshold": st.sampled_from([1e-4, 0.05]),
        "threshold_mode": st.sampled_from(["rel", "abs"]),
        "cooldown": st.integers(0, 2),
        "min_lr": st.sampled_from([0, 1e-3, [1e-4, 0.0, 0.05]]),
        "eps": st.sampled_from([1e-8, 1e-3]),
    }
)


@given(args=PLATEAU_ARGS, metrics=st.lists(st.floats(0.0, 10.0), min_size=1, max_size=40))
def test_plateau_same_decisions_and_lrs_as_torch(args, metrics) -> None:
    """ReduceLROnPlateau: same reductions, counters and per-group lrs as torch on any metrics."""
    mo, to = make_opt(), make_opt()
    ms, ts = C.ReduceLROnPlateau(mo, **args), T.ReduceLROnPlateau(to, **args)
    for x in metrics:
        mo.step(), to.step()
        ms.step(x)
        ts.step(x)
        np.testing.assert_allclose(values(mo)["lr"], values(to)["lr"], rtol=1e-9, atol=0)
        assert ms.num_bad_epochs == ts.num_bad_epochs
        assert ms.cooldown_counter == ts.cooldown_counter
        assert ms.best == ts.best


def test_plateau_inside_sequential_and_chained() -> None:
    """Deliberate difference: a plateau works inside SequentialLR (its segment) and ChainedScheduler."""
    o = make_opt()
    plateau = C.ReduceLROnPlateau(o, factor=0.5, patience=0)
    s = C.SequentialLR(o, [C.LinearLR(o, 0.5, total_iters=4), plateau], milestones=[4])
    lrs = []
    for _ in range(8):
        o.step()
        s.step(1.0)  # a flat metric: every evaluation after the first is bad
        lrs.append(o.param_groups[0]["lr"])
    # warmup (metric ignored), then the plateau's segment: base, base/2, base/4, ...
    np.testing.assert_allclose(lrs[:3], [0.1 * (0.5 + 0.5 * k / 4) for k in (1, 2, 3)], rtol=1e-12)
    np.testing.assert_allclose(lrs[3:], [0.1 * 0.5**k for k in range(5)], rtol=1e-12)

    o = make_opt()
    chain = C.ChainedScheduler(
        [C.ExponentialLR(o, 0.9), C.ReduceLROnPlateau(o, factor=0.5, patience=1)]
    )
    got = []
    for _ in range(6):
        o.step()
        chain.step(2.0)
        got.append(o.param_groups[2]["lr"])
    # bad evaluations 1..5; torch's rule (bad > patience=1) fires at steps 3 and 5
    want = [0.9**t * 0.5 ** ((t >= 3) + (t >= 5)) for t in range(1, 7)]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def _roundtrip(state: dict) -> dict:
    """Through torch.save / torch.load(weights_only=True), as a checkpoint does."""
    import io

    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


@pytest.mark.parametrize(
    ("factory", "steps", "kind"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_resume_is_exact(factory, steps: int, kind: str) -> None:
    """Save optimizer + scheduler at K, load into fresh ones: same values as uninterrupted."""
    k = steps // 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt = make_opt(kind)
        s = factory(C, opt)
        full = [values(opt)]
        for i in range(steps):
            opt.step()
            s.step()
            full.append(values(opt))
            if i + 1 == k:
                saved = (_roundtrip(opt.state_dict()), _roundtrip(s.state_dict()))
        opt2 = make_opt(kind)
        s2 = factory(C, opt2)
        opt2.load_state_dict(saved[0])
        s2.load_state_dict(saved[1])
        got = [values(opt2)]
        for _ in range(steps - k):
            opt2.step()
            s2.step()
            got.append(values(opt2))
    assert_same(got, full[k:])


def test_state_is_json() -> None:
    """A compat scheduler's state is plain JSON data (no tensors, no callables)."""
    o = make_opt()
    s = C.SequentialLR(o, [C.LinearLR(o, 0.2, total_iters=3), C.ReduceLROnPlateau(o)], [3])
    json.dumps(s.state_dict())


@pytest.mark.parametrize("k", [2, 6])
def test_resume_sequential_with_plateau(k: int) -> None:
    """SequentialLR containing ReduceLROnPlateau resumes exactly, before or inside the plateau."""
    metrics = [3.0, 2.0, 2.5, 2.5, 2.4, 2.6, 2.7, 1.0, 1.5, 1.6, 1.7, 1.8]

    def build(o):
        p = C.ReduceLROnPlateau(o, factor=0.5, patience=1, min_lr=[0.0, 0.01, 0.0])
        return C.SequentialLR(o, [C.CosineAnnealingLR(o, T_max=4), p], milestones=[4])

    o = make_opt()
    s = build(o)
    full = []
    for i, x in enumerate(metrics):
        o.step()
        s.step(x)
        full.append(values(o))
        if i + 1 == k:
            saved = (_roundtrip(o.state_dict()), _roundtrip(s.state_dict()))
    o2 = make_opt()
    s2 = build(o2)
    o2.load_state_dict(saved[0])
    s2.load_state_dict(saved[1])
    got = []
    for x in metrics[k:]:
        o2.step()
        s2.step(x)
        got.append(values(o2))
    assert_same(got, full[k:])
    assert len({round(v["lr"][0], 12) for v in full[4:]}) > 2  # the plateau did reduce


def test_lambda_state_saves_callable_objects() -> None:
    """LambdaLR saves a callable object's __dict__ (not functions), as torch; load restores it."""

    class Warm:
        def __init__(self, n: int) -> None:
            self.n = n

        def __call__(self, t: int) -> float:
            return min(1.0, (t + 1) / self.n)

    o = make_opt()
    s = C.LambdaLR(o, [Warm(4), lambda t: 1.0, Warm(2)])
    state = s.state_dict()
    assert state["lr_lambdas"] == [{"n": 4}, None, {"n": 2}]
    o2 = make_opt()
    s2 = C.LambdaLR(o2, [Warm(99), lambda t: 1.0, Warm(99)])
    s2.load_state_dict(state)
    assert s2.lr_lambdas[0].n == 4


@pytest.mark.parametrize(
    "length", [{"total_steps": 12}, {"epochs": 3, "steps_per_epoch": 4}], ids=["total", "epochs"]
)
def test_onecycle_keeps_total_steps_through_resume(length: dict) -> None:
    """OneCycleLR: total_steps survives state_dict/load_state_dict and stepping matches torch."""
    k, steps = 5, 11  # torch raises past total_steps and lrkit holds at t=12: stop before
    ours_o, theirs_o = make_opt(), make_opt()
    s = C.OneCycleLR(ours_o, max_lr=1.0, **length)
    ts = T.OneCycleLR(theirs_o, max_lr=1.0, **length)
    want = [values(theirs_o)]
    for _ in range(steps):
        theirs_o.step()
        ts.step()
        want.append(values(theirs_o))
    for _ in range(k):
        ours_o.step()
        s.step()
    state = _roundtrip(s.state_dict())
    assert state["total_steps"] == ts.total_steps == 12
    o2 = make_opt()
    s2 = C.OneCycleLR(o2, max_lr=1.0, **length)
    o2.load_state_dict(_roundtrip(ours_o.state_dict()))
    s2.load_state_dict(state)
    assert hasattr(s2, "total_steps") and s2.total_steps == 12
    assert s2.state_dict()["total_steps"] == 12
    got = [values(o2)]
    for _ in range(steps - k):
        o2.step()
        s2.step()
        got.append(values(o2))
    assert_same(got, want[k:])


def test_onecycle_other_length_loads_the_checkpoints_settings() -> None:
    """OneCycleLR loading a checkpoint of another run length takes its total_steps, as torch's
    ``__dict__`` update does, and then gives the checkpoint's values."""
    o = make_opt()
    s = C.OneCycleLR(o, max_lr=1.0, total_steps=12)
    for _ in range(3):
        o.step()
        s.step()
    o2 = make_opt()
    s2 = C.OneCycleLR(o2, max_lr=1.0, total_steps=20)
    s2.load_state_dict(_roundtrip(s.state_dict()))
    assert s2.total_steps == 12 and s2.last_epoch == 3
    assert values(o2) == values(o)
    for _ in range(4):
        o.step(), s.step(), o2.step(), s2.step()
        assert values(o2) == values(o)
