"""Text plots of schedules for a terminal: unicode braille (one curve) or markers (several).

Pure numpy and the standard library. :func:`termplot` returns the plot as a string:
``height`` rows of canvas with y labels on the left (the top row is labelled with the largest
value drawn, the bottom row with the smallest), an x axis with step ticks, and a legend.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import numpy.typing as npt

from lrkit.tools._sampling import SchedulesArg, check_steps, named_schedules, sample_steps

#: Characters that draw curve 0, 1, 2, ... in ``markers`` style.
MARKERS = "●+x*o#@%"
_BRAILLE_BASE = 0x2800
#: Braille dot bits by (dot row 0..3 from the top, dot column 0..1).
_BRAILLE_BITS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))


def format_value(v: float) -> str:
    """A short label for a value: 3 significant digits (``0.001``, ``1e-05``, ``0.5``)."""
    return f"{v:.3g}"


def format_step(step: float) -> str:
    """A short label for a step: ``950``, ``2500``, ``10k``, ``12.3k``, ``2.5M``."""
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(step) >= 10 * div or (div > 1e3 and abs(step) >= div):
            return f"{step / div:.3g}{suffix}"
    return f"{step:.0f}"


def default_width() -> int:
    """The terminal width: ``$COLUMNS`` when set, else the detected size (80 if unknown)."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    return shutil.get_terminal_size((80, 24)).columns


def termplot(
    schedules: SchedulesArg,
    steps: int,
    *,
    width: int | None = None,
    height: int = 16,
    log: bool = False,
    style: str | None = None,
    legend: bool = True,
) -> str:
    """Draw schedules over steps ``0..steps`` as text for a terminal.

    Args:
        schedules: one schedule (or spec), a list of them (named by their spec), or a dict
            ``{name: schedule}``.
        steps: the last step drawn (the x axis runs from 0 to ``steps``).
        width: total width in characters, labels included (default :func:`default_width`).
        height: canvas rows.
        log: a log-scale y axis (non-positive values are not drawn).
        style: ``"braille"`` (2x4 dots per character; the default for one curve) or
            ``"markers"`` (one character per cell, a different one per curve; the default for
            several).
        legend: add a legend line per curve.

    Returns the plot as lines joined by ``\\n``: ``height`` canvas rows of exactly ``width``
    characters, the x axis, its labels and the legend.

    Raises:
        ValueError: ``steps``/``width``/``height`` too small, unknown ``style``, or nothing
            positive to draw on a log axis.

    >>> text = termplot(linear(1.0, 0.0, steps=10), 10, width=30, height=4)
    >>> for line in text.splitlines():
    ...     print(line.rstrip())
     1┤⠉⠉⠙⠒⠒⢲⣀⣀⡀
      │        ⠓⠒⠲⠤⠤⣄⣀⣀⡀
      │                ⠓⠒⠲⠤⠤⡄
     0┤                     ⠉⠉⠉⠧⠤⢤
      └┬────────────┬────────────┬
       0            5           10
       ⣿ linear(1.0, 0.0, steps=10)
    """
    owner = "termplot"
    named = named_schedules(owner, schedules)
    steps = check_steps(owner, steps)
    width = default_width() if width is None else width
    if isinstance(height, bool) or not isinstance(height, int) or height < 2:
        raise ValueError(f"{owner}: height must be an integer >= 2, got height={height!r}")
    if style is None:
        style = "braille" if len(named) == 1 else "markers"
    if style not in ("braille", "markers"):
        raise ValueError(f"{owner}: style must be 'braille' or 'markers', got style={style!r}")

    xs = sample_steps(steps, list(named.values()))
    ys = {name: np.asarray(s(xs), dtype=np.float64) for name, s in named.items()}
    drawn = {name: _transform(y, log) for name, y in ys.items()}
    finite = np.concatenate([y[np.isfinite(y)] for y in drawn.values()])
    if finite.size == 0:
        raise ValueError(f"{owner}: log=True needs values > 0, got none in steps 0..{steps}")
    lo, hi = float(finite.min()), float(finite.max())

    labels = _y_labels(lo, hi, height, log)
    label_w = max(len(text) for text in labels.values()) + 1
    cols = width - label_w - 1
    if cols < 8:
        raise ValueError(
            f"{owner}: width must leave at least 8 columns for the curve, got width={width!r}"
        )
    dots_x, dots_y = (2, 4) if style == "braille" else (1, 1)
    grid = np.zeros((height * dots_y, cols * dots_x), dtype=np.int16)  # 0 empty, k+1 curve k
    for k, y in enumerate(drawn.values()):
        _draw(grid, xs, y, steps, lo, hi, k + 1)

    rows: list[str] = []
    for r in range(height):
        text = labels.get(r, "")
        tick = "┤" if r in labels else "│"
        if style == "braille":
            canvas = _braille_row(grid[4 * r : 4 * r + 4])
        else:
            canvas = "".join(" " if c == 0 else MARKERS[(c - 1) % len(MARKERS)] for c in grid[r])
        rows.append(f"{text:>{label_w}}{tick}{canvas}")
    rows.extend(_x_axis(steps, label_w, cols))
    if legend:
        for k, name in enumerate(drawn):
            mark = "⣿" if style == "braille" else MARKERS[k % len(MARKERS)]
            rows.append(f"{'':>{label_w}} {mark} {name}")
    return "\n".join(rows)


def _transform(y: npt.NDArray[np.float64], log: bool) -> npt.NDArray[np.float64]:
    if not log:
        return y
    out = np.full(y.shape, np.nan)
    positive = y > 0
    out[positive] = np.log10(y[positive])
    return out


def _y_labels(lo: float, hi: float, height: int, log: bool) -> dict[int, str]:
    """Labels for the top row, the bottom row and about every fourth row between."""
    out: dict[int, str] = {}
    every = max(2, round((height - 1) / max(1, (height - 1) // 4)))
    rows = sorted({0, height - 1, *range(every, height - 1 - every // 2, every)})
    for r in rows:
        frac = 1.0 - r / (height - 1)
        v = lo + (hi - lo) * frac
        if r == 0:
            v = hi
        elif r == height - 1:
            v = lo
        out[r] = format_value(10.0**v if log else v)
    return out


def _draw(
    grid: npt.NDArray[np.int16],
    xs: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    steps: int,
    lo: float,
    hi: float,
    mark: int,
) -> None:
    """Plot one curve into ``grid`` (rows top-down) with vertical joins between columns."""
    n_rows, n_cols = grid.shape
    ok = np.isfinite(y)
    if not np.any(ok):
        return
    xs, y = xs[ok], y[ok]
    col = np.rint(xs / steps * (n_cols - 1)).astype(np.int64)
    if hi > lo:
        level = np.rint((y - lo) / (hi - lo) * (n_rows - 1)).astype(np.int64)
    else:
        level = np.full(y.shape, n_rows // 2)
    low = np.full(n_cols, n_rows, dtype=np.int64)
    high = np.full(n_cols, -1, dtype=np.int64)
    np.minimum.at(low, col, level)
    np.maximum.at(high, col, level)
    last = np.full(n_cols, -1, dtype=np.int64)
    last[col] = level  # the final assignment per column wins: xs are sorted
    previous = -1
    for c in range(int(col.min()), n_cols):
        if high[c] < 0:
            if previous < 0:
                continue
            # No sample here (fewer steps than columns): the value holds until the next step.
            low[c] = high[c] = last[c] = previous
        bottom, top = low[c], high[c]
        if previous >= 0:
            bottom, top = min(bottom, previous), max(top, previous)
        grid[n_rows - 1 - top : n_rows - bottom, c] = mark
        previous = last[c]


def _braille_row(block: npt.NDArray[np.int16]) -> str:
    """One text row from a (4, 2 * cols) block of dots."""
    filled = block > 0
    chars = []
    for c in range(block.shape[1] // 2):
        code = 0
        for dr in range(4):
            for dc in range(2):
                if filled[dr, 2 * c + dc]:
                    code |= _BRAILLE_BITS[dr][dc]
        chars.append(" " if code == 0 else chr(_BRAILLE_BASE + code))
    return "".join(chars)


def _x_axis(steps: int, label_w: int, cols: int) -> list[str]:
    """The axis line with ticks and the line of step labels under them."""
    n_ticks = max(2, min(5, cols // 12 + 1, steps + 1))
    axis = ["─"] * cols
    labels = [" "] * (cols + 8)
    taken_until = -1
    for i in range(n_ticks):
        # Ticks on whole steps (a label "2" under step 2.5 would misread), each at the
        # column where _draw puts that step.
        step = round(steps * i / (n_ticks - 1))
        c = round(step / steps * (cols - 1))
        axis[c] = "┬"
        text = format_step(step)
        start = min(max(c - len(text) // 2, 0), cols - len(text))
        if i == n_ticks - 1:
            start = max(start, c - len(text) + 1)
        if start <= taken_until + 1 and i > 0:
            continue
        labels[start : start + len(text)] = text
        taken_until = start + len(text) - 1
    pad = " " * label_w
    return [f"{pad}└{''.join(axis)}", f"{pad} {''.join(labels).rstrip()}"]
