"""Report pieces: tables, atomic JSON/CSV, plots, summary and recommendation, the HTML page."""

from __future__ import annotations

import base64
import math
import re

import numpy as np
import pytest

from lrkit.tune import report
from lrkit.tune.candidates import Candidate
from lrkit.tune.comparison import Comparison
from lrkit.tune.range_test import FinderResult
from lrkit.tune.records import RunResult, SummaryRow


def _run(name, seed, final, val_losses, acc=0.9, wall=1.0):
    steps = tuple(4 * (i + 1) for i in range(len(val_losses)))
    return RunResult(
        schedule=name,
        spec=f"{name}(1.0)",
        plateau=None,
        seed=seed,
        steps=4 * len(val_losses),
        lr=(0.1, 0.1, 0.05, 0.01),
        train_step=steps,
        train_loss=tuple(val_losses),
        val_step=steps,
        val_loss=tuple(val_losses),
        val_acc=(acc,) * len(val_losses),
        final_val_loss=final,
        final_acc=acc,
        diverged=not math.isfinite(final),
        wall_s=wall,
    )


def _row(name, mean, std, seeds=3, diverged=0):
    return SummaryRow(name, "", seeds, diverged, mean, std, None, 1.0)


def test_summarise_statistics():
    """Mean and sample std over seeds, diverged seeds excluded and counted, target the median."""
    runs = [
        _run("a", 0, 1.0, [2.0, 1.0]),
        _run("a", 1, 2.0, [2.0, 2.0]),
        _run("b", 0, 0.5, [0.9, 0.5]),
        _run("b", 1, math.inf, [5.0, math.inf]),
    ]
    rows, target = report.summarise(runs, ["a", "b"])
    a, b = rows
    assert a.val_loss_mean == pytest.approx(1.5)
    assert a.val_loss_std == pytest.approx(np.std([1.0, 2.0], ddof=1))
    assert (b.val_loss_mean, b.diverged) == (0.5, 1)
    assert target == pytest.approx(1.0)
    assert b.steps_to_target == 4 and b.reached_target == 1
    assert a.steps_to_target == 8 and a.reached_target == 1
    rows, target = report.summarise(runs, ["a", "b"], target=0.4)
    assert target == 0.4 and rows[0].steps_to_target is None


def test_recommend_best_and_ties():
    """The lowest mean wins; a schedule within the combined seed spread is named as tied."""
    rows = [_row("x", 1.0, 0.1), _row("y", 1.05, 0.1), _row("z", 2.0, 0.1)]
    name, why = report.recommend(rows)
    assert name == "x"
    assert "Within the seed spread of it: y" in why and "z" not in why.split("y;")[0]
    name, why = report.recommend(rows[::2])
    assert name == "x" and "runner-up, z, is 100.0% worse" in why


def test_recommend_all_diverged():
    """When every schedule diverged there is no recommendation and the advice says so."""
    rows = [_row("x", math.inf, 0.0, seeds=1, diverged=1)]
    assert report.recommend(rows)[0] == ""


def test_range_test_plot_is_png(tmp_path):
    """plot_range_test writes a real PNG."""
    rates = np.geomspace(1e-4, 1, 30)
    d = FinderResult(
        rates=rates,
        losses=1 / (1 + rates),
        smoothed=1 / (1 + rates),
        suggestion=1e-2,
        alternatives={"valley": 1e-2, "steepest": 0.1},
        method="valley",
        confidence=0.5,
    )
    report.plot_range_test(d, tmp_path / "f.png")
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_write_comparison_self_contained(tmp_path):
    """The report folder has plots, JSON, CSV; the HTML embeds its images and loads nothing."""
    runs = [_run("a", 0, 1.0, [2.0, 1.0]), _run("b", 0, 0.5, [0.9, 0.5])]
    summary, target = report.summarise(runs, ["a", "b"])
    rec, why = report.recommend(summary)
    comp = Comparison(
        task="t",
        peak=0.1,
        steps=8,
        seeds=(0,),
        runs=tuple(runs),
        summary=tuple(summary),
        candidates=(Candidate("a", "a(1.0)"), Candidate("b", "b(1.0)", {"factor": 0.2})),
        recommendation=rec,
        reasoning=why,
        target=target,
        finder=None,
        wall_s=1.0,
        refinements=(),
        common_recommendation=rec,
    )
    page = report.write_comparison(comp, tmp_path).read_text()
    for f in ("schedules.png", "training.png", "results.json", "runs.csv", "summary.csv"):
        assert (tmp_path / f).exists(), f
    imgs = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(imgs) == 3  # the recommended configuration's curves, all curves, the schedules
    assert base64.b64decode(imgs[0]) == (tmp_path / "recommended.png").read_bytes()
    assert base64.b64decode(imgs[1]) == (tmp_path / "training.png").read_bytes()
    assert "compute: 2 runs of 8 steps = 2.0 full runs, 8% of a full grid" in page
    assert "http" not in page and "<b>b</b>" in page


def test_summary_names_stay_importable_from_report():
    """summarise/recommend moved to tools.summary; report still exports the same objects."""
    from lrkit.tune import summary

    assert report.summarise is summary.summarise
    assert report.recommend is summary.recommend
    assert set(report.__all__) <= set(dir(report))


def test_curves_carry_seed_bands():
    """Mean curves come with the seeds' min and max at each step."""
    runs = [_run("a", 0, 1.0, [2.0, 1.0]), _run("a", 1, 3.0, [4.0, 3.0])]
    steps, mean, lo, hi = report._mean_curves(runs, "val")["a"]
    assert (steps, mean, lo, hi) == ([4, 8], [3.0, 2.0], [2.0, 1.0], [4.0, 3.0])


def test_rounded_spec_keeps_integers_and_short_numbers():
    """Long decimals are cut to 4 significant digits; step counts and short numbers stay."""
    text = "warmup(cosine(0.48180141610351246, 0.04818014161035125, steps=32), steps=8)"
    assert report.rounded(text) == "warmup(cosine(0.4818, 0.04818, steps=32), steps=8)"
    assert report.rounded("step_decay(0.1, steps=100, gamma=0.5)") == (
        "step_decay(0.1, steps=100, gamma=0.5)"
    )


def test_compute_note_counts_runs_and_range_test():
    """The compute line counts every run and the range test against a full 12-rate grid."""
    runs = tuple(_run(n, s, 1.0, [2.0, 1.0]) for n in ("a", "b") for s in (0, 1))
    comp = Comparison(
        task="t",
        peak=0.1,
        steps=8,
        seeds=(0, 1),
        runs=runs,
        summary=(),
        candidates=(Candidate("a", "a(1.0)"), Candidate("b", "b(1.0)")),
        recommendation="",
        reasoning="",
        target=None,
        finder=None,
        wall_s=1.0,
        refinements=(),
        common_recommendation="",
    )
    assert comp.compute == 4
    assert comp.compute_note() == (
        "compute: 4 runs of 8 steps = 4.0 full runs, 8% of a full grid (2 schedules x 12 rates "
        "x 2 seeds = 48 runs)"
    )
