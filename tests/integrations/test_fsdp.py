"""FSDP2 (fully_shard) on 2 gloo CPU ranks with the Scheduler, a Plateau and the divergence
guard (see tests/integrations/_fsdp_worker.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch.distributed.fsdp")

from ._launch import torchrun


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.timeout(240)
def test_fsdp2_ranks_decide_alike_and_the_guard_restores_shards(tmp_path: Path) -> None:
    """Sharded (DTensor) parameters; a NaN on rank 1 alone: both ranks roll back at the same
    step to the same snapshot, which restores every parameter and Adam moment exactly; the
    plateau (fed the rank-mean val_loss by name) reduces at the same steps; same lr everywhere."""
    a, b = torchrun("_fsdp_worker.py", tmp_path)
    assert a["sharded"] == ["DTensor"] * 4
    assert a["rows"] == b["rows"]
    assert [r["step"] for r in a["recoveries"]] == [r["step"] for r in b["recoveries"]] == [13]
    assert a["recoveries"][0]["snapshot_step"] == b["recoveries"][0]["snapshot_step"] == 12
    assert a["restored"] == b["restored"] == [True]
    assert a["reductions"] == b["reductions"] >= 1
    assert a["rows"][-1][0] == 30  # reached the end after the rollback
