"""lrkit.torch.Scheduler under real torch.distributed (gloo, 2 processes on 127.0.0.1):
identical values on every rank (metrics averaged before controllers see them), and a
checkpoint resumed in a fresh process group continues identically.

This file is also the worker script: ``python test_distributed.py RANK PORT PHASE DIR``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

STEPS, SPLIT = 24, 11


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_pair(phase: str, out: Path, timeout: float = 120.0) -> None:
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, str(rank), str(port), phase, str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        for rank in (0, 1)
    ]
    logs = []
    try:
        for p in procs:
            logs.append(p.communicate(timeout=timeout)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, log in zip(procs, logs, strict=False):
        assert p.returncode == 0, f"{phase} worker failed:\n{log}"


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.timeout(300)
def test_ranks_agree_and_resume_in_fresh_group(tmp_path: Path) -> None:
    """All ranks hold identical values every step; a mid-run checkpoint resumes identically."""
    _run_pair("full", tmp_path)
    _run_pair("first", tmp_path)
    _run_pair("resume", tmp_path)
    full = json.loads((tmp_path / "full.json").read_text())
    first = json.loads((tmp_path / "first.json").read_text())
    resumed = json.loads((tmp_path / "resume.json").read_text())
    assert len(full["lrs"]) == STEPS + 1
    assert first["lrs"] + resumed["lrs"][1:] == full["lrs"]
    assert resumed["weights"] == full["weights"]
    assert full["reductions"] >= 1  # the controller acted on the averaged metric
    assert resumed["reductions"] == full["reductions"]


# ----------------------------------------------------------------------------- worker
def _worker(rank: int, port: int, phase: str, out: Path) -> None:
    from datetime import timedelta

    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    import lrkit
    from lrkit.controllers import Plateau
    from lrkit.torch import Scheduler

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=2,
        timeout=timedelta(seconds=60),
    )
    torch.manual_seed(0)
    model = DDP(
        torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    )
    opt = torch.optim.SGD(model.parameters(), lr=1.0, momentum=0.9)
    plateau = Plateau(factor=0.5, patience=1, threshold=0.0)
    sched = Scheduler(
        opt,
        lr=lrkit.warmup(lrkit.cosine(0.05, 1e-3, steps="80%"), steps="20%"),
        momentum=lrkit.linear(0.95, 0.85, steps=STEPS),
        total_steps=STEPS,
        controllers=[plateau],
    )
    ckpt = out / "ckpt.pt"
    start = 0
    if phase == "resume":
        state = torch.load(ckpt, weights_only=True)
        model.module.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        start = sched.last_epoch
    stop = SPLIT if phase == "first" else STEPS

    def gathered_lr() -> float:
        mine = torch.tensor(
            [g["lr"] for g in opt.param_groups] + [opt.param_groups[0]["momentum"]],
            dtype=torch.float64,
        )
        both = [torch.empty_like(mine) for _ in range(2)]
        dist.all_gather(both, mine)
        if not torch.equal(both[0], both[1]):
            raise SystemExit(f"ranks disagree at step {sched.last_epoch}: {both}")
        return float(mine[0])

    lrs = [gathered_lr()]
    for step in range(start, stop):
        gen = torch.Generator().manual_seed(1000 * step + rank)
        x = torch.randn(32, 4, generator=gen)
        y = torch.sin(x.sum(1, keepdim=True))
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        # A per-rank metric: rank 1 sees a worsening one, rank 0 an improving one; only the
        # mean over ranks (taken by the scheduler) gives both ranks the same decisions.
        metric = (1.0 - 0.01 * step) if rank == 0 else (0.5 + 0.03 * step)
        sched.step(metric=metric)
        lrs.append(gathered_lr())
    if phase == "first" and rank == 0:
        tmp = out / "ckpt.pt.tmp"
        torch.save(
            {
                "model": model.module.state_dict(),
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
            },
            tmp,
        )
        os.replace(tmp, ckpt)
    dist.barrier()
    if rank == 0:
        weights = [v for p in model.module.parameters() for v in p.detach().reshape(-1).tolist()]
        result = {"lrs": lrs, "weights": weights, "reductions": plateau.num_reductions}
        (out / f"{phase}.json").write_text(json.dumps(result))
    dist.destroy_process_group()


if __name__ == "__main__":
    try:
        _worker(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], Path(sys.argv[4]))
    except BaseException as exc:  # report and exit non-zero without interpreter teardown
        import traceback

        traceback.print_exc()
        sys.stdout.flush()
        os._exit(1 if not isinstance(exc, SystemExit) else 2)
    sys.stdout.flush()
    os._exit(0)
