"""Round 5's fresh evaluation tasks of the diagnostics benchmark (benchmarks/diagnose_fresh5.py):
every task builds with its cached peak and takes a finite training step, and the cached grid
covers every task by round 3's rule. No detector is run here: the tasks stay unseen."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

import diagnose_fresh  # noqa: E402
import diagnose_fresh4  # noqa: E402
import diagnose_fresh5 as f5  # noqa: E402
import diagnose_tasks  # noqa: E402
from suite import GRID_LOW, SUITE  # noqa: E402


@pytest.mark.parametrize("name", f5.names())
def test_task_builds_and_steps(name, one_thread):
    """The task is an evaluation task with its cached peak and a layer for the layer cases
    (the no_warmup case only for the transformer); one step at its peak gives a finite loss
    and moves the weights."""
    task = f5.diag_task(name)
    assert task.name == name and task.half == "eval" and task.peak > 0
    assert task.layer is not None and task.transformer == (name == "fractions-mlm")
    (xt, yt), (xv, yv) = task.data()
    assert len(xt) > 8 * task.batch and len(xv) >= 256
    torch.manual_seed(0)
    model = task.model()
    before = [p.detach().clone() for p in model.parameters()]
    opt = task.optimizer(model.parameters(), task.peak)
    idx = next(diagnose_tasks.batch_indices(len(xt), task.batch, 0))
    loss = task.loss(model(xt[idx]), yt[idx])
    loss.backward()
    opt.step()
    assert math.isfinite(loss.item())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    with torch.no_grad():
        assert math.isfinite(float(task.loss(model(xv[:64]), yv[:64])))


def test_cached_peaks_cover_the_tasks():
    """Every task has its grid: 10 to 14 rates a factor 2 apart from GRID_LOW of its optimizer,
    the peak at the best loss and inside the grid (not at an edge)."""
    cached = json.loads(f5.PEAKS.read_text())
    assert list(cached) == f5.names()
    for name, spec in f5.SPECS.items():
        row = cached[name]
        grid, losses = row["grid"], row["val_loss"]
        assert row["optimizer"] == spec[2] and 10 <= len(grid) == len(losses) <= 14
        assert grid == [GRID_LOW[spec[2]] * 2**k for k in range(len(grid))]
        best = min(range(len(grid)), key=lambda i: losses[i])
        assert row["peak"] == grid[best] and 0 < best < len(grid) - 1


def test_names_are_new():
    """No fresh task shares a name with a task of an earlier round or of the suite."""
    earlier = set(diagnose_fresh.SPECS) | set(diagnose_fresh4.SPECS)
    earlier |= set(diagnose_tasks.BY_NAME) | set(SUITE)
    assert not set(f5.SPECS) & earlier and len(f5.SPECS) == 8
