"""``lrkit.tools.plot.plot_schedules``: real matplotlib figures (Agg canvas, no display).

Line data are checked against closed formulas re-typed here (linear ramp; half-cosine as in
SGDR / ``torch.optim.lr_scheduler.CosineAnnealingLR`` with ``eta_min``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import lrkit
from lrkit.tools.plot import plot_schedules


def cosine_ref(t: np.ndarray, start: float, end: float, steps: int) -> np.ndarray:
    """Half-cosine from start to end over steps, held after."""
    f = np.minimum(t, steps) / steps
    return end + (start - end) * 0.5 * (1 + np.cos(np.pi * f))


def test_one_line_per_schedule_with_formula_values() -> None:
    """A dict of N schedules gives N labelled lines whose y data follow the formulas."""
    fig = plot_schedules(
        {"cos": lrkit.cosine(1.0, 0.1, steps=80), "lin": lrkit.linear(0.0, 2.0, steps=50)}, 100
    )
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["cos", "lin"]
    x0, y0 = lines[0].get_data()
    np.testing.assert_array_equal(x0, np.arange(101))
    np.testing.assert_allclose(y0, cosine_ref(x0, 1.0, 0.1, 80), rtol=1e-12)
    x1, y1 = lines[1].get_data()
    np.testing.assert_allclose(y1, 2.0 * np.minimum(x1, 50) / 50, rtol=1e-12, atol=1e-15)
    assert ax.get_xlabel() == "step" and ax.get_ylabel() == "lr"
    assert ax.get_legend() is not None
    assert ax.get_xlim() == (0.0, 100.0)


def test_list_of_specs_is_labelled_by_spec() -> None:
    """A list of schedules or spec strings is labelled with each canonical spec."""
    fig = plot_schedules(["cosine(1.0, steps=10)", lrkit.constant(0.5)], 10)
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels == ["cosine(1.0, 0.0, steps=10)", "constant(0.5)"]


def test_draws_into_given_axes() -> None:
    """ax= draws into an existing axes and returns its figure."""
    from matplotlib.figure import Figure

    fig = Figure()
    ax1, ax2 = fig.subplots(1, 2)
    out = plot_schedules(lrkit.cosine(1.0, steps=10), 10, ax=ax2, ylabel="momentum")
    assert out is fig
    assert len(ax2.get_lines()) == 1 and len(ax1.get_lines()) == 0
    assert ax2.get_ylabel() == "momentum"


def test_log_axis_hides_non_positive_values() -> None:
    """log=True: log y scale; the warmup's value 0 at step 0 is not drawn (NaN), the rest is."""
    fig = plot_schedules(lrkit.warmup(lrkit.constant(1.0), steps=10), 20, log=True)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    _, y = ax.get_lines()[0].get_data()
    assert np.isnan(y[0]) and np.all(np.isfinite(y[1:]))


def test_path_writes_an_image(tmp_path: Path) -> None:
    """path= saves a PNG that matplotlib reads back."""
    import matplotlib.image

    path = tmp_path / "s.png"
    plot_schedules(lrkit.cosine(1.0, steps=10), 10, path=path, title="my run")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert matplotlib.image.imread(path).shape[2] in (3, 4)


def test_long_runs_are_sampled_with_phase_ends() -> None:
    """Past max_points the steps are strided but keep both sides of the warmup's end."""
    w = 1_234_567
    s = lrkit.warmup(lrkit.cosine(1.0, steps=8_000_000), steps=w)
    fig = plot_schedules(s, 10_000_000, max_points=500)
    x, y = fig.axes[0].get_lines()[0].get_data()
    assert len(x) < 520
    assert x[0] == 0 and x[-1] == 10_000_000
    assert {w - 1, w} <= set(x.tolist())
    assert np.all(np.diff(x) > 0)
    np.testing.assert_allclose(y[x == w], [1.0])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"schedules": {}, "steps": 10}, "at least one schedule"),
        ({"schedules": lrkit.constant(1.0), "steps": 0}, "steps must be a positive integer"),
        ({"schedules": lrkit.constant(1.0), "steps": 2.5}, "steps must be a positive integer"),
        ({"schedules": ["constant(1.0)", "constant(1.0)"], "steps": 5}, "same label"),
        ({"schedules": lrkit.constant(1.0), "steps": 5, "max_points": 1}, "max_points"),
    ],
)
def test_errors_name_the_argument(kwargs: dict, match: str) -> None:
    """Bad arguments raise ValueError/TypeError naming plot_schedules and the argument."""
    with pytest.raises((ValueError, TypeError), match=match) as info:
        plot_schedules(**kwargs)
    assert str(info.value).startswith("plot_schedules:")
