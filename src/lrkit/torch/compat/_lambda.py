"""Drop-ins for torch's LambdaLR and MultiplicativeLR (Python callables)."""

from __future__ import annotations

from collections.abc import Callable

from torch.optim import Optimizer

from lrkit.torch.compat._base import CompatScheduler, base_lrs
from lrkit.torch.compat._schedules import Call, CumulativeProduct

Lambda = Callable[[int], float]


def _lambdas(owner: str, lr_lambda: Lambda | list[Lambda], n: int) -> list[Lambda]:
    fns = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda] * n
    if len(fns) != n:
        raise ValueError(f"{owner}: expected {n} lr_lambdas (one per param group), got {len(fns)}")
    for i, fn in enumerate(fns):
        if not callable(fn):
            raise TypeError(f"{owner}: lr_lambda[{i}] must be callable, got {fn!r}")
    return fns


class LambdaLR(CompatScheduler):
    """torch ``LambdaLR``: ``lr = base * lr_lambda(t)``, one callable or one per group.

    The callable is called once per ``step()`` with the new ``t`` (never ahead of time). A
    callable cannot be written into an lrkit spec; :meth:`state_dict` saves, as torch does, the
    ``__dict__`` of callable *objects* (not of functions or lambdas, which the code rebuilds).

    >>> import torch
    >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
    >>> s = LambdaLR(opt, lambda t: 1.0 / (t + 1))
    >>> opt.step(); s.step(); s.get_last_lr()
    [1.0]
    """

    def __init__(
        self, optimizer: Optimizer, lr_lambda: Lambda | list[Lambda], last_epoch: int = -1
    ) -> None:
        bases = base_lrs(optimizer, last_epoch, "LambdaLR")
        self.lr_lambdas = _lambdas("LambdaLR", lr_lambda, len(bases))
        tracks = [Call(fn, b) for fn, b in zip(self.lr_lambdas, bases, strict=True)]
        self._start(optimizer, {"lr": tracks}, last_epoch=last_epoch, callables=self.lr_lambdas)


class MultiplicativeLR(CompatScheduler):
    """torch ``MultiplicativeLR``: ``lr = base * lr_lambda(1) * ... * lr_lambda(t)``.

    Closed form of torch's recursion: the running products are cached, each ``lr_lambda(k)``
    called once. As a later child of :class:`SequentialLR` it continues, as torch does, from
    the rate at its milestone times ``lr_lambda(0)``. **Difference:** ``step(epoch)`` sets the
    clock and gives the product up to ``epoch`` (torch multiplies the current rate by
    ``lr_lambda(epoch)`` once), for whole epochs only.

    >>> import torch
    >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    >>> s = MultiplicativeLR(opt, lambda t: 0.5)
    >>> for _ in range(2): opt.step(); s.step()
    >>> s.get_last_lr()
    [0.25]
    """

    _fractional_epochs = False

    def __init__(
        self, optimizer: Optimizer, lr_lambda: Lambda | list[Lambda], last_epoch: int = -1
    ) -> None:
        bases = base_lrs(optimizer, last_epoch, "MultiplicativeLR")
        self.lr_lambdas = _lambdas("MultiplicativeLR", lr_lambda, len(bases))
        tracks = [CumulativeProduct(fn, b) for fn, b in zip(self.lr_lambdas, bases, strict=True)]
        self._start(optimizer, {"lr": tracks}, last_epoch=last_epoch, callables=self.lr_lambdas)
