"""How a compiled optimizer step takes the learning rates an lrkit Scheduler writes.

A training step ``opt.step()`` wrapped in ``torch.compile`` is run for ``--steps`` steps with a
cosine schedule driven by :class:`lrkit.torch.Scheduler` (``clock="updates"``), the rate held by
the optimizer either as a Python float or as a 0-d tensor (``Adam(params, lr=torch.tensor(...))``).
For each case the table gives the number of graphs compiled (counted by a backend that wraps
``--backend``), the Scheduler's clock after the run (the optimizer's step hook must fire inside
the compiled step), the largest difference of the weights from the same run without
``torch.compile``, and the wall time, also as a ratio to the tensor case of the same run (it
includes compilation). ``automatic_dynamic`` is ``torch._dynamo.config.automatic_dynamic_shapes``:
on (the default), dynamo turns a float that changed into a graph input after one recompile; off
(as some versions and settings do), it recompiles for every new value until its recompile limit
and then runs the step uncompiled.

Run: ``python benchmarks/compile_lr.py`` (``--backend inductor`` needs a C++ compiler; minutes).
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings
from typing import Any

import torch

import lrkit
from lrkit.torch import Scheduler


def _run(lr_kind: str, steps: int, backend: str | None) -> tuple[int, int, float, list[Any]]:
    """Train a linear model; returns (graphs compiled, clock, seconds, final weights)."""
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 1)
    lr = torch.tensor(0.01) if lr_kind == "tensor" else 0.01
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = Scheduler(opt, lr=lrkit.cosine(0.01, 1e-4, steps=steps))
    graphs = [0]

    def counting(gm: torch.fx.GraphModule, inputs: list[torch.Tensor]) -> Any:
        graphs[0] += 1
        if backend == "inductor":
            from torch._inductor.compile_fx import compile_fx

            return compile_fx(gm, inputs)
        return gm.forward

    def opt_step() -> None:
        opt.step()

    step = opt_step if backend is None else torch.compile(opt_step, backend=counting)
    x = torch.randn(64, 8)
    y = x.sum(1, keepdim=True)
    start = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        step()
        sched.step()
    seconds = time.perf_counter() - start
    return graphs[0], sched.last_epoch, seconds, [p.detach().clone() for p in model.parameters()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--backend", default="eager", choices=("eager", "inductor"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"backend={args.backend}, {args.steps} steps, Adam, cosine lr"
    )
    print(
        f"{'lr':<7}{'automatic_dynamic':>18}{'graphs':>8}{'clock':>7}{'max |dw|':>11}"
        f"{'seconds':>9}{'ratio':>7}"
    )
    for dynamic in (True, False):
        torch._dynamo.config.automatic_dynamic_shapes = dynamic
        rows = []
        for kind in ("float", "tensor"):
            torch._dynamo.reset()
            graphs, clock, seconds, weights = _run(kind, args.steps, args.backend)
            _, _, _, ref = _run(kind, args.steps, None)
            diff = max(float((a - b).abs().max()) for a, b in zip(weights, ref, strict=True))
            rows.append((kind, graphs, clock, diff, seconds))
        tensor_seconds = rows[1][4]
        for kind, graphs, clock, diff, seconds in rows:
            print(
                f"{kind:<7}{'on' if dynamic else 'off':>18}{graphs:>8}{clock:>7}{diff:>11.1e}"
                f"{seconds:>9.2f}{seconds / tensor_seconds:>7.1f}"
            )


if __name__ == "__main__":
    main()
