"""The learning-rate range test on a PyTorch model (Smith, 2017; fastai's ``lr_find``).

The rate grows from ``start`` to ``end`` over ``steps`` optimizer updates, one batch each; the
losses are smoothed and analysed by :mod:`lrkit.tune.rules`. The model (parameters, buffers,
gradients, train/eval modes), the optimizer (state and hyperparameters), the grad scaler and the
RNG states (torch CPU and CUDA, numpy, ``random``) are restored bitwise afterwards, whatever
happened: divergence, an exception from the user's code or ``KeyboardInterrupt``.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch

from lrkit.tune import recipes
from lrkit.tune import rules as _suggest
from lrkit.tune.range_test import FinderResult

Batch = Any

__all__ = ["FIND_RULES", "PROBE_STEPS", "FinderResult", "find_lr"]

#: The rules :func:`find_lr` accepts: the probes (default) or one of fastai's ramp rules.
FIND_RULES = ("probe", *_suggest.RULES)

#: Updates per probe run (:data:`lrkit.tune.rules.PROBE_STEPS`).
PROBE_STEPS = _suggest.PROBE_STEPS


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


def _cycle(data: Iterable[Batch]) -> Iterator[Batch]:
    """Iterate ``data`` again and again (a DataLoader is re-iterated, so it reshuffles)."""
    while True:
        empty = True
        for batch in data:
            empty = False
            yield batch
        if empty:
            raise ValueError(
                "find_lr: data yielded no batches (a used-up generator cannot be re-iterated: "
                "pass a list, a DataLoader or an endless generator)"
            )


def _default_forward(loss_fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    def forward(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
        if isinstance(batch, (tuple, list)) and len(batch) == 2:
            return loss_fn(model(batch[0]), batch[1])
        if isinstance(batch, dict) and "input" in batch and "target" in batch:
            return loss_fn(model(batch["input"]), batch["target"])
        raise TypeError(
            "find_lr: a batch must be an (inputs, targets) pair or a dict with 'input' and "
            f"'target'; pass forward=fn(model, batch) -> loss for others, got {type(batch).__name__}"
        )

    return forward


class _Snapshot:
    """Everything the range test may change, copied once, restored bitwise."""

    def __init__(
        self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scaler: Any
    ) -> None:
        self.model_state = copy.deepcopy(model.state_dict())
        self.modes = [m.training for m in model.modules()]
        self.grads = [
            None if p.grad is None else p.grad.detach().clone() for p in model.parameters()
        ]
        self.opt_state = copy.deepcopy(optimizer.state_dict())
        self.scaler_state = copy.deepcopy(scaler.state_dict()) if scaler is not None else None
        self.torch_rng = torch.get_rng_state()
        self.cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
        self.np_rng = np.random.get_state()
        self.py_rng = random.getstate()

    def restore(
        self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scaler: Any
    ) -> None:
        with torch.no_grad():
            model.load_state_dict(self.model_state)
        for m, mode in zip(model.modules(), self.modes, strict=True):
            m.training = mode
        for p, g in zip(model.parameters(), self.grads, strict=True):
            p.grad = None if g is None else g.clone()
        # load_state_dict keeps the given tensors when dtype and device match: hand it a copy,
        # or the next run's in-place updates would change the snapshot (restored again later)
        optimizer.load_state_dict(copy.deepcopy(self.opt_state))
        if scaler is not None and self.scaler_state is not None:
            scaler.load_state_dict(self.scaler_state)
        torch.set_rng_state(self.torch_rng)
        if self.cuda_rng is not None:
            torch.cuda.set_rng_state_all(self.cuda_rng)
        np.random.set_state(self.np_rng)
        random.setstate(self.py_rng)


@dataclass(frozen=True)
class _Loop:
    """How one update of the range test runs: the model, its optimizer, the loss of a batch,
    the grad scaler and autocast dtype, the groups' rate multipliers and the batches per
    update."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    forward: Callable[[torch.nn.Module, Batch], torch.Tensor]
    scaler: Any
    autocast_dtype: torch.dtype | None
    mults: list[float]
    accumulation: int

    def loss(self, batch: Batch) -> torch.Tensor:
        """The loss of one batch (under autocast when asked)."""
        if self.autocast_dtype is None:
            return self.forward(self.model, batch)
        device_type = next((p.device.type for p in self.model.parameters()), "cpu")
        with torch.autocast(device_type=device_type, dtype=self.autocast_dtype):
            return self.forward(self.model, batch)

    def update(self, batches: Iterator[Batch], rate: float) -> float:
        """One optimizer update at ``rate``; its loss (mean over the accumulated batches). A
        non-finite loss is returned without stepping."""
        for g, m in zip(self.optimizer.param_groups, self.mults, strict=True):
            g["lr"] = float(rate) * m
        self.optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for _ in range(self.accumulation):
            loss = self.loss(next(batches))
            scaled = loss.float() / self.accumulation
            (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
            total += float(loss.detach().float()) / self.accumulation
        if not math.isfinite(total):
            return total
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        return total

    def evaluate(self, batches: list[Batch]) -> float:
        """Mean loss over ``batches`` in eval mode, without gradients (modes restored)."""
        modes = [m.training for m in self.model.modules()]
        self.model.eval()
        try:
            with torch.no_grad():
                values = [float(self.loss(b).detach().float()) for b in batches]
        finally:
            for m, mode in zip(self.model.modules(), modes, strict=True):
                m.training = mode
        return math.fsum(values) / len(values)


def find_lr(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[..., torch.Tensor] | None,
    data: Iterable[Batch],
    *,
    start: float = 1e-7,
    end: float = 10.0,
    steps: int = 100,
    mode: str = "exp",
    accumulation_steps: int = 1,
    scaler: Any = None,
    autocast_dtype: torch.dtype | None = None,
    diverge_factor: float = 4.0,
    smooth: float = 0.98,
    forward: Callable[[torch.nn.Module, Batch], torch.Tensor] | None = None,
    rule: str = "probe",
    probe_steps: int = PROBE_STEPS,
    val_data: Iterable[Batch] | None = None,
    progress: bool = False,
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
    :data:`lrkit.tune.rules.PROBES` short runs of ``probe_steps`` updates each follow the
    ``warmup-cosine`` recipe at the rates :func:`lrkit.tune.rules.probe_rates` puts below the
    edge (a factor 4 apart, the highest at edge / 2), then two a factor 2 either side of the
    best; each is scored by its loss on the same held-out batches in eval mode (``val_data``,
    a finite iterable of batches, read once; by default the first 4 batches of ``data``, set
    aside: on a small data set they recur in training, so pass validation batches where you
    have them, as ``lrkit compare`` does), and the suggestion is the best
    probe's rate (:func:`lrkit.tune.rules.choose_probe`), a peak for a warmup-cosine schedule of
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
    start = _check_positive("start", start)
    end = _check_positive("end", end)
    if start >= end:
        raise ValueError(f"find_lr: start must be < end, got start={start!r}, end={end!r}")
    steps = _check_int("steps", steps, 3)
    probe_steps = _check_int("probe_steps", probe_steps, 5)
    accumulation_steps = _check_int("accumulation_steps", accumulation_steps, 1)
    if mode not in ("exp", "linear"):
        raise ValueError(f"find_lr: mode must be 'exp' or 'linear', got mode={mode!r}")
    if (
        isinstance(diverge_factor, bool)
        or not isinstance(diverge_factor, Real)
        or diverge_factor <= 1
    ):
        raise ValueError(
            f"find_lr: diverge_factor must be > 1, got diverge_factor={diverge_factor!r}"
        )
    _suggest._beta("find_lr", smooth)
    if rule not in FIND_RULES:
        raise ValueError(f"find_lr: rule must be one of {FIND_RULES}, got rule={rule!r}")
    if loss_fn is None and forward is None:
        raise ValueError("find_lr: give loss_fn, or forward=fn(model, batch) -> loss")
    fwd = forward if forward is not None else _default_forward(loss_fn)  # type: ignore[arg-type]
    if not optimizer.param_groups or optimizer.param_groups[0]["lr"] == 0:
        base_lr = 1.0
    else:
        base_lr = float(optimizer.param_groups[0]["lr"])
    mults = [float(g["lr"]) / base_lr if base_lr else 1.0 for g in optimizer.param_groups]
    rates = _rates(start, end, steps, mode)
    loop = _Loop(model, optimizer, fwd, scaler, autocast_dtype, mults, accumulation_steps)
    n_probes = _suggest.PROBE_RUNS if rule == "probe" else 0

    snap = _Snapshot(model, optimizer, scaler)
    losses: list[float] = []
    diverged = False
    probes: tuple[tuple[float, float], ...] = ()
    start_loss = math.nan
    try:
        batches = _cycle(data)
        if not n_probes:
            held_out = []
        elif val_data is not None:
            held_out = list(val_data)
            if not held_out:
                raise ValueError("find_lr: val_data yielded no batches")
        else:
            held_out = [next(batches) for _ in range(4)]
        bar = _progress(progress, steps + n_probes * probe_steps)
        avg, best = 0.0, math.inf
        for i, rate in enumerate(rates):
            total = loop.update(batches, rate)
            losses.append(total)
            if bar is not None:
                bar.update(1)
            if not math.isfinite(total):
                diverged = True
                break
            avg = smooth * avg + (1 - smooth) * total
            s = avg / (1 - smooth ** (i + 1))
            best = min(best, s)
            if s > diverge_factor * best:
                diverged = True
                break
        if n_probes:
            snap.restore(model, optimizer, scaler)
            start_loss = loop.evaluate(held_out)
            edge = float(rates[len(losses) - 1])
            probes = _run_probes(loop, snap, (batches, held_out), edge, probe_steps, bar)
        if bar is not None:
            bar.close()
    finally:
        snap.restore(model, optimizer, scaler)

    r = rates[: len(losses)]
    raw = np.asarray(losses, dtype=float)
    smoothed = _suggest.smooth(raw, smooth)
    try:
        sug = _suggest.suggest(
            r,
            raw,
            beta=smooth,
            diverge_factor=diverge_factor,
            skip_start=min(5, len(r) // 10),
            rule=rule if rule != "probe" else "minimum/10",
        )
    except ValueError as exc:
        if not probes:
            raise ValueError(
                f"find_lr: too few usable points ({len(losses)} updates before the loss diverged "
                f"at rate {r[-1]:.3g}); lower start={start!r} or raise steps={steps!r} ({exc})"
            ) from None
        sug = None
    alternatives = dict(sug.alternatives) if sug is not None else {}
    if probes:
        sug = _probe_suggestion(probes, start_loss, alternatives)
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
        updates=len(losses) + len(probes) * probe_steps,
    )


def _run_probes(
    loop: _Loop,
    snap: _Snapshot,
    data: tuple[Iterator[Batch], list[Batch]],
    edge: float,
    steps: int,
    bar: Any,
) -> tuple[tuple[float, float], ...]:
    """Each probe rate's held-out loss after ``steps`` warmup-cosine updates from the initial
    model (restored from ``snap`` before each); inf for a probe that diverged. The coarse
    probes of :func:`lrkit.tune.rules.probe_rates` run first, then the two rates a factor
    :data:`lrkit.tune.rules.PROBE_REFINE` either side of the best of them."""
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

    out = {rate: probe(rate) for rate in _suggest.probe_rates(edge)}
    best = min(out, key=lambda r: (out[r], r))
    for rate in _suggest.refine_rates(best):
        out[rate] = probe(rate)
    return tuple(sorted(out.items()))


def _probe_suggestion(
    probes: tuple[tuple[float, float], ...], start_loss: float, ramp_rules: dict[str, float]
) -> _suggest.Suggestion:
    """The probe rule's suggestion, with the ramp's rules kept as alternatives."""
    rates = [p[0] for p in probes]
    sug = _suggest.choose_probe(rates, [p[1] for p in probes], start_loss)
    ramp_rules["probe"] = sug.rate
    return sug


def _progress(enabled: bool, total: int) -> Any:
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is optional
        return None
    return tqdm(total=total, desc="range test", leave=False)
