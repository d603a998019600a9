"""Moving a schedule to an 8x larger batch: the linear rule with a warmup, same epochs.

A schedule tuned for batch 16 (1 epoch of warmup, then cosine, 10 epochs of 1,200 digits) is
moved to batch 128 with ``scale_for_batch(..., dataset_size=1200)``: the rate x8 (the linear
rule, Goyal et al. 2017), the warmup stretched and the run fit to the same 10 epochs (75 -> 10
steps per epoch). A batch beyond ~8k with the linear rule, or a x8 rate without any warmup,
gets a ``BatchScalingWarning``.

Run: python examples/finetune_batch_scaling.py
"""

from __future__ import annotations

import math
import warnings

import torch
from sklearn.datasets import load_digits
from torch import nn

import lrkit
from lrkit.torch import Scheduler

torch.manual_seed(0)
torch.set_num_threads(1)
digits = load_digits()
X = torch.tensor(digits.data[:1200] / 16.0, dtype=torch.float32)
Y = torch.tensor(digits.target[:1200])

base = lrkit.warmup(lrkit.cosine(0.05, steps=9 * 75), steps=75)  # batch 16: 75 steps/epoch
big = lrkit.scale_for_batch(base, base_batch=16, batch=128, dataset_size=len(Y))
print(f"batch 16 : {base.duration} steps, peak {base(75):.3f}")
print(
    f"batch 128: {big.duration:g} steps ({math.ceil(len(Y) / 128)} per epoch), peak "
    f"{max(big(t) for t in range(int(big.duration))):.3f}"
)

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    lrkit.scale_for_batch(base, base_batch=256, batch=16384)
    lrkit.scale_for_batch(lrkit.cosine(0.1, steps=100), base_batch=16, batch=128)
for w in caught:
    print(f"{w.category.__name__}: {str(w.message)[:100]}...")

model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
opt = torch.optim.SGD(model.parameters(), lr=1.0, momentum=0.9)
sched = Scheduler(opt, lr=big, total_steps=math.ceil(big.duration))
losses = []
for _epoch in range(10):
    for i in torch.randperm(len(Y)).split(128):
        loss = nn.functional.cross_entropy(model(X[i]), Y[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
print(f"loss: start {losses[0]:.4f} -> final {sum(losses[-5:]) / 5:.4f}")
