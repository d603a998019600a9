"""How good is the range test's suggestion? A grid search over peak rates, per schedule family.

For each built-in task:

1. the range test (seed-0 model, as ``lrkit compare`` runs it) suggests a peak rate;
2. ``lrkit compare`` at that peak picks the recommended family (lowest mean final validation
   loss over the seeds) and the loss it reaches there;
3. a grid of peak rates (factor 2 apart) is run for every family, same seeds, same budget:
   the grid-best rate and loss per family.

Reported: the suggestion / grid-best rate of the recommended family (target: within 3x), and the
loss at the suggestion / grid-best loss of that family (target: within 3%). Prints a markdown
table (and, with ``--detail``, the per-family grid optimum).

Run: ``.venv/bin/python benchmarks/quality.py --jobs 2`` (about 15 minutes on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import multiprocessing
import time

import numpy as np

from lrkit.tools.report import markdown_table, recommend, summarise
from lrkit.torch.compare import DEFAULT_SCHEDULES, _find_peak, builtin_schedule
from lrkit.torch.tasks import BUILTIN, load_task

_TASKS: dict = {}


def _run(task: str, family: str, rate: float, seed: int, steps: int) -> tuple:
    import torch

    from lrkit.torch.compare import train_run

    torch.set_num_threads(1)
    if task not in _TASKS:
        _TASKS[task] = load_task(task)
    rec = train_run(_TASKS[task], builtin_schedule(family, rate, steps), seed, steps)
    return task, family, rate, seed, rec["final_val_loss"]


def main() -> None:
    """Run the grid, print the markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", nargs="+", default=list(BUILTIN))
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--grid", default="1e-4,4", help="low,high of the rate grid (factor 2)")
    ap.add_argument("--families", nargs="+", default=list(DEFAULT_SCHEDULES))
    ap.add_argument("--detail", action="store_true")
    args = ap.parse_args()
    lo, hi = (float(v) for v in args.grid.split(","))
    grid = lo * 2.0 ** np.arange(int(np.floor(np.log2(hi / lo))) + 1)
    t0 = time.time()
    seeds = list(range(args.seeds))
    sugg, steps = {}, {}
    jobs = []
    for name in args.tasks:
        task = load_task(name)
        steps[name] = task.steps
        sugg[name] = _find_peak(task, name, None, False, 100)
        for fam in args.families:
            for rate in [*grid, sugg[name]["suggestion"]]:
                jobs += [(name, fam, float(rate), s, task.steps) for s in seeds]
    ctx = multiprocessing.get_context("spawn")
    results: dict = {}
    with cf.ProcessPoolExecutor(args.jobs, mp_context=ctx) as pool:
        for t, fam, rate, _seed, loss in pool.map(_run, *zip(*jobs, strict=True), chunksize=4):
            results.setdefault((t, fam, rate), []).append(loss)
    rows, detail = [], []
    for name in args.tasks:
        s = sugg[name]["suggestion"]
        runs = [
            {
                "schedule": fam,
                "spec": "",
                "final_val_loss": loss,
                "final_acc": None,
                "wall_s": 0.0,
                "val": {"step": [], "loss": []},
                "seed": i,
            }
            for fam in args.families
            for i, loss in enumerate(results[(name, fam, s)])
        ]
        summary, _ = summarise(runs, args.families)
        rec, _ = recommend(summary)
        best = {}
        for fam in args.families:
            means = {r: float(np.mean(results[(name, fam, float(r))])) for r in grid}
            r_best = min(means, key=lambda r: means[r] if np.isfinite(means[r]) else np.inf)
            best[fam] = (float(r_best), means[r_best])
            detail.append(
                [
                    name,
                    fam,
                    f"{r_best:.3g}",
                    f"{means[r_best]:.4f}",
                    f"{np.mean(results[(name, fam, s)]):.4f}",
                ]
            )
        loss_s = float(np.mean(results[(name, rec, s)]))
        r_b, l_b = best[rec]
        overall = min(best.values(), key=lambda v: v[1])
        ratio = s / r_b
        gap = 100 * (loss_s / l_b - 1)
        rows.append(
            [
                name,
                f"{s:.3g} ({sugg[name]['method']})",
                rec,
                f"{r_b:.3g}",
                f"{ratio:.2f}x",
                f"{loss_s:.4f}",
                f"{l_b:.4f}",
                f"{gap:+.1f}%",
                f"{overall[1]:.4f}",
                "yes" if (1 / 3 <= ratio <= 3 and gap <= 3) else "no",
            ]
        )
    print(
        markdown_table(
            [
                "task",
                "suggested rate",
                "recommended",
                "grid-best rate",
                "ratio",
                "loss at suggestion",
                "grid-best loss",
                "gap",
                "best loss, any family",
                "targets met",
            ],
            rows,
        )
    )
    if args.detail:
        print()
        print(
            markdown_table(
                ["task", "family", "grid-best rate", "grid-best loss", "loss at suggestion"], detail
            )
        )
    print(
        f"\n{len(jobs)} runs, grid {grid[0]:.3g}..{grid[-1]:.3g} (x2), seeds {seeds}, "
        f"{time.time() - t0:.0f} s"
    )


if __name__ == "__main__":
    main()
