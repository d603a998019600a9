"""``lrkit find``: prints the suggestion and alternatives, writes the plot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lrkit.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "custom_task.py"


@pytest.mark.slow
def test_find_prints_suggestion_and_writes_plot(tmp_path, capsys):
    """The default task: a suggested rate, each rule's rate, a schedule using it, a PNG."""
    png = tmp_path / "f.png"
    assert main(["find", "--steps", "30", "-o", str(png)]) == 0
    out = capsys.readouterr().out
    assert "task digits" in out and "suggested peak rate:" in out
    for rule in ("valley", "steepest", "minimum/10"):
        assert rule in out
    assert "warmup(cosine(" in out and "probe at" in out and png.read_bytes()[:4] == b"\x89PNG"


def test_find_json_on_plugin_task(capsys):
    """--json on a 'file.py:function' task prints the full result."""
    assert main(["find", f"{EXAMPLE}:make_task", "--steps", "20", "-o", "", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["task"] == "sine" and len(d["rates"]) <= 20 and d["suggestion"] > 0


def test_find_unknown_task_is_an_error(capsys):
    """An unknown task exits with code 2 and one error line."""
    assert main(["find", "nope"]) == 2
    assert "unknown task 'nope'" in capsys.readouterr().err


def test_find_bad_range(capsys):
    """start >= end is reported as an argument error."""
    assert main(["find", "--start", "1", "--end", "0.1", "-o", ""]) == 2
    assert "start must be < end" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["find", "--help"]])
def test_find_help(argv, capsys):
    """The help names the built-in tasks and the plug-in form."""
    with pytest.raises(SystemExit):
        main(argv)
    assert "module:function" in capsys.readouterr().out
