"""Drop-ins for torch's decay schedulers: StepLR, MultiStepLR, ConstantLR, LinearLR,
ExponentialLR, PolynomialLR. Each is ``base_g * f(t)`` with ``base_g`` the group's initial lr and
``f`` an lrkit schedule of the number of ``step()`` calls ``t``."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

from torch.optim import Optimizer

from lrkit.schedules import (
    Schedule,
    constant,
    exponential,
    linear,
    piecewise,
    polynomial,
    scale,
    step_decay,
)
from lrkit.schedules._check import MAX_VALUE
from lrkit.torch.compat._base import CompatScheduler, base_lrs
from lrkit.torch.compat._schedules import nonneg_int


def _scaled(f: Schedule, bases: list[float]) -> list[Schedule]:
    return [scale(f, b) for b in bases]


def _powers(
    owner: str, gamma: float, every: int, bases: list[float], *, staircase: bool
) -> list[Schedule]:
    """``base * gamma ** (t / every)`` per group (``floor(t / every)`` with ``staircase``), for
    any ``gamma >= 0`` as torch takes it.

    A decay is :func:`~lrkit.step_decay` (staircase) or :func:`~lrkit.exponential`; a growing
    ``gamma > 1`` (how a range test raises the rate) is an :func:`~lrkit.exponential` that stops
    at the largest float (where torch's recursion reaches ``inf``); ``gamma == 0`` drops to 0 at
    ``every``.

    Raises:
        ValueError: ``gamma`` negative or not finite (torch would alternate the sign).
    """
    g = float(gamma)
    if not (math.isfinite(g) and g >= 0):
        raise ValueError(f"{owner}: gamma must be a finite number >= 0, got gamma={gamma!r}")
    if g == 0:
        return _scaled(piecewise([1.0, 0.0], boundaries=[every]), bases)
    if g <= 1:
        if staircase:
            return _scaled(step_decay(1.0, steps=every, gamma=g), bases)
        return _scaled(exponential(1.0, gamma=g, every=every), bases)
    out: list[Schedule] = []
    for b in bases:
        if b == 0:
            out.append(constant(0.0))
            continue
        end = MAX_VALUE / max(abs(b), 1.0)  # so that base * end stays finite
        f = exponential(1.0, gamma=g, every=every, staircase=staircase, end=end)
        out.append(scale(f, b))
    return out


class _Decay(CompatScheduler):
    """A decay: torch's recursion multiplies each group by the same ratio, so a param group
    added later follows group 0's ratios from its own value, as in torch."""

    _added_group_offset = 0.0


class StepLR(_Decay):
    """torch ``StepLR``: ``lr = base * gamma ** floor(t / step_size)`` (lrkit :func:`~lrkit.step_decay`).

    Same signature and values as ``torch.optim.lr_scheduler.StepLR``, ``gamma > 1`` included
    (the rate then grows, capped at the largest float where torch reaches ``inf``).

    >>> import torch
    >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    >>> s = StepLR(opt, step_size=2, gamma=0.5)
    >>> for _ in range(2): opt.step(); s.step()
    >>> s.get_last_lr()
    [0.5]
    """

    def __init__(
        self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        bases = base_lrs(optimizer, last_epoch, "StepLR")
        self.step_size, self.gamma = nonneg_int("StepLR", "step_size", step_size, low=1), gamma
        tracks = _powers("StepLR", gamma, self.step_size, bases, staircase=True)
        self._start(optimizer, {"lr": tracks}, last_epoch=last_epoch)


class MultiStepLR(_Decay):
    """torch ``MultiStepLR``: ``lr = base * gamma ** #{m in milestones: m <= t}``.

    A milestone listed twice multiplies by ``gamma`` twice, as in torch (lrkit
    :func:`~lrkit.piecewise` of the running products).

    >>> import torch
    >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    >>> s = MultiStepLR(opt, milestones=[1, 3], gamma=0.1)
    >>> opt.step(); s.step(); s.get_last_lr()
    [0.1]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        milestones: Iterable[int],
        gamma: float = 0.1,
        last_epoch: int = -1,
    ) -> None:
        bases = base_lrs(optimizer, last_epoch, "MultiStepLR")
        self.milestones = Counter(nonneg_int("MultiStepLR", "milestones[i]", m) for m in milestones)
        self.gamma = gamma
        at0 = self.milestones.get(0, 0)
        later = sorted(m for m in self.milestones if m > 0)
        values, count = [float(gamma) ** at0], at0
        for m in later:
            count += self.milestones[m]
            values.append(float(gamma) ** count)
        f = piecewise(values, boundaries=later) if later else constant(values[0])
        self._start(optimizer, {"lr": _scaled(f, bases)}, last_epoch=last_epoch)


class ConstantLR(_Decay):
    """torch ``ConstantLR``: ``lr = base * factor`` for ``t < total_iters``, then ``base``.

    (With ``total_iters=0`` torch multiplies once and never restores: ``base * factor``.)

    >>> import torch
    >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    >>> s = ConstantLR(opt, factor=0.5, total_iters=1)
    >>> s.get_last_lr(), (opt.step(), s.step(), s.get_last_lr())[2]
    ([0.5], [1.0])
    """

    def __init__(
        self,
        optimizer: Optimizer,
        factor: float = 1.0 / 3,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        if not 0 <= factor <= 1.0:
            raise ValueError(f"ConstantLR: factor must be in [0, 1], got factor={factor!r}")
        bases = base_lrs(optimizer, last_epoch, "ConstantLR")
        self.factor, self.total_iters = factor, nonneg_int("ConstantLR", "total_iters", total_iters)
        if self.total_iters == 0:
            f: Schedule = constant(factor)
        else:
            f = piecewise([factor, 1.0], boundaries=[self.total_iters])
        self._start(optimizer, {"lr": _scaled(f, bases)}, last_epoch=last_epoch)


class LinearLR(_Decay):
    """torch ``LinearLR``: the factor moves linearly from ``start_factor`` to ``end_factor`` over
    ``total_iters`` calls, then holds (lrkit :func:`~lrkit.linear`).

    >>> import torch
    >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    >>> s = LinearLR(opt, start_factor=0.5, total_iters=2)
    >>> opt.step(); s.step(); s.get_last_lr()
    [0.75]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        if not 0 < start_factor <= 1.0:
            raise ValueError(
                f"LinearLR: start_factor must be in (0, 1], got start_factor={start_factor!r}"
            )
        if not 0 <= end_factor <= 1.0:
            raise ValueError(
                f"LinearLR: end_factor must be in [0, 1], got end_factor={end_factor!r}"
            )
        bases = base_lrs(optimizer, last_epoch, "LinearLR")
        self.start_factor, self.end_factor = start_factor, end_factor
        self.total_iters = nonneg_int("LinearLR", "total_iters", total_iters)
        if self.total_iters == 0:
            f: Schedule = constant(start_factor)
        else:
            f = linear(start_factor, end_factor, steps=self.total_iters)
        self._start(optimizer, {"lr": _scaled(f, bases)}, last_epoch=last_epoch)


class ExponentialLR(_Decay):
    """torch ``ExponentialLR``: ``lr = base * gamma ** t`` (lrkit :func:`~lrkit.exponential`).

    Any ``gamma >= 0`` as in torch: ``gamma > 1`` grows the rate (as a range test does),
    capped at the largest float where torch reaches ``inf``.

    >>> import torch
    >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    >>> s = ExponentialLR(opt, gamma=0.5)
    >>> opt.step(); s.step(); s.get_last_lr()
    [0.5]
    """

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        bases = base_lrs(optimizer, last_epoch, "ExponentialLR")
        self.gamma = gamma
        tracks = _powers("ExponentialLR", gamma, 1, bases, staircase=False)
        self._start(optimizer, {"lr": tracks}, last_epoch=last_epoch)


class PolynomialLR(_Decay):
    """torch ``PolynomialLR``: ``lr = base * (1 - min(t, total_iters) / total_iters) ** power``
    (lrkit :func:`~lrkit.polynomial` to 0).

    >>> import torch
    >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    >>> s = PolynomialLR(opt, total_iters=4, power=2.0)
    >>> opt.step(); s.step(); s.get_last_lr()
    [0.5625]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        total_iters: int = 5,
        power: float = 1.0,
        last_epoch: int = -1,
    ) -> None:
        bases = base_lrs(optimizer, last_epoch, "PolynomialLR")
        self.total_iters = nonneg_int("PolynomialLR", "total_iters", total_iters)
        self.power = power
        if self.total_iters == 0:
            f: Schedule = constant(1.0)
        else:
            f = polynomial(1.0, 0.0, steps=self.total_iters, power=power)
        self._start(optimizer, {"lr": _scaled(f, bases)}, last_epoch=last_epoch)
