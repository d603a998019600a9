"""Drop-ins for torch's containers: SequentialLR (lrkit :func:`~lrkit.sequence`) and
ChainedScheduler (lrkit :func:`~lrkit.product`)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from torch.optim import Optimizer

from lrkit.schedules import Schedule, constant, product, scale, sequence
from lrkit.torch._scheduler import Scheduler
from lrkit.torch.compat._base import CompatScheduler, GroupPlateau, _get, base_lrs
from lrkit.torch.compat._schedules import CumulativeProduct


def _children(owner: str, schedulers: Sequence[Any], optimizer: Optimizer | None) -> Optimizer:
    if isinstance(schedulers, CompatScheduler) or not isinstance(schedulers, Sequence):
        raise TypeError(f"{owner}: schedulers must be a list of schedulers, got {schedulers!r}")
    if len(schedulers) < 1:
        raise ValueError(f"{owner}: expects at least one scheduler, got schedulers=[]")
    opt = optimizer if optimizer is not None else getattr(schedulers[0], "optimizer", None)
    for i, s in enumerate(schedulers):
        if not isinstance(s, CompatScheduler):
            raise TypeError(
                f"{owner}: schedulers[{i}] must be an lrkit.torch.compat scheduler (a torch "
                f"scheduler keeps its own recursive state and cannot be composed in closed form), "
                f"got {type(s).__module__}.{type(s).__name__}"
            )
        if s.optimizer is not opt:
            raise ValueError(
                f"{owner}: all schedulers must drive the same optimizer, but schedulers[{i}] "
                f"({type(s).__name__}) drives another one"
            )
    return opt  # type: ignore[return-value]


class _Composite(CompatScheduler):
    """A container: its tracks are built from its children's; metrics go to their plateaus."""

    def step(self, metrics: Any = None) -> None:  # type: ignore[override]
        """Advance one call; ``metrics`` (optional) goes to the plateau schedulers active now."""
        if metrics is None:
            super().step()
        else:
            Scheduler.step(self, metrics)

    def _callables_of(self, schedulers: Sequence[CompatScheduler]) -> list[Any]:
        return [fn for s in schedulers for fn in s._callables]


class SequentialLR(_Composite):
    """torch ``SequentialLR``: ``schedulers[k]`` runs from ``milestones[k-1]`` with its own clock
    from 0 (lrkit :func:`~lrkit.sequence` with ``boundaries=milestones``, per group).

    A hyperparameter a child does not drive (momentum during a LinearLR warmup before a
    OneCycleLR) holds the value it had, as in torch. **Differences from torch:** a
    :class:`ReduceLROnPlateau` child is allowed (it reacts to ``step(metric)`` during its
    segment, and starts from the base rate); containers nest; ``state_dict`` /
    ``load_state_dict`` resume exactly, children included.

    >>> import torch
    >>> from lrkit.torch.compat import ExponentialLR, LinearLR
    >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    >>> warm = LinearLR(opt, start_factor=0.5, total_iters=2)
    >>> decay = ExponentialLR(opt, gamma=0.5)
    >>> s = SequentialLR(opt, [warm, decay], milestones=[2])
    >>> for _ in range(3): opt.step(); s.step()
    >>> s.get_last_lr()
    [0.5]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        schedulers: list[CompatScheduler],
        milestones: list[int],
        last_epoch: int = -1,
    ) -> None:
        owner = "SequentialLR"
        _children(owner, schedulers, optimizer)
        ms = list(milestones)
        if len(ms) != len(schedulers) - 1:
            raise ValueError(
                f"{owner}: expects one milestone fewer than schedulers, got {len(schedulers)} "
                f"schedulers and milestones={ms!r}"
            )
        for i, m in enumerate(ms):
            if isinstance(m, bool) or not isinstance(m, int) or m <= 0 or (i and m <= ms[i - 1]):
                raise ValueError(
                    f"{owner}: milestones must be strictly increasing positive integers, got "
                    f"milestones={ms!r}"
                )
        base_lrs(optimizer, -1, owner)
        self._schedulers, self._milestones = list(schedulers), ms
        groups = optimizer.param_groups
        starts = [0, *ms]
        names = [n for s in schedulers for n in s._tracks]
        tracks: dict[str, list[Schedule]] = {}
        for name in dict.fromkeys(names):
            per: list[Schedule] = []
            for g, group in enumerate(groups):
                pieces: list[Schedule] = []
                for k, s in enumerate(schedulers):
                    own = s._tracks.get(name)
                    if own is not None and k > 0 and isinstance(own[g], CumulativeProduct):
                        # torch steps it with epoch=0 at the milestone: it multiplies the
                        # rate there by lr_lambda(0), then by lr_lambda(t) at each call
                        last = starts[k] - starts[k - 1] - 1
                        prev = pieces[-1]
                        pieces.append(replace(own[g], origin=prev, origin_step=float(last)))  # type: ignore[call-arg]
                    elif own is not None:
                        pieces.append(own[g])
                    elif k == 0:
                        pieces.append(constant(_get(group, name)))
                    else:
                        last = starts[k] - starts[k - 1] - 1
                        pieces.append(constant(pieces[-1](last)))
                per.append(pieces[0] if len(pieces) == 1 else sequence(pieces, boundaries=ms))
            tracks[name] = per
        plateaus: list[GroupPlateau] = []
        ends = [*ms, float("inf")]
        for k, s in enumerate(schedulers):
            plateaus.extend(p.shifted(starts[k], ends[k]) for p in s._plateaus)
        self._start(
            optimizer,
            tracks,
            last_epoch=last_epoch,
            plateaus=plateaus,
            callables=self._callables_of(schedulers),
        )


#: Compat classes whose torch recursion multiplies the current rate by a factor of ``t`` alone.
_MULTIPLICATIVE = (
    "StepLR",
    "MultiStepLR",
    "ConstantLR",
    "LinearLR",
    "ExponentialLR",
    "PolynomialLR",
    "MultiplicativeLR",
    "ReduceLROnPlateau",
    "ChainedScheduler",
)


class ChainedScheduler(_Composite):
    """torch ``ChainedScheduler``: every scheduler acts at each step; the rates multiply:
    ``lr_g(t) = base_g * prod_k f_k(t)`` with ``f_k = track_k / base_g`` (lrkit
    :func:`~lrkit.product`).

    Exact (same values as torch) when every member is multiplicative in torch's recursion:
    StepLR, MultiStepLR, ConstantLR, LinearLR, ExponentialLR, PolynomialLR, MultiplicativeLR
    (and nested ChainedSchedulers of them). With other members (CosineAnnealingLR, LambdaLR,
    CyclicLR, OneCycleLR, CosineAnnealingWarmRestarts, SequentialLR) torch's result depends on
    the order of the recursive updates; lrkit gives the product above and warns. Momentum is
    taken from the last member that drives it. **Differences:** a :class:`ReduceLROnPlateau`
    member is allowed (its factor multiplies the rest; pass the metric to ``step(metric)``).

    >>> import torch
    >>> from lrkit.torch.compat import ConstantLR, ExponentialLR
    >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    >>> a = ConstantLR(opt, factor=0.5, total_iters=2)
    >>> b = ExponentialLR(opt, gamma=0.5)
    >>> s = ChainedScheduler([a, b])
    >>> opt.step(); s.step(); s.get_last_lr()
    [0.25]
    """

    def __init__(
        self, schedulers: Sequence[CompatScheduler], optimizer: Optimizer | None = None
    ) -> None:
        owner = "ChainedScheduler"
        opt = _children(owner, schedulers, optimizer)
        others = [type(s).__name__ for s in schedulers if type(s).__name__ not in _MULTIPLICATIVE]
        if others:
            warnings.warn(
                f"{owner}: {', '.join(others)} is not multiplicative in torch's recursion; lrkit "
                f"multiplies the factors (base * prod f_k), which differs from torch's result",
                UserWarning,
                stacklevel=2,
            )
        self._schedulers = list(schedulers)
        bases = base_lrs(opt, -1, owner)
        tracks: dict[str, list[Schedule]] = {}
        lr: list[Schedule] = []
        for g, base in enumerate(bases):
            parts = [s._tracks["lr"][g] for s in schedulers]
            if len(parts) == 1:
                lr.append(parts[0])
            elif base == 0:
                lr.append(constant(0.0))
            else:
                lr.append(scale(product(parts), base ** (1 - len(parts))))
        tracks["lr"] = lr
        for s in schedulers:
            for name, per in s._tracks.items():
                if name != "lr":
                    tracks[name] = per
        plateaus = [p for s in schedulers for p in s._plateaus]
        self._start(opt, tracks, plateaus=plateaus, callables=self._callables_of(schedulers))
