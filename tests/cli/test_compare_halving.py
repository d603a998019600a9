"""``lrkit compare`` with the halving search: --budget, --n-rates, --search grid, and the
search path and compute line in the printout and the reports."""

from __future__ import annotations

import json

import pytest

from lrkit.cli import main

ARGV = ["compare", "--steps", "30", "--seeds", "0,1", "--peak", "0.05", "--no-progress"]
ARGV += ["--schedules", "constant,cosine"]


def test_budget_sets_the_rates_and_the_report_shows_the_path(tmp_path, capsys):
    """--budget 8 allows 5 rates here (worst cases: 5 rates 7.33, 7 rates 8.67); the printout
    and both reports show the path (promoted and cut, with losses) and the compute line."""
    out = tmp_path / "rep"
    assert main([*ARGV, "--budget", "8", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    res = json.loads((out / "results.json").read_text())
    path = res["search_path"]
    assert res["search"] == "halving" and path["plan"]["budget"] == 8
    assert path["plan"]["n_rates"] == 5 and path["plan"]["worst_cost"] <= 8
    n0 = len(path["rungs"][0]["scores"])  # 10, and the range extensions
    assert f"rung 0: {n0} configurations x 10 steps (seed 0): 4 promoted, {n0 - 4} cut" in text
    rec = res["recommendation"]
    assert f"recommendation: {rec} at peak {res['refined_peak']:.3g}" in text
    assert f"use: {res['recommended_spec']}" in text or "use: " in text
    note = res["compute_note"]
    assert note.startswith("compute: used ") and "% of a 48-run grid" in note and note in text
    page = (out / "report.html").read_text()
    assert "<h2>Search path</h2>" in page and note in page
    assert page.count(">cut") == (n0 - 4) + 2  # rung 1 keeps 2 of 4
    md = (out / "report.md").read_text()
    assert "## Search path" in md and "| 0 | 10 | 0 | cosine@0.05 |" in md and note in md
    assert len(json.loads((out / "results.json").read_text())["rung_runs"]) >= 10


def test_n_rates_and_search_grid(tmp_path, capsys):
    """--n-rates picks the rates; --search grid runs the old flow (common peak, refinement)."""
    a = tmp_path / "a"
    assert main([*ARGV, "--n-rates", "3", "-o", str(a)]) == 0
    assert "rung 0: " in capsys.readouterr().out
    res = json.loads((a / "results.json").read_text())
    assert (
        res["search_path"]["plan"]["n_rates"] == 3 and res["search_path"]["plan"]["budget"] is None
    )
    b = tmp_path / "b"
    assert main([*ARGV, "--search", "grid", "--refine-top", "1", "-o", str(b)]) == 0
    text = capsys.readouterr().out
    res = json.loads((b / "results.json").read_text())
    assert res["search"] == "grid" and res["search_path"] is None and len(res["refinements"]) == 1
    assert "common peak" in text and "rung 0" not in text
    assert not (b / "runs" / "rung0").exists() and len(list((b / "runs").glob("*.json"))) == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--budget", "0.5"], "budget must be >= "),
        (
            ["--no-refine"],
            "refine=False with search='halving' (add search='grid', or --search grid)",
        ),
        (["--search", "grid", "--budget", "30"], "got budget=30.0 with search='grid'"),
    ],
)
def test_bad_combinations_exit_2_before_training(tmp_path, capsys, args, message):
    """A budget too small, or a setting of the other search, exits 2 with one line."""
    assert main([*ARGV, *args, "-o", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert not list((tmp_path / "runs").rglob("*.json"))
