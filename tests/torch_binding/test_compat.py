"""lrkit.torch.compat against torch.optim.lr_scheduler, run side by side step by step.

Every row builds the same optimizer twice (three param groups with different rates), one torch
scheduler and one compat scheduler from the same arguments, then loops ``optimizer.step();
scheduler.step()`` N times (past the end of finite schedules) and compares every group's lr (and
momentum / Adam beta1 where torch cycles it) at every step to rtol 1e-9. Rows cite torch's
defaults where they use them (torch 2.x signatures).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as T

from lrkit.torch import compat as C

RTOL = 1e-9
LRS = (0.1, 0.03, 1.0)


def make_opt(kind: str = "sgd") -> torch.optim.Optimizer:
    """Three param groups with different rates (fixed seed)."""
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(3)) for _ in LRS]
    groups = [{"params": [p], "lr": lr} for p, lr in zip(params, LRS, strict=True)]
    if kind == "adam":
        return torch.optim.Adam(groups, lr=0.1, betas=(0.9, 0.999))
    return torch.optim.SGD(groups, lr=0.1, momentum=0.9)


def values(opt: torch.optim.Optimizer) -> dict[str, list[float]]:
    """Per-group lr, momentum and beta1 (where present)."""
    out: dict[str, list[float]] = {"lr": [float(g["lr"]) for g in opt.param_groups]}
    if "momentum" in opt.param_groups[0]:
        out["momentum"] = [float(g["momentum"]) for g in opt.param_groups]
    if "betas" in opt.param_groups[0]:
        out["beta1"] = [float(g["betas"][0]) for g in opt.param_groups]
    return out


def run(factory, module, steps: int, kind: str = "sgd") -> list[dict[str, list[float]]]:
    """Build with ``factory(module, opt)``, then record values after construction and each step."""
    opt = make_opt(kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched = factory(module, opt)
        history = [values(opt)]
        for _ in range(steps):
            opt.step()
            sched.step()
            history.append(values(opt))
    return history


def assert_same(ours, theirs, upto: int | None = None) -> None:
    """Equal per step, group and hyperparameter to RTOL (exact zeros compare exactly)."""
    n = len(theirs) if upto is None else upto
    for t in range(n):
        for name, want in theirs[t].items():
            got = ours[t][name]
            np.testing.assert_allclose(got, want, rtol=RTOL, atol=0, err_msg=f"{name} at t={t}")


# (id, factory(module, opt), steps, optimizer kind)
CASES = [
    ("StepLR defaults gamma=0.1", lambda m, o: m.StepLR(o, step_size=3), 20, "sgd"),
    ("StepLR gamma=0.5", lambda m, o: m.StepLR(o, step_size=4, gamma=0.5), 30, "sgd"),
    ("MultiStepLR default gamma", lambda m, o: m.MultiStepLR(o, milestones=[2, 5, 9]), 20, "sgd"),
    ("MultiStepLR repeated+zero", lambda m, o: m.MultiStepLR(o, [0, 4, 4, 7], 0.5), 15, "sgd"),
    ("ConstantLR defaults 1/3, 5", lambda m, o: m.ConstantLR(o), 12, "sgd"),
    (
        "ConstantLR factor .5 iters 3",
        lambda m, o: m.ConstantLR(o, factor=0.5, total_iters=3),
        10,
        "sgd",
    ),
    ("ConstantLR total_iters=0", lambda m, o: m.ConstantLR(o, factor=0.5, total_iters=0), 5, "sgd"),
    ("LinearLR defaults 1/3 -> 1, 5", lambda m, o: m.LinearLR(o), 12, "sgd"),
    ("LinearLR decay", lambda m, o: m.LinearLR(o, 1.0, 0.05, total_iters=7), 15, "sgd"),
    ("ExponentialLR", lambda m, o: m.ExponentialLR(o, gamma=0.9), 40, "sgd"),
    ("PolynomialLR defaults 5, 1.0", lambda m, o: m.PolynomialLR(o), 10, "sgd"),
    ("PolynomialLR power 2", lambda m, o: m.PolynomialLR(o, total_iters=8, power=2.0), 12, "sgd"),
    ("CosineAnnealingLR eta_min 0", lambda m, o: m.CosineAnnealingLR(o, T_max=10), 45, "sgd"),
    ("CosineAnnealingLR eta_min", lambda m, o: m.CosineAnnealingLR(o, 7, eta_min=0.001), 40, "sgd"),
    ("CAWR T_mult 1", lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=5), 30, "sgd"),
    ("CAWR T_mult 2", lambda m, o: m.CosineAnnealingWarmRestarts(o, 3, 2, 1e-4), 50, "sgd"),
    (
        "CyclicLR triangular defaults (momentum .8-.9)",
        lambda m, o: m.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=4),
        30,
        "sgd",
    ),
    (
        "CyclicLR triangular2 per-group",
        lambda m, o: m.CyclicLR(o, [0.01, 0.02, 0.1], [0.1, 0.2, 1.0], 3, 5, mode="triangular2"),
        40,
        "sgd",
    ),
    (
        "CyclicLR exp_range adam beta1",
        lambda m, o: m.CyclicLR(o, 0.001, 0.01, 5, mode="exp_range", gamma=0.97),
        40,
        "adam",
    ),
    (
        "CyclicLR scale_fn cycle",
        lambda m, o: m.CyclicLR(o, 0.01, 0.1, 3, scale_fn=lambda c: 1 / (1.0 + c)),
        30,
        "sgd",
    ),
    (
        "CyclicLR scale_fn iterations no momentum",
        lambda m, o: m.CyclicLR(
            o,
            0.01,
            0.1,
            3,
            scale_fn=lambda x: 0.99**x,
            scale_mode="iterations",
            cycle_momentum=False,
        ),
        30,
        "sgd",
    ),
    ("OneCycleLR defaults", lambda m, o: m.OneCycleLR(o, max_lr=0.5, total_steps=40), 39, "sgd"),
    (
        "OneCycleLR linear three-phase adam",
        lambda m, o: m.OneCycleLR(
            o,
            [0.5, 0.2, 1.0],
            epochs=5,
            steps_per_epoch=6,
            pct_start=0.25,
            anneal_strategy="linear",
            three_phase=True,
            div_factor=10.0,
        ),
        29,
        "adam",
    ),
    (
        "OneCycleLR no momentum",
        lambda m, o: m.OneCycleLR(o, 0.3, total_steps=20, cycle_momentum=False),
        19,
        "sgd",
    ),
    ("LambdaLR one", lambda m, o: m.LambdaLR(o, lambda t: 1.0 / (1 + t) ** 0.5), 20, "sgd"),
    (
        "LambdaLR per group",
        lambda m, o: m.LambdaLR(
            o, [lambda t: 0.9**t, lambda t: min(1.0, (t + 1) / 5), lambda t: 1.0]
        ),
        20,
        "sgd",
    ),
    ("MultiplicativeLR", lambda m, o: m.MultiplicativeLR(o, lambda t: 0.95), 30, "sgd"),
    (
        "MultiplicativeLR varying",
        lambda m, o: m.MultiplicativeLR(o, lambda t: 1.0 if t % 3 else 0.5),
        30,
        "sgd",
    ),
    (
        "SequentialLR LinearLR -> CosineAnnealingLR",
        lambda m, o: m.SequentialLR(
            o, [m.LinearLR(o, 0.1, total_iters=5), m.CosineAnnealingLR(o, T_max=10)], [5]
        ),
        30,
        "sgd",
    ),
    (
        "SequentialLR three children",
        lambda m, o: m.SequentialLR(
            o,
            [m.ConstantLR(o, 0.2, total_iters=10), m.ExponentialLR(o, 0.9), m.StepLR(o, 2, 0.5)],
            milestones=[3, 8],
        ),
        20,
        "sgd",
    ),
    (
        "SequentialLR LinearLR -> CyclicLR momentum held",
        lambda m, o: m.SequentialLR(
            o, [m.LinearLR(o, 0.5, total_iters=3), m.CyclicLR(o, 0.01, 0.1, 3)], [4]
        ),
        23,
        "sgd",
    ),
    (
        "SequentialLR -> CAWR",
        lambda m, o: m.SequentialLR(
            o, [m.LinearLR(o, 0.2, total_iters=4), m.CosineAnnealingWarmRestarts(o, 4, 2)], [4]
        ),
        30,
        "sgd",
    ),
    (
        "ChainedScheduler ConstantLR * ExponentialLR",
        lambda m, o: m.ChainedScheduler(
            [m.ConstantLR(o, 0.1, total_iters=4), m.ExponentialLR(o, 0.9)]
        ),
        20,
        "sgd",
    ),
    (
        "ChainedScheduler LinearLR * MultiStepLR * PolynomialLR",
        lambda m, o: m.ChainedScheduler(
            [
                m.LinearLR(o, 0.25, total_iters=4),
                m.MultiStepLR(o, [3, 6], 0.5),
                m.PolynomialLR(o, total_iters=12, power=1.5),
            ]
        ),
        16,
        "sgd",
    ),
    (
        "ChainedScheduler StepLR * MultiplicativeLR",
        lambda m, o: m.ChainedScheduler(
            [m.StepLR(o, 3, 0.5), m.MultiplicativeLR(o, lambda t: 0.97)]
        ),
        20,
        "sgd",
    ),
]


@pytest.mark.parametrize(
    ("factory", "steps", "kind"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_same_values_as_torch(factory, steps: int, kind: str) -> None:
    """Each compat class reproduces torch's lr (and cycled momentum / beta1) at every step."""
    assert_same(run(factory, C, steps, kind), run(factory, T, steps, kind))


@pytest.mark.parametrize("name", C.__all__)
def test_is_a_torch_lr_scheduler(name: str) -> None:
    """Every compat class is a torch LRScheduler, as torch's own classes (ReduceLROnPlateau too)."""
    assert issubclass(getattr(C, name), T.LRScheduler)
    assert issubclass(getattr(T, name), T.LRScheduler)


def test_same_constructor_parameters_as_torch() -> None:
    """The constructor parameters have torch's names, order and defaults."""
    import inspect

    for name in C.__all__:
        ours = inspect.signature(getattr(C, name).__init__).parameters
        theirs = inspect.signature(getattr(T, name).__init__).parameters
        assert list(ours) == list(theirs), name
        for p in theirs:
            assert ours[p].default == theirs[p].default, (name, p)


def test_onecycle_holds_past_total_steps() -> None:
    """Deliberate difference: OneCycleLR past total_steps holds min_lr and max_momentum."""
    opt = make_opt()
    s = C.OneCycleLR(opt, max_lr=[0.5, 0.2, 1.0], total_steps=10)
    for _ in range(25):
        opt.step()
        s.step()
    for g, peak in zip(opt.param_groups, [0.5, 0.2, 1.0], strict=True):
        assert g["lr"] == pytest.approx(peak / 25.0 / 1e4, rel=1e-12)
        assert g["momentum"] == pytest.approx(0.95, rel=1e-12)
    topt = make_opt()
    ts = T.OneCycleLR(topt, max_lr=0.5, total_steps=10)
    with pytest.raises(ValueError, match="Tried to step"):
        for _ in range(25):
            topt.step()
            ts.step()


def test_cawr_fractional_epochs_match_torch() -> None:
    """CosineAnnealingWarmRestarts.step(epoch + i / iters), torch's per-batch idiom, matches."""
    hist = {}
    for mod in (C, T):
        opt = make_opt()
        s = mod.CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=2, eta_min=1e-3)
        out = []
        for epoch in range(12):
            for i in range(4):
                opt.step()
                s.step(epoch + i / 4)
                out.append(values(opt))
        opt.step()
        s.step()
        out.append(values(opt))
        hist[mod] = out
    assert_same(hist[C], hist[T])


def test_deprecated_step_epoch_gives_closed_form() -> None:
    """step(epoch) warns as torch does and gives torch's closed form at that epoch."""
    for mod in (C, T):
        opt = make_opt()
        s = mod.CosineAnnealingLR(opt, T_max=10, eta_min=0.01)
        with pytest.warns(UserWarning):
            s.step(7)
        want = [0.01 + (b - 0.01) * (1 + math.cos(math.pi * 7 / 10)) / 2 for b in LRS]
        np.testing.assert_allclose(s.get_last_lr(), want, rtol=RTOL)


def test_last_epoch_needs_initial_lr() -> None:
    """last_epoch >= 0 without 'initial_lr' in the groups raises KeyError, as torch."""
    with pytest.raises(KeyError, match="initial_lr"):
        C.StepLR(make_opt(), step_size=3, last_epoch=4)


def test_last_epoch_continues_closed_form() -> None:
    """last_epoch=k continues at step k+1 (torch's last_epoch after construction), closed form."""
    full = run(lambda m, o: m.CosineAnnealingLR(o, T_max=10), C, 12)
    opt = make_opt()
    for g in opt.param_groups:
        g["initial_lr"] = g["lr"]
    s = C.CosineAnnealingLR(opt, T_max=10, last_epoch=3)
    assert s.last_epoch == 4
    got = [values(opt)]
    for _ in range(8):
        opt.step()
        s.step()
        got.append(values(opt))
    assert_same(got, full[4:])


def test_constructor_errors_name_argument() -> None:
    """Bad arguments raise at construction, naming the class, the argument and the value."""
    with pytest.raises(ValueError, match="LinearLR: start_factor must be in"):
        C.LinearLR(make_opt(), start_factor=0.0)
    with pytest.raises(ValueError, match="OneCycleLR: give total_steps"):
        C.OneCycleLR(make_opt(), max_lr=0.1)
    with pytest.raises(ValueError, match="SequentialLR: expects one milestone fewer"):
        o = make_opt()
        C.SequentialLR(o, [C.StepLR(o, 2)], milestones=[3])
    with pytest.raises(TypeError, match=r"lrkit\.torch\.compat scheduler"):
        o = make_opt()
        C.SequentialLR(o, [T.StepLR(o, 2), C.StepLR(o, 2)], milestones=[3])
    with pytest.raises(ValueError, match="cycle_momentum"):
        o = torch.optim.Adagrad([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        C.CyclicLR(o, 0.01, 0.1)
    with pytest.raises(ValueError, match="CosineAnnealingWarmRestarts: T_0"):
        C.CosineAnnealingWarmRestarts(make_opt(), T_0=0)


def test_chained_non_multiplicative_warns() -> None:
    """ChainedScheduler warns when a member makes its product differ from torch's recursion."""
    o = make_opt()
    with pytest.warns(UserWarning, match="CosineAnnealingLR is not multiplicative"):
        C.ChainedScheduler([C.LinearLR(o, 0.5, total_iters=3), C.CosineAnnealingLR(o, 10)])


@pytest.mark.parametrize("name", ["CosineAnnealingWarmRestarts", "LambdaLR", "ChainedScheduler"])
def test_group_added_later_raises_clearly(name: str) -> None:
    """A param group added after construction, to a class torch raises for too, raises naming
    the class (the decays and CosineAnnealingLR drive it as torch: test_compat_torch_suite)."""
    opt = make_opt()
    make = {
        "CosineAnnealingWarmRestarts": lambda: C.CosineAnnealingWarmRestarts(opt, 4),
        "LambdaLR": lambda: C.LambdaLR(opt, lambda t: 0.9**t),
        "ChainedScheduler": lambda: C.ChainedScheduler([C.StepLR(opt, 2), C.ConstantLR(opt)]),
    }
    s = make[name]()
    opt.step()
    s.step()
    opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(2))], "lr": 0.7})
    opt.step()
    with pytest.raises(ValueError, match=f"{name}: the optimizer has 4 param groups but .* 3;"):
        s.step()


def test_onecycle_total_steps_attribute_as_torch() -> None:
    """OneCycleLR.total_steps holds the run length as torch's (Accelerate reads it)."""
    for module in (C, T):
        s = module.OneCycleLR(make_opt(), max_lr=0.5, epochs=3, steps_per_epoch=7)
        assert s.total_steps == 21, module


@pytest.mark.parametrize("cls", ["LambdaLR", "MultiplicativeLR"])
def test_callable_called_only_at_steps_reached_as_torch(cls: str) -> None:
    """lr_lambda is called at the steps torch calls it, in order, never a block ahead."""
    seen: dict[str, list[int]] = {"torch": [], "lrkit": []}

    def make(side: str):  # type: ignore[no-untyped-def]
        def fn(k: int) -> float:
            seen[side].append(k)
            return 0.9**k

        return fn

    o1, o2 = make_opt(), make_opt()
    t = getattr(T, cls)(o1, make("torch"))
    c = getattr(C, cls)(o2, make("lrkit"))
    for _ in range(5):
        o1.step()
        o2.step()
        t.step()
        c.step()
    reached = sorted(set(seen["torch"]))
    assert sorted(set(seen["lrkit"])) == reached
    assert max(seen["lrkit"]) == 5
