"""Cyclical learning rates (CLR, Smith 2017) rewritten with lrkit.

Today with torch::

    sched = torch.optim.lr_scheduler.CyclicLR(opt, base_lr=0.001, max_lr=0.05, step_size_up=100)

With lrkit (``triangular`` mode, same values)::

    sched = Scheduler(opt, lr=lrkit.cyclic(0.001, 0.05, steps_up=100))

Momentum is cycled the other way (high when lr is low, as CyclicLR's ``cycle_momentum``) by a
second schedule: the same triangle started half a cycle later.

Run: ``python examples/cyclical.py``
"""

import torch

import lrkit
from lrkit.torch import Scheduler

torch.manual_seed(0)
x = torch.randn(768, 8)
w = torch.randn(8, 1)
y = torch.tanh(x @ w)
batches = list(zip(x.split(32), y.split(32), strict=True))

model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
lr = lrkit.cyclic(0.001, 0.05, steps_up=2 * len(batches))
# momentum 0.95 when lr is lowest, 0.85 when it peaks: the triangle shifted by half a cycle
momentum = lrkit.cyclic(0.85, 0.95, steps_up=2 * len(batches))
sched = Scheduler(opt, lr=lr, momentum=lrkit.advance(momentum, steps=2 * len(batches)))

first = None
for epoch in range(12):
    total = 0.0
    for xb, yb in batches:
        loss = torch.nn.functional.mse_loss(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        total += loss.item() / len(batches)
    first = total if first is None else first
    g = opt.param_groups[0]
    print(f"epoch {epoch:2d}  lr {g['lr']:.4f}  momentum {g['momentum']:.3f}  loss {total:.4f}")
print(f"loss: start {first:.4f} -> final {total:.4f}")
