"""``lrkit plot`` and ``lrkit show`` run for real (``lrkit.cli.main`` and ``python -m``).

Expected values come from the closed formulas re-typed below, not from lrkit:
warmup + cosine is ``peak * t / W`` then ``floor + (peak - floor) * (1 + cos(pi (t - W) / D)) / 2``
(optax ``warmup_cosine_decay_schedule``, SGDR); WSD with a linear decay is
``peak * (1 - f) + floor * f`` (transformers ``get_wsd_schedule``, ``decay_type="linear"``).
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lrkit
from lrkit.cli import main

PEAK, FLOOR, W, D = 1e-3, 1e-5, 100, 900
WARMUP_COSINE = f"warmup(cosine({PEAK}, {FLOOR}, steps={D}), steps={W})"


def warmup_cosine(t: float) -> float:
    """The reference formula for WARMUP_COSINE (linear ramp from 0, then half-cosine)."""
    if t < W:
        return PEAK * t / W
    f = min(t - W, D) / D
    return FLOOR + (PEAK - FLOOR) * 0.5 * (1 + math.cos(math.pi * f))


def wsd_linear(t: float, peak: float, floor: float, w: int, s: int, d: int) -> float:
    """transformers' WSD with a linear decay and a linear warmup from 0."""
    if t < w:
        return peak * t / w
    if t < w + s:
        return peak
    f = min((t - w - s) / d, 1.0)
    return peak * (1 - f) + floor * f


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the CLI in-process; the exit code, stdout and stderr."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def canvas(out: str, height: int) -> tuple[list[str], list[str]]:
    """Split a text plot's first ``height`` lines into y labels and canvas strings."""
    rows = out.splitlines()[:height]
    labels, cells = [], []
    for row in rows:
        m = re.match(r"^\s*(\S*)([┤│])(.*)$", row)
        assert m, row
        labels.append(m.group(1))
        cells.append(m.group(3))
    return labels, cells


# ----------------------------------------------------------------------------- text plot
def test_text_plot_size_and_extreme_labels(capsys: pytest.CaptureFixture[str]) -> None:
    """The text plot is height x width and its top/bottom labels are the run's max/min."""
    code, out, _ = run(capsys, "plot", WARMUP_COSINE, "--steps", "1000", "--width", "70",
                       "--height", "12")  # fmt: skip
    assert code == 0
    lines = out.splitlines()
    assert all(len(line) == 70 for line in lines[:12])
    assert lines[12].lstrip().startswith("└")
    labels, cells = canvas(out, 12)
    values = [warmup_cosine(t) for t in range(1001)]
    assert float(labels[0]) == pytest.approx(max(values), rel=5e-3)
    assert float(labels[-1]) == pytest.approx(min(values), abs=1e-12)
    # The top row starts drawing where the warmup reaches the peak (step 100 of 1000).
    cols = len(cells[0])
    first_top = next(i for i, ch in enumerate(cells[0]) if ch != " ")
    assert abs(first_top / cols * 1000 - W) <= 1.5 * 1000 / cols
    # The bottom row holds step 0 (value 0, the minimum) in its first column.
    assert cells[-1][0] != " "
    # The x axis ends with the last step.
    assert lines[13].split()[-1] == "1000"


def test_text_plot_respects_columns(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --width the plot fits $COLUMNS (one column spare against terminal wrap)."""
    monkeypatch.setenv("COLUMNS", "50")
    code, out, _ = run(capsys, "plot", "cosine(1.0, steps=100)", "--height", "6")
    assert code == 0
    assert [len(line) for line in out.splitlines()[:6]] == [49] * 6
    assert max(len(line) for line in out.splitlines()[:8]) <= 50


def test_text_plot_several_specs_use_distinct_characters(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Several specs: each curve has its own character, named in the legend."""
    specs = ["constant(1.0)", "linear(0.0, 0.5, steps=200)", "step_decay(0.8, steps=50)"]
    code, out, _ = run(capsys, "plot", *specs, "--steps", "200", "--width", "60",
                       "--label", "flat", "--label", "ramp", "--label", "steps")  # fmt: skip
    assert code == 0
    _, cells = canvas(out, 16)
    legend = out.splitlines()[-3:]
    marks = [line.split()[0] for line in legend]
    assert [line.split()[1] for line in legend] == ["flat", "ramp", "steps"]
    assert len(set(marks)) == 3
    drawn = set("".join(cells)) - {" "}
    assert drawn == set(marks)
    # constant(1.0) is the maximum: the whole top row is its character.
    assert set(cells[0]) == {marks[0]}


def test_steps_default_to_the_longest_duration(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --steps the x axis ends at the longest spec's duration."""
    code, out, _ = run(capsys, "plot", "linear(1.0, 0.0, steps=300)", "cosine(1.0, steps=500)",
                       "--width", "60")  # fmt: skip
    assert code == 0
    axis_labels = next(line for line in out.splitlines() if line.strip().startswith("0 "))
    assert axis_labels.split()[-1] == "500"


def test_cyclic_spec_without_steps_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    """A cyclic spec and no --steps: exit 2, naming that spec."""
    code, out, err = run(capsys, "plot", "cosine(1.0, steps=5)", "cosine_restarts(1.0, steps=10)")
    assert code == 2
    assert "cosine_restarts(1.0, steps=10)" in err
    assert "--steps" in err
    assert out == ""


# ----------------------------------------------------------------------------- image
def colour_pixels(image: np.ndarray, hex_colour: str) -> int:
    """How many pixels are (nearly) the given colour."""
    rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)]) / 255.0
    return int(np.sum(np.all(np.abs(image[..., :3] - rgb) < 0.02, axis=-1)))


def test_png_output_has_one_line_per_spec(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """-o writes a real PNG that matplotlib reads back, with one coloured line per spec."""
    import matplotlib.image

    out_png = tmp_path / "curve.png"
    specs = [WARMUP_COSINE, "one_cycle(0.001, steps=1000)", "linear(0.001, 0.0, steps=1000)"]
    code, out, _ = run(capsys, "plot", *specs, "-o", str(out_png), "--log", "--title", "t")
    assert code == 0
    assert str(out_png) in out
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(out_png)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    # matplotlib's default cycle: C0, C1, C2 drawn; C3 (a fourth curve) absent.
    for colour in ("#1f77b4", "#ff7f0e", "#2ca02c"):
        assert colour_pixels(image, colour) > 200, colour
    assert colour_pixels(image, "#d62728") == 0


def test_png_output_to_missing_directory_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """An unwritable -o path is a one-line error, exit 2."""
    code, _, err = run(capsys, "plot", "cosine(1.0, steps=10)", "-o",
                       str(tmp_path / "nope" / "c.png"))  # fmt: skip
    assert code == 2
    assert "cannot write" in err


# ----------------------------------------------------------------------------- show
def show_table(out: str) -> dict[int, float]:
    """``{step: value}`` from the values table printed by ``lrkit show``."""
    rows = {}
    for line in out.splitlines():
        m = re.match(r"^\s+(\d+)\s+(\S+)\s+\S+", line)
        if m:
            rows[int(m.group(1))] = float(m.group(2))
    return rows


def test_show_prints_values_matching_the_formula(capsys: pytest.CaptureFixture[str]) -> None:
    """show: canonical spec, length, key-step values, min and max, all per the formula."""
    code, out, _ = run(capsys, "show", WARMUP_COSINE)
    assert code == 0
    assert f"spec:    {lrkit.parse(WARMUP_COSINE)}" in out
    assert "bound:" not in out  # no units to bind
    assert re.search(r"^length:\s+1000 steps", out, re.M)
    table = show_table(out)
    assert {0, W, W + D} <= set(table)
    for step, value in table.items():
        assert value == pytest.approx(warmup_cosine(step), rel=1e-5, abs=1e-12), step
    values = [warmup_cosine(t) for t in range(W + D + 1)]
    m_min = re.search(r"^min:\s+(\S+) at step (\d+)", out, re.M)
    m_max = re.search(r"^max:\s+(\S+) at step (\d+)", out, re.M)
    assert m_min and m_max
    assert float(m_min.group(1)) == pytest.approx(min(values), abs=1e-12)
    assert int(m_min.group(2)) == int(np.argmin(values))
    assert float(m_max.group(1)) == pytest.approx(max(values), rel=1e-5)
    assert int(m_max.group(2)) == int(np.argmax(values))


def test_show_lists_wsd_phase_ends(capsys: pytest.CaptureFixture[str]) -> None:
    """show on WSD tabulates the end of warmup, of the plateau and of the decay."""
    spec = "wsd(0.01, 0.0001, warmup_steps=50, stable_steps=800, decay_steps=150, decay='linear')"
    code, out, _ = run(capsys, "show", spec)
    assert code == 0
    table = show_table(out)
    assert {50, 850, 1000} <= set(table)
    for step, value in table.items():
        expected = wsd_linear(step, 0.01, 0.0001, 50, 800, 150)
        assert value == pytest.approx(expected, rel=1e-5, abs=1e-12), step


def test_show_binds_units(capsys: pytest.CaptureFixture[str]) -> None:
    """'%' lengths bind to --total-steps and 'ep' lengths to --steps-per-epoch."""
    code, out, _ = run(capsys, "show", "linear(0.0, 1.0, steps='10%')", "--total-steps", "300")
    assert code == 0
    assert "bound:   linear(0.0, 1.0, steps=30)" in out
    assert re.search(r"^length:\s+30 steps", out, re.M)
    code, out, _ = run(capsys, "show", "linear(0.0, 1.0, steps='2ep')", "--steps-per-epoch", "7")
    assert code == 0
    assert re.search(r"^length:\s+14 steps", out, re.M)
    code, _, err = run(capsys, "show", "linear(0.0, 1.0, steps='2ep')")
    assert code == 2
    assert "--steps-per-epoch" in err


def test_show_cyclic(capsys: pytest.CaptureFixture[str]) -> None:
    """A cyclic spec never settles; with --steps its restarts are tabulated."""
    spec = "cosine_restarts(1.0, 0.0, steps=10, period_mult=2.0)"
    code, out, _ = run(capsys, "show", spec)
    assert code == 0
    assert "never settles (cyclic)" in out
    code, out, _ = run(capsys, "show", spec, "--steps", "100")
    assert code == 0
    table = show_table(out)
    # SGDR restarts at 10, 30, 70 (periods 10, 20, 40): the value is back at the peak.
    for restart in (10, 30, 70):
        assert table[restart] == pytest.approx(1.0)
    assert table[100] == pytest.approx(0.5 * (1 + math.cos(math.pi * 30 / 80)), rel=1e-5)


def test_show_json_round_trips(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """--json prints the dict form; a .json file of it is accepted back as a spec."""
    code, out, _ = run(capsys, "show", WARMUP_COSINE, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["type"] == "warmup" and data["schedule"]["type"] == "cosine"
    assert lrkit.from_dict(data) == lrkit.parse(WARMUP_COSINE)
    path = tmp_path / "sched.json"
    path.write_text(out)
    code, out2, _ = run(capsys, "show", str(path))
    assert code == 0
    assert show_table(out2) == show_table(run(capsys, "show", WARMUP_COSINE)[1])
    code, out3, _ = run(capsys, "plot", str(path), "--width", "50")
    assert code == 0
    assert out3.splitlines()[-1].split()[-1] == "sched"


# ----------------------------------------------------------------------------- bad input
def test_bad_spec_exits_2_with_caret(capsys: pytest.CaptureFixture[str]) -> None:
    """A typo in a spec: exit 2, the SpecError message with a caret under the typo."""
    spec = "warmup(cosin(1e-3, steps=9000), steps=1000)"
    code, out, err = run(capsys, "show", spec)
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert "cosine" in lines[0]  # the suggestion
    text_line = next(line for line in lines if spec in line)
    caret_line = lines[lines.index(text_line) + 1]
    assert caret_line.index("^") == text_line.index("cosin")
    assert caret_line.count("^") == len("cosin")


@pytest.mark.parametrize(
    "argv",
    [
        ["plot", "cosine(1.0, steps=0)"],
        ["plot", "cosine(1.0, steps=10)", "--label", "a", "--label", "b"],
        ["plot", "cosine(1.0, steps=10)", "--steps", "0"],
        ["show", "missing-file.json"],
        ["show", "__import__('os')"],
    ],
)
def test_bad_input_exits_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    """Bad values, label counts, steps and files: exit 2 and one message, no traceback."""
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.startswith(f"lrkit {argv[0]}: error:")
    assert "Traceback" not in err


@pytest.mark.slow
def test_real_entry_point_bad_spec_has_no_traceback() -> None:
    """`python -m lrkit.cli`: a bad spec exits 2 without a traceback; a good one prints."""
    bad = subprocess.run([sys.executable, "-m", "lrkit.cli", "plot", "cosine(1.0, stepz=10)"],
                         capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert "^" in bad.stderr
    good = subprocess.run([sys.executable, "-m", "lrkit.cli", "show", "cosine(1.0, steps=10)"],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert good.returncode == 0
    assert "length:  10 steps" in good.stdout
