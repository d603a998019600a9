"""The machinery of the range test (:func:`lrkit.tune.finder.find_lr`): endless batches, the
default forward, one update at a given rate (:class:`Loop`), the held-out loss, and a snapshot
of everything the test may change, restored bitwise (:class:`Snapshot`).
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

Batch = Any


def cycle(data: Iterable[Batch]) -> Iterator[Batch]:
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


def default_forward(loss_fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
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


class Snapshot:
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
class Loop:
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
