"""compare's halving search on real (tiny) digits training: the path, the rescaled short runs,
the recommendation, compute, range extension, divergence, resume and the progress bar."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lrkit
from lrkit.tune.halving import DEFAULT_BUDGET
from lrkit.tune.search import compare

pytestmark = pytest.mark.usefixtures("one_thread")

#: 2 schedules x 9 rates at 10 steps on seed 0 (rung 1 is also 10 steps: reused), then the best
#: 2 at 30 steps on 2 seeds: about 30 runs of 10-30 steps, a second or two.
KW = dict(schedules=["constant", "cosine"], seeds=2, steps=30, peak=0.05, progress=False)


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    """One halving comparison written to a folder, and the folder."""
    out = tmp_path_factory.mktemp("halving")
    return compare("digits", out=out, **KW), out


def test_path_rungs_and_run_files(done):
    """The plan fits the default budget (9 rates); rungs of 10, 10 and 30 steps; short runs in
    runs/rung0/ (rung 1 reuses them: same length and seed), the last rung's in runs/rung2/."""
    comp, out = done
    path = comp.search_path
    assert path is not None and path.plan.budget == DEFAULT_BUDGET and path.plan.n_rates == 9
    assert [r.rung.horizon for r in path.rungs] == [10, 10, 30]
    assert [r.rung.seeds for r in path.rungs] == [(0,), (0,), (0, 1)]
    n0 = len(path.rungs[0].scores)
    assert len(list((out / "runs" / "rung0").glob("*.json"))) == n0 == len(comp.rung_runs)
    assert not (out / "runs" / "rung1").exists()
    last = path.rungs[-1]
    assert len(list((out / "runs" / "rung2").glob("*.json"))) == 2 * len(last.scores)
    assert {r.steps for r in comp.rung_runs} == {10} and {r.steps for r in comp.runs} == {30}
    assert sorted({r.seed for r in comp.runs}) == [0, 1]
    assert [s.config for s in path.rungs[1].scores] == list(path.rungs[0].promoted)
    assert [s.config for s in last.scores] == list(path.rungs[1].promoted)
    assert (out / "runs" / "rung0" / "cosine-0.05-seed0.json").exists()


def test_short_runs_use_the_schedule_rescaled(done):
    """A rung-0 run is the recipe rebuilt for 10 steps: cosine from the rate to 0 over 10."""
    comp, _ = done
    run = next(r for r in comp.rung_runs if r.schedule == "cosine@0.05")
    assert run.spec == str(lrkit.cosine(0.05, 0.0, steps=10))
    assert list(run.lr) == pytest.approx(lrkit.cosine(0.05, 0.0, steps=10)(np.arange(10)))


def test_recommendation_is_the_best_of_the_last_rung(done):
    """The recommended configuration has the lowest mean final validation loss over the last
    rung's runs (a diverged seed counts as inf); refined_peak is its rate, recommended_spec its
    full-length spec."""
    comp, _ = done
    by: dict[str, list[float]] = {}
    for r in comp.runs:
        by.setdefault(r.schedule, []).append(r.final_val_loss)
    means = {k: (np.mean(v) if np.all(np.isfinite(v)) else math.inf) for k, v in by.items()}
    best = min(means, key=lambda k: means[k])
    rec = comp.search_path.recommended
    assert rec.label == best and comp.recommendation == rec.family
    assert comp.common_recommendation == comp.recommendation and comp.refinements == ()
    assert comp.refined_peak == rec.rate
    spec = lrkit.parse(comp.recommended_spec)
    assert spec.duration in (0, 30) and max(spec(np.arange(30))) == pytest.approx(rec.rate)
    assert [row.schedule for row in comp.summary] == [
        s.config.label for s in comp.search_path.rungs[-1].scores
    ]
    assert comp.reasoning.startswith("Successive halving around 0.05 (9 rates a factor 2 apart")
    assert [r.schedule for r in comp.recommended_runs] == [rec.label] * 2


def test_compute_counts_each_run_once(done):
    """The compute is every trained run's steps over the run length (runs reused across rungs
    counted once), against a 2 x 12 x 2 = 48-run grid."""
    comp, _ = done
    used = sum(r.steps for r in (*comp.runs, *comp.rung_runs)) / 30
    assert comp.compute == pytest.approx(used) == pytest.approx(comp.search_path.cost)
    note = comp.compute_note()
    assert note.startswith(f"compute: used {used:.1f} full-run equivalents (")
    assert note.endswith(
        f"{100 * used / 48:.0f}% of a 48-run grid (2 schedules x 12 rates x 2 seeds)"
    )
    d = comp.to_dict()
    assert d["search"] == "halving" and d["search_path"]["plan"]["n_rates"] == 9
    assert len(d["rung_runs"]) == len(comp.rung_runs)


def test_resume_reuses_every_rung_run(done):
    """On resume no run is retrained (file times and wall times unchanged); a deleted short run
    is the only one retrained."""
    comp, out = done
    files = sorted((out / "runs").rglob("*.json"))
    stamp = {f: f.stat().st_mtime_ns for f in files}
    again = compare("digits", out=out, resume=True, **KW)
    assert {f: f.stat().st_mtime_ns for f in files} == stamp
    assert [r.wall_s for r in again.rung_runs] == [r.wall_s for r in comp.rung_runs]
    assert [r.wall_s for r in again.runs] == [r.wall_s for r in comp.runs]
    assert again.search_path == comp.search_path
    gone = out / "runs" / "rung0" / "cosine-0.05-seed0.json"
    gone.unlink()
    compare("digits", out=out, resume=True, **KW)
    changed = [f for f in files if f.stat().st_mtime_ns != stamp[f]]
    assert changed == [gone]


def test_range_extended_at_the_edge_and_recorded(tmp_path):
    """Rates too low for 10 steps: the best of constant's three is the highest, so its range is
    extended upwards, a factor at a time, at most 3 times; the extension runs are on disk and
    the report marks them. (Constant's rates are centred on half the peak: its rate_scale.)"""
    comp = compare("digits", **{**KW, "peak": 6e-3, "n_rates": 3}, out=tmp_path)
    ext = [e for e in comp.search_path.extensions if e.family == "constant"]
    assert ext and ext[0].direction == 1 and 1 <= len(ext[0].rates) <= 3
    rates = [3e-3 * 2.0**k for k in range(2, 2 + len(ext[0].rates))]
    assert list(ext[0].rates) == pytest.approx(rates)
    for rate in ext[0].rates:
        assert (tmp_path / "runs" / "rung0" / f"constant-{rate:.6g}-seed0.json").exists()
    assert "ranges extended: constant up to" in comp.reasoning
    comp.write(tmp_path)
    assert "extended range" in (tmp_path / "report.html").read_text()


def test_nothing_converges_nothing_is_recommended():
    """A centre far too high: every rung-0 run diverges, none is promoted, nothing is
    recommended and the reasoning points below the rates tried."""
    comp = compare("digits", **{**KW, "peak": 1e6, "n_rates": 3})
    path = comp.search_path
    assert all(math.isinf(s.loss) for s in path.rungs[0].scores)
    assert path.rungs[0].promoted == () and path.rungs[-1].scores == ()
    assert comp.recommendation == "" and comp.recommended_spec == "" and comp.runs == ()
    # the lowest rate tried: constant at 1e6 x its rate_scale 0.5 x 2**-1; a decade below it
    assert "Try a range below the rates tried, e.g. --peak 2.5e+04" in comp.reasoning
    assert comp.refined_peak == 1e6


def test_progress_bar_total_is_the_plans_most(progress_bars):
    """The bar's total is known from the start: the range test plus the plan's most runs; it
    ends at the runs actually done."""
    comp = compare("digits", **{**KW, "peak": None, "n_rates": 3, "finder_steps": 30})
    (bar,) = progress_bars
    plan = comp.search_path.plan
    assert bar.totals[0] == 1 + plan.most_runs == 1 + (6 + 0 + 1 * 2) + 3 * 2
    assert set(bar.totals) == {bar.totals[0]}
    assert bar.n == 1 + len(comp.runs) + len(comp.rung_runs) == bar.total


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (
            {"budget": 1.0},
            r"compare: budget must be >= 4 full-run equivalents .*n_rates=3.*got budget=1\.0",
        ),
        ({"n_rates": 4}, "n_rates must be an odd integer >= 1, got n_rates=4"),
        ({"search": "random"}, "search must be 'halving' or 'grid', got search='random'"),
        ({"refine_steps": 1}, r"refine_steps=1 with search='halving' \(add search='grid'"),
        (
            {"search": "grid", "budget": 10},
            "set the halving search, got budget=10 with search='grid'",
        ),
    ],
)
def test_settings_fail_before_training(kw, match):
    """A budget too small, bad halving settings and settings of the other search fail before
    any training, naming the setting and its value."""
    with pytest.raises(ValueError, match=match):
        compare("digits", **{**KW, **kw})


@pytest.mark.slow
def test_jobs_give_the_in_process_results(tmp_path):
    """Two worker processes train the same rungs as this process: same path, same runs."""
    kw = {**KW, "n_rates": 3, "seeds": 1}
    one = compare("digits", **kw)
    two = compare("digits", **kw, jobs=2, out=tmp_path)
    assert two.search_path == one.search_path
    assert [r.val_loss for r in two.runs] == [r.val_loss for r in one.runs]
    assert [r.val_loss for r in two.rung_runs] == [r.val_loss for r in one.rung_runs]
