"""Step decay, the classic ImageNet-style loop, rewritten with lrkit.

Today with torch::

    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.1)
    for epoch in range(30):
        for x, y in batches:
            ...; opt.step()
        sched.step()                       # once per epoch

With lrkit the schedule is written in epochs and the scheduler steps with the optimizer, so the
drop happens exactly at the epoch boundary whatever the batch count:

    sched = Scheduler(opt, lr=lrkit.step_decay(0.1, steps="10ep"), steps_per_epoch=len(batches))

Run: ``python examples/step_decay.py``
"""

import torch

import lrkit
from lrkit.torch import Scheduler

torch.manual_seed(0)
x = torch.randn(512, 10)
y = (x[:, :3].sum(1) > 0).long()  # a linearly separable-ish 2-class problem
batches = list(zip(x.split(64), y.split(64), strict=True))

model = torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
sched = Scheduler(
    opt, lr=lrkit.step_decay(0.1, steps="10ep", gamma=0.1), steps_per_epoch=len(batches)
)

first = None
for epoch in range(30):
    total = 0.0
    for xb, yb in batches:
        loss = torch.nn.functional.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        total += loss.item() / len(batches)
    first = total if first is None else first
    if epoch % 5 == 0 or epoch == 29:
        print(f"epoch {epoch:2d}  lr {sched.get_last_lr()[0]:.4f}  loss {total:.4f}")
print(f"loss: start {first:.4f} -> final {total:.4f}")
