"""A training step with the schedule inside: CUDA graph (GPU) or torch.compile (CPU), checked
exact against the eager loop, with the time per step both ways.

With CUDA: one SGD step (forward, backward, ``opt.step()``, ``sched.step()`` of a
:class:`lrkit.torch.DeviceScheduler`) is captured once in a ``torch.cuda.CUDAGraph`` and
replayed; every replay computes the schedule at its own step on the device. Without CUDA: the
update ``opt.step(); sched.step()`` is compiled (``sched.step`` with ``fullgraph=True``).
Either way the learning rates and the final weights are compared with an eager run of the same
steps (they must be equal bit for bit), and the median time per step of both is printed with
their ratio. Timings are printed, never asserted.

Run:  .venv/bin/python benchmarks/cuda_graph_schedule.py [--steps 200]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from lrkit.torch import DeviceScheduler

SPEC = "warmup(cosine(0.05, 0.001, steps='90%'), steps='10%')"


def build(device: torch.device, steps: int) -> tuple:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 1)
    ).to(device)
    if device.type == "cuda":  # SGD turns a tensor lr into a number (a sync): not capturable
        opt: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr=0.1, capturable=True)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = DeviceScheduler(opt, SPEC, total_steps=steps)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(512, 64, generator=gen).to(device)
    y = torch.randn(512, 1, generator=gen).to(device)
    return model, opt, sched, x, y


def eager_step(
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    sched: DeviceScheduler,
    x: torch.Tensor,
    y: torch.Tensor,
) -> None:
    opt.zero_grad(set_to_none=False)
    torch.nn.functional.mse_loss(model(x), y).backward()
    opt.step()
    sched.step()


def graphed(
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    sched: DeviceScheduler,
    x: torch.Tensor,
    y: torch.Tensor,
) -> Callable[[], None]:
    """Capture one full step in a CUDA graph (after warmup on a side stream, as torch says)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.cuda.stream(side):
        for _ in range(3):
            eager_step(model, opt, sched, x, y)
    torch.cuda.current_stream().wait_stream(side)
    # Undo the warmup steps: weights, optimizer state (moments, step counts) and the clock
    # back to step 0; zeroed state updates exactly as a fresh one does.
    model.load_state_dict(state)
    for st in opt.state.values():
        for v in st.values():
            if isinstance(v, torch.Tensor):
                v.zero_()
    sched.set_step(0)
    graph = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=False)
    with torch.cuda.graph(graph):
        eager_step(model, opt, sched, x, y)
    return graph.replay


def run(
    step: Callable[[], None], opt: torch.optim.Optimizer, n: int, sync: Callable[[], None]
) -> tuple:
    lrs, times = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
        lrs.append(opt.param_groups[0]["lr"].item())
    return lrs, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    model, opt, sched, x, y = build(device, args.steps)
    lrs_e, t_e = run(lambda: eager_step(model, opt, sched, x, y), opt, args.steps, sync)

    model2, opt2, sched2, x2, y2 = build(device, args.steps)
    if cuda:
        mode = "CUDA graph (whole step captured, replayed; Adam capturable=True)"
        step = graphed(model2, opt2, sched2, x2, y2)
    else:
        mode = "torch.compile (sched.step fullgraph=True inside the compiled update; CPU)"
        compiled_sched = torch.compile(sched2.step, fullgraph=True)

        @torch.compile
        def update() -> None:
            opt2.step()
            compiled_sched()

        def step() -> None:
            opt2.zero_grad(set_to_none=False)
            torch.nn.functional.mse_loss(model2(x2), y2).backward()
            update()

    lrs_g, t_g = run(step, opt2, args.steps, sync)
    first = t_g[0]
    exact_lr = lrs_g == lrs_e
    exact_w = all(
        torch.equal(a, b) for a, b in zip(model.parameters(), model2.parameters(), strict=True)
    )
    print(f"device: {device}; mode: {mode}; {args.steps} steps; first call {first:.2f} s")
    print(f"learning rates equal to the eager loop at every step: {exact_lr}")
    print(f"final weights equal to the eager loop: {exact_w}")
    print()
    me, mg = statistics.median(t_e[5:]), statistics.median(t_g[5:])
    print("| loop | median ms/step | ratio to eager |")
    print("|---|---:|---:|")
    print(f"| eager | {me * 1e3:.3f} | 1.00x |")
    print(f"| {mode.split(' (')[0]} | {mg * 1e3:.3f} | {mg / me:.2f}x |")


if __name__ == "__main__":
    main()
