"""The fresh evaluation sets of the diagnostics benchmark (rounds 4 and 5:
benchmarks/diagnose_fresh4.py, benchmarks/diagnose_fresh5.py): every task builds with its
cached peak and takes a finite training step, the cached grid follows round 3's rule, and no
task name repeats an earlier set's. No detector is run here: the tasks stay unseen."""

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
import diagnose_fresh5  # noqa: E402
import diagnose_tasks  # noqa: E402
from suite import GRID_LOW, SUITE  # noqa: E402

#: Each fresh set, in the order they were built, with its one transformer task.
SETS = [(diagnose_fresh4, "parens-tf"), (diagnose_fresh5, "fractions-mlm")]
TASKS = [(mod, name, tf) for mod, tf in SETS for name in mod.names()]


@pytest.mark.parametrize(
    ("mod", "name", "transformer"), TASKS, ids=[f"{m.__name__}-{n}" for m, n, _ in TASKS]
)
def test_task_builds_and_steps(mod, name, transformer, one_thread):
    """The task is an evaluation task with its cached peak and a layer for the layer cases
    (the no_warmup case only for the transformer); one step at its peak gives a finite loss
    and moves the weights."""
    task = mod.diag_task(name)
    assert task.name == name and task.half == "eval" and task.peak > 0
    assert task.layer is not None and task.transformer == (name == transformer)
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


@pytest.mark.parametrize("mod", [m for m, _ in SETS], ids=lambda m: m.__name__)
def test_cached_peaks_cover_the_tasks(mod):
    """Every task has its grid: 10 to 14 rates a factor 2 apart from GRID_LOW of its optimizer,
    the peak at the best loss and inside the grid (not at an edge)."""
    cached = json.loads(mod.PEAKS.read_text())
    assert list(cached) == mod.names()
    for name, spec in mod.SPECS.items():
        row = cached[name]
        grid, losses = row["grid"], row["val_loss"]
        assert row["optimizer"] == spec[2] and 10 <= len(grid) == len(losses) <= 14
        assert grid == [GRID_LOW[spec[2]] * 2**k for k in range(len(grid))]
        best = min(range(len(grid)), key=lambda i: losses[i])
        assert row["peak"] == grid[best] and 0 < best < len(grid) - 1


def test_names_are_new():
    """No fresh task shares a name with a task of an earlier round, of the suite or of the
    other fresh set; each set has 8."""
    seen = set(diagnose_fresh.SPECS) | set(diagnose_tasks.BY_NAME) | set(SUITE)
    for mod, _ in SETS:
        assert not set(mod.SPECS) & seen and len(mod.SPECS) == 8
        seen |= set(mod.SPECS)
