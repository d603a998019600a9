"""Manual restart and bump: new data arrives mid-run, layers are unfrozen.

At step 300 a second dataset is added: ``restart(to=50, peak_factor=0.5, stretch=2)`` replays
the schedule from step 50 at half the peak and half the speed (a mild raise, then a slower
decay), and Adam's moments are reset. At step 450 the first layer is unfrozen: ``bump`` raises
the lr 1.5x and lets it return to the schedule over 100 steps. ``RestartOnPlateau`` would do the
restart by itself when the training loss stalls.

Run: python examples/controllers_restarts.py
"""

from __future__ import annotations

import torch

import lrkit
from lrkit.controllers import Restarts
from lrkit.torch import Scheduler
from lrkit.torch.guard import apply_controller_events

torch.manual_seed(0)
w1, w2 = torch.randn(8, 1), torch.randn(8, 1)
model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
model[0].requires_grad_(False)  # frozen at first
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
restarts = Restarts(reset_optimizer=True)
sched = Scheduler(
    opt, lr=lrkit.warmup(lrkit.cosine(1e-2, 1e-4, steps=550), steps=50), controllers=[restarts]
)
for step in range(600):
    if step == 300:
        restarts.restart(to=50, peak_factor=0.5, stretch=2.0)
        print(f"step {step}: new data -> {apply_controller_events(opt, sched)}")
    if step == 450:
        model[0].requires_grad_(True)
        restarts.bump(factor=1.5, steps=100, reset_optimizer=False)
        print(f"step {step}: unfrozen -> {apply_controller_events(opt, sched)}")
    x = torch.randn(32, 8)
    y = torch.tanh(x @ (w1 if step < 300 else w2))
    loss = torch.nn.functional.mse_loss(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    if step % 50 == 0 or step in (301, 451):
        print(f"step {step:3d}  loss {loss.item():.4f}  lr {opt.param_groups[0]['lr']:.2e}")
