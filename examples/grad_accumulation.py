"""Gradient accumulation: the schedule counts optimizer updates, not micro-batches.

With 4 micro-batches per update, a schedule written for 300 updates lasts 300 updates. Call
``sched.step()`` after each ``opt.step()``; calling it on every micro-batch would not move the
clock either (it moves by the updates applied since the last call), unlike torch's schedulers
which would run 4 times too fast.

Run: ``python examples/grad_accumulation.py``
"""

import torch

import lrkit
from lrkit.torch import Scheduler

torch.manual_seed(0)
x = torch.randn(2048, 12)
y = (x[:, :6].sum(1) > 0).long()
micro = list(zip(x.split(32), y.split(32), strict=True))  # 64 micro-batches per epoch
accum = 4
epochs = 8
updates = epochs * len(micro) // accum

model = torch.nn.Sequential(torch.nn.Linear(12, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
sched = Scheduler(opt, lr=lrkit.warmup(lrkit.cosine(0.1, 1e-4, steps=updates - 20), steps=20))

first = None
for epoch in range(epochs):
    loss_sum = 0.0
    for i, (xb, yb) in enumerate(micro):
        loss = torch.nn.functional.cross_entropy(model(xb), yb)
        (loss / accum).backward()
        loss_sum += loss.item() / len(micro)
        if (i + 1) % accum == 0:
            opt.step()
            opt.zero_grad()
            sched.step()
    first = loss_sum if first is None else first
    if epoch % 2 == 0 or epoch == epochs - 1:
        print(
            f"epoch {epoch}  updates {sched.last_epoch:3d}/{updates}  lr {sched.get_last_lr()[0]:.4f}  loss {loss_sum:.4f}"
        )
print(f"loss: start {first:.4f} -> final {loss_sum:.4f}")
