"""One process of the 2-process Accelerate check (run with torchrun by test_accelerate.py).

Sizes a linear decay as Accelerate's guide does (batches counted before ``prepare`` splits the
data across processes, times epochs) and drives three optimizers side by side: torch's LambdaLR
prepared by Accelerate (the reference), lrkit's Scheduler prepared by Accelerate (the fix:
ends on the last update), and lrkit's Scheduler stepped directly, not prepared (the trap as
reported: counting this process's updates only, it ends halfway). Writes one JSON per rank.
"""

from __future__ import annotations

import json
import os
import sys

import torch
import torch.distributed as dist
from accelerate import Accelerator

import lrkit
from lrkit.torch import Scheduler

LR, EPOCHS = 0.05, 2


def main(out_dir: str) -> None:
    torch.manual_seed(0)
    acc = Accelerator(cpu=True)
    data = torch.utils.data.TensorDataset(torch.randn(64, 4), torch.randn(64, 1))
    loader = torch.utils.data.DataLoader(data, batch_size=8)
    total = len(loader) * EPOCHS  # Accelerate's guide: counted before prepare (16 here)
    models = [torch.nn.Linear(4, 1) for _ in range(3)]
    opts = [torch.optim.SGD(m.parameters(), lr=LR) for m in models]
    ref = torch.optim.lr_scheduler.LambdaLR(opts[0], lambda k: max(0.0, 1 - k / total))
    fixed = Scheduler(opts[1], lr=lrkit.linear(LR, 0.0, steps=total), total_steps=total)
    trap = Scheduler(opts[2], lr=lrkit.linear(LR, 0.0, steps=total), total_steps=total)
    *models, opt0, opt1, opt2, loader, ref, fixed = acc.prepare(*models, *opts, loader, ref, fixed)
    rows = []
    for _ in range(EPOCHS):
        for x, y in loader:
            rows.append([o.param_groups[0]["lr"] for o in (opt0, opt1, opt2)])
            for m, o in zip(models, (opt0, opt1, opt2), strict=True):
                loss = torch.nn.functional.mse_loss(m(x), y)
                acc.backward(loss)
                o.step()
                o.zero_grad()
            ref.step()
            fixed.step()
            trap.step()
    final = [o.param_groups[0]["lr"] for o in (opt0, opt1, opt2)]
    result = {
        "rank": acc.process_index,
        "processes": acc.num_processes,
        "total": total,
        "updates": len(rows),
        "rows": rows,
        "final": final,
    }
    with open(os.path.join(out_dir, f"rank{acc.process_index}.json"), "w") as f:
        json.dump(result, f)
    dist.destroy_process_group()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1])
