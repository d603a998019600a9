"""Progressive unfreezing, from the head down, saved and resumed with the scheduler.

A network pre-trained on one task (here: a random teacher) is fine-tuned on another. At first
only its new head trains; ``Unfreeze`` lets ``blocks.2`` train from 20% of the run, ``blocks.1``
from 40%, ``blocks.0`` from 60% (the stem stays frozen), each re-warmed over 10 steps while the
groups already training get a 1.3x bump that fades over 10 steps. Half way, the run is
"interrupted": model, optimizer and scheduler are saved, rebuilt from scratch and loaded; the
resumed run unfreezes the same groups at the same steps and ends bitwise equal to a run that
was never interrupted.

Run: python examples/finetune_unfreeze.py
"""

from __future__ import annotations

import copy

import torch
from torch import nn

import lrkit
from lrkit.torch import Scheduler, Unfreeze, param_groups

TOTAL = 200
torch.set_num_threads(1)  # tiny model: one thread is fastest


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(8, 32)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(32), nn.Linear(32, 32), nn.Tanh()) for _ in range(3)
        )
        self.head = nn.Linear(32, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        for b in self.blocks:
            h = h + b(h)
        return self.head(h)


def build() -> tuple[Net, torch.optim.Optimizer, Scheduler]:
    torch.manual_seed(0)
    model = Net()
    opt = torch.optim.AdamW(param_groups(model, layer_decay=0.7, weight_decay=0.01), lr=1.0)
    plan = Unfreeze(
        [("head", 0), ("blocks.2", "20%"), ("blocks.1", "40%"), ("blocks.0", "60%")],
        rewarm_steps=10,
        bump=1.3,
    )
    sched = Scheduler(
        opt,
        lr=lrkit.warmup(lrkit.cosine(3e-3, steps="95%"), steps="5%"),
        controllers=[plan],
        total_steps=TOTAL,
    )
    return model, opt, sched


teacher = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))


def run(model: Net, opt: torch.optim.Optimizer, sched: Scheduler, steps: int) -> list[float]:
    losses = []
    for _ in range(steps):
        g = torch.Generator().manual_seed(sched.last_epoch)  # data by step: resumable
        x = torch.randn(32, 8, generator=g)
        with torch.no_grad():
            y = teacher(x)
        loss = nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        k = sched.last_epoch
        if k in (1, 40, 41, 50, 80, 120, 200):
            lrs = {
                g["name"]: f"{g['lr']:.1e}" for g in opt.param_groups if "no_decay" not in g["name"]
            }
            print(f"step {k:3d}  loss {loss.item():.4f}  lr {lrs}")
    return losses


model, opt, sched = build()
losses = run(model, opt, sched, TOTAL)

model2, opt2, sched2 = build()
run(model2, opt2, sched2, TOTAL // 2)
ckpt = copy.deepcopy(
    {"model": model2.state_dict(), "opt": opt2.state_dict(), "sched": sched2.state_dict()}
)
print("-- interrupted at step", sched2.last_epoch, "and resumed from the checkpoint --")
model3, opt3, sched3 = build()
model3.load_state_dict(ckpt["model"])
opt3.load_state_dict(ckpt["opt"])
sched3.load_state_dict(ckpt["sched"])
run(model3, opt3, sched3, TOTAL - TOTAL // 2)
same = all(torch.equal(a, b) for a, b in zip(model.parameters(), model3.parameters(), strict=True))
print(f"resumed run bitwise equal to the uninterrupted one: {same}")
assert same
print(f"loss: start {losses[0]:.4f} -> final {sum(losses[-10:]) / 10:.4f}")
