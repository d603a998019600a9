"""Fine-tune a pre-trained network with layer-wise rate decay and no weight decay on norms/biases.

A small residual MLP is pre-trained on digits 0-4 (sklearn's 8x8 digits, offline), then given a
new head and fine-tuned on digits 5-9: ``param_groups(model, layer_decay=0.5,
weight_decay=0.01)`` makes one named group per level (``stem``, ``blocks.N``, ``head``), the head
at x1 and each level below at half the one above; ``describe_groups`` prints them; the
Scheduler drives every group with one schedule times its ``lr_mult``, and ``group_mult`` refers
to groups by name.

Run: python examples/finetune_param_groups.py
"""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits
from torch import nn

import lrkit
from lrkit.torch import Scheduler, describe_groups, param_groups

torch.manual_seed(0)
torch.set_num_threads(1)
digits = load_digits()
X = torch.tensor(digits.data / 16.0, dtype=torch.float32)
Y = torch.tensor(digits.target)


class Block(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.norm, self.fc = nn.LayerNorm(d), nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.relu(self.fc(self.norm(x)))


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(64, 64)
        self.blocks = nn.ModuleList(Block(64) for _ in range(3))
        self.head = nn.Linear(64, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        for b in self.blocks:
            h = b(h)
        return self.head(h)


def train(model: Net, opt: torch.optim.Optimizer, sched: Scheduler, x, y, epochs: int) -> list:
    losses = []
    for _ in range(epochs):
        for i in torch.randperm(len(y)).split(32):
            loss = nn.functional.cross_entropy(model(x[i]), y[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
    return losses


old, new = Y < 5, Y >= 5
model = Net()
opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
train(model, opt, Scheduler(opt, lr=lrkit.cosine(3e-3, steps=15 * 29)), X[old], Y[old], 15)

model.head = nn.Linear(64, 5)  # a new head for the new task
groups = param_groups(model, layer_decay=0.5, weight_decay=0.01)
print(describe_groups(groups))
opt = torch.optim.AdamW(groups, lr=1.0)  # the Scheduler writes lr = schedule * lr_mult
sched = Scheduler(
    opt,
    lr=lrkit.warmup(lrkit.cosine(3e-3, steps="90%"), steps="10%"),
    total_steps=5 * 29,
    group_mult={"blocks.0": 0.5},  # by name: both of blocks.0's groups (decay and no-decay)
)
print(
    "lr per group at step 20:",
    {
        g["name"]: f"{v:.2e}"
        for g, v in zip(opt.param_groups, sched.values_at(20)["lr"], strict=True)
    },
)
losses = train(model, opt, sched, X[new], Y[new] - 5, 5)
print(f"loss: start {losses[0]:.4f} -> final {sum(losses[-10:]) / 10:.4f}")
