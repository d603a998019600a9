"""How good are lrkit's recommendations on tasks nobody tuned them on? The range-test table and
the search table of the benchmark suite (``benchmarks/suite.py``), for its development half
(rules and defaults were chosen on it) and its evaluation half (only reported here), against
the oracle grid (``benchmarks/oracle.py``, cached in ``benchmarks/data/oracle.json``).

**Range test** (``--part range``): for each task and seed 0-2, from the seed's initial model:

* fastai's textbook sweep (``lr_find`` defaults: 1e-7 to 10 over 100 updates, smoothing 0.98,
  stop at 4x the minimum) read by fastai's ``valley``, ``minimum/10`` and ``steepest``;
* lrkit's previous default (the same ramp from 1e-6, ``minimum/10``);
* lrkit's ``find_lr`` with its defaults (the ramp, then short probe runs below its edge), its
  probes scored on the validation data as ``lrkit compare`` does.

A suggestion is right when it lies in the window ``[best / 3, min(3 * best, cliff))`` of the
paired schedule's grid-best rate (cliff: the first higher rate where a seed diverges or the
loss exceeds 1.5x the best). Paired schedules: warmup-cosine (the probes' schedule, lrkit's
default recommendation) and one-cycle (fastai's ``fit_one_cycle``); both tables are printed.
Columns: right (% of task-seed pairs), seeds within 2x (% of tasks whose three suggestions lie
within a factor 2), median distance to the best rate in factors of 2. Then lrkit's confidence
labels against being right.

**Search** (``--part search``): see :func:`search_rows`.

Run: ``python benchmarks/tune_quality.py`` (both parts, both halves; the oracle must be cached
first). ``--half dev`` while developing a rule: the evaluation half is for reporting only.
``--half eval2``: the second evaluation set (``benchmarks/suite_fresh.py``: 7 tasks made after
the rule and the defaults were frozen).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import oracle
from oracle import SUITE

from lrkit.tune import Task
from lrkit.tune.finder import find_lr

SEEDS = (0, 1, 2)
RULES = ("fastai valley", "fastai minimum/10", "fastai steepest", "lrkit 0.x minimum/10", "lrkit")
PAIRED = ("warmup-cosine", "one-cycle")


@dataclass(frozen=True)
class RangeRow:
    """Every rule's suggestion for one (task, seed), and lrkit's confidence label."""

    task: str
    half: str
    seed: int
    rates: dict[str, float]
    confidence: str
    updates: int
    seconds: float
    probes: tuple[tuple[float, float], ...] = ()


def _model(task: Task, seed: int) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = task.model()
    model.train()
    return model, task.optimizer(model.parameters(), 1e-3)


def range_row(name: str, seed: int) -> RangeRow:
    """Run the three range tests on ``name`` from seed ``seed``'s initial model."""
    task = SUITE[name].make()
    out: dict[str, float] = {}
    model, opt = _model(task, seed)
    fa = find_lr(model, opt, task.loss, task.batches(seed), rule="valley")
    out["fastai valley"] = fa.alternatives["valley"]
    out["fastai minimum/10"] = fa.alternatives["minimum/10"]
    out["fastai steepest"] = fa.alternatives["steepest"]
    model, opt = _model(task, seed)
    old = find_lr(model, opt, task.loss, task.batches(seed), start=1e-6, rule="minimum/10")
    out["lrkit 0.x minimum/10"] = old.suggestion
    model, opt = _model(task, seed)
    t0 = time.perf_counter()
    new = find_lr(model, opt, task.loss, task.batches(seed), val_data=task.val_batches())
    out["lrkit"] = new.suggestion
    return RangeRow(
        name,
        SUITE[name].half,
        seed,
        out,
        new.confidence_label,
        new.updates,
        time.perf_counter() - t0,
        tuple(zip(new.probe_rates.tolist(), new.probe_losses.tolist(), strict=True)),
    )


def _fmt_pct(k: int, n: int) -> str:
    return f"{100 * k / n:5.1f}% ({k}/{n})" if n else "n/a"


def range_tables(rows: list[RangeRow], oracles: dict[str, oracle.OracleTask], half: str) -> str:
    """The range-test tables of one half."""
    rows = [r for r in rows if r.half == half]
    lines = []
    for paired in PAIRED:
        lines.append(f"\n{half} half, paired with {paired} ({len(rows)} task-seed pairs)")
        lines.append(f"{'rule':22s} {'right':>14s} {'seeds within 2x':>16s} {'median |log2|':>14s}")
        for rule in RULES:
            ok = [oracles[r.task].families[paired].in_window(r.rates[rule]) for r in rows]
            dist = [
                abs(math.log2(r.rates[rule] / oracles[r.task].families[paired].best_rate))
                for r in rows
            ]
            tasks = sorted({r.task for r in rows})
            agree = 0
            for t in tasks:
                rs = [r.rates[rule] for r in rows if r.task == t]
                agree += max(rs) / min(rs) <= 2.0
            lines.append(
                f"{rule:22s} {_fmt_pct(sum(ok), len(ok)):>14s} "
                f"{_fmt_pct(agree, len(tasks)):>16s} {statistics.median(dist):14.2f}"
            )
    lines.append(f"\n{half} half: lrkit's confidence vs right (paired with warmup-cosine)")
    for label in ("high", "medium", "low"):
        sel = [r for r in rows if r.confidence == label]
        ok = sum(oracles[r.task].families["warmup-cosine"].in_window(r.rates["lrkit"]) for r in sel)
        lines.append(f"  confidence {label:6s}: right {_fmt_pct(ok, len(sel))}")
    return "\n".join(lines)


def range_detail(rows: list[RangeRow], oracles: dict[str, oracle.OracleTask]) -> str:
    """Per task and seed: the window and each rule's rate (``*``: in the window)."""
    lines = [
        f"{'task':18s} s {'window (warmup-cosine)':>22s} "
        + " ".join(f"{r[:12]:>13s}" for r in RULES)
    ]
    for r in rows:
        fam = oracles[r.task].families["warmup-cosine"]
        lo, hi = fam.window
        cells = " ".join(
            f"{r.rates[k]:12.3g}{'*' if fam.in_window(r.rates[k]) else ' '}" for k in RULES
        )
        lines.append(f"{r.task:18s} {r.seed} [{lo:9.3g},{hi:9.3g}) {cells} {r.confidence}")
    return "\n".join(lines)


HELD_OUT = tuple(range(3, 13))


@dataclass(frozen=True)
class SearchRow:
    """One task's search: what ``compare`` recommended, the oracle's best, both retrained on
    the held-out seeds, and the compute used."""

    task: str
    half: str
    recommended: str
    rate: float
    oracle: str
    oracle_rate: float
    loss: float
    oracle_loss: float
    compute: float
    grid_runs: int
    seconds: float

    @property
    def gap(self) -> float:
        """Relative excess of the recommendation's held-out loss over the oracle's (nan when the
        oracle's configuration diverged on a held-out seed too: no reference)."""
        if not math.isfinite(self.oracle_loss):
            return math.nan
        return self.loss / self.oracle_loss - 1.0


def _held_out_loss(task: Task, family: str, rate: float) -> float:
    from lrkit.tune._runs import train_run
    from lrkit.tune.candidates import builtin_schedule

    cand = builtin_schedule(family, rate, task.steps)
    losses = [train_run(task, cand, s, task.steps).final_val_loss for s in HELD_OUT]
    return math.fsum(losses) / len(losses)


def search_row(name: str, settings: dict[str, float]) -> SearchRow:
    """Run ``compare`` (halving search, seeds 0-2, ``budget``) on ``name``; retrain its
    recommendation and the oracle's best configuration on the held-out seeds 3-12 (``settings``:
    compare's search settings, its defaults when empty)."""
    from lrkit.tune import compare

    task = SUITE[name].make()
    best = oracle.load()[name].best
    t0 = time.perf_counter()
    comp = compare(task, seeds=3, progress=False, **settings)
    seconds = time.perf_counter() - t0
    family, rate = comp.recommendation, comp.refined_peak
    loss = _held_out_loss(task, family, rate) if family else math.inf
    return SearchRow(
        name,
        SUITE[name].half,
        family or "(none)",
        rate,
        best.family,
        best.best_rate,
        loss,
        _held_out_loss(task, best.family, best.best_rate),
        comp.compute,
        len(oracle.BASE_K) * len(oracle.families()) * len(SEEDS),
        seconds,
    )


def search_table(rows: list[SearchRow], half: str) -> str:
    """The search table of one half: per task, the recommendation against the oracle's best on
    held-out seeds, and the compute against the grid."""
    rows = [r for r in rows if r.half == half]
    lines = [
        f"\n{half} half: compare's recommendation vs the oracle grid's best, final validation "
        "loss on held-out seeds 3-12",
        f"{'task':18s} {'recommended':>22s} {'oracle best':>22s} {'loss':>8s} {'oracle':>8s} "
        f"{'gap':>7s} {'compute':>13s}",
    ]
    for r in rows:
        lines.append(
            f"{r.task:18s} {r.recommended + '@' + format(r.rate, '.3g'):>22s} "
            f"{r.oracle + '@' + format(r.oracle_rate, '.3g'):>22s} {r.loss:8.4f} "
            f"{r.oracle_loss:8.4f} {100 * r.gap:+6.1f}% "
            f"{r.compute:5.1f}/{r.grid_runs} ({r.compute / r.grid_runs:.0%})"
        )
    judged = [r for r in rows if not math.isnan(r.gap)]
    n = len(judged)
    within2 = sum(r.gap <= 0.02 for r in judged)
    within5 = sum(r.gap <= 0.05 for r in judged)
    worst = max((r.compute / r.grid_runs for r in rows), default=0.0)
    lines.append(
        f"within +2%: {_fmt_pct(within2, n)}; within +5%: {_fmt_pct(within5, n)}; "
        f"most compute: {worst:.1%} of the grid"
        + (
            f" ({len(rows) - n} task(s) without a reference: the oracle's best diverged on a "
            "held-out seed)"
            if n < len(rows)
            else ""
        )
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Print the tables."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--half", choices=("dev", "eval", "eval2", "both", "all"), default="both")
    p.add_argument("--part", choices=("range", "search", "both"), default="both")
    p.add_argument("--tasks", nargs="*", default=None)
    p.add_argument("--detail", action="store_true")
    p.add_argument("--json", type=Path, default=None, help="write the rows here")
    p.add_argument("--budget", type=float, default=None, help="compare's budget (its default)")
    p.add_argument("--eta", type=float, default=None, help="compare's eta (its default)")
    p.add_argument("--n-rates", type=int, default=None, help="compare's n_rates (its default)")
    p.add_argument("--rungs", type=int, default=None, help="compare's rungs (its default)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    oracles = oracle.load()
    halves = {"both": ("dev", "eval"), "all": ("dev", "eval", "eval2")}.get(args.half, (args.half,))
    names = [n for n in (args.tasks or list(SUITE)) if SUITE[n].half in halves and n in oracles]
    if args.part in ("range", "both"):
        rows = []
        for n in names:
            for s in SEEDS:
                rows.append(range_row(n, s))
                print(f"  {n} seed {s}: {rows[-1].seconds:.1f} s", file=sys.stderr, flush=True)
        if args.detail:
            print(range_detail(rows, oracles))
        for h in halves:
            print(range_tables(rows, oracles, h))
        if args.json:
            args.json.write_text(json.dumps([asdict(r) for r in rows], indent=1))
    if args.part in ("search", "both"):
        settings = {
            k: v
            for k, v in (
                ("budget", args.budget),
                ("eta", args.eta),
                ("n_rates", args.n_rates),
                ("rungs", args.rungs),
            )
            if v is not None
        }
        srows = []
        for n in names:
            srows.append(search_row(n, settings))
            print(f"  {n}: {srows[-1].seconds:.1f} s", file=sys.stderr, flush=True)
        for h in halves:
            print(search_table(srows, h))
        if args.json:
            path = args.json.with_suffix(".search.json")
            path.write_text(json.dumps([asdict(r) for r in srows], indent=1))


if __name__ == "__main__":
    main()
