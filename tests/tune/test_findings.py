"""``compare``'s diagnostics: each schedule's findings in the CLI text, results.json and HTML."""

from __future__ import annotations

import json
import math

import pytest

from lrkit.cli import main
from lrkit.diagnostics import Finding
from lrkit.tune.findings import findings_lines, run_log, schedule_findings
from lrkit.tune.records import RunResult

pytestmark = pytest.mark.usefixtures("one_thread")


def _run(schedule: str, seed: int, diverged: bool = False) -> RunResult:
    n = 40
    lr = tuple([0.1] * (n if not diverged else 23))
    steps = tuple(range(2, n + 1, 2)) if not diverged else (2, 4, 6, 8, 10, 12, 14, 16, 18, 20)
    loss = tuple(2.0 * math.exp(-s / 10) + 0.1 for s in steps)
    return RunResult(
        schedule=schedule,
        spec="constant(0.1)",
        plateau=None,
        seed=seed,
        steps=n,
        lr=lr,
        train_step=steps,
        train_loss=loss,
        val_step=steps,
        val_loss=loss,
        val_acc=tuple(None for _ in steps),
        final_val_loss=math.inf if diverged else loss[-1],
        final_acc=None,
        diverged=diverged,
        wall_s=0.1,
        reason="the loss became non-finite" if diverged else "",
    )


def test_run_log_rows_and_divergence_row():
    """One row per recorded window with the rate of its last update; a run stopped by a
    non-finite loss gets an inf row at that update."""
    log = run_log(_run("a", 0, diverged=True))
    assert log is not None
    assert log.steps.tolist() == [2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 23]
    assert math.isinf(log.loss[-1]) and log.lr is not None and log.lr[-1] == 0.1
    assert log.val_loss is not None and len(log.val_loss) == 10


def test_run_log_starts_at_the_initial_loss():
    """With the initialised model's loss known, the log starts there at step 0."""
    from dataclasses import replace

    log = run_log(replace(_run("a", 0), start_val_loss=2.5))
    assert log is not None and log.steps[0] == 0 and log.loss[0] == 2.5
    assert log.val_loss is not None and log.val_loss[0] == 2.5 and len(log) == 21


def test_schedule_findings_uses_first_seed():
    """The first seed's run is diagnosed: seed 1's diverged run of "a" is ignored."""
    runs = [_run("a", 1, diverged=True), _run("a", 0), _run("b", 1, diverged=True)]
    found = schedule_findings(runs, (0, 1))
    assert set(found) == {"a", "b"}
    assert "diverged" not in [f.kind for f in found["a"]]
    assert found["b"][0].kind == "diverged"
    with pytest.raises(ValueError, match="top must be a positive integer"):
        schedule_findings(runs, (0,), top=0)


def test_findings_lines_all_healthy_or_one_per_problem():
    """All healthy prints one line; otherwise one line per schedule with a problem."""
    ok = Finding("healthy", 0.0, 1, 10, "no problem found")
    bad = Finding("lr_too_high", 0.8, 3, 9, "spikes", advice="lower the peak")
    assert findings_lines({"a": (ok,), "b": (ok,)}) == ["diagnostics: all healthy"]
    assert findings_lines({"a": (ok,), "b": (bad, bad)}) == [
        "diagnostics: b: lr_too_high [critical]: lower the peak (+1 more)"
    ]


@pytest.mark.slow
def test_compare_reports_a_diverged_schedule(tmp_path, capsys):
    """A real comparison with one schedule at an absurd peak: its ``diverged`` finding is in the
    CLI text, results.json and the HTML report; the sane schedule has findings too."""
    out = tmp_path / "rep"
    argv = ["compare", "--steps", "150", "--seeds", "1", "--peak", "0.05", "-o", str(out)]
    argv += ["--schedules", "cosine", "blowup=constant(1000 * peak)", "--no-refine"]
    argv += ["--search", "grid"]
    assert main([*argv, "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "diagnostics: blowup: diverged [critical]" in text
    res = json.loads((out / "results.json").read_text())
    assert set(res["findings"]) == {"cosine", "blowup"}
    top = res["findings"]["blowup"][0]
    assert top["kind"] == "diverged" and top["level"] == "critical" and top["advice"]
    page = (out / "report.html").read_text()
    assert "Diagnostics" in page and "diverged" in page
