"""``lrkit.tools.termplot``: text plots for a terminal (braille or markers)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lrkit
from lrkit.tools.termplot import format_step, format_value, termplot

BRAILLE = re.compile("[\u2801-\u28ff]")


def split(text: str, height: int) -> tuple[list[str], list[str]]:
    """Labels and canvas strings of the first ``height`` rows."""
    labels, cells = [], []
    for row in text.splitlines()[:height]:
        m = re.match(r"^\s*(\S*)([┤│])(.*)$", row)
        assert m, row
        labels.append(m.group(1))
        cells.append(m.group(3))
    return labels, cells


@given(
    start=st.floats(-10, 10),
    end=st.floats(-10, 10),
    steps=st.integers(1, 3000),
    width=st.integers(30, 140),
    height=st.integers(2, 30),
)
def test_shape_and_extreme_labels(
    start: float, end: float, steps: int, width: int, height: int
) -> None:
    """Any line: height rows of exactly width chars; top/bottom labels are max/min of the line."""
    text = termplot(lrkit.linear(start, end, steps=steps), steps, width=width, height=height)
    rows = text.splitlines()
    assert all(len(row) == width for row in rows[:height])
    assert rows[height].lstrip().startswith("└")
    labels, cells = split(text, height)
    if start != end:
        assert labels[0] == format_value(max(start, end))
        assert labels[-1] == format_value(min(start, end))
        # The line touches the top and bottom rows, at opposite ends of the x axis.
        top = [i for i, c in enumerate(cells[0]) if c != " "]
        bottom = [i for i, c in enumerate(cells[-1]) if c != " "]
        assert top and bottom
        if start > end:
            assert top[0] == 0 and bottom[-1] == len(cells[-1]) - 1
        else:
            assert bottom[0] == 0 and top[-1] == len(cells[0]) - 1
    assert all(c == " " or BRAILLE.match(c) for c in "".join(cells))


def test_step_discontinuity_draws_a_vertical_join() -> None:
    """A drop (step decay) is joined by a vertical stroke: every row is drawn somewhere."""
    text = termplot(lrkit.multistep_decay(1.0, milestones=[50], gamma=0.1), 100, width=60,
                    height=8)  # fmt: skip
    _, cells = split(text, 8)
    assert all(row.strip() for row in cells)
    # The join sits at step 50, the middle of the canvas (within one character).
    cols = len(cells[0])
    mid_rows = [i for i, c in enumerate(cells[3]) if c != " "]
    assert mid_rows and abs(mid_rows[0] - cols / 2) <= 1


def test_log_scale_labels() -> None:
    """log=True: labels span the decades of an exponential decay, top 1, bottom 1e-3."""
    s = lrkit.exponential(1.0, gamma=0.1, every=100)
    text = termplot(s, 300, width=60, height=10, log=True)
    labels, _ = split(text, 10)
    assert float(labels[0]) == pytest.approx(1.0)
    assert float(labels[-1]) == pytest.approx(1e-3, rel=5e-3)
    # A middle label of a log axis is a geometric, not arithmetic, mean.
    mids = [float(v) for v in labels[1:-1] if v]
    assert mids and all(v < 0.5 for v in mids)


def test_markers_for_several_curves_with_legend() -> None:
    """Several curves default to markers, one character each, listed in the legend."""
    text = termplot({"a": lrkit.constant(1.0), "b": lrkit.constant(0.0)}, 10, width=40, height=5)
    _, cells = split(text, 5)
    legend = text.splitlines()[-2:]
    assert [line.split() for line in legend] == [["●", "a"], ["+", "b"]]
    assert set(cells[0]) == {"●"} and set(cells[-1]) == {"+"}
    assert all(not row.strip() for row in cells[1:-1])


def test_constant_draws_a_flat_line() -> None:
    """A constant (no range) is drawn as one flat row, labelled with its value."""
    text = termplot(lrkit.constant(0.3), 10, width=30, height=5)
    labels, cells = split(text, 5)
    drawn = [i for i, row in enumerate(cells) if row.strip()]
    assert len(drawn) == 1
    assert labels[0] == labels[-1] == "0.3"


@pytest.mark.parametrize(
    ("step", "text"),
    [(0, "0"), (950, "950"), (2500, "2500"), (10_000, "10k"), (12_345, "12.3k"),
     (2_500_000, "2.5M"), (10_000_000, "10M")],
)  # fmt: skip
def test_format_step(step: int, text: str) -> None:
    """Step labels are short: thousands as 'k' from 10k on, millions as 'M'."""
    assert format_step(step) == text


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"width": 10}, "width must leave at least 8 columns"),
        ({"height": 1}, "height must be an integer >= 2"),
        ({"style": "dots"}, "style must be 'braille' or 'markers'"),
    ],
)
def test_errors(kwargs: dict, match: str) -> None:
    """Bad sizes and styles raise ValueError naming termplot and the argument."""
    with pytest.raises(ValueError, match=f"termplot: {match}"):
        termplot(lrkit.constant(1.0), 10, **kwargs)


def test_log_with_nothing_positive_is_an_error() -> None:
    """log=True on a schedule that is never > 0 raises instead of drawing nothing."""
    with pytest.raises(ValueError, match="termplot: log=True needs values > 0"):
        termplot(lrkit.constant(0.0), 10, width=40, log=True)


def test_markers_style_uses_cell_resolution() -> None:
    """style='markers' on one curve draws with its marker, no braille."""
    text = termplot(lrkit.cosine(1.0, steps=20), 20, width=40, height=6, style="markers")
    _, cells = split(text, 6)
    assert set("".join(cells)) == {" ", "●"}
    assert np.sum([row.count("●") for row in cells]) >= len(cells[0])


@pytest.mark.parametrize("steps", [1, 2, 3, 5, 6, 7, 10, 13, 1001])
def test_x_labels_are_the_steps_under_their_ticks(steps: int) -> None:
    """Tick labels are distinct whole steps, each at the column where that step is drawn.

    (With steps=1 the five ticks read '0 0 0 1 1'; with steps=6 a tick at 1.5 read '2'.)
    """
    width, height = 70, 4
    text = termplot(lrkit.linear(0.0, 1.0, steps=steps), steps, width=width, height=height)
    axis, labels = text.splitlines()[height : height + 2]
    origin = axis.index("└") + 1
    cols = len(axis) - origin
    ticks = [c - origin for c, ch in enumerate(axis) if ch == "┬"]
    numbers = [(m.start(), int(m.group())) for m in re.finditer(r"\d+", labels)]
    assert [n for _, n in numbers] == sorted({n for _, n in numbers})  # distinct, increasing
    assert numbers[0][1] == 0 and numbers[-1][1] == steps
    for start, n in numbers:
        col = round(n / steps * (cols - 1))
        assert col in ticks
        assert start - origin <= col < start - origin + len(str(n)) + 1
