"""On a GPU: does ``lrkit.torch.Monitor`` sync the host per step, and what does it cost?

Issue 11 asks for no host sync per step on a GPU, checked with
``torch.cuda.set_sync_debug_mode``. This script trains a small transformer-style MLP stack on
CUDA (random data, AdamW, no ``.item()`` in the loop, so the loop itself never syncs) with a
Monitor at its default settings, records every synchronising call per update with the debug
mode set to ``"warn"``, and prints which updates synced: only the Monitor's reads (one every
``every`` updates, at the next update's pre-hook) are expected. Then it times blocks of
updates with and without the Monitor (CUDA events, interleaved) and prints the overhead.

Run: ``python benchmarks/monitor_gpu.py`` (about a minute on one GPU). Without CUDA it says so
and exits 0: the CPU tests check the same no-read-between-flushes property
(``tests/torch_binding/test_monitor.py``).
"""

from __future__ import annotations

import argparse
import statistics
import warnings

import torch

from lrkit.torch import Monitor


def _model(width: int, depth: int) -> torch.nn.Module:
    layers: list[torch.nn.Module] = []
    for _ in range(depth):
        layers += [torch.nn.LayerNorm(width), torch.nn.Linear(width, 4 * width), torch.nn.GELU()]
        layers += [torch.nn.Linear(4 * width, width)]
    return torch.nn.Sequential(*layers, torch.nn.Linear(width, 10)).cuda()


def _step(model, opt, mon, x, y) -> None:  # type: ignore[no-untyped-def]
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    if mon is not None:
        mon.log(loss)
    opt.zero_grad(set_to_none=True)


def sync_check(updates: int, every: int, width: int, depth: int) -> list[int]:
    """The updates during which a synchronising call happened, with a Monitor attached."""
    torch.manual_seed(0)
    model = _model(width, depth)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    mon = Monitor(model, opt, every=every)
    x = torch.randn(64, width, device="cuda")
    y = torch.randint(0, 10, (64,), device="cuda")
    for _ in range(3):  # warm-up outside the check (allocator, cuBLAS handles)
        _step(model, opt, mon, x, y)
    synced = []
    torch.cuda.set_sync_debug_mode("warn")
    try:
        for k in range(updates):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                _step(model, opt, mon, x, y)
            if any("synchroniz" in str(w.message).lower() for w in caught):
                synced.append(k + 3)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    mon.close()
    return synced


def overhead(blocks: int, steps: int, width: int, depth: int) -> dict[str, list[float]]:
    """Milliseconds per update, per block, without and with a default Monitor."""
    out: dict[str, list[float]] = {"no monitor": [], "Monitor() default": []}
    runs = {}
    for name in out:
        torch.manual_seed(0)
        model = _model(width, depth)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        mon = Monitor(model, opt) if name != "no monitor" else None
        runs[name] = (model, opt, mon)
    x = torch.randn(64, width, device="cuda")
    y = torch.randint(0, 10, (64,), device="cuda")
    for _ in range(blocks):
        for name, (model, opt, mon) in runs.items():
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize()
            start.record()
            for _ in range(steps):
                _step(model, opt, mon, x, y)
            end.record()
            torch.cuda.synchronize()
            out[name].append(start.elapsed_time(end) / steps)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--updates", type=int, default=200)
    ap.add_argument("--every", type=int, default=20)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--depth", type=int, default=8)
    ap.add_argument("--blocks", type=int, default=20)
    ap.add_argument("--steps", type=int, default=100)
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA device: nothing measured (the CPU tests cover the read pattern)")
        return 0
    n = sum(p.numel() for p in _model(args.width, args.depth).parameters())
    print(f"device: {torch.cuda.get_device_name()}; model: {n / 1e6:.1f}M parameters")
    synced = sync_check(args.updates, args.every, args.width, args.depth)
    reads = [k for k in synced if k % args.every == 0]
    other = [k for k in synced if k % args.every != 0]
    print(
        f"sync check over {args.updates} updates (every={args.every}): {len(synced)} updates "
        f"synced; at the Monitor's reads (k % every == 0): {len(reads)}; elsewhere: {other}"
    )
    times = overhead(args.blocks, args.steps, args.width, args.depth)
    base = statistics.median(times["no monitor"])
    print("\n| configuration | median ms/update | overhead |\n|---|---:|---:|")
    for name, v in times.items():
        m = statistics.median(v)
        print(f"| {name} | {m:.3f} | {100 * (m / base - 1):+.1f}% |")
    return 0 if not other else 1


if __name__ == "__main__":
    raise SystemExit(main())
