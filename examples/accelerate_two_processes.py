"""Accelerate on 2 CPU processes: a schedule sized as Accelerate's guide sizes it (batches counted
before ``prepare`` splits the data) ends on the last update with lrkit's Scheduler, as with
torch's LambdaLR.

``accelerator.prepare(scheduler)`` wraps the scheduler so that it is stepped once per process
per update (``split_batches=False``); lrkit's Scheduler then advances ``num_processes`` per
update. Run directly, this script starts itself on 2 processes (torchrun, gloo, 127.0.0.1);
``accelerate launch --cpu --num_processes 2 examples/accelerate_two_processes.py`` works too.

Run: python examples/accelerate_two_processes.py        (pip install accelerate)
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import torch

import lrkit
from lrkit.torch import Scheduler


def train() -> None:
    from accelerate import Accelerator

    torch.manual_seed(0)
    acc = Accelerator(cpu=True)
    x = torch.randn(256, 8)
    y = torch.tanh(x @ torch.randn(8, 1))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
    epochs = 3
    total = len(loader) * epochs  # Accelerate's guide: before prepare (48 here, 24 per process)
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    sched = Scheduler(opt, lr=lrkit.warmup(lrkit.cosine(1e-2, 0.0, steps=total - 4), steps=4))
    model, opt, loader, sched = acc.prepare(model, opt, loader, sched)
    losses = []
    for _ in range(epochs):
        for xb, yb in loader:
            loss = torch.nn.functional.mse_loss(model(xb), yb)
            acc.backward(loss)
            opt.step()
            sched.step()
            opt.zero_grad()
            losses.append(acc.gather(loss.detach()).mean().item())
    if acc.is_main_process:
        inner = sched.scheduler
        print(
            f"processes: {acc.num_processes}, schedule length: {total}, updates per process: {len(losses)}"
        )
        print(f"clock at the end: {inner.last_epoch}, final lr: {opt.param_groups[0]['lr']:.3g}")
        print(f"loss: start {losses[0]:.4f} -> final {losses[-1]:.4f}")
    acc.wait_for_everyone()
    torch.distributed.destroy_process_group()
    sys.stdout.flush()
    os._exit(0)  # gloo can abort in interpreter teardown; the work is done and printed


def launch() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={port}",
        __file__,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, env=env, timeout=300).returncode


if __name__ == "__main__":
    if "LOCAL_RANK" in os.environ:
        train()
    else:
        sys.exit(launch())
