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

Run: ``.venv/bin/python benchmarks/quality.py --jobs 2 --detail --cache /tmp/lrkit-quality.json``
(about 20 minutes on 2 CPU cores; the cache makes reruns after a change of rule fast).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import math
import multiprocessing
import time
from pathlib import Path

import numpy as np

from lrkit.tools.report import markdown_table, recommend
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
    return task, family, rate, seed, steps, rec["final_val_loss"]


def main() -> None:
    """Run the grid (cached), print the markdown tables."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", nargs="+", default=list(BUILTIN))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--grid", default="1e-4,4", help="low,high of the rate grid (factor 2)")
    ap.add_argument("--families", nargs="+", default=list(DEFAULT_SCHEDULES))
    ap.add_argument("--cache", help="JSON file caching finished runs (reruns skip them)")
    ap.add_argument("--detail", action="store_true", help="also the per-family and per-rule tables")
    args = ap.parse_args()
    lo, hi = (float(v) for v in args.grid.split(","))
    grid = [float(lo * 2.0**k) for k in range(int(np.floor(np.log2(hi / lo))) + 1)]
    t0 = time.time()
    seeds = list(range(args.seeds))
    cache = Path(args.cache) if args.cache else None
    results: dict = {}
    if cache is not None and cache.exists():
        results = {tuple(json.loads(k)): v for k, v in json.loads(cache.read_text()).items()}
    finders, jobs = {}, []
    for name in args.tasks:
        task = load_task(name)
        finders[name] = _find_peak(task, name, None, False, 100)
        rates = grid + sorted(set(finders[name]["alternatives"].values()))
        for fam in args.families:
            for rate in rates:
                jobs += [
                    (name, fam, rate, s, task.steps)
                    for s in seeds
                    if (name, fam, rate, s, task.steps) not in results
                ]
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(args.jobs, mp_context=ctx) as pool:
        for t, fam, rate, seed, steps, loss in pool.map(
            _run, *zip(*jobs, strict=True), chunksize=2
        ):
            results[(t, fam, rate, seed, steps)] = loss
    if cache is not None:
        cache.write_text(json.dumps({json.dumps(list(k)): v for k, v in results.items()}))

    def mean(task: str, fam: str, rate: float) -> float:
        steps = load_task(task).steps
        v = [results[(task, fam, rate, s, steps)] for s in seeds]
        return float(np.mean(v)) if all(np.isfinite(v)) else math.inf

    rows, detail, per_rule = [], [], []
    for name in args.tasks:
        f = finders[name]
        s = f["suggestion"]
        summary = [
            {
                "schedule": fam,
                "val_loss_mean": mean(name, fam, s),
                "val_loss_std": 0.0
                if len(seeds) < 2
                else float(
                    np.std(
                        [results[(name, fam, s, i, load_task(name).steps)] for i in seeds], ddof=1
                    )
                ),
                "seeds": len(seeds),
                "diverged": 0,
            }
            for fam in args.families
        ]
        rec, _ = recommend(summary)
        best = {}
        for fam in args.families:
            means = {r: mean(name, fam, r) for r in grid}
            r_best = min(means, key=lambda r: means[r])
            best[fam] = (r_best, means[r_best])
            detail.append(
                [name, fam, f"{r_best:.3g}", f"{means[r_best]:.4f}", f"{mean(name, fam, s):.4f}"]
            )
        loss_s = mean(name, rec, s)
        r_b, l_b = best[rec]
        overall = min(best.values(), key=lambda v: v[1])
        ratio, gap = s / r_b, 100 * (loss_s / l_b - 1)
        rows.append(
            [
                name,
                f"{s:.3g} ({f['method']})",
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
        for rule, rate in f["alternatives"].items():
            fam_best = min(args.families, key=lambda fam: mean(name, fam, rate))
            per_rule.append(
                [
                    name,
                    rule,
                    f"{rate:.3g}",
                    f"{rate / best[fam_best][0]:.2f}x",
                    fam_best,
                    f"{mean(name, fam_best, rate):.4f}",
                    f"{100 * (mean(name, fam_best, rate) / best[fam_best][1] - 1):+.1f}%",
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
        print()
        print(
            markdown_table(
                [
                    "task",
                    "rule",
                    "rate",
                    "ratio to grid-best",
                    "best family there",
                    "loss",
                    "gap to that family's grid-best",
                ],
                per_rule,
            )
        )
    print(
        f"\n{len(jobs)} new runs, grid {grid[0]:.3g}..{grid[-1]:.3g} (x2), seeds {seeds}, "
        f"mean final validation loss over seeds, {time.time() - t0:.0f} s"
    )


if __name__ == "__main__":
    main()
