"""Mixed precision with a GradScaler: skipped steps do not advance the schedule.

When the scaled gradients overflow, ``scaler.step(opt)`` skips ``opt.step()`` and lowers the
scale. torch's schedulers still advance on ``sched.step()`` (and warn that they were stepped
before the optimizer); lrkit's clock counts updates really applied, so the warmup is not cut
short by the skipped steps. The loop is the usual one::

    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    sched.step()          # after every scaler.step; the clock moves only if opt.step() ran

This runs float16 autocast on the CPU with DeepSpeed's default initial loss scale, 2**32: the
first steps overflow for real and are skipped while the scaler halves its scale, as happens at
the start of float16 training on GPUs.

Run: ``python examples/mixed_precision.py``
"""

import torch

import lrkit
from lrkit.torch import Scheduler

torch.manual_seed(0)
x = torch.randn(1024, 32)
y = torch.sin(x[:, :8].sum(1, keepdim=True))
batches = list(zip(x.split(64), y.split(64), strict=True))
epochs = 10

model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
scaler = torch.amp.GradScaler("cpu", init_scale=2.0**32)
sched = Scheduler(opt, lr=lrkit.warmup(lrkit.cosine(4e-3, 1e-5, steps=125), steps=20))

first, calls = None, 0
for epoch in range(epochs):
    loss_sum = 0.0
    for xb, yb in batches:
        with torch.autocast("cpu", dtype=torch.float16):
            loss = torch.nn.functional.mse_loss(model(xb).float(), yb)
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        sched.step()
        calls += 1
        loss_sum += loss.item() / len(batches)
    first = loss_sum if first is None else first
    if epoch % 3 == 0 or epoch == epochs - 1 or epoch == 1:
        print(
            f"epoch {epoch:2d}  updates {sched.last_epoch:3d} of {calls:3d} steps  "
            f"scale {scaler.get_scale():.1e}  lr {sched.get_last_lr()[0]:.2e}  loss {loss_sum:.4f}"
        )
print(f"skipped {calls - sched.last_epoch} steps on overflow; the schedule did not move on them")
print(f"loss: start {first:.4f} -> final {loss_sum:.4f}")
