"""The command line never shows a traceback unless asked: one-line errors (a user's task that
raises included), the report folder checked first, Ctrl-C says how to resume and exits 130,
workers die with their parent, the progress total is known from the start, --help lists the
built-in tasks, --version."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import lrkit
from lrkit.cli import main

BAD_TASK = textwrap.dedent(
    """
    def make_task():
        settings = {}
        return settings["model"]
    """
)


def test_version(capsys):
    """lrkit --version prints the version and exits 0."""
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"lrkit {lrkit.__version__}"


def test_task_that_raises_is_one_line(tmp_path, capsys):
    """A user's task raising KeyError: one line naming the error, its file and line, and how
    to see the trace; --traceback shows it."""
    src = tmp_path / "badtask.py"
    src.write_text(BAD_TASK)
    argv = ["compare", f"{src}:make_task", "--peak", "0.1", "-o", str(tmp_path / "o")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "task raised KeyError: 'model' (badtask.py:4); lrkit --traceback" in err
    assert main(["--traceback", *argv]) == 2
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def test_unwritable_out_fails_before_any_work(tmp_path, capsys):
    """-o under a file: one line, exit 2, and nothing was trained (no range test file)."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["compare", "-o", str(blocker / "sub"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "out must be a folder that can be written" in err and err.count("\n") == 1


def test_compare_help_lists_builtin_tasks(capsys):
    """compare --help names every built-in task."""
    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in ("digits", "mnist1d", "charlm"))


def test_progress_total_known_from_the_start(progress_bars):
    """The bar's total is set once, before the range test, to the most runs the search can
    take; it never grows, and it ends at what was done."""
    from lrkit.tune import search

    comp = search.compare(
        "digits", schedules=["constant", "cosine"], seeds=1, steps=12, refine_top=1, search="grid"
    )
    bar = progress_bars[0]
    n_runs = len(comp.runs) + sum(len(r.runs) for r in comp.refinements)
    assert bar.totals[0] == 1 + 2 + 1 * 3  # range test + 2 runs + 3 refinement rates x 1 seed
    assert set(bar.totals) == {bar.totals[0]} and bar.n == n_runs + 1 == bar.total


def _children(pid):
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return out


def _alive(pid):
    """The process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _start(tmp_path, jobs):
    out = tmp_path / "rep"
    argv = ["compare", "--peak", "0.1", "--schedules", "constant", "--seeds", "300"]
    argv += ["-j", str(jobs), "-o", str(out), "--no-progress", "--search", "grid"]
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
    deadline = time.monotonic() + 120
    while not list((out / "runs").glob("*.json")) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        time.sleep(0.1)
    return proc, out


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_die_with_their_parent(tmp_path):
    """SIGKILL of `lrkit compare -j 2` takes its workers with it within seconds."""
    proc, _ = _start(tmp_path, 2)
    try:
        workers = [p for p in _children(proc.pid)]
        assert workers
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            alive = [p for p in workers if _alive(p)]
            if not alive:
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"workers {alive} outlived their parent")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.slow
def test_ctrl_c_says_how_to_resume_and_exits_130(tmp_path):
    """One Ctrl-C: no traceback, the number of saved runs, the --resume command, exit 130."""
    proc, out = _start(tmp_path, 1)
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    err = proc.stderr.read().decode()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "finished run(s) saved in" in err
    assert f"lrkit compare --peak 0.1 --schedules constant --seeds 300 -j 1 -o {out}" in err
    assert err.rstrip().endswith("--resume")


def _default_sigint() -> None:
    """In the child before exec: SIGINT handled by default, so Python turns it into
    KeyboardInterrupt (as when Ctrl-C is pressed in a terminal)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
