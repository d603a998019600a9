"""Drop-ins for torch's cyclical schedulers: CyclicLR and OneCycleLR (with momentum / beta1)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from torch.optim import Optimizer

from lrkit.schedules import Schedule, cyclic, one_cycle, one_cycle_momentum, product
from lrkit.torch.compat._base import CompatScheduler, base_lrs, per_group
from lrkit.torch.compat._schedules import Affine, Call


def _cycle_momentum_ok(owner: str, optimizer: Optimizer) -> None:
    if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
        raise ValueError(
            f"{owner}: cycle_momentum=True needs an optimizer with momentum or betas, got "
            f"{type(optimizer).__name__}; pass cycle_momentum=False"
        )


class CyclicLR(CompatScheduler):
    """torch ``CyclicLR`` (CLR; Smith, 2017): lrkit :func:`~lrkit.cyclic` per group between
    ``base_lr`` and ``max_lr``; momentum (or Adam's beta1) cycles inversely between
    ``max_momentum`` and ``base_momentum``: ``m = max_m - (max_m - base_m) * h(t)``.

    A custom ``scale_fn`` (a Python callable) is evaluated once per step, on the cycle number or
    the iteration as ``scale_mode`` says; like LambdaLR it cannot go into a spec.

    >>> import torch
    >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0, momentum=0.9)
    >>> s = CyclicLR(opt, base_lr=0.1, max_lr=1.0, step_size_up=2)
    >>> for _ in range(2): opt.step(); s.step()
    >>> s.get_last_lr(), opt.param_groups[0]["momentum"]
    ([1.0], 0.8)
    """

    def __init__(
        self,
        optimizer: Optimizer,
        base_lr: float | list[float],
        max_lr: float | list[float],
        step_size_up: int = 2000,
        step_size_down: int | None = None,
        mode: str = "triangular",
        gamma: float = 1.0,
        scale_fn: Callable[[float], float] | None = None,
        scale_mode: str = "cycle",
        cycle_momentum: bool = True,
        base_momentum: float | list[float] = 0.8,
        max_momentum: float | list[float] = 0.9,
        last_epoch: int = -1,
    ) -> None:
        owner = "CyclicLR"
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"{owner}: optimizer must be a torch.optim.Optimizer, got {optimizer!r}"
            )
        n = len(optimizer.param_groups)
        lows = per_group(owner, "base_lr", base_lr, n)
        highs = per_group(owner, "max_lr", max_lr, n)
        if mode not in ("triangular", "triangular2", "exp_range") and scale_fn is None:
            raise ValueError(f"{owner}: mode is invalid and scale_fn is None, got mode={mode!r}")
        if scale_fn is not None and scale_mode not in ("cycle", "iterations"):
            raise ValueError(
                f"{owner}: scale_mode must be 'cycle' or 'iterations', got scale_mode={scale_mode!r}"
            )
        if last_epoch == -1:
            for lr, group in zip(lows, optimizer.param_groups, strict=True):
                group["lr"] = lr
        base_lrs(optimizer, last_epoch, owner)
        up = int(step_size_up)
        down = up if step_size_down is None else int(step_size_down)
        self.mode, self.gamma, self.scale_mode = mode, gamma, scale_mode
        self.max_lrs, self.cycle_momentum = highs, cycle_momentum
        callables: list[Any] = []
        if scale_fn is None:
            height: Schedule = cyclic(
                0.0, 1.0, steps_up=up, steps_down=down, mode=mode, gamma=gamma
            )
        else:
            total = float(up + down)
            how = _OnCycle(scale_fn, total) if scale_mode == "cycle" else scale_fn
            height = product([cyclic(0.0, 1.0, steps_up=up, steps_down=down), Call(how)])
            callables.append(scale_fn)
        tracks: dict[str, list[Schedule]] = {
            "lr": [
                cyclic(lo, hi, steps_up=up, steps_down=down, mode=mode, gamma=gamma)
                if scale_fn is None and hi >= lo
                else Affine(height, hi - lo, lo)
                for lo, hi in zip(lows, highs, strict=True)
            ]
        }
        if cycle_momentum:
            _cycle_momentum_ok(owner, optimizer)
            m_low = per_group(owner, "base_momentum", base_momentum, n)
            m_high = per_group(owner, "max_momentum", max_momentum, n)
            tracks["momentum"] = [
                Affine(height, -(hi - lo), hi) for lo, hi in zip(m_low, m_high, strict=True)
            ]
            if last_epoch == -1:
                for lo, hi, group in zip(m_low, m_high, optimizer.param_groups, strict=True):
                    group["max_momentum"], group["base_momentum"] = hi, lo
        self._start(optimizer, tracks, last_epoch=last_epoch, callables=callables)


class _OnCycle:
    """``scale_fn(cycle(t))`` with torch's cycle number ``floor(1 + t / total)``."""

    def __init__(self, fn: Callable[[float], float], total: float) -> None:
        self.fn, self.total = fn, total
        self.__name__ = "scale_fn_of_cycle"

    def __call__(self, t: int) -> float:
        return self.fn(math.floor(1 + t / self.total))


class OneCycleLR(CompatScheduler):
    """torch ``OneCycleLR`` (Smith & Topin, 2018): lrkit :func:`~lrkit.one_cycle` per group, and
    :func:`~lrkit.one_cycle_momentum` for momentum / Adam's beta1 with ``cycle_momentum``.

    **Difference from torch:** stepped past the end, lrkit holds the final values
    (``min_lr = max_lr / div_factor / final_div_factor`` and ``max_momentum``) instead of
    raising. That starts at ``t = total_steps``, the value after the last planned update, where
    torch extrapolates the last phase one step beyond its end (and raises on the next step).

    >>> import torch
    >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0, momentum=0.9)
    >>> s = OneCycleLR(opt, max_lr=1.0, total_steps=10)
    >>> s.get_last_lr()
    [0.04]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        max_lr: float | list[float],
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        cycle_momentum: bool = True,
        base_momentum: float | list[float] = 0.85,
        max_momentum: float | list[float] = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        last_epoch: int = -1,
    ) -> None:
        owner = "OneCycleLR"
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"{owner}: optimizer must be a torch.optim.Optimizer, got {optimizer!r}"
            )
        if total_steps is not None:
            if (
                isinstance(total_steps, bool)
                or not isinstance(total_steps, int)
                or total_steps <= 0
            ):
                raise ValueError(
                    f"{owner}: total_steps must be a positive integer, got total_steps={total_steps!r}"
                )
            steps = total_steps
        elif epochs is not None and steps_per_epoch is not None:
            for name, v in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch)):
                if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                    raise ValueError(
                        f"{owner}: {name} must be a positive integer, got {name}={v!r}"
                    )
            steps = epochs * steps_per_epoch
        else:
            raise ValueError(f"{owner}: give total_steps, or epochs and steps_per_epoch")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(
                f"{owner}: anneal_strategy must be 'cos' or 'linear', got "
                f"anneal_strategy={anneal_strategy!r}"
            )
        n = len(optimizer.param_groups)
        peaks = per_group(owner, "max_lr", max_lr, n)
        if last_epoch == -1:
            for peak, group in zip(peaks, optimizer.param_groups, strict=True):
                group["initial_lr"] = peak / div_factor
                group["max_lr"] = peak
                group["min_lr"] = group["initial_lr"] / final_div_factor
        base_lrs(optimizer, last_epoch, owner)
        common: dict[str, Any] = {
            "pct_start": pct_start,
            "anneal": anneal_strategy,
            "three_phase": three_phase,
        }
        tracks: dict[str, list[Schedule]] = {
            "lr": [
                one_cycle(
                    p,
                    steps=steps,
                    div_factor=div_factor,
                    final_div_factor=final_div_factor,
                    **common,
                )
                for p in peaks
            ]
        }
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            _cycle_momentum_ok(owner, optimizer)
            lows = per_group(owner, "base_momentum", base_momentum, n)
            highs = per_group(owner, "max_momentum", max_momentum, n)
            tracks["momentum"] = [
                one_cycle_momentum(steps=steps, low=lo, high=hi, **common)
                for lo, hi in zip(lows, highs, strict=True)
            ]
            if last_epoch == -1:
                for lo, hi, group in zip(lows, highs, optimizer.param_groups, strict=True):
                    group["max_momentum"], group["base_momentum"] = hi, lo
        # total_steps: torch's attribute, and the run's length saved in the state
        self._start(optimizer, tracks, last_epoch=last_epoch, total_steps=steps)
