"""Reduce-on-plateau on top of a warmup-cosine schedule (torch cannot compose the two).

Trains a small MLP on a synthetic regression task; the validation loss is shown to the scheduler
once per epoch with ``scheduler.observe``; ``Plateau`` halves the learning rate when it stalls,
while the warmup and the cosine keep shaping it. Prints the lr and the reductions per epoch.

Run: python examples/controllers_plateau.py
"""

from __future__ import annotations

import torch

import lrkit
from lrkit.controllers import Plateau
from lrkit.torch import Scheduler

torch.manual_seed(0)
x = torch.randn(512, 8)
y = torch.tanh(x @ torch.randn(8, 1)) + 0.3 * torch.randn(512, 1)
x_val, y_val = x[96:], y[96:]  # 96 training samples: the model soon overfits
model = torch.nn.Sequential(torch.nn.Linear(8, 64), torch.nn.Tanh(), torch.nn.Linear(64, 1))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
plateau = Plateau(factor=0.5, patience=2, threshold=1e-2)
sched = Scheduler(
    opt,
    lr=lrkit.warmup(lrkit.cosine(1e-2, 1e-4, steps="95%"), steps="5%"),
    controllers=[plateau],
    total_steps=30 * 3,
)
for epoch in range(30):
    for i in range(0, 96, 32):
        loss = torch.nn.functional.mse_loss(model(x[i : i + 32]), y[i : i + 32])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    with torch.no_grad():
        val = torch.nn.functional.mse_loss(model(x_val), y_val).item()
    sched.observe(val)
    print(
        f"epoch {epoch:2d}  val {val:.4f}  lr {opt.param_groups[0]['lr']:.2e}  "
        f"scale {plateau.scale(sched.last_epoch):.3f}  reductions {plateau.num_reductions}"
    )
