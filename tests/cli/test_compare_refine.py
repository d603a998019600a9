"""``lrkit compare`` peak refinement on the command line: printed, saved, and --no-refine."""

from __future__ import annotations

import json

import pytest

from lrkit.cli import main

ARGV = ["compare", "--steps", "20", "--seeds", "0,1", "--peak", "0.05", "--no-progress"]
ARGV += ["--search", "grid"]


@pytest.mark.slow
def test_refined_peak_printed_and_saved(tmp_path, capsys):
    """The peak line names the given and the refined peak; the printed spec uses the latter."""
    out = tmp_path / "rep"
    assert main([*ARGV, "--schedules", "constant,cosine", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    res = json.loads((out / "results.json").read_text())
    ref = next(r for r in res["refinements"] if r["schedule"] == res["recommendation"])
    assert ref["factor"] == 2.0 and len(res["refinements"]) == 2
    line = next(x for x in text.splitlines() if x.startswith("peak: 0.05 given"))
    if ref["refined_peak"] != 0.05:
        assert f"refined to {ref['refined_peak']:.3g} for {ref['schedule']}" in line
    else:
        assert "kept after refinement" in line
    assert f"use: {res['recommended_spec']}" in text and ref["spec"] in res["recommended_spec"]
    assert "x range-test peak" in text and "common peak" in text
    rec = next(x for x in text.splitlines() if x.startswith("recommendation: "))
    assert rec.startswith(
        f"recommendation: {res['recommendation']} at peak {ref['refined_peak']:.3g}"
    )
    if res["common_recommendation"] != res["recommendation"]:
        assert rec.endswith(f"(at the common peak 0.05: {res['common_recommendation']})")


def test_no_refine_and_refine_options(tmp_path, capsys):
    """--no-refine runs no refinement; --refine-steps/--refine-factor reach compare."""
    out = tmp_path / "a"
    assert main([*ARGV, "--schedules", "cosine", "--no-refine", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "peak: 0.05 given (not refined)" in text and "use: cosine(0.05" in text
    assert json.loads((out / "results.json").read_text())["refinements"] == []
    assert not (out / "runs" / "refine").exists()
    b = tmp_path / "b"
    argv = [*ARGV, "--schedules", "constant,cosine", "--refine-steps", "1", "--refine-factor"]
    assert main([*argv, "4", "--refine-top", "1", "-o", str(b)]) == 0
    (ref,) = json.loads((b / "results.json").read_text())["refinements"]
    assert [t["peak"] for t in ref["trials"]] == [0.0125, 0.05, 0.2]


def test_bad_refine_factor(tmp_path, capsys):
    """A refine factor <= 1 exits with code 2 before training."""
    assert main([*ARGV, "--refine-factor", "1", "-o", str(tmp_path)]) == 2
    assert "refine_factor must be a finite number > 1" in capsys.readouterr().err
