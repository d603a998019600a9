"""How often ``lrkit.diagnostics.diagnose`` names an injected pathology first, on real runs.

Each task of ``benchmarks/diagnose_tasks.py`` is trained (one CPU thread, a few seconds per run,
recorded by ``lrkit.torch.Monitor`` at its default settings, validation every 5% of the run)
healthy and with one pathology injected:

==============  ===============================================  ===========================
case            what changes from the healthy run                right top finding
==============  ===============================================  ===========================
healthy         warmup 5% + cosine to 0 at the task's peak P     ``healthy`` (*)
rate_x10/x30    peak 10P / 30P                                   ``lr_too_high``/``diverged``
rate_div100     peak P/100                                       ``lr_too_low``
no_warmup       transformers only: cosine from 10P at step 0     ``warmup_too_short``
early_decay     cosine from P to P/100 over the first tenth      ``decay_too_early``
tiny_data       3% of the training set (many epochs)             ``overfitting``
layer_x100      one layer's rate x100 (its own param group)      ``layer_imbalance``
layer_div1000   one layer's rate /1000                           ``layer_imbalance``
==============  ===============================================  ===========================

(*) or ``overfitting`` when the run's last validation loss is >= 1.1x its minimum (round 3).

Round 4: development tasks: the 8 of ``benchmarks/diagnose_tasks.py`` (round 1's tasks), the
13 of ``benchmarks/suite.py`` through ``benchmarks/diagnose_suite.py`` (round 2's evaluation
tasks; peak from the oracle grid, ``--oracle``) and the 7 of ``benchmarks/diagnose_fresh.py``
(round 3's evaluation tasks); evaluation tasks: the 8 of ``benchmarks/diagnose_fresh4.py``
(peak from their own grid, ``benchmarks/data/diagnose_fresh4_peaks.json``), on which no
detector was tuned. The recorded logs are cached in a JSON file (``--cache``), so
re-diagnosing after a change of the detectors takes a second. Thresholds are tuned on the
development tasks only; the evaluation tasks are reported as they came out. Run:
``python benchmarks/diagnose_accuracy.py --half all`` (399 runs, about 3 minutes with 2 jobs
from scratch; ``both``, the default, leaves out round 5's set); ``--half dev`` while tuning.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import diagnose_fresh as df
import diagnose_fresh4 as df4
import diagnose_fresh5 as df5
import diagnose_suite as ds
import diagnose_tasks as dt

from lrkit.diagnostics import RunLog, diagnose

EXPECT = {
    "healthy": {"healthy"},  # also overfitting when the run overfits: expected()
    "rate_x10": {"lr_too_high", "diverged"},
    "rate_x30": {"lr_too_high", "diverged"},
    "rate_div100": {"lr_too_low"},
    "no_warmup": {"warmup_too_short"},
    "early_decay": {"decay_too_early"},
    "tiny_data": {"overfitting"},
    "layer_x100": {"layer_imbalance"},
    "layer_div1000": {"layer_imbalance"},
}
NO_WARMUP_MULT = 10.0
TINY_FRAC = 0.03


def _schedule(task: dt.DiagTask, case: str) -> Any:
    import lrkit

    n, p = task.steps, task.peak
    w = math.ceil(0.05 * n)
    mult = {"rate_x10": 10.0, "rate_x30": 30.0, "rate_div100": 0.01}.get(case, 1.0)
    if case == "no_warmup":
        return lrkit.cosine(NO_WARMUP_MULT * p, 0.0, steps=n)
    if case == "early_decay":
        return lrkit.cosine(p, p / 100, steps=n // 10)
    return lrkit.warmup(lrkit.cosine(mult * p, 0.0, steps=n - w), steps=w)


def task_by_name(name: str, oracle: str | None = None) -> dt.DiagTask:
    """A task of ``diagnose_tasks``, ``diagnose_suite``, ``diagnose_fresh``,
    ``diagnose_fresh4`` or ``diagnose_fresh5``."""
    if name in dt.BY_NAME:
        return dt.BY_NAME[name]
    if name in df4.SPECS:
        return df4.diag_task(name)
    if name in df5.SPECS:
        return df5.diag_task(name)
    return df.diag_task(name) if name in df.SPECS else ds.diag_task(name, oracle)


def half_of(name: str) -> str:
    """Round 4: ``"eval"`` for the 8 tasks of ``diagnose_fresh4``, ``"eval5"`` for the 8 of
    ``diagnose_fresh5`` (a second fresh set for the same frozen detectors), ``"dev"`` for the
    other 28."""
    return "eval" if name in df4.SPECS else "eval5" if name in df5.SPECS else "dev"


def tasks(half: str, oracle: str | None = None, only: list[str] | None = None) -> list[dt.DiagTask]:
    """The tasks of ``half`` (``"dev"``, ``"eval"``, ``"eval5"``, ``"both"``: dev and eval, or
    ``"all"``), development first; only those named in ``only`` when given."""
    names = [t.name for t in dt.TASKS] + ds.names() + df.names()
    names = names if half in ("dev", "both", "all") else []
    names += df4.names() if half in ("eval", "both", "all") else []
    names += df5.names() if half in ("eval5", "all") else []
    return [task_by_name(n, oracle) for n in names if only is None or n in only]


def run_one(name: str, case: str, seed: int, oracle: str | None = None) -> dict[str, Any]:
    """Train ``name`` with ``case`` injected; the Monitor's rows and the wall time."""
    import torch

    from lrkit.torch import Monitor, Scheduler

    torch.set_num_threads(1)
    task = task_by_name(name, oracle)
    (xt, yt), (xv, yv) = task.data()
    xv, yv = xv[:512], yv[:512]
    if case == "tiny_data":
        keep = max(task.batch * 2, round(TINY_FRAC * len(xt)))
        xt, yt = xt[:keep], yt[:keep]
    torch.manual_seed(seed)
    model = task.model()
    params: Any = model.parameters()
    group_mult = None
    if case.startswith("layer_") and task.layer is not None:
        hot = list(dict(model.named_modules())[task.layer].parameters())
        ids = {id(p) for p in hot}
        rest = [p for p in model.parameters() if id(p) not in ids]
        params = [{"params": rest, "name": "rest"}, {"params": hot, "name": "hot"}]
        group_mult = {"hot": 100.0 if case == "layer_x100" else 1e-3}
    opt = task.optimizer(params, task.peak)
    sched = Scheduler(opt, lr=_schedule(task, case), group_mult=group_mult)
    mon = Monitor(model, opt)
    order = dt.batch_indices(len(xt), task.batch, seed)
    val_every = max(1, task.steps // 20)
    t0 = time.perf_counter()
    for k in range(task.steps):
        idx = next(order)
        loss = task.loss(model(xt[idx]), yt[idx])
        loss.backward()
        opt.step()
        mon.log(loss)
        sched.step()
        opt.zero_grad()
        if not math.isfinite(loss.item()):
            break
        if (k + 1) % val_every == 0:
            model.eval()
            with torch.no_grad():
                mon.log_val(val_loss=float(task.loss(model(xv), yv)))
            model.train()
    mon.close()
    return {
        "task": name,
        "half": task.half,
        "case": case,
        "seed": seed,
        "wall_s": time.perf_counter() - t0,
        "rows": mon.rows(),
    }


def _jobs(
    seeds: int,
    healthy_seeds: int,
    half: str = "both",
    oracle: str | None = None,
    only: list[str] | None = None,
) -> list[tuple[str, str, int]]:
    out = []
    for t in tasks(half, oracle, only):
        for case in EXPECT:
            if case == "no_warmup" and not t.transformer:
                continue
            if case.startswith("layer_") and t.layer is None:
                continue
            n = healthy_seeds if case == "healthy" else seeds
            out += [(t.name, case, s) for s in range(n)]
    return out


def _key(job: tuple[str, str, int]) -> str:
    return "|".join(map(str, job))


def collect(
    cache: Path,
    seeds: int,
    healthy_seeds: int,
    jobs: int,
    half: str = "both",
    oracle: str | None = None,
    only: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Every run, from the cache where present (the cache is rewritten after each run)."""
    runs: dict[str, Any] = json.loads(cache.read_text()) if cache.exists() else {}
    wanted = _jobs(seeds, healthy_seeds, half, oracle, only)
    todo = [j for j in wanted if _key(j) not in runs]
    if todo:
        print(f"training {len(todo)} runs ({len(runs)} cached) with {jobs} job(s)...", flush=True)
    with ProcessPoolExecutor(jobs) as pool:
        for job, res in zip(
            todo, pool.map(run_one, *zip(*todo, strict=True), [oracle] * len(todo)), strict=True
        ):
            runs[_key(job)] = res
            cache.write_text(json.dumps(runs))
    return [runs[_key(j)] for j in wanted]


OVERFIT_RISE = 1.1


def overfits(rows: list[dict[str, Any]]) -> bool:
    """Whether a run's last validation loss is at least ``OVERFIT_RISE`` (1.1) times its
    minimum: a healthy-rate run that overfits, for which ``overfitting`` is also a right top
    finding (round 3's rule, fixed before the fresh tasks were run)."""
    vl = [float(r["val_loss"]) for r in rows if r.get("val_loss") not in (None, "")]
    vl = [v for v in vl if math.isfinite(v)]
    return len(vl) >= 3 and vl[-1] >= OVERFIT_RISE * min(vl)


def expected(run: dict[str, Any]) -> set[str]:
    """The right top findings of ``run``: its case's, plus ``overfitting`` for a healthy run
    whose validation loss ends clearly above its minimum."""
    want = set(EXPECT[run["case"]])
    if run["case"] == "healthy" and overfits(run["rows"]):
        want.add("overfitting")
    return want


def judge(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each run's top finding and whether it is a right one (the half is the task's current
    one, not the one cached with the run)."""
    out = []
    for r in runs:
        findings = diagnose(RunLog.from_rows(r["rows"]))
        kinds = [f.kind for f in findings]
        half = half_of(r["task"])
        out.append(
            {
                **{k: r[k] for k in ("task", "case", "seed", "wall_s")},
                "half": half,
                "top": kinds[0],
                "kinds": kinds,
                "right": kinds[0] in expected(r),
                "found": bool(set(kinds) & expected(r)),
            }
        )
    return out


def table(judged: list[dict[str, Any]]) -> str:
    """The markdown table: per case and half (those present, in ``dev``, ``eval``, ``eval5``
    order), right top finding and detected anywhere; then each half's totals."""
    cells: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for j in judged:
        cells[(j["case"], j["half"])].append(j)
    halves = [h for h in ("dev", "eval", "eval5") if any(j["half"] == h for j in judged)]
    head = "".join(f" {h}: right top | {h}: found at all |" for h in halves)
    lines = [f"| case | expected top finding |{head}", "|---|---|" + "---:|---:|" * len(halves)]

    def frac(rs: list[dict[str, Any]], key: str) -> str:
        return f"{sum(r[key] for r in rs)}/{len(rs)}" if rs else "-"

    for case, want in EXPECT.items():
        row = "".join(
            f" {frac(cells[(case, h)], 'right')} | {frac(cells[(case, h)], 'found')} |"
            for h in halves
        )
        lines.append(f"| {case} | {' or '.join(sorted(want))} |{row}")
    for half in halves:
        path = [j for j in judged if j["half"] == half and j["case"] != "healthy"]
        ok = sum(j["right"] for j in path)
        hl = [j for j in judged if j["half"] == half and j["case"] == "healthy"]
        fa = sum(not j["right"] for j in hl)
        lines.append(
            f"\n**{half}**: right top finding on {ok}/{len(path)} pathological runs "
            f"({100 * ok / max(1, len(path)):.0f}%); false alarms on {fa}/{len(hl)} healthy runs "
            f"({100 * fa / max(1, len(hl)):.0f}%)."
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Train (or load) the runs, diagnose them, print the table and each miss."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", default="/tmp/lrkit-diagnose-accuracy.json", type=Path)
    ap.add_argument("--seeds", type=int, default=1, help="seeds per pathological case")
    ap.add_argument("--healthy-seeds", type=int, default=2, help="seeds of the healthy runs")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--half", choices=("dev", "eval", "eval5", "both", "all"), default="both")
    ap.add_argument("--oracle", default=None, help="oracle cache (default: the suite's)")
    ap.add_argument("--tasks", default=None, help="comma-separated task names (default: all)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    only = args.tasks.split(",") if args.tasks else None
    runs = collect(
        args.cache, args.seeds, args.healthy_seeds, args.jobs, args.half, args.oracle, only
    )
    judged = judge(runs)
    print(table(judged))
    misses = [j for j in judged if not j["right"]]
    if misses:
        print("\nmisses (task, case, seed: findings in rank order):")
        for j in misses:
            print(f"  [{j['half']}] {j['task']} {j['case']} seed {j['seed']}: {j['kinds']}")
    walls = [r["wall_s"] for r in runs]
    print(
        f"\n{len(runs)} runs, median {sorted(walls)[len(walls) // 2]:.2f} s of training each; "
        f"top kinds: {dict(Counter(j['top'] for j in judged))}; total {time.perf_counter() - t0:.0f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
