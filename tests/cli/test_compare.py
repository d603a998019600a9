"""``lrkit compare``: table, recommendation and report folder, with tiny budgets."""

from __future__ import annotations

import json

import pytest

from lrkit.cli import main


@pytest.mark.slow
def test_compare_prints_table_and_writes_report(tmp_path, capsys):
    """Named and spec schedules run; the table, recommendation and report files appear."""
    out = tmp_path / "rep"
    argv = [
        "compare",
        "--steps",
        "20",
        "--seeds",
        "0,1",
        "--peak",
        "0.05",
        "-o",
        str(out),
        "--schedules",
        "constant,cosine",
        "warmup(cosine(peak, 0.1 * peak, steps='80%'), steps='20%')",
        "--no-progress",
    ]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "peak rate 0.05 (given)" in text and "recommendation:" in text
    for name in ("constant", "cosine", "warmup(cosine(peak"):
        assert name in text
    res = json.loads((out / "results.json").read_text())
    assert len(res["runs"]) == 6 and res["seeds"] == [0, 1]
    for f in ("report.html", "schedules.png", "training.png", "runs.csv", "summary.csv"):
        assert (out / f).exists()
    assert len(list((out / "runs").glob("*.json"))) == 6


def test_compare_unknown_schedule(tmp_path, capsys):
    """An unknown schedule name exits with code 2 before training."""
    argv = ["compare", "--peak", "0.1", "--schedules", "cosine,bogus", "-o", str(tmp_path)]
    assert main(argv) == 2
    assert "unknown schedule 'bogus'" in capsys.readouterr().err


def test_compare_bad_seeds(tmp_path, capsys):
    """--seeds that is neither a count nor a list is an error."""
    assert main(["compare", "--peak", "0.1", "--seeds", "x", "-o", str(tmp_path)]) == 2
    assert "--seeds must be a count or a list" in capsys.readouterr().err
