"""Matplotlib figures of schedules (matplotlib is imported inside the function, never at import).

:func:`plot_schedules` draws one or more schedules over steps ``0..steps`` on one axes and
returns the :class:`matplotlib.figure.Figure`. It builds the figure without ``pyplot`` (an
Agg canvas), so it works in scripts, servers and tests without a display; pass ``ax=`` to
draw into an existing axes instead (a notebook, a grid of subplots, the LR finder's figure).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from lrkit.tools._sampling import (
    DENSE_LIMIT,
    SchedulesArg,
    check_steps,
    named_schedules,
    sample_steps,
)


def plot_schedules(
    schedules: SchedulesArg,
    steps: int,
    *,
    ax: Any = None,
    log: bool = False,
    path: str | os.PathLike[str] | None = None,
    title: str | None = None,
    ylabel: str = "lr",
    xlabel: str = "step",
    max_points: int = DENSE_LIMIT,
    figsize: tuple[float, float] = (7.0, 4.0),
    dpi: int = 100,
) -> Any:
    """Plot schedules over steps ``0..steps`` on one axes and return the matplotlib Figure.

    Each schedule is evaluated at every integer step when ``steps + 1 <= max_points``, else
    at ``max_points`` evenly spaced steps plus the steps around its phase ends (see
    :func:`lrkit.tools._sampling.sample_steps`), and drawn as one line labelled with its
    dict key (or its spec for a list); a legend is added when there are several.

    Args:
        schedules: one schedule or spec, a list of them, or a dict ``{label: schedule}``.
        steps: the last step on the x axis.
        ax: a matplotlib Axes to draw into (its figure is returned); default a new figure on
            an Agg canvas (no pyplot, no display needed).
        log: log-scale y axis (non-positive values, e.g. a warmup's step 0, are not drawn).
        path: save the figure there (format from the extension: .png, .pdf, .svg).
        title: the axes title (default: the spec of a single schedule, none for several).
        ylabel, xlabel: axis labels (the hyperparameter's name, ``"step"``).
        max_points: the largest number of steps evaluated per schedule.
        figsize, dpi: size of a new figure.

    Returns:
        The :class:`matplotlib.figure.Figure`.

    Raises:
        ImportError: matplotlib is not installed (``pip install lrkit[plot]``).
        ValueError: ``steps`` not positive, no schedule, duplicate labels.

    >>> fig = plot_schedules({"lr": warmup(cosine(1e-3, steps=900), steps=100)}, 1000)
    >>> [line.get_label() for line in fig.axes[0].get_lines()]
    ['lr']
    """
    owner = "plot_schedules"
    named = named_schedules(owner, schedules)
    steps = check_steps(owner, steps)
    if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 2:
        raise ValueError(f"{owner}: max_points must be an integer >= 2, got {max_points!r}")
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - matplotlib is a test dependency
        raise ImportError(
            f"{owner}: needs matplotlib; install it with `pip install lrkit[plot]`"
        ) from exc

    if ax is None:
        fig = Figure(figsize=figsize, dpi=dpi)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    for label, schedule in named.items():
        xs = sample_steps(steps, [schedule], max_points=max_points)
        ys = np.asarray(schedule(xs), dtype=np.float64)
        if log:
            ys = np.where(ys > 0, ys, np.nan)
        ax.plot(xs, ys, label=label, linewidth=1.5)
    if log:
        ax.set_yscale("log")
    ax.set_xlim(0, steps)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title is None and len(named) == 1:
        title = next(iter(named))
    if title:
        ax.set_title(title, fontsize="medium")
    if len(named) > 1:
        ax.legend(fontsize="small")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    if path is not None:
        fig.savefig(os.fspath(path))
    return fig
