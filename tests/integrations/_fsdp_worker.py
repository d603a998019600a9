"""One rank of the FSDP2 check (run with torchrun by test_fsdp.py): ``fully_shard`` on gloo/CPU
with lrkit's Scheduler, a named-metric Plateau and the divergence guard.

Rank 1 alone sees a NaN loss at step ``NAN_AT``; the guard's flags are OR-ed over the ranks,
so both roll back to the last snapshot. Each rank writes what it decided at every step, and
whether the rollback restored the sharded parameters and Adam moments exactly as they were at
the snapshot (compared on the full tensors).
"""

from __future__ import annotations

import json
import os
import sys

import torch
import torch.distributed as dist
from torch.distributed.fsdp import fully_shard

import lrkit
from lrkit.controllers import Plateau
from lrkit.torch import Scheduler
from lrkit.torch.guard import DivergenceGuard

STEPS, NAN_AT, EVAL_EVERY = 30, 13, 3


def _full(model: torch.nn.Module, opt: torch.optim.Optimizer) -> list[torch.Tensor]:
    """Full (unsharded) copies of every parameter and Adam first moment (a collective)."""
    out = []
    for p in model.parameters():
        out.append(p.full_tensor().clone())
        state = opt.state.get(p, {})
        if "exp_avg" in state:
            out.append(state["exp_avg"].full_tensor().clone())
    return out


def main(out_dir: str) -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    for layer in (model[0], model[2]):
        fully_shard(layer)
    fully_shard(model)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    guard = DivergenceGuard(model, opt, snapshot_every=4, spike_factor=None, max_retries=2)
    plateau = Plateau(factor=0.5, patience=0, threshold=0.2, metric="val_loss")
    sched = Scheduler(
        opt,
        lr=lrkit.warmup(lrkit.cosine(0.02, 0.002, steps=STEPS), steps=3),
        controllers=[plateau, guard.controller],
    )
    guard.attach(sched)
    g = torch.Generator().manual_seed(100 + rank)  # each rank its own data
    w = torch.randn(8, 1, generator=torch.Generator().manual_seed(7))
    xs = torch.randn(STEPS * 2, 16, 8, generator=g)
    xv = torch.randn(64, 8, generator=g)
    rows, snaps, restored = [], {}, []
    it = 0
    while sched.last_epoch < STEPS and it < STEPS * 2:
        x = xs[it]
        it += 1
        loss = torch.nn.functional.mse_loss(model(x), x @ w)
        if rank == 1 and sched.last_epoch == NAN_AT and not guard.recoveries:
            loss = loss * float("nan")
        loss.backward()
        ok = guard.check(loss)
        if ok and guard.snapshot_step == sched.last_epoch:
            snaps[sched.last_epoch] = _full(model, opt)
        if not ok:
            now = _full(model, opt)
            want = snaps[guard.snapshot_step]
            restored.append(all(torch.equal(a, b) for a, b in zip(now, want, strict=True)))
        else:
            opt.step()
            sched.step()
        opt.zero_grad()
        if ok and sched.last_epoch % EVAL_EVERY == 0:
            with torch.no_grad():
                val = torch.nn.functional.mse_loss(model(xv), xv @ w).item()
            sched.observe(val_loss=val)
        rows.append(
            [
                sched.last_epoch,
                opt.param_groups[0]["lr"],
                plateau.num_reductions,
                len(guard.recoveries),
            ]
        )
    result = {
        "rank": rank,
        "rows": rows,
        "recoveries": guard.recoveries,
        "restored": restored,
        "reductions": plateau.num_reductions,
        "sharded": [type(p).__name__ for p in model.parameters()],
    }
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump(result, f)
    dist.destroy_process_group()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1])
