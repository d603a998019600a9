"""The oracle grid of the benchmark suite (``benchmarks/suite.py``): every candidate family of
:mod:`lrkit.tune.recipes` x a log grid of peak rates a factor 2 apart x seeds 0-2, trained in
full, kept in ``benchmarks/data/oracle.json`` with this script.

The grid of a task is ``grid_low * 2**k`` for ``k = 0..11`` (12 rates; ``grid_low`` by optimizer
family, fixed before any run); wherever a family's best rate (lowest mean final validation
loss over the seeds; a run that diverged, see :func:`lrkit.tune._runs.train_run`, counts as
``inf``) sits at an edge of its grid, the grid is extended by one rate on that side, up to 4
times, so the best rate is inside the grid or the extension says where it stopped.

From the grid (:class:`OracleTask`): each family's grid-best rate and loss, the *cliff* (the
first higher rate where a seed diverges or the mean loss exceeds 1.5x the family's best) and the
*window* ``[best / 3, min(3 * best, cliff))`` in which a suggested peak rate counts as right.

The cache is keyed by a fingerprint of each task (data bytes, model architecture, optimizer,
steps, batch size, the recipes' specs): a task whose fingerprint changed is recomputed, the
others are reused; the file is rewritten atomically after every batch, so an interrupted run
resumes where it stopped.

Run: ``python benchmarks/oracle.py --jobs 2`` (about 20 minutes on 2 cores from scratch;
seconds from the cache). ``--tasks`` picks tasks; ``--show`` prints the per-family table.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from suite import SUITE as _SUITE
from suite_fresh import FRESH

#: Every task with an oracle: the suite's two halves and the second evaluation set.
SUITE = {**_SUITE, **FRESH}

CACHE = Path(__file__).resolve().parent / "data" / "oracle.json"
SEEDS = (0, 1, 2)
BASE_K = tuple(range(12))
MAX_EXTEND = 4
CLIFF_FACTOR = 1.5
WINDOW = 3.0


def families() -> tuple[str, ...]:
    """The candidate families compared (every recipe)."""
    from lrkit.tune import recipes

    return recipes.names()


# ---------------------------------------------------------------------------- the records
@dataclass(frozen=True)
class Cell:
    """One family at one rate: the final validation loss of each seed (``inf``: diverged)."""

    family: str
    k: int
    rate: float
    losses: tuple[float, ...]

    @property
    def mean(self) -> float:
        """Mean over seeds; ``inf`` when any seed diverged."""
        return math.fsum(self.losses) / len(self.losses)

    @property
    def any_diverged(self) -> bool:
        """Whether some seed diverged."""
        return any(not math.isfinite(v) for v in self.losses)


@dataclass(frozen=True)
class FamilyResult:
    """A family's grid on one task: its cells (ascending rate), best rate and loss, cliff and
    window, and whether the best sits at a grid edge even after extension."""

    family: str
    cells: tuple[Cell, ...]
    best_rate: float
    best_loss: float
    cliff: float
    at_edge: bool

    @property
    def window(self) -> tuple[float, float]:
        """``[best / 3, min(3 * best, cliff))``: where a suggested rate counts as right."""
        return self.best_rate / WINDOW, min(WINDOW * self.best_rate, self.cliff)

    def in_window(self, rate: float) -> bool:
        """Whether ``rate`` lies in :attr:`window`."""
        lo, hi = self.window
        return lo <= rate < hi

    def loss_at(self, rate: float) -> float:
        """The mean loss at the grid rate nearest to ``rate`` (log scale)."""
        cell = min(self.cells, key=lambda c: abs(math.log(c.rate / rate)))
        return cell.mean


@dataclass(frozen=True)
class OracleTask:
    """The oracle grid of one task."""

    name: str
    half: str
    steps: int
    families: dict[str, FamilyResult]

    @property
    def best(self) -> FamilyResult:
        """The family with the lowest grid-best loss."""
        return min(self.families.values(), key=lambda f: f.best_loss)

    def runs(self) -> int:
        """Full-length runs in the grid (12 base rates x families x seeds, for the compute
        ratio: extensions are not counted)."""
        return len(BASE_K) * len(self.families) * len(SEEDS)


def _family_result(family: str, cells: list[Cell]) -> FamilyResult:
    cells = sorted(cells, key=lambda c: c.k)
    best = min(cells, key=lambda c: (c.mean, c.k))
    cliff = math.inf
    for c in cells:
        if c.k > best.k and (c.any_diverged or c.mean > CLIFF_FACTOR * best.mean):
            cliff = c.rate
            break
    edge = best.k in (cells[0].k, cells[-1].k) and math.isfinite(best.mean)
    return FamilyResult(family, tuple(cells), best.rate, best.mean, cliff, edge)


def load(path: Path = CACHE) -> dict[str, OracleTask]:
    """The oracle of every task in the cache file, by name."""
    data = json.loads(path.read_text())
    out = {}
    for name, entry in data["tasks"].items():
        out[name] = _oracle_task(name, entry)
    return out


def _oracle_task(name: str, entry: dict[str, Any]) -> OracleTask:
    by_fam: dict[str, dict[int, dict[int, float]]] = {}
    for fam, k, seed, loss in entry["runs"]:
        by_fam.setdefault(fam, {}).setdefault(k, {})[seed] = math.inf if loss is None else loss
    low = entry["grid_low"]
    fams = {}
    for fam, ks in by_fam.items():
        cells = [
            Cell(fam, k, low * 2.0**k, tuple(s[i] for i in SEEDS))
            for k, s in ks.items()
            if all(i in s for i in SEEDS)
        ]
        fams[fam] = _family_result(fam, cells)
    return OracleTask(name, entry["half"], entry["steps"], fams)


# ---------------------------------------------------------------------------- computing it
def fingerprint(name: str) -> str:
    """A hash of what determines the task's runs, robust to edits of comments and docstrings:
    data bytes, model architecture, optimizer, steps, batch size and the recipes' specs."""
    import torch

    from lrkit.tune import recipes

    task = SUITE[name].make()
    model = task.model()
    opt = task.optimizer(model.parameters(), 1.0)
    h = hashlib.sha256()
    for t in (*task.train, *task.val):
        h.update(str((tuple(t.shape), t.dtype)).encode())
        h.update(t.contiguous().view(torch.uint8).numpy().tobytes())
    specs = [str(recipes.get(f, peak=1.0, total_steps=task.steps)) for f in families()]
    blob = [repr(model), repr(opt), task.steps, task.batch_size, task.eval_every, specs]
    h.update(json.dumps(blob, default=str).encode())
    return h.hexdigest()[:16]


_TASKS: dict[str, Any] = {}


def _work(item: tuple[str, str, int, int]) -> tuple[str, str, int, int, float | None, float]:
    """Train one (task, family, k, seed) in this process; returns its final validation loss
    (None: diverged) and wall time."""
    import torch

    from lrkit.tune._runs import train_run
    from lrkit.tune.candidates import builtin_schedule

    torch.set_num_threads(1)
    name, fam, k, seed = item
    if name not in _TASKS:
        _TASKS[name] = SUITE[name].make()
    task = _TASKS[name]
    rate = SUITE[name].grid_low * 2.0**k
    res = train_run(task, builtin_schedule(fam, rate, task.steps), seed, task.steps)
    loss = res.final_val_loss if math.isfinite(res.final_val_loss) else None
    return name, fam, k, seed, loss, res.wall_s


def _save(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=None, separators=(",", ":")))
    os.replace(tmp, path)


def _missing(entry: dict[str, Any], fam: str, ks: Iterable[int]) -> list[tuple[str, int, int]]:
    have = {(f, k, s) for f, k, s, _ in entry["runs"]}
    return [(fam, k, s) for k in ks for s in SEEDS if (fam, k, s) not in have]


def _next_ks(entry: dict[str, Any], fam: str) -> list[int]:
    """The rates still to run for ``fam``: the base grid, then one more on the side of an edge
    best (up to :data:`MAX_EXTEND` on each side)."""
    base = _missing(entry, fam, BASE_K)
    if base:
        return sorted({k for _, k, _ in base})
    res = _oracle_task("?", entry).families.get(fam)
    if res is None or not res.at_edge:
        return []
    ks = [c.k for c in res.cells]
    best_k = min(res.cells, key=lambda c: (c.mean, c.k)).k
    if best_k == ks[-1] and ks[-1] < BASE_K[-1] + MAX_EXTEND:
        return [ks[-1] + 1]
    if best_k == ks[0] and ks[0] > BASE_K[0] - MAX_EXTEND:
        return [ks[0] - 1]
    return []


def compute(names: list[str], jobs: int, path: Path = CACHE) -> None:
    """Fill the cache for ``names`` (reusing entries whose fingerprint matches)."""
    data = json.loads(path.read_text()) if path.exists() else {"tasks": {}}
    for name in names:
        fp = fingerprint(name)
        entry = data["tasks"].get(name)
        if entry is None or entry.get("fingerprint") != fp:
            s = SUITE[name]
            entry = {
                "fingerprint": fp,
                "half": s.half,
                "optimizer": s.optimizer,
                "grid_low": s.grid_low,
                "steps": s.make().steps,
                "runs": [],
                "wall_s": 0.0,
            }
            data["tasks"][name] = entry
    t0 = time.perf_counter()
    with cf.ProcessPoolExecutor(jobs) as pool:
        while True:
            todo = [
                (name, fam, k, seed)
                for name in names
                for fam in families()
                for k in _next_ks(data["tasks"][name], fam)
                for _, _, seed in _missing(data["tasks"][name], fam, [k])
            ]
            if not todo:
                break
            print(f"{len(todo)} runs to go ({time.perf_counter() - t0:.0f} s)", flush=True)
            futures = [pool.submit(_work, item) for item in todo]
            for i, fut in enumerate(cf.as_completed(futures)):
                name, fam, k, seed, loss, wall = fut.result()
                entry = data["tasks"][name]
                entry["runs"].append([fam, k, seed, loss])
                entry["wall_s"] += wall
                if i % 50 == 49:
                    _save(path, data)
            _save(path, data)
    print(f"done in {time.perf_counter() - t0:.0f} s", flush=True)


def table(oracles: dict[str, OracleTask]) -> str:
    """Per task and family: grid-best rate, its loss, the cliff and the window."""
    lines = [
        f"{'task':20s} {'half':4s} {'family':14s} {'best rate':>9s} {'loss':>8s} "
        f"{'cliff':>8s} {'window':>19s}"
    ]
    for o in oracles.values():
        for f in sorted(o.families.values(), key=lambda f: f.best_loss):
            lo, hi = f.window
            mark = " (edge)" if f.at_edge else ""
            lines.append(
                f"{o.name:20s} {o.half:4s} {f.family:14s} {f.best_rate:9.3g} {f.best_loss:8.4f} "
                f"{f.cliff:8.3g} [{lo:8.3g}, {hi:8.3g}){mark}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Compute (or load) the oracle grid and print it."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", nargs="*", default=list(SUITE))
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--show", action="store_true", help="print the per-family table")
    args = p.parse_args(argv)
    unknown = set(args.tasks) - set(SUITE)
    if unknown:
        p.error(f"unknown tasks {sorted(unknown)}; known: {', '.join(SUITE)}")
    compute(args.tasks, args.jobs)
    if args.show:
        print(table({k: v for k, v in load().items() if k in args.tasks}))


if __name__ == "__main__":
    main()
