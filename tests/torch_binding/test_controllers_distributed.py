"""Two gloo processes with deliberately different per-rank metrics keep identical learning rates
at every step through a plateau reduction, a restart and a divergence-guard recovery."""

from __future__ import annotations

import json
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import lrkit
from lrkit.controllers import Plateau, RestartOnPlateau
from lrkit.torch import Scheduler
from lrkit.torch.guard import DivergenceGuard

STEPS = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_metric(rank: int, k: int) -> float:
    """Per-rank metrics that differ on purpose: other scale, minima at other steps."""
    if k < 15:
        return (1.0 + 2.0 * rank) / (1 + k)
    return (1.0 + 2.0 * rank) * (0.03 + 0.01 * ((k + 2 * rank) % 3))


def _plateau_steps_alone(rank: int) -> list[int]:
    """The reduction steps one rank would choose from its own metrics (no all-reduce)."""
    p = Plateau(factor=0.5, patience=2, threshold=0.0)
    steps = []
    for k in range(STEPS):
        before = p.num_reductions
        p.observe(k, _rank_metric(rank, k))
        if p.num_reductions > before:
            steps.append(k)
    return steps


def _worker(rank: int, port: int, out_dir: str) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        torch.manual_seed(0)  # same initial weights on both ranks
        model = torch.nn.Linear(4, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        guard = DivergenceGuard(model, opt, snapshot_every=5, spike_factor=50.0)
        plateau = Plateau(factor=0.5, patience=2, threshold=0.0)
        restart = RestartOnPlateau(patience=6, to=0, peak_factor=0.8)
        sched = Scheduler(
            opt,
            lr=lrkit.warmup(lrkit.cosine(0.05, 0.001, steps=50), steps=10),
            controllers=[plateau, restart, guard.controller],
        )
        guard.attach(sched)
        g = torch.Generator().manual_seed(100 + rank)  # different data per rank
        record = []
        for _ in range(STEPS * 2):
            k = sched.last_epoch
            if k >= STEPS:
                break
            x = torch.randn(8, 4, generator=g)
            loss = model(x).pow(2).mean()
            if k == 40 and rank == 1 and not any(r["step"] == 40 for r in guard.recoveries):
                loss = loss * float("nan")  # a fault on one rank only
            loss.backward()
            for p in model.parameters():  # what DDP would do: average the gradients
                dist.all_reduce(p.grad)
                p.grad /= 2
            if guard.check(loss):
                opt.step()
                sched.step(metric=_rank_metric(rank, k))
            opt.zero_grad()
            record.append(
                {
                    "step": sched.last_epoch,
                    "lr": opt.param_groups[0]["lr"],
                    "reductions": plateau.num_reductions,
                    "restarts": restart.num_restarts,
                    "recoveries": len(guard.recoveries),
                }
            )
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
            json.dump(record, f)
        dist.barrier()
    finally:
        dist.destroy_process_group()
    os._exit(0)


@pytest.mark.distributed
@pytest.mark.slow
@pytest.mark.timeout(120)
def test_two_ranks_keep_identical_lrs_through_reduction_restart_and_recovery(tmp_path):
    """With different per-rank metrics and a NaN on one rank, both ranks write the same lr at
    every step, and the run goes through a reduction, a restart and a guard recovery."""
    ctx = mp.start_processes(
        _worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=False, start_method="spawn"
    )
    for p in ctx.processes:
        p.join(timeout=100)
    alive = [p for p in ctx.processes if p.is_alive()]
    for p in alive:
        p.kill()
    assert not alive, "a worker hung"
    assert [p.exitcode for p in ctx.processes] == [0, 0]
    assert _plateau_steps_alone(0) != _plateau_steps_alone(1), "ranks alone would disagree"
    r0 = json.loads((tmp_path / "rank0.json").read_text())
    r1 = json.loads((tmp_path / "rank1.json").read_text())
    assert r0 == r1
    last = r0[-1]
    assert last["reductions"] >= 1 and last["restarts"] >= 1 and last["recoveries"] == 1
    assert last["step"] == STEPS
