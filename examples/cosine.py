"""Cosine annealing rewritten with lrkit.

Today with torch::

    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * len(batches), eta_min=1e-4)

With lrkit (the same values; past the end lrkit holds ``end`` where torch's cosine rises again)::

    sched = Scheduler(opt, lr=lrkit.cosine(0.05, 1e-4, steps="100%"), total_steps=epochs * len(batches))

Run: ``python examples/cosine.py``
"""

import torch

import lrkit
from lrkit.torch import Scheduler

torch.manual_seed(0)
x = torch.rand(1024, 1) * 6 - 3
y = torch.sin(2 * x) + 0.05 * torch.randn_like(x)  # 1-D regression
batches = list(zip(x.split(128), y.split(128), strict=True))
epochs = 40

model = torch.nn.Sequential(torch.nn.Linear(1, 64), torch.nn.Tanh(), torch.nn.Linear(64, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
sched = Scheduler(opt, lr=lrkit.cosine(0.05, 1e-4, steps="100%"), total_steps=epochs * len(batches))

first = None
for epoch in range(epochs):
    total = 0.0
    for xb, yb in batches:
        loss = torch.nn.functional.mse_loss(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        total += loss.item() / len(batches)
    first = total if first is None else first
    if epoch % 10 == 0 or epoch == epochs - 1:
        print(f"epoch {epoch:2d}  lr {sched.get_last_lr()[0]:.5f}  loss {total:.4f}")
print(f"loss: start {first:.4f} -> final {total:.4f}")
