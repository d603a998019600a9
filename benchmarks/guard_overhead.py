"""Per-step cost of ``DivergenceGuard.check`` in a real training loop, against the same loop
without the guard, and the guard's gradient norm against ``clip_grad_norm_(foreach=True)``.

Cases: an 8-16-1 MLP and a 270k-parameter MLP on the CPU (Adam, batch 64); with CUDA, a
~100M-parameter transformer in bf16 (AdamW, 149 parameter tensors, snapshots to the host with
``snapshot_device="cpu"``). Both loops are identical (forward, backward, ``optimizer.step()``,
``Scheduler.step()``, ``zero_grad``) except for ``guard.check(loss)``; the guard takes a snapshot
every 50 steps, and that cost is included. A fourth variant, "norm + read", adds to the plain
loop only what every judged call must do, the fused gradient norm and one host read of it with
the loss: the floor of the guard's cost at ``every=1``. Variants are run in interleaved
repetitions (in a shuffled order each round) so that load on the machine hits all alike; the
table gives the median over repetitions of the mean step time, wall-clock and CPU time of this
process (CPU time is steadier on a loaded machine; on an accelerator only wall-clock counts).

Run: ``python benchmarks/guard_overhead.py`` (add ``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import itertools
import platform
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

import lrkit
from lrkit.torch import Scheduler
from lrkit.torch._guard_probe import grad_norm
from lrkit.torch.guard import DivergenceGuard


@dataclass(frozen=True)
class Case:
    """A model, its batch maker and optimizer, on one device."""

    name: str
    model: Callable[[], torch.nn.Module]
    batch: Callable[[torch.device], tuple[torch.Tensor, torch.Tensor]]
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    optimizer: Callable[[torch.nn.Module], torch.optim.Optimizer]
    device: torch.device
    snapshot_device: str | None = None


def _mlp(sizes: list[int]) -> Callable[[], torch.nn.Module]:
    def make() -> torch.nn.Module:
        layers: list[torch.nn.Module] = []
        for a, b in itertools.pairwise(sizes):
            layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
        return torch.nn.Sequential(*layers[:-1])

    return make


def _mse(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.mse_loss(out, y)


class _LM(torch.nn.Module):
    """A decoder-style stack (12 layers, d=768, vocab 32k): about 100M parameters."""

    def __init__(self, vocab: int = 32000, d: int = 768, layers: int = 12) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(vocab, d)
        layer = torch.nn.TransformerEncoderLayer(d, 12, 4 * d, dropout=0.0, batch_first=True)
        self.body = torch.nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = torch.nn.Linear(d, vocab)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.emb(x)))


def cases(quick: bool) -> list[Case]:
    cpu = torch.device("cpu")
    out = [
        Case(
            "MLP 8-16-1 (CPU)",
            _mlp([8, 16, 1]),
            lambda d: (torch.randn(64, 8, device=d), torch.randn(64, 1, device=d)),
            _mse,
            lambda m: torch.optim.Adam(m.parameters(), lr=1e-3),
            cpu,
        ),
        Case(
            "MLP 270k (CPU)",
            _mlp([128, 512, 384, 10]),
            lambda d: (torch.randn(64, 128, device=d), torch.randn(64, 10, device=d)),
            _mse,
            lambda m: torch.optim.Adam(m.parameters(), lr=1e-3),
            cpu,
        ),
    ]
    if torch.cuda.is_available():
        gpu = torch.device("cuda")
        out.append(
            Case(
                "transformer ~100M bf16 (GPU)",
                lambda: _LM(d=256 if quick else 768, layers=2 if quick else 12).to(torch.bfloat16),
                lambda d: (
                    torch.randint(0, 32000, (8, 256), device=d),
                    torch.randint(0, 32000, (8, 256), device=d),
                ),
                lambda out, y: torch.nn.functional.cross_entropy(
                    out.float().flatten(0, 1), y.flatten()
                ),
                lambda m: torch.optim.AdamW(m.parameters(), lr=1e-4),
                gpu,
                "cpu",
            )
        )
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _setup(case: Case, variant: str):
    torch.manual_seed(0)
    model = case.model().to(case.device)
    opt = case.optimizer(model)
    guard = None
    if variant.startswith("guard"):
        guard = DivergenceGuard(
            model,
            opt,
            snapshot_every=50,
            every=10 if variant == "guard every=10" else 1,
            snapshot_device=case.snapshot_device,
        )
    ctls = [guard.controller] if guard is not None else []
    sched = Scheduler(opt, lr=lrkit.cosine(1e-3, 1e-5, steps=100000), controllers=ctls)
    if guard is not None:
        guard.attach(sched)
    batches = [case.batch(case.device) for _ in range(8)]
    return model, opt, sched, guard, batches


def time_steps(case: Case, variant: str, steps: int, state: dict) -> tuple[float, float]:
    """Mean seconds per training step of ``variant`` over ``steps`` steps (after a warm-up):
    wall-clock and this process's CPU time."""
    norm_only = variant == "norm + read"
    if variant not in state:
        state[variant] = _setup(case, variant)
        _loop(case, *state[variant], 3, norm_only=norm_only)
    model, opt, sched, guard, batches = state[variant]
    _sync(case.device)
    t0, c0 = time.perf_counter(), time.process_time()
    _loop(case, model, opt, sched, guard, batches, steps, norm_only=norm_only)
    _sync(case.device)
    return (time.perf_counter() - t0) / steps, (time.process_time() - c0) / steps


def _loop(case, model, opt, sched, guard, batches, steps: int, *, norm_only: bool = False) -> None:
    params = list(model.parameters())
    for k in range(steps):
        x, y = batches[k % len(batches)]
        loss = case.loss(model(x), y)
        loss.backward()
        if norm_only:  # what a judged call cannot avoid: the fused norm, read with the loss
            torch.stack([grad_norm(params), loss.detach()]).tolist()  # type: ignore[list-item]
        if guard is None or guard.check(loss):
            opt.step()
            sched.step()
        opt.zero_grad(set_to_none=True)


def time_norms(case: Case, reps: int, calls: int) -> dict[str, float]:
    """Seconds per call, read on the host: the guard's gradient norm, ``clip_grad_norm_``'s
    (norm and in-place scaling) and ``get_total_norm``'s (norm only), interleaved."""
    torch.manual_seed(0)
    model = case.model().to(case.device)
    x, y = case.batch(case.device)
    case.loss(model(x), y).backward()
    params = [p for p in model.parameters() if p.grad is not None]
    grads = [p.grad for p in params]
    fns: dict[str, Callable[[], object]] = {
        "guard": lambda: float(grad_norm(params)),  # type: ignore[arg-type]
        "clip": lambda: float(torch.nn.utils.clip_grad_norm_(params, 1e30, foreach=True)),
        "total": lambda: float(torch.nn.utils.get_total_norm(grads, foreach=True)),
    }
    out: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for which in random.sample(list(fns), len(fns)):
            _sync(case.device)
            t0 = time.perf_counter()
            for _ in range(calls):
                fns[which]()
            _sync(case.device)
            out[which].append((time.perf_counter() - t0) / calls)
    return {k: statistics.median(v) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=15, help="interleaved repetitions")
    ap.add_argument("--steps", type=int, default=100, help="training steps per repetition")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 3 reps of 20 steps")
    args = ap.parse_args()
    if args.quick:
        args.reps, args.steps = 3, 20
    torch.set_num_threads(args.threads)
    random.seed(0)
    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{args.threads} thread(s), {args.reps} interleaved reps x {args.steps} steps"
    )
    variants = ["plain", "norm + read", "guard", "guard every=10"]
    header = (
        "| case | params | plain ms/step | guard ms/step | overhead (wall) | overhead (CPU) "
        "| every=10 (wall / CPU) | norm + read only (wall / CPU) | guard norm ms "
        "| clip_grad_norm_ ms | get_total_norm ms |"
    )
    print(header)
    print("|" + "---|" * 11)
    for case in cases(args.quick):
        state: dict = {}
        wall: dict[str, list[float]] = {v: [] for v in variants}
        cpu: dict[str, list[float]] = {v: [] for v in variants}
        for _ in range(args.reps):
            for v in random.sample(variants, len(variants)):
                w, c = time_steps(case, v, args.steps, state)
                wall[v].append(w)
                cpu[v].append(c)
        mw = {v: statistics.median(t) for v, t in wall.items()}
        mc = {v: statistics.median(t) for v, t in cpu.items()}
        n_params = sum(p.numel() for p in state["plain"][0].parameters())
        norms = time_norms(case, args.reps, max(10, args.steps // 2))

        def pct(m: dict[str, float], v: str) -> str:
            return f"{100 * (m[v] / m['plain'] - 1):+.1f}%"

        print(
            f"| {case.name} | {n_params:,} | {1e3 * mw['plain']:.3f} | {1e3 * mw['guard']:.3f} "
            f"| {pct(mw, 'guard')} | {pct(mc, 'guard')} "
            f"| {pct(mw, 'guard every=10')} / {pct(mc, 'guard every=10')} "
            f"| {pct(mw, 'norm + read')} / {pct(mc, 'norm + read')} "
            f"| {1e3 * norms['guard']:.4f} | {1e3 * norms['clip']:.4f} "
            f"| {1e3 * norms['total']:.4f} |"
        )
    if not torch.cuda.is_available():
        print("(no CUDA device: the ~100M-parameter bf16 transformer row was not run)")


if __name__ == "__main__":
    main()
