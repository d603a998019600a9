"""The divergence guard: a NaN loss and an exploding gradient are rolled back, training goes on.

A small MLP trains with SGD+momentum on a warmup-cosine schedule. At step 120 the loss is made
NaN; at step 250 the gradients are multiplied by 1e12. Each time the guard restores the last good
snapshot (model, optimizer, scheduler, controllers), halves the learning rate and re-warms it.
Compares the final loss with an unfaulted run, then saves a checkpoint with the guard's state and
resumes it into fresh objects.

Run: python examples/controllers_guard.py
"""

from __future__ import annotations

import torch

import lrkit
from lrkit.torch import Scheduler
from lrkit.torch.guard import DivergenceGuard


def train(faults: bool) -> tuple[float, list[dict]]:
    torch.manual_seed(0)
    x = torch.randn(512, 8)
    y = torch.tanh(x @ torch.randn(8, 1))
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    guard = DivergenceGuard(model, opt, snapshot_every=20, rewarm_steps=20)
    sched = Scheduler(
        opt,
        lr=lrkit.warmup(lrkit.cosine(0.05, 1e-3, steps=380), steps=20),
        controllers=[guard.controller],
    )
    guard.attach(sched)
    g = torch.Generator().manual_seed(1)
    done = set()
    while sched.last_epoch < 400:
        k = sched.last_epoch
        idx = torch.randint(0, 512, (32,), generator=g)
        loss = torch.nn.functional.mse_loss(model(x[idx]), y[idx])
        if faults and k == 120 and "nan" not in done:
            done.add("nan")
            loss = loss * float("nan")
        loss.backward()
        if faults and k == 250 and "explode" not in done:
            done.add("explode")
            for p in model.parameters():
                p.grad.mul_(1e12)
        if guard.check(loss):
            opt.step()
            sched.step()
        opt.zero_grad()
    with torch.no_grad():
        return torch.nn.functional.mse_loss(model(x), y).item(), guard.recoveries


def train_and_resume() -> tuple[float, int]:
    """Train 150 steps, save a checkpoint (guard included), resume into fresh objects."""
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    guard = DivergenceGuard(model, opt, snapshot_every=20)
    sched = Scheduler(opt, lr=lrkit.cosine(0.05, 1e-3, steps=300), controllers=[guard.controller])
    guard.attach(sched)
    x, y = torch.randn(64, 8), torch.randn(64, 1)
    for _ in range(150):
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        if guard.check(loss):
            opt.step()
            sched.step()
        opt.zero_grad()
    ckpt = {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "guard": guard.state_dict(),
    }
    model2 = torch.nn.Linear(8, 1)
    opt2 = torch.optim.SGD(model2.parameters(), lr=0.01)
    guard2 = DivergenceGuard(model2, opt2, snapshot_every=20)
    sched2 = Scheduler(
        opt2, lr=lrkit.cosine(0.05, 1e-3, steps=300), controllers=[guard2.controller]
    )
    guard2.attach(sched2)  # attach before loading: the snapshot holds the scheduler's state
    model2.load_state_dict(ckpt["model"])
    opt2.load_state_dict(ckpt["optimizer"])
    sched2.load_state_dict(ckpt["scheduler"])
    guard2.load_state_dict(ckpt["guard"])
    return len(guard2.state_dict()["losses"]), guard2.snapshot_step or 0


clean, _ = train(False)
faulted, recoveries = train(True)
for r in recoveries:
    print(
        f"recovered: {r['reason']} at step {r['step']} -> back to the snapshot of step {r['snapshot_step']}"
    )
print(f"final loss: unfaulted {clean:.4f}, with two faults and the guard {faulted:.4f}")
window, snap = train_and_resume()
print(f"resumed guard: {window} losses in its window, last snapshot at step {snap}")
