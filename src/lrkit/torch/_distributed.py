"""Agreeing on metrics and flags across ranks before controllers (or the guard) act on them."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.distributed as dist


def _all_reduce(values: Sequence[float], op: str) -> list[float] | None:
    """``values`` reduced element-wise over all ranks with ``op`` (``"SUM"``, ``"MAX"``: a
    ``dist.ReduceOp`` name; float64), or None when torch.distributed is not initialised.

    Every rank must call this at the same point (it is a collective). With NCCL the reduction
    runs on the current CUDA device; other backends use the CPU.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return None
    device = torch.device("cpu")
    if dist.get_backend() == "nccl":
        device = torch.device("cuda", torch.cuda.current_device())
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=getattr(dist.ReduceOp, op))
    return [float(x) for x in t.tolist()]


def min_over_ranks(value: float) -> float:
    """The minimum of ``value`` over all ranks (float64) when torch.distributed is initialised
    (a collective); without an initialised process group, ``value`` unchanged.

    The guard sends the code of its first bad (value, reason), so that every rank acts on the
    earliest one found on any rank.
    """
    out = _all_reduce([value], "MIN")
    return value if out is None else out[0]
