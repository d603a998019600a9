"""The learning-rate range test on a PyTorch model (Smith, 2017; fastai's ``lr_find``).

The rate grows from ``start`` to ``end`` over ``steps`` optimizer updates, one batch each; the
losses are smoothed and analysed by :mod:`lrkit.tune.rules`. The model (parameters, buffers,
gradients, train/eval modes), the optimizer (state and hyperparameters), the grad scaler and the
RNG states (torch CPU and CUDA, numpy, ``random``) are restored bitwise afterwards, whatever
happened: divergence, an exception from the user's code or ``KeyboardInterrupt``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch

from lrkit.tune import probe_rule, recipes
from lrkit.tune import rules as _suggest
from lrkit.tune._range_loop import Batch, Loop, Snapshot, cycle, default_forward
from lrkit.tune.range_test import FinderResult

__all__ = ["FIND_RULES", "PROBE_STEPS", "FinderResult", "RangeTestOptions", "find_lr"]

#: The rules :func:`find_lr` accepts: the probes (default) or one of fastai's ramp rules.
FIND_RULES = ("probe", *_suggest.RULES)

#: Updates per probe run (:data:`lrkit.tune.probe_rule.PROBE_STEPS`).
PROBE_STEPS = probe_rule.PROBE_STEPS


def _check_positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not 0 < float(value) < math.inf:
        raise ValueError(f"find_lr: {name} must be a finite number > 0, got {name}={value!r}")
    return float(value)


def _check_int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or int(value) < low:
        raise ValueError(f"find_lr: {name} must be an integer >= {low}, got {name}={value!r}")
    return int(value)


def _rates(start: float, end: float, steps: int, mode: str) -> np.ndarray:
    if mode == "exp":
        return np.geomspace(start, end, steps)
    return np.linspace(start, end, steps)


@dataclass(frozen=True)
class RangeTestOptions:
    """The settings of :func:`find_lr` (see there), validated when built.

    Raises:
        ValueError: ``start``/``end`` not > 0 or ``start >= end``, ``steps < 3``, bad ``mode``
            or ``rule``, ``accumulation_steps < 1``, ``probe_steps < 5``, ``diverge_factor <=
            1``, ``smooth`` outside [0, 1).
    """

    start: float = 1e-7
    end: float = 10.0
    steps: int = 100
    mode: str = "exp"
    accumulation_steps: int = 1
    scaler: Any = None
    autocast_dtype: torch.dtype | None = None
    diverge_factor: float = 4.0
    smooth: float = 0.98
    forward: Callable[[torch.nn.Module, Batch], torch.Tensor] | None = None
    rule: str = "probe"
    probe_steps: int = PROBE_STEPS
    val_data: Iterable[Batch] | None = None
    progress: bool = False

    def __post_init__(self) -> None:
        start = _check_positive("start", self.start)
        end = _check_positive("end", self.end)
        if start >= end:
            raise ValueError(
                f"find_lr: start must be < end, got start={self.start!r}, end={self.end!r}"
            )
        _check_int("steps", self.steps, 3)
        _check_int("probe_steps", self.probe_steps, 5)
        _check_int("accumulation_steps", self.accumulation_steps, 1)
        if self.mode not in ("exp", "linear"):
            raise ValueError(f"find_lr: mode must be 'exp' or 'linear', got mode={self.mode!r}")
        d = self.diverge_factor
        if isinstance(d, bool) or not isinstance(d, Real) or d <= 1:
            raise ValueError(f"find_lr: diverge_factor must be > 1, got diverge_factor={d!r}")
        _suggest._beta("find_lr", self.smooth)
        if self.rule not in FIND_RULES:
            raise ValueError(f"find_lr: rule must be one of {FIND_RULES}, got rule={self.rule!r}")

    @classmethod
    def from_settings(cls, **settings: Any) -> RangeTestOptions:
        """The options from keyword settings.

        Raises:
            TypeError: an unknown setting (the message lists the known ones).
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise TypeError(
                f"find_lr: unknown setting {unknown[0]!r}; known: {', '.join(sorted(known))}"
            )
        return cls(**settings)


def find_lr(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[..., torch.Tensor] | None,
    data: Iterable[Batch],
    options: RangeTestOptions | None = None,
    **settings: Any,
) -> FinderResult:
    """Run the learning-rate range test and suggest a peak rate; restore everything afterwards.

    **The ramp.** Update ``i`` (of ``steps``) uses the rate
    ``r_i = start * (end/start)**(i/(steps-1))`` (``mode="exp"``) or
    ``start + (end - start) * i/(steps-1)`` (``"linear"``), set on every parameter group in
    proportion to the groups' current rates. Each update accumulates ``accumulation_steps``
    batches (loss divided by it); its loss is their mean. The losses are smoothed by a debiased
    moving average (``smooth`` = beta); the ramp stops once the smoothed loss exceeds
    ``diverge_factor`` times its minimum, or a loss is not finite: that rate is the *edge*.
    fastai's rules (``"minimum/10"``, ``"valley"``, ``"steepest"``) read the ramp's curve
    (:func:`lrkit.tune.rules.suggest`); every rule's rate is in ``alternatives``.

    **The probes** (``rule="probe"``, the default). From the initial model each time,
    :data:`lrkit.tune.probe_rule.PROBES` short runs of ``probe_steps`` updates each follow the
    ``warmup-cosine`` recipe at the rates :func:`lrkit.tune.probe_rule.probe_rates` puts below the
    edge (a factor 4 apart, the highest at edge / 2), then two a factor 2 either side of the
    best; each is scored by its loss on the same held-out batches in eval mode (``val_data``,
    a finite iterable of batches, read once; by default the first 4 batches of ``data``, set
    aside: on a small data set they recur in training, so pass validation batches where you
    have them, as ``lrkit compare`` does), and the suggestion is the best
    probe's rate (:func:`lrkit.tune.probe_rule.choose_probe`), a peak for a warmup-cosine schedule of
    any length. fastai's rules, tuned on one kind of curve, land outside the good window on
    many tasks; the probes measure what a schedule does at each rate (``benchmarks/
    tune_quality.py``: their table for both halves of the benchmark suite).

    With ``scaler`` (a ``torch.amp.GradScaler``) the backward pass is scaled and steps with
    overflowing gradients are skipped by the scaler; ``autocast_dtype`` (e.g. ``torch.bfloat16``)
    runs the forward under ``torch.autocast`` on the model's device type.

    Extra memory: one copy of the model's state dict and of the optimizer state (plus existing
    gradients, if any are set), and the 4 held-out batches of the probes. Cost: ``steps``
    updates, plus ``PROBES * probe_steps`` with the probe rule (:attr:`FinderResult.updates`).

    Args:
        model: the module, in the mode you train it in (``model.train()``).
        optimizer: its optimizer; its state is used by the test and restored afterwards.
        loss_fn: ``loss_fn(model(inputs), targets)``; may be None when ``forward`` is given.
        data: batches, re-iterated when exhausted: ``(inputs, targets)`` pairs, or anything
            ``forward(model, batch) -> loss`` accepts.

    Raises:
        ValueError: ``start``/``end`` not > 0 or ``start >= end``, ``steps < 3``, bad ``mode``
            or ``rule``, ``accumulation_steps < 1``, ``probe_steps < 5``, ``diverge_factor <=
            1``, ``smooth`` outside [0, 1).
        TypeError: a model or optimizer of the wrong type.

    >>> net = torch.nn.Linear(3, 1)
    >>> opt = torch.optim.SGD(net.parameters(), lr=0.1)
    >>> xs = [(torch.randn(8, 3), torch.randn(8, 1)) for _ in range(4)]
    >>> res = find_lr(net, opt, torch.nn.functional.mse_loss, xs, steps=20, probe_steps=10)
    >>> len(res.rates) <= 20 and opt.param_groups[0]["lr"] == 0.1
    True
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"find_lr: model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"find_lr: optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
        )
    if options is not None and settings:
        raise TypeError("find_lr: give options or keyword settings, not both")
    o = options if options is not None else RangeTestOptions.from_settings(**settings)
    if loss_fn is None and o.forward is None:
        raise ValueError("find_lr: give loss_fn, or forward=fn(model, batch) -> loss")
    fwd = o.forward if o.forward is not None else default_forward(loss_fn)  # type: ignore[arg-type]
    if not optimizer.param_groups or optimizer.param_groups[0]["lr"] == 0:
        base_lr = 1.0
    else:
        base_lr = float(optimizer.param_groups[0]["lr"])
    mults = [float(g["lr"]) / base_lr if base_lr else 1.0 for g in optimizer.param_groups]
    rates = _rates(o.start, o.end, o.steps, o.mode)
    loop = Loop(model, optimizer, fwd, o.scaler, o.autocast_dtype, mults, o.accumulation_steps)
    n_probes = probe_rule.PROBE_RUNS if o.rule == "probe" else 0

    snap = Snapshot(model, optimizer, o.scaler)
    losses: list[float] = []
    probes: tuple[tuple[float, float], ...] = ()
    start_loss = math.nan
    try:
        batches = cycle(data)
        if not n_probes:
            held_out = []
        elif o.val_data is not None:
            held_out = list(o.val_data)
            if not held_out:
                raise ValueError("find_lr: val_data yielded no batches")
        else:
            held_out = [next(batches) for _ in range(4)]
        bar = _progress(o.progress, o.steps + n_probes * o.probe_steps)
        diverged = _ramp(loop, (batches, rates), o, losses, bar)
        if n_probes:
            snap.restore(model, optimizer, o.scaler)
            start_loss = loop.evaluate(held_out)
            edge = float(rates[len(losses) - 1])
            probes = _run_probes(loop, snap, (batches, held_out), edge, o.probe_steps, bar)
        if bar is not None:
            bar.close()
    finally:
        snap.restore(model, optimizer, o.scaler)

    r = rates[: len(losses)]
    raw = np.asarray(losses, dtype=float)
    smoothed = _suggest.smooth(raw, o.smooth)
    try:
        sug = _suggest.suggest(
            r,
            raw,
            beta=o.smooth,
            diverge_factor=o.diverge_factor,
            skip_start=min(5, len(r) // 10),
            rule=o.rule if o.rule != "probe" else "minimum/10",
        )
    except ValueError as exc:
        if not probes:
            raise ValueError(
                f"find_lr: too few usable points ({len(losses)} updates before the loss diverged "
                f"at rate {r[-1]:.3g}); lower start={o.start!r} or raise steps={o.steps!r} ({exc})"
            ) from None
        sug = None
    alternatives = dict(sug.alternatives) if sug is not None else {}
    if probes:
        sug = probe_rule.choose_probe([p[0] for p in probes], [p[1] for p in probes], start_loss)
        alternatives["probe"] = sug.rate
    assert sug is not None
    return FinderResult(
        rates=r,
        losses=raw,
        smoothed=smoothed,
        suggestion=sug.rate,
        method=sug.method,
        confidence=sug.confidence,
        alternatives=alternatives,
        reasons=sug.reasons,
        diverged=diverged,
        probe_rates=np.asarray([p[0] for p in probes], dtype=float),
        probe_losses=np.asarray([p[1] for p in probes], dtype=float),
        updates=len(losses) + len(probes) * o.probe_steps,
    )


def _ramp(
    loop: Loop,
    data: tuple[Iterator[Batch], np.ndarray],
    o: RangeTestOptions,
    losses: list[float],
    bar: Any,
) -> bool:
    """The ramp: one update per rate of ``data[1]``, each loss appended to ``losses``; stops
    (returning True) at a non-finite loss or once the smoothed loss exceeds
    ``o.diverge_factor`` times its minimum."""
    batches, rates = data
    avg, best = 0.0, math.inf
    for i, rate in enumerate(rates):
        total = loop.update(batches, rate)
        losses.append(total)
        if bar is not None:
            bar.update(1)
        if not math.isfinite(total):
            return True
        avg = o.smooth * avg + (1 - o.smooth) * total
        smoothed = avg / (1 - o.smooth ** (i + 1))
        best = min(best, smoothed)
        if smoothed > o.diverge_factor * best:
            return True
    return False


def _run_probes(
    loop: Loop,
    snap: Snapshot,
    data: tuple[Iterator[Batch], list[Batch]],
    edge: float,
    steps: int,
    bar: Any,
) -> tuple[tuple[float, float], ...]:
    """Each probe rate's held-out loss after ``steps`` warmup-cosine updates from the initial
    model (restored from ``snap`` before each); inf for a probe that diverged. The coarse
    probes of :func:`lrkit.tune.probe_rule.probe_rates` run first, then the two rates a factor
    :data:`lrkit.tune.probe_rule.PROBE_REFINE` either side of the best of them."""
    batches, held_out = data

    def probe(rate: float) -> float:
        values = recipes.get("warmup-cosine", peak=rate, total_steps=steps)(np.arange(steps))
        loss = math.inf
        for k in range(steps):
            if not math.isfinite(loop.update(batches, float(values[k]))):
                break
            if bar is not None:
                bar.update(1)
        else:
            loss = loop.evaluate(held_out)
        snap.restore(loop.model, loop.optimizer, loop.scaler)
        return loss if math.isfinite(loss) else math.inf

    out = {rate: probe(rate) for rate in probe_rule.probe_rates(edge)}
    best = min(out, key=lambda r: (out[r], r))
    for rate in probe_rule.refine_rates(best):
        out[rate] = probe(rate)
    return tuple(sorted(out.items()))


def _progress(enabled: bool, total: int) -> Any:
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is optional
        return None
    return tqdm(total=total, desc="range test", leave=False)
