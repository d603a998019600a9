"""Differential tests of the drop-ins against the installed torch, for what PyTorch's own
scheduler tests check and lrkit's other tests did not: growing rates (``gamma > 1``),
``step(epoch)`` with fractions and repeated epochs (and torch's warning text), a running
product inside SequentialLR, loading a checkpoint made with other settings, and param groups
added after construction. Each test runs the same calls on torch's class and on lrkit's, side
by side, and compares every group's rate (relative tolerance 1e-9).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pytest

torch = pytest.importorskip("torch")
T = torch.optim.lr_scheduler
import lrkit.torch.compat as C  # noqa: E402

RTOL = 1e-9


def make_opt() -> Any:
    """SGD with two groups, one with a tensor lr (as torch's tests build it)."""
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    return torch.optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.05, momentum=0.9)


def rates(opt: Any) -> list[float]:
    """Every group's learning rate as a float."""
    return [float(g["lr"]) for g in opt.param_groups]


Drive = Callable[[Any, Any, Any], None]


def side_by_side(
    make: Callable[[Any, Any], Any], new_drive: Callable[[], Drive], steps: int
) -> None:
    """Build with torch (``T``) and lrkit (``C``), call ``drive(module, opt, sched)`` ``steps``
    times (``drive = new_drive()``, one per run), and compare the rates after each call."""
    runs = []
    for module in (T, C):
        drive = new_drive()
        opt = make_opt()
        sched = make(module, opt)
        seen = [rates(opt)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            for _ in range(steps):
                drive(module, opt, sched)
                seen.append(rates(opt))
        runs.append(seen)
    for k, (want, got) in enumerate(zip(*runs, strict=True)):
        assert got == pytest.approx(want, rel=RTOL, abs=1e-300), (k, want, got)


def plain_step(module: Any, opt: Any, sched: Any) -> None:
    """One optimizer step, then one scheduler step."""
    opt.step()
    sched.step()


# ----------------------------------------------------------------------------- gamma > 1
@pytest.mark.parametrize(
    "make",
    [
        lambda M, o: M.ExponentialLR(o, gamma=1.5),
        lambda M, o: M.ExponentialLR(o, gamma=0.0),
        lambda M, o: M.StepLR(o, step_size=3, gamma=2.0),
        lambda M, o: M.StepLR(o, step_size=2, gamma=0.0),
        lambda M, o: M.MultiStepLR(o, milestones=[2, 5], gamma=3.0),
    ],
    ids=["exp-1.5", "exp-0", "step-2", "step-0", "multistep-3"],
)
def test_growing_and_zero_gamma_as_torch(make: Any) -> None:
    """``gamma > 1`` grows the rate (a range test's ramp) and ``gamma = 0`` drops it, as torch."""
    side_by_side(make, lambda: plain_step, 40)


def test_growing_rate_is_capped_at_the_largest_float() -> None:
    """Where torch's recursion overflows to inf, the drop-in holds the largest finite float."""
    opt = make_opt()
    sched = C.ExponentialLR(opt, gamma=10.0)
    for _ in range(400):
        opt.step()
        sched.step()
    assert all(0 < r < float("inf") for r in rates(opt))


# ----------------------------------------------------------------------------- step(epoch)
CLOSED_FORMS = {
    "StepLR": lambda M, o: M.StepLR(o, step_size=3, gamma=0.5),
    "MultiStepLR": lambda M, o: M.MultiStepLR(o, milestones=[2, 5, 9], gamma=0.1),
    "ExponentialLR": lambda M, o: M.ExponentialLR(o, gamma=0.9),
    "ConstantLR": lambda M, o: M.ConstantLR(o, factor=0.5, total_iters=4),
    "LinearLR": lambda M, o: M.LinearLR(o, start_factor=0.25, end_factor=0.6, total_iters=4),
    "PolynomialLR": lambda M, o: M.PolynomialLR(o, total_iters=5, power=0.9),
    "CosineAnnealingLR": lambda M, o: M.CosineAnnealingLR(o, T_max=6, eta_min=0.01),
}


@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
def test_step_with_epoch_gives_torchs_closed_form(name: str) -> None:
    """``step(epoch)`` with whole, repeated, backward and fractional epochs: torch's values."""

    def new_drive() -> Drive:
        epochs = iter([1, 2, 2, 2, 7, 3, 1.5, 4.25, 0, 11])

        def drive(module: Any, opt: Any, sched: Any) -> None:
            opt.step()
            sched.step(next(epochs))

        return drive

    side_by_side(CLOSED_FORMS[name], new_drive, 10)


def test_step_with_epoch_warns_with_torchs_text() -> None:
    """The deprecation warning of ``step(epoch)`` is torch's own text (filters keep working)."""
    opt = make_opt()
    sched = C.StepLR(opt, step_size=2)
    opt.step()
    with pytest.warns(UserWarning) as record:
        sched.step(3)
    assert [str(w.message) for w in record] == [T.EPOCH_DEPRECATION_WARNING]


def test_multiplicative_step_with_a_fractional_epoch_is_refused_by_name() -> None:
    """A running product of lr_lambda has no value between steps: a fraction is a ValueError."""
    opt = make_opt()
    sched = C.MultiplicativeLR(opt, lambda t: 0.9)
    with (
        pytest.warns(UserWarning),
        pytest.raises(ValueError, match=r"MultiplicativeLR\.step: epoch must be a whole"),
    ):
        sched.step(1.5)


# ----------------------------------------------------------------------------- SequentialLR
@pytest.mark.parametrize(
    "later",
    [
        lambda M, o: M.MultiplicativeLR(o, lambda t: 0.9),
        lambda M, o: M.ExponentialLR(o, gamma=0.8),
        lambda M, o: M.StepLR(o, step_size=2, gamma=0.5),
    ],
    ids=["multiplicative", "exponential", "step"],
)
def test_a_later_child_of_sequential_lr_starts_as_torch(later: Any) -> None:
    """At its milestone a MultiplicativeLR continues from the current rate (times lr_lambda(0)),
    a closed form restarts from its base, as torch steps them there."""

    def make(module: Any, opt: Any) -> Any:
        first = module.ConstantLR(opt, factor=0.1, total_iters=10)
        second = module.LinearLR(opt, start_factor=0.5, total_iters=3)
        return module.SequentialLR(opt, [first, second, later(module, opt)], milestones=[4, 7])

    side_by_side(make, lambda: plain_step, 20)


# ----------------------------------------------------------------------------- load_state_dict
LOADS = [
    (lambda M, o: M.StepLR(o, step_size=3, gamma=0.5), lambda M, o: M.StepLR(o, step_size=2, gamma=0.1)),
    (lambda M, o: M.MultiStepLR(o, [2, 5], gamma=0.5), lambda M, o: M.MultiStepLR(o, [3], gamma=0.9)),
    (lambda M, o: M.ExponentialLR(o, gamma=0.9), lambda M, o: M.ExponentialLR(o, gamma=0.5)),
    (lambda M, o: M.CosineAnnealingLR(o, T_max=8, eta_min=0.001), lambda M, o: M.CosineAnnealingLR(o, T_max=3)),
    (lambda M, o: M.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2), lambda M, o: M.CosineAnnealingWarmRestarts(o, T_0=5)),
    (lambda M, o: M.LinearLR(o, start_factor=0.2, total_iters=6), lambda M, o: M.LinearLR(o, start_factor=0.9, total_iters=2)),
]  # fmt: skip


@pytest.mark.parametrize(("saved", "other"), LOADS, ids=[str(i) for i in range(len(LOADS))])
def test_load_state_dict_adopts_the_checkpoints_settings(saved: Any, other: Any) -> None:
    """A checkpoint loaded into a scheduler built with other settings continues as the
    checkpoint's run, as torch's ``__dict__`` update makes it (optimizer state loaded too)."""
    runs = []
    for module in (T, C):
        opt = make_opt()
        sched = saved(module, opt)
        for _ in range(4):
            plain_step(module, opt, sched)
        state, opt_state = sched.state_dict(), opt.state_dict()
        opt2 = make_opt()
        sched2 = other(module, opt2)
        opt2.load_state_dict(opt_state)
        sched2.load_state_dict(state)
        seen = []
        for _ in range(10):
            plain_step(module, opt2, sched2)
            seen.append(rates(opt2))
        runs.append(seen)
    for want, got in zip(*runs, strict=True):
        assert got == pytest.approx(want, rel=RTOL)


# ----------------------------------------------------------------------------- add_param_group
FOLLOWERS = {
    "StepLR": lambda M, o: M.StepLR(o, 2, gamma=0.5),
    "MultiStepLR": lambda M, o: M.MultiStepLR(o, [2, 5], gamma=0.5),
    "ExponentialLR": lambda M, o: M.ExponentialLR(o, 0.9),
    "ConstantLR": lambda M, o: M.ConstantLR(o, 0.5, total_iters=6),
    "LinearLR": lambda M, o: M.LinearLR(o, 0.5, total_iters=8),
    "PolynomialLR": lambda M, o: M.PolynomialLR(o, total_iters=9, power=2.0),
    "CosineAnnealingLR": lambda M, o: M.CosineAnnealingLR(o, T_max=12, eta_min=0.001),
}


@pytest.mark.parametrize("name", sorted(FOLLOWERS))
def test_a_param_group_added_later_is_driven_as_torch(name: str) -> None:
    """After ``add_param_group`` the next ``step()`` drives the new group as torch's recursion:
    from its own rate, by the same ratios as the others."""

    def drive(module: Any, opt: Any, sched: Any) -> None:
        plain_step(module, opt, sched)
        if sched.last_epoch == 3:
            opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.3})

    side_by_side(FOLLOWERS[name], lambda: drive, 9)


@pytest.mark.parametrize("name", ["LambdaLR", "CyclicLR", "CosineAnnealingWarmRestarts"])
def test_a_param_group_added_later_raises_where_torch_raises(name: str) -> None:
    """Where torch's class cannot drive an added group (it raises), the drop-in raises too."""
    make = {
        "LambdaLR": lambda M, o: M.LambdaLR(o, lambda t: 0.9**t),
        "CyclicLR": lambda M, o: M.CyclicLR(o, 0.01, 0.1, step_size_up=3),
        "CosineAnnealingWarmRestarts": lambda M, o: M.CosineAnnealingWarmRestarts(o, 4),
    }[name]
    why = {
        T: None,
        C: rf"{name}: the optimizer has 3 param groups but this scheduler was built for 2",
    }
    for module in (T, C):
        opt = make_opt()
        sched = make(module, opt)
        plain_step(module, opt, sched)
        opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.3})
        opt.step()
        with pytest.raises(ValueError, match=why[module]):
            sched.step()
