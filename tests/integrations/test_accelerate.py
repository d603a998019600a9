"""Accelerate on 2 real processes (torchrun, gloo, 127.0.0.1): a schedule sized as Accelerate's
guide sizes it ends on the last update (see tests/integrations/_accelerate_worker.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("accelerate")
pytest.importorskip("torch")

from ._launch import torchrun


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.timeout(240)
def test_schedule_sized_before_the_split_ends_on_the_last_update(tmp_path: Path) -> None:
    """2 processes, 16 batches before prepare (8 updates per process): torch's LambdaLR and
    lrkit's Scheduler, both prepared by Accelerate, take the same rate at every update and
    reach 0 at the end; the lrkit Scheduler not given to prepare counts this process's updates
    only and ends halfway (0.025, the trap as reported)."""
    ranks = torchrun("_accelerate_worker.py", tmp_path)
    for r in ranks:
        assert (r["processes"], r["total"], r["updates"]) == (2, 16, 8)
        for torch_lr, lrkit_lr, _ in r["rows"]:
            assert lrkit_lr == pytest.approx(torch_lr, rel=1e-12, abs=1e-15)
        ref, fixed, trap = r["final"]
        assert ref == 0.0 and fixed == 0.0
        assert trap == pytest.approx(0.025, rel=1e-12)
    assert ranks[0]["rows"] == ranks[1]["rows"]
