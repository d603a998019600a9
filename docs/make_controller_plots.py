"""Draw one PNG per controller behaviour into docs/img/ (matplotlib, Agg backend).

The values are computed with the controllers' protocol (clock chain, product of scales, floor),
exactly as lrkit.torch.Scheduler applies them; the guard plot comes from a real training run.

Run: python docs/make_controller_plots.py
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import lrkit
from lrkit.controllers import Plateau, RestartOnPlateau, RestartOnShift, Restarts

OUT = Path(__file__).parent / "img"


def _value(schedule, ctls, k):
    c = k
    for ctl in ctls:
        c = ctl.clock(c)
    v = schedule(c) * math.prod(ctl.scale(k) for ctl in ctls)
    floors = [ctl.floor for ctl in ctls if ctl.floor is not None]
    return max(v, max(floors)) if floors else v


def _save(fig, name):
    fig.tight_layout()
    fig.savefig(OUT / name, dpi=110)
    plt.close(fig)


def plot_plateau():
    s = lrkit.warmup(lrkit.cosine(1e-3, 1e-5, steps=900), steps=100)
    p = Plateau(factor=0.5, patience=3, threshold=1e-3)
    metric, lrs = [], []
    for k in range(1000):
        if k % 20 == 0:
            m = 1.0 / (1 + k / 100) if k < 300 else 0.25 + 0.01 * math.sin(k)
            p.observe(k, m)
            metric.append((k, m))
        lrs.append(_value(s, [p], k))
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot([s(k) for k in range(1000)], "--", color="grey", label="schedule alone")
    ax.plot(lrs, label="with Plateau(factor=0.5, patience=3)")
    ax2 = ax.twinx()
    ax2.plot(*zip(*metric, strict=True), ".", color="C3", label="validation metric")
    ax.set(xlabel="step", ylabel="lr", title="Plateau on warmup + cosine")
    ax.legend(loc="upper right")
    ax2.legend(loc="center right")
    _save(fig, "controllers_plateau.png")


def plot_rules():
    seq = [1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for i, rule in enumerate(("torch", "keras", "optax", "fastai")):
        p = Plateau(
            factor=0.5,
            patience=2,
            threshold=0.0,
            eps=0.0,
            rule=rule,
            cooldown=0 if rule == "fastai" else 1,
        )
        vals = []
        for k, m in enumerate(seq):
            p.observe(k, m)
            vals.append(p.scale(k) * (1 + 0.02 * i))
        ax.step(range(len(seq)), vals, where="post", label=f"rule={rule!r}")
    ax.set(
        xlabel="evaluation (metric 1.0 then 0.9 forever)",
        ylabel="scale (offset for clarity)",
        title="patience=2, cooldown=1 (fastai: none): when each rule reduces",
    )
    ax.legend()
    _save(fig, "controllers_rules.png")


def plot_restarts():
    s = lrkit.warmup(lrkit.cosine(1e-3, 1e-5, steps=900), steps=100)
    r = Restarts()
    r.restart(to=50, at=500, peak_factor=0.5, stretch=2.0)
    r.bump(factor=1.5, steps=100, at=800)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot([s(k) for k in range(1000)], "--", color="grey", label="schedule alone")
    ax.plot(
        [_value(s, [r], k) for k in range(1000)],
        label="restart(to=50, peak_factor=0.5, stretch=2) at 500; bump(1.5, 100) at 800",
    )
    ax.set(xlabel="step", ylabel="lr", title="Manual restart and bump")
    ax.legend(fontsize=8)
    _save(fig, "controllers_restarts.png")


def plot_restart_on_plateau():
    s = lrkit.cosine(1e-3, 1e-5, steps=600)
    r = RestartOnPlateau(patience=4, threshold=1e-2, to=0, peak_decay=0.7)
    rnd = random.Random(0)
    lrs, metric = [], []
    level = 1.0
    for k in range(1200):
        if k % 10 == 0:
            level = max(0.3, level * 0.97)
            m = level * (1 + 0.01 * rnd.gauss(0, 1))
            r.observe(k, m)
            metric.append((k, m))
        lrs.append(_value(s, [r], k))
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(lrs, label="cosine with RestartOnPlateau(patience=4, peak_decay=0.7)")
    ax2 = ax.twinx()
    ax2.plot(*zip(*metric, strict=True), ".", color="C3", ms=3, label="metric")
    ax.set(xlabel="step", ylabel="lr", title="Warm restarts when progress stalls")
    ax.legend(loc="upper right", fontsize=8)
    _save(fig, "controllers_restart_on_plateau.png")


def plot_shift():
    s = lrkit.cosine(0.05, 0.0005, steps=600)
    r = RestartOnShift("cusum", to=60)
    rnd = random.Random(1)
    losses, lrs = [], []
    for k in range(600):
        base = 0.2 + 0.8 * math.exp(-k / 60) if k < 420 else 0.3 + 0.8 * math.exp(-(k - 420) / 40)
        x = base * (1 + 0.1 * rnd.gauss(0, 1))
        r.observe(k, x)
        losses.append(x)
        lrs.append(_value(s, [r], k))
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(lrs, label=f"lr; restart at {r.shift_steps}")
    ax.plot([s(k) for k in range(600)], "--", color="grey", label="schedule alone")
    ax2 = ax.twinx()
    ax2.plot(losses, color="C3", lw=0.6, alpha=0.6, label="training loss (shift at 420)")
    ax.set(xlabel="step", ylabel="lr", title="RestartOnShift (CUSUM on the training loss)")
    ax.legend(loc="upper right", fontsize=8)
    ax2.legend(loc="center right", fontsize=8)
    _save(fig, "controllers_shift.png")


def plot_guard():
    import torch

    from lrkit.torch import Scheduler
    from lrkit.torch.guard import DivergenceGuard

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
    trace, done = [], set()
    while sched.last_epoch < 400:
        k = sched.last_epoch
        idx = torch.randint(0, 512, (32,), generator=g)
        loss = torch.nn.functional.mse_loss(model(x[idx]), y[idx])
        if k == 150 and "nan" not in done:
            done.add("nan")
            loss = loss * float("nan")
        loss.backward()
        if guard.check(loss):
            opt.step()
            sched.step()
        opt.zero_grad()
        trace.append((len(trace), sched.last_epoch, opt.param_groups[0]["lr"]))
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot([t[0] for t in trace], [t[2] for t in trace], label="lr per iteration")
    rec = guard.recoveries[0]
    ax.set(
        xlabel="iteration",
        ylabel="lr",
        title=f"Guard: NaN at step {rec['step']} -> snapshot of step {rec['snapshot_step']}, "
        "lr x0.5, re-warm",
    )
    ax.legend()
    _save(fig, "controllers_guard.png")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    plot_plateau()
    plot_rules()
    plot_restarts()
    plot_restart_on_plateau()
    plot_shift()
    plot_guard()
    print("wrote", sorted(p.name for p in OUT.glob("controllers_*.png")))


if __name__ == "__main__":
    main()
