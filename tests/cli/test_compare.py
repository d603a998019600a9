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
        "--search",
        "grid",
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


@pytest.mark.slow
def test_ctrl_c_with_jobs_exits_and_resume_reuses_runs(tmp_path):
    """Ctrl-C twice (SIGINT to the process group) during --jobs 2 exits, leaves no worker, and
    the finished runs on disk are reused by --resume (it used to hang in the pool's shutdown)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "rep"
    argv = ["compare", "--peak", "0.1", "--schedules", "constant", "--seeds", "300"]
    argv += ["-j", "2", "-o", str(out), "--no-progress", "--search", "grid"]
    code = f"import sys; from lrkit.cli import main; sys.exit(main({argv!r}))"
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        # a shell that started the tests in the background ignores SIGINT, and ignored
        # signals are inherited: give the child the default handling a terminal gives
        preexec_fn=_default_sigint,
    )
    try:
        deadline = time.monotonic() + 120
        while not list((out / "runs").glob("*.json")) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends
        time.sleep(0.05)
        os.kill(proc.pid, signal.SIGINT)  # pressed again while it stops
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode != 0
    for _ in range(100):  # the process group (workers, resource tracker) goes away
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("worker processes survived the interrupt")
    files = sorted((out / "runs").glob("*.json"))
    assert 0 < len(files) < 300
    seeds = [json.loads(f.read_text())["seed"] for f in files]
    stamps = [f.stat().st_mtime_ns for f in files]
    from lrkit.tune.search import compare

    comp = compare(
        "digits",
        schedules=["constant"],
        seeds=seeds,
        peak=0.1,
        out=out,
        resume=True,
        progress=False,
        search="grid",
    )
    assert [f.stat().st_mtime_ns for f in files] == stamps  # nothing retrained or rewritten
    assert sorted(r.seed for r in comp.runs) == sorted(seeds)


def test_bad_spec_fails_before_the_range_test(tmp_path, capsys):
    """Without --peak, a bad schedule spec fails before the range test runs (no finder.json)."""
    argv = ["compare", "--schedules", "cosine(peak, steps=", "-o", str(tmp_path / "r")]
    assert main(argv) == 2
    assert "cosine(peak, steps=" in capsys.readouterr().err
    assert not (tmp_path / "r" / "finder.json").exists()


def _default_sigint() -> None:
    """In the child before exec: SIGINT handled by default, so Python turns it into
    KeyboardInterrupt (as when Ctrl-C is pressed in a terminal)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
