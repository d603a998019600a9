"""Drop-ins for torch's cosine schedulers: CosineAnnealingLR and CosineAnnealingWarmRestarts."""

from __future__ import annotations

from torch.optim import Optimizer

from lrkit.schedules import constant, cosine, cosine_restarts, repeat, sequence
from lrkit.torch.compat._base import CompatScheduler, base_lrs
from lrkit.torch.compat._schedules import nonneg_int


class CosineAnnealingLR(CompatScheduler):
    """torch ``CosineAnnealingLR``: ``lr = eta_min + (base - eta_min) * (1 + cos(pi t / T_max)) / 2``.

    As torch, the curve keeps following the cosine past ``T_max`` (back up to ``base`` at
    ``2 * T_max``, period ``2 * T_max``): lrkit
    ``repeat(cosine(base, eta_min, steps=T_max) >> cosine(eta_min, base, steps=T_max))``.

    >>> import torch
    >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    >>> s = CosineAnnealingLR(opt, T_max=2)
    >>> for _ in range(2): opt.step(); s.step()
    >>> s.get_last_lr()
    [0.0]
    """

    def __init__(
        self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1
    ) -> None:
        bases = base_lrs(optimizer, last_epoch, "CosineAnnealingLR")
        self.T_max = nonneg_int("CosineAnnealingLR", "T_max", T_max, low=1)
        self.eta_min = float(eta_min)
        # torch's recursion scales each group's distance to eta_min by the same ratio while
        # annealing: a param group added later follows it from its own value
        self._added_group_offset = self.eta_min
        tracks = [
            repeat(
                sequence(
                    [
                        cosine(b, self.eta_min, steps=self.T_max),
                        cosine(self.eta_min, b, steps=self.T_max),
                    ]
                )
            )
            if b != self.eta_min
            else constant(b)
            for b in bases
        ]
        self._start(optimizer, {"lr": tracks}, last_epoch=last_epoch)


class CosineAnnealingWarmRestarts(CompatScheduler):
    """torch ``CosineAnnealingWarmRestarts`` (SGDR): lrkit :func:`~lrkit.cosine_restarts` with
    ``peak=base``, ``floor=eta_min``, ``steps=T_0``, ``period_mult=T_mult``.

    ``step(epoch)`` with a fractional epoch (torch's per-batch idiom
    ``scheduler.step(epoch + i / iters)``) sets the time to it, as torch does, without a
    deprecation warning; later ``step()`` calls add 1 to it.

    >>> import torch
    >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    >>> s = CosineAnnealingWarmRestarts(opt, T_0=2)
    >>> s.step(1.0); s.get_last_lr()
    [0.5]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        T_0: int,
        T_mult: int = 1,
        eta_min: float = 0.0,
        last_epoch: int = -1,
    ) -> None:
        owner = "CosineAnnealingWarmRestarts"
        if isinstance(T_0, bool) or not isinstance(T_0, int) or T_0 <= 0:
            raise ValueError(f"{owner}: T_0 must be a positive integer, got T_0={T_0!r}")
        if isinstance(T_mult, bool) or not isinstance(T_mult, int) or T_mult < 1:
            raise ValueError(f"{owner}: T_mult must be an integer >= 1, got T_mult={T_mult!r}")
        bases = base_lrs(optimizer, last_epoch, owner)
        self.T_0, self.T_mult, self.eta_min = T_0, T_mult, float(eta_min)
        tracks = [
            cosine_restarts(b, self.eta_min, steps=T_0, period_mult=float(T_mult))
            if b >= self.eta_min
            else constant(b)
            for b in bases
        ]
        self._start(optimizer, {"lr": tracks}, last_epoch=last_epoch)

    def step(self, epoch: float | None = None) -> None:  # type: ignore[override]
        """Advance by one call, or (torch's idiom) set the time to ``epoch``, fractions allowed.

        Raises:
            ValueError: ``epoch`` negative.
        """
        if epoch is None:
            super().step()
            return
        if isinstance(epoch, bool) or not isinstance(epoch, (int, float)) or not epoch >= 0:
            raise ValueError(
                f"CosineAnnealingWarmRestarts.step: epoch must be a number >= 0, got epoch={epoch!r}"
            )
        whole = int(epoch // 1)
        self._frac = float(epoch) - whole
        self._step_count += 1
        self._step = whole
        self._write()
