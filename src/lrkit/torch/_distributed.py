"""Agreeing on a metric across ranks before controllers see it."""

from __future__ import annotations

import torch
import torch.distributed as dist


def mean_over_ranks(metric: float) -> float:
    """The mean of ``metric`` over all ranks (float64) when torch.distributed is initialised.

    Every rank must call this at the same point (it is a collective). Without an initialised
    process group the metric is returned unchanged. With NCCL the reduction runs on the current
    CUDA device; other backends use the CPU.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return float(metric)
    device = torch.device("cpu")
    if dist.get_backend() == "nccl":
        device = torch.device("cuda", torch.cuda.current_device())
    t = torch.tensor([float(metric)], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return float(t.item()) / dist.get_world_size()
