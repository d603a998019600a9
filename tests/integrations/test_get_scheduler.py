"""lrkit.torch.get_scheduler against the installed transformers' get_scheduler, name by name."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
hf = pytest.importorskip("transformers.optimization")

from lrkit.torch import get_scheduler  # noqa: E402
from lrkit.torch._get_scheduler import TRANSFORMERS_NAMES, transformers_schedule  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:Both num_training_steps and num_stable_steps")

rates = st.floats(min_value=1e-6, max_value=1.0)
warmups = st.integers(min_value=0, max_value=40)
trainings = st.integers(min_value=0, max_value=240)
cycles = st.floats(min_value=0.05, max_value=4.0)
ratios = st.floats(min_value=0.0, max_value=0.9)


@st.composite
def hf_args(draw: Any, name: str) -> tuple[int, int, dict[str, Any]]:
    """(num_warmup_steps, num_training_steps, scheduler_specific_kwargs) valid for ``name``."""
    w, n = draw(warmups), draw(trainings)
    kw: dict[str, Any] = {}
    if name == "cosine":
        kw = draw(st.fixed_dictionaries({}, optional={"num_cycles": cycles}))
    elif name == "cosine_with_restarts":
        kw = draw(st.fixed_dictionaries({}, optional={"num_cycles": st.integers(1, 7)}))
    elif name == "polynomial":
        n = draw(st.integers(min_value=w + 1, max_value=w + 240))
        kw = draw(
            st.fixed_dictionaries(
                {}, optional={"power": st.floats(0.1, 4.0), "lr_end": st.floats(0.0, 1e-7)}
            )
        )
    elif name == "inverse_sqrt":
        kw = draw(st.fixed_dictionaries({}, optional={"timescale": st.integers(1, 500)}))
    elif name in ("cosine_with_min_lr", "cosine_warmup_with_min_lr"):
        kw = {"num_cycles": draw(cycles), "min_lr_rate": draw(ratios)}
        if name == "cosine_warmup_with_min_lr" and draw(st.booleans()):
            kw["warmup_lr_rate"] = draw(ratios)
    elif name == "warmup_stable_decay":
        dd = draw(st.integers(0, 100))
        s = draw(st.integers(0, 100))
        n = w + s + dd + draw(st.integers(0, 5)) * draw(st.booleans())
        kw = {
            "num_decay_steps": dd,
            "warmup_type": draw(st.sampled_from(["linear", "cosine", "1-sqrt"])),
            "decay_type": draw(st.sampled_from(["linear", "cosine", "1-sqrt"])),
            "min_lr_ratio": draw(ratios),
            "num_cycles": draw(cycles),
        }
        if draw(st.booleans()):
            kw["num_stable_steps"] = s
    return w, n, kw


def _hf_values(name: str, lr: float, w: int, n: int, kw: dict[str, Any], steps: int) -> np.ndarray:
    """transformers' rates for steps 0..steps-1: base * its LambdaLR's lambda (not stepped)."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    sched = hf.get_scheduler(name, opt, w, n, dict(kw))
    fn = sched.lr_lambdas[0]
    return np.array([lr * fn(t) for t in range(steps)])


def _restart_steps(w: int, n: int, c: int, steps: int) -> set[int]:
    """Steps where cosine_with_restarts restarts in exact arithmetic (c * (t - W) / D whole)."""
    d = max(1, n - w)
    out = set()
    for t in range(w, steps):
        x = Fraction(c * (t - w), d)
        if x.denominator == 1 and 0 < x < c:
            out.add(t)
    return out


LAMBDA_NAMES = [n for n in TRANSFORMERS_NAMES if n not in ("reduce_lr_on_plateau", "greedy")]


@pytest.mark.parametrize("name", LAMBDA_NAMES)
@given(data=st.data(), lr=rates)
def test_values_equal_transformers_past_the_end(name: str, data: Any, lr: float) -> None:
    """Every transformers name, random arguments: lrkit's schedule gives transformers' rate at
    every step to 1e-12 of the peak, 2 * num_training_steps + 50 steps (past the end)."""
    w, n, kw = data.draw(hf_args(name))
    steps = 2 * n + w + 50
    want = _hf_values(name, lr, w, n, kw, steps)
    s = transformers_schedule(name, lr, num_warmup_steps=w, num_training_steps=n, **kw)
    got = s(np.arange(steps))
    bad = np.flatnonzero(~np.isclose(got, want, rtol=1e-12, atol=1e-12 * lr))
    if name == "cosine_with_restarts":
        # transformers computes (c * ((t - W) / D)) % 1 in floats: where that lands an ulp
        # below a whole number it misses the restart (rate ~0); lrkit restarts (rate = lr)
        boundary = _restart_steps(w, n, kw.get("num_cycles", 1), steps)
        assert set(bad.tolist()) <= boundary
        assert all(got[t] == lr for t in bad)
    else:
        assert bad.size == 0, (s, bad[:5], got[bad[:5]], want[bad[:5]])


def test_get_scheduler_steps_like_transformers_with_several_groups() -> None:
    """get_scheduler drives each group from its own base rate, step by step as transformers'
    LambdaLR (polynomial: the optimizer's default lr enters the formula, as in transformers)."""
    for name, kw in [("polynomial", {"lr_end": 1e-5, "power": 2.0}), ("cosine", {})]:
        opts = []
        for _ in range(2):
            a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
            opts.append(torch.optim.AdamW([{"params": [a]}, {"params": [b], "lr": 3e-4}], lr=1e-3))
        ours = get_scheduler(name, opts[0], 5, 40, kw)
        theirs = hf.get_scheduler(name, opts[1], 5, 40, dict(kw))
        for _ in range(60):
            got = [g["lr"] for g in opts[0].param_groups]
            want = [g["lr"] for g in opts[1].param_groups]
            assert got == pytest.approx(want, rel=1e-12, abs=1e-18)
            for o in opts:
                o.step()
            ours.step()
            theirs.step()


def test_reduce_lr_on_plateau_and_specs_and_errors() -> None:
    """reduce_lr_on_plateau gives the torch drop-in; any other text is an lrkit spec bound with
    num_training_steps; greedy, unknown arguments and missing ones raise, naming them."""
    from lrkit.torch import compat

    def opt() -> torch.optim.Optimizer:
        return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)

    s = get_scheduler("reduce_lr_on_plateau", opt(), scheduler_specific_kwargs={"patience": 2})
    assert isinstance(s, compat.ReduceLROnPlateau) and s.patience == 2
    t = get_scheduler("warmup(cosine(0.1, steps='90%'), steps='10%')", opt(), num_training_steps=50)
    assert str(t.schedules["lr"]) == "warmup(cosine(0.1, 0.0, steps=45), steps=5)"
    with pytest.raises(ValueError, match=r"name='greedy' is transformers' adaptive GreedyLR"):
        get_scheduler("greedy", opt())
    with pytest.raises(TypeError, match=r"cosine does not take 'num_cycle'"):
        get_scheduler("cosine", opt(), 1, 10, {"num_cycle": 1})
    with pytest.raises(TypeError, match=r"warmup_stable_decay needs 'num_decay_steps'"):
        get_scheduler("warmup_stable_decay", opt(), 1, 10)
    with pytest.raises(ValueError, match=r"linear needs num_warmup_steps"):
        get_scheduler("linear", opt(), None, 10)
    with pytest.raises(ValueError, match=r"num_warmup_steps must be an integer >= 0, got"):
        get_scheduler("linear", opt(), -1, 10)
    with pytest.raises(ValueError, match=r"give min_lr or min_lr_rate"):
        get_scheduler("cosine_with_min_lr", opt(), 1, 10)
