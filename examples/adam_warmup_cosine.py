"""AdamW with linear warmup then cosine decay (the transformer recipe), with lrkit.

Today with transformers::

    sched = get_cosine_schedule_with_warmup(opt, num_warmup_steps=100, num_training_steps=1000)

With lrkit, lengths as fractions of the run, and weight decay scheduled too (zero for biases and
norms via a second param group with ``weight_decay_mult=0``)::

    sched = Scheduler(opt, lr=lrkit.warmup(lrkit.cosine(3e-3, steps="90%"), steps="10%"),
                      total_steps=1000)

Run: ``python examples/adam_warmup_cosine.py``
"""

import torch

import lrkit
from lrkit.torch import Scheduler

torch.manual_seed(0)
x = torch.randn(2048, 16)
y = (x[:, :4] * x[:, 4:8]).sum(1, keepdim=True)  # needs interactions: an MLP must learn them
batches = list(zip(x.split(64), y.split(64), strict=True))
epochs = 25
total = epochs * len(batches)

model = torch.nn.Sequential(
    torch.nn.Linear(16, 64), torch.nn.GELU(), torch.nn.LayerNorm(64), torch.nn.Linear(64, 1)
)
decay = [p for p in model.parameters() if p.ndim > 1]
no_decay = [p for p in model.parameters() if p.ndim <= 1]
opt = torch.optim.AdamW(
    [{"params": decay}, {"params": no_decay, "weight_decay_mult": 0.0}], lr=1e-3, weight_decay=0.0
)
sched = Scheduler(
    opt,
    lr=lrkit.warmup(lrkit.cosine(3e-3, 3e-5, steps="90%"), steps="10%"),
    weight_decay=0.01,
    total_steps=total,
)

first = None
for epoch in range(epochs):
    loss_sum = 0.0
    for xb, yb in batches:
        loss = torch.nn.functional.mse_loss(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        loss_sum += loss.item() / len(batches)
    first = loss_sum if first is None else first
    if epoch % 5 == 0 or epoch == epochs - 1:
        print(
            f"epoch {epoch:2d}  step {sched.last_epoch:4d}  lr {sched.get_last_lr()[0]:.2e}  loss {loss_sum:.4f}"
        )
print(f"loss: start {first:.4f} -> final {loss_sum:.4f}")
