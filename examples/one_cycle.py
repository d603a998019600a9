"""One-cycle training (Smith & Topin 2018): lr up then down, momentum down then up.

Today with torch::

    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=total)  # cycles momentum

With lrkit the two curves are two schedules, so either can be changed or plotted on its own
(``momentum=`` drives SGD's momentum, or Adam's ``betas[0]``)::

    sched = Scheduler(opt, lr=lrkit.one_cycle(0.1, steps=total),
                      momentum=lrkit.one_cycle_momentum(steps=total))

Run: ``python examples/one_cycle.py``
"""

import torch

import lrkit
from lrkit.torch import Scheduler

torch.manual_seed(0)
n = 1024
x = torch.randn(n, 2)
y = ((x[:, 0] ** 2 + x[:, 1] ** 2) < 1.2).long()  # a disc: not linearly separable
batches = list(zip(x.split(64), y.split(64), strict=True))
epochs = 20
total = epochs * len(batches)

model = torch.nn.Sequential(torch.nn.Linear(2, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
sched = Scheduler(
    opt,
    lr=lrkit.one_cycle(0.2, steps=total, pct_start=0.3),
    momentum=lrkit.one_cycle_momentum(steps=total, pct_start=0.3),
)

first = None
for epoch in range(epochs):
    loss_sum = 0.0
    for xb, yb in batches:
        loss = torch.nn.functional.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        loss_sum += loss.item() / len(batches)
    first = loss_sum if first is None else first
    if epoch % 4 == 0 or epoch == epochs - 1:
        g = opt.param_groups[0]
        print(
            f"epoch {epoch:2d}  lr {g['lr']:.4f}  momentum {g['momentum']:.3f}  loss {loss_sum:.4f}"
        )
accuracy = (model(x).argmax(1) == y).float().mean().item()
print(f"train accuracy {accuracy:.3f}")
print(f"loss: start {first:.4f} -> final {loss_sum:.4f}")
