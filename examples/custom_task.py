"""A template for your own task in ``lrkit find`` / ``lrkit compare``.

    lrkit find examples/custom_task.py:make_task
    lrkit compare examples/custom_task.py:make_task --seeds 3 --jobs 2
    lrkit compare my_package.my_module:make_task        # an importable module works too

The function takes no argument and returns a dict (or an ``lrkit.tune.tasks.Task``):

- ``model``: ``() -> nn.Module``; lrkit calls ``torch.manual_seed(seed)`` first, so every
  schedule starts from the same weights for a given seed;
- ``optimizer``: ``(params, lr) -> Optimizer`` (the rate is then driven by the schedule);
- ``loss``: ``(outputs, targets) -> scalar tensor``;
- ``train``, ``val``: ``(inputs, targets)`` tensor pairs;
- optional: ``batch_size`` (64), ``steps`` (300: the budget per run), ``accuracy`` (False:
  report accuracy for classification), ``eval_every`` (steps between validations, ~5% of
  ``steps``), ``name``.

Here: a regression of a noisy sine, an MLP, AdamW.
"""

from __future__ import annotations

import torch
from torch import nn


def make_task() -> dict:
    """A noisy-sine regression task: 2000 points, 80/20 split, MLP 1-64-64-1, AdamW."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2000, 1, generator=g) * 6 - 3
    y = torch.sin(2 * x) + 0.1 * torch.randn(2000, 1, generator=g)
    return {
        "name": "sine",
        "model": lambda: nn.Sequential(
            nn.Linear(1, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 1)
        ),
        "optimizer": lambda params, lr: torch.optim.AdamW(params, lr=lr),
        "loss": nn.functional.mse_loss,
        "train": (x[:1600], y[:1600]),
        "val": (x[1600:], y[1600:]),
        "batch_size": 64,
        "steps": 400,
    }
