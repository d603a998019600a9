"""Reports for range tests and schedule comparisons: summary tables, PNG plots, JSON/CSV files,
one self-contained HTML page (PNGs embedded as base64) and its markdown digest
(:mod:`lrkit.tune.report_md`).

numpy and the standard library only; matplotlib is imported inside the plotting functions, with
the non-interactive Agg backend. The table formatters live in :mod:`lrkit.tools.tables` and the
atomic file writers in :mod:`lrkit.tools._files`.
"""

from __future__ import annotations

import html
import io
import math
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lrkit.tools._files import atomic_write, write_csv, write_json
from lrkit.tools.html import embed_png, html_page
from lrkit.tools.tables import html_table, text_table

if TYPE_CHECKING:
    from lrkit.tune.comparison import Comparison
    from lrkit.tune.range_test import FinderResult
    from lrkit.tune.records import RunResult, SummaryRow
from lrkit.tune.summary import (
    PATH_HEADER,
    REFINEMENT_HEADER,
    _fmt,
    mean_pm_std,
    path_rows,
    recommend,
    refinement_note,
    refinement_rows,
    summarise,
)

__all__ = [
    "PATH_HEADER",
    "REFINEMENT_HEADER",
    "SUMMARY_HEADER",
    "embed_png",
    "html_page",
    "path_rows",
    "plot_range_test",
    "plot_recommended",
    "plot_schedules",
    "plot_training",
    "recommend",
    "refinement_note",
    "refinement_rows",
    "rounded",
    "summarise",
    "summary_rows",
    "summary_table",
    "write_comparison",
]


# ---------------------------------------------------------------------------- plots
def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _finish(fig: Any, path: str | os.PathLike[str] | None) -> Any:
    if path is not None:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        atomic_write(path, buf.getvalue())
    return fig


def plot_range_test(result: FinderResult, path: str | os.PathLike[str] | None = None) -> Any:
    """Loss against rate (log scale): raw and smoothed, each rule's rate as a dashed line and
    the suggestion as a solid one."""
    plt = _pyplot()
    r = np.asarray(result.rates, dtype=float)
    raw = np.asarray(result.losses, dtype=float)
    sm = np.asarray(result.smoothed, dtype=float)
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ax.plot(r, raw, color="0.75", lw=1, label="loss")
    ax.plot(r, sm, color="C0", lw=2, label="smoothed")
    for i, (name, rate) in enumerate(result.alternatives.items()):
        ax.axvline(rate, color=f"C{i + 1}", ls="--", lw=1, label=f"{name}: {rate:.2g}")
    ax.axvline(result.suggestion, color="k", lw=1.5, label=f"suggested: {result.suggestion:.2g}")
    if result.probe_rates.size:
        ok = np.isfinite(result.probe_losses)
        ax2 = ax.twinx()
        ax2.plot(result.probe_rates[ok], result.probe_losses[ok], "s-", color="C3", ms=4, lw=1)
        ax2.set_ylabel("probe run: held-out loss", color="C3")
        ax.plot([], [], "s-", color="C3", ms=4, lw=1, label="probe runs (right axis)")
    finite = sm[np.isfinite(sm)]
    if finite.size:
        raw_ok = raw[np.isfinite(raw)]
        lo = min(float(finite.min()), float(raw_ok.min()) if raw_ok.size else np.inf)
        hi = float(finite[0])
        ax.set_ylim(lo - 0.1 * abs(hi - lo) - 1e-12, max(hi, lo) + 0.6 * abs(hi - lo) + 1e-12)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    ax.set_title(f"LR range test ({result.method}, confidence {result.confidence:.2f})")
    ax.legend(fontsize=8)
    return _finish(fig, path)


def plot_schedules(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    path: str | os.PathLike[str] | None = None,
) -> Any:
    """One line per schedule: ``curves[name] = (steps, rates)``."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for name, (steps, rates) in curves.items():
        ax.plot(steps, rates, lw=1.5, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    ax.set_title("schedules (plateau: as run with seed 0)")
    ax.legend(fontsize=8)
    return _finish(fig, path)


Curves = Mapping[str, tuple[Sequence[float], ...]]


def _band(ax: Any, name: str, curve: tuple[Sequence[float], ...], color: Any = None) -> None:
    """One line (``(steps, mean)``) and, given ``(steps, mean, low, high)``, its seed band."""
    (line,) = ax.plot(curve[0], curve[1], lw=1.5, label=name, color=color)
    if len(curve) == 4:
        ax.fill_between(curve[0], curve[2], curve[3], color=line.get_color(), alpha=0.2, lw=0)


def plot_training(train: Curves, val: Curves, path: str | os.PathLike[str] | None = None) -> Any:
    """Two panels, training and validation loss against step, one line per schedule: the mean
    over seeds, with the seeds' min-max band when the curves carry one."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=False)
    for ax, curves, title in ((axes[0], train, "training loss"), (axes[1], val, "validation loss")):
        for name, curve in curves.items():
            _band(ax, name, curve)
        ax.set_xlabel("step")
        ax.set_title(title + " (mean, min-max over seeds)")
        ax.set_yscale("log")
    axes[1].legend(fontsize=8)
    return _finish(fig, path)


def plot_recommended(
    runs: Sequence[RunResult], title: str, path: str | os.PathLike[str] | None = None
) -> Any:
    """The recommended configuration's runs: its rate, and its training and validation loss
    (mean and min-max band over seeds) against step."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    if runs:
        axes[0].plot(range(len(runs[0].lr)), runs[0].lr, color="k", lw=1.5)
        for ax, part, label in ((axes[1], "train", "training"), (axes[2], "val", "validation")):
            for curve in _mean_curves(runs, part).values():
                _band(ax, label, curve, "C0" if part == "train" else "C1")
            ax.set_yscale("log")
            ax.set_title(f"{label} loss")
    axes[0].set_title("learning rate")
    for ax in axes:
        ax.set_xlabel("step")
    fig.suptitle(f"{title}\n(mean and min-max over {len(runs)} seeds)", fontsize=9)
    fig.tight_layout()
    return _finish(fig, path)


def rounded(spec: str, digits: int = 4) -> str:
    """``spec`` with every number of more than ``digits`` significant digits rounded to
    ``digits`` (``0.24090070805175623`` -> ``0.2409``), for reading and copying; the rounded
    schedule differs from the one trained by less than 0.05%.

    >>> rounded("cosine(0.24090070805175623, 0.04818014161035125, steps=300)")
    'cosine(0.2409, 0.04818, steps=300)'
    """

    def one(m: re.Match[str]) -> str:
        text = m.group(0)
        short = f"{float(text):.{digits}g}"
        return text if float(short) == float(text) else short

    return _NUMBER.sub(one, spec)


_NUMBER = re.compile(r"(?<![\w.])\d+\.\d+(?:[eE][-+]?\d+)?|(?<![\w.])\d+[eE][-+]?\d+")


# ---------------------------------------------------------------------------- html
# ---------------------------------------------------------------------------- comparison
SUMMARY_HEADER = ("schedule", "val loss", "accuracy", "steps to target", "wall s/run")


def summary_rows(rows: Sequence[SummaryRow]) -> list[list[str]]:
    """The summary as table cells: mean ± std loss, accuracy %, steps to target, seconds."""
    out = []
    for r in rows:
        if math.isfinite(r.val_loss_mean):
            loss = mean_pm_std(r.val_loss_mean, r.val_loss_std)
            if r.diverged:
                loss += f" ({r.diverged} diverged)"
        else:
            loss = "diverged"
        acc = "-" if r.acc_mean is None else f"{100 * r.acc_mean:.1f}%"
        st = "-" if r.steps_to_target is None else f"{r.steps_to_target:.0f}"
        if r.steps_to_target is not None and r.reached_target < r.seeds:
            st += f" ({r.reached_target}/{r.seeds})"
        out.append([r.schedule, loss, acc, st, f"{r.wall_s_mean:.2f}"])
    return out


def summary_table(rows: Sequence[SummaryRow], target: float | None) -> str:
    """An aligned text table of the summary with the target loss in a footnote."""
    note = (
        f"\n(steps to target: first validation at or below {_fmt(target)}, the median final loss "
        "unless given; mean over the seeds that reached it)"
        if target
        else ""
    )
    return text_table(SUMMARY_HEADER, summary_rows(rows)) + note


def _mean_curves(runs: Sequence[RunResult], part: str) -> dict[str, tuple[list[float], ...]]:
    """Per schedule, ``(steps, mean, min, max)`` over seeds of the ``"train"`` or ``"val"``
    loss curve (cut to the shortest seed's length; non-finite points ignored)."""
    out: dict[str, tuple[list[float], ...]] = {}
    by: dict[str, list[RunResult]] = {}
    for r in runs:
        by.setdefault(r.schedule, []).append(r)
    for name, rs in by.items():
        curves = [
            (r.train_step, r.train_loss) if part == "train" else (r.val_step, r.val_loss)
            for r in rs
        ]
        n = min(len(c[0]) for c in curves)
        if n == 0:
            continue
        losses = np.array([c[1][:n] for c in curves], dtype=float)
        losses[~np.isfinite(losses)] = np.nan
        with warnings.catch_warnings():  # a step where every seed is non-finite stays NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            out[name] = (
                list(curves[0][0][:n]),
                np.nanmean(losses, axis=0).tolist(),
                np.nanmin(losses, axis=0).tolist(),
                np.nanmax(losses, axis=0).tolist(),
            )
    return out


_RUN_COLUMNS = (
    "schedule",
    "seed",
    "steps",
    "final_val_loss",
    "final_acc",
    "diverged",
    "wall_s",
    "spec",
)


#: The halving search's method, in the report.
PATH_TEXT = (
    "Successive halving: every schedule at several rates a factor apart, in short runs on one "
    "seed; the best third (never a diverged run) go on to longer runs, and the best third of "
    "those to the full length on every seed, where the lowest mean final validation loss is "
    "recommended. Each schedule is rebuilt for each run length, so its shape is rescaled. A "
    "schedule whose best rate is at an edge of its range gets more rates on that side while "
    "they keep improving (marked 'extended range'). Losses: the final validation loss (mean "
    "over the rung's seeds)."
)


def write_comparison(comp: Comparison, folder: str | os.PathLike[str]) -> Path:
    """Write a comparison's report folder: ``schedules.png``, ``training.png``,
    ``recommended.png`` (the recommended configuration's curves), ``range_test.png`` (when the
    range test ran), ``results.json`` (everything), ``runs.csv`` (one row per run; the halving
    search's shorter runs included), ``summary.csv``, ``report.html`` (self-contained) and
    ``report.md`` (its text as markdown). Returns the HTML path."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    runs = comp.runs
    lr_curves: dict[str, tuple[Sequence[float], Sequence[float]]] = {}
    for r in runs:
        if r.schedule not in lr_curves and r.lr:
            lr_curves[r.schedule] = (list(range(len(r.lr))), list(r.lr))
    import matplotlib.pyplot as plt

    figs = [plot_schedules(lr_curves, out / "schedules.png")]
    figs.append(
        plot_training(_mean_curves(runs, "train"), _mean_curves(runs, "val"), out / "training.png")
    )
    if comp.finder is not None:
        figs.append(plot_range_test(comp.finder, out / "range_test.png"))
    best = list(comp.recommended_runs)
    if best:
        title = f"recommended: {comp.recommendation}: {rounded(comp.recommended_spec)}"
        figs.append(plot_recommended(best, title, out / "recommended.png"))
    for f in figs:
        plt.close(f)
    data = comp.to_dict()
    write_json(out / "results.json", data)
    rows = data["runs"] + data["rung_runs"]
    write_csv(out / "runs.csv", [{k: r[k] for k in _RUN_COLUMNS} for r in rows])
    write_csv(out / "summary.csv", data["summary"])
    sections = [
        (
            "Recommendation",
            f"<p><b>{html.escape(comp.recommendation or 'none')}</b></p>"
            f"<p>{html.escape(comp.reasoning)}</p>"
            f"<p>{html.escape(comp.refinement_note())}.</p>"
            f"<pre>{html.escape(rounded(comp.recommended_spec))}</pre>"
            f"<p>{html.escape(comp.compute_note())}.</p>"
            + (embed_png(out / "recommended.png") if best else ""),
        ),
        (
            _last_rung(comp) or f"Results at the common peak {comp.peak:.3g}",
            html_table(SUMMARY_HEADER, summary_rows(comp.summary))
            + f"<p>Task <code>{html.escape(comp.task)}</code>, {comp.steps} steps per run, "
            f"seeds {html.escape(str(list(comp.seeds)))}, {_peak_kind(comp)} {comp.peak:.4g}, target loss "
            f"{_fmt(comp.target)}. Final validation loss: mean ± sample std over seeds.</p>",
        ),
        (
            f"Training curves {_where(comp)} (mean over seeds)",
            embed_png(out / "training.png"),
        ),
        (
            "Schedules",
            embed_png(out / "schedules.png")
            + html_table(
                ("schedule", "spec"),
                _schedule_rows(comp),
            ),
        ),
    ]
    if comp.findings:
        from lrkit.tune.findings import findings_html

        sections.append(("Diagnostics", findings_html(comp.findings)))
    if comp.refinements:
        body = html_table(REFINEMENT_HEADER, refinement_rows(comp.refinements, comp.recommendation))
        body += (
            "<p>The schedules with the lowest loss at the common peak are trained again at "
            "factor steps from it (same seeds, budget and initialisation); each keeps the rate "
            "with the lowest mean final validation loss, and the recommendation is the best of "
            "them at its own rate.</p>"
        )
        sections.insert(2, ("Peak refinement", body))
    if comp.search_path is not None:
        body = html_table(PATH_HEADER, path_rows(comp.search_path))
        body += f"<p>{html.escape(PATH_TEXT)}</p><p>{html.escape(comp.compute_note())}.</p>"
        sections.insert(2, ("Search path", body))
    if comp.finder is not None:
        f = comp.finder
        alts = ", ".join(f"{k} {v:.3g}" for k, v in f.alternatives.items())
        sections.append(
            (
                "Range test",
                embed_png(out / "range_test.png")
                + f"<p>Suggested peak {f.suggestion:.4g} ({html.escape(f.method)}, confidence "
                f"{f.confidence:.2f}); alternatives: {html.escape(alts)}.</p>",
            )
        )
    page = html_page(f"lrkit compare: {comp.task}", sections)
    atomic_write(out / "report.html", page)
    from lrkit.tune.report_md import markdown_report

    atomic_write(out / "report.md", markdown_report(comp))
    return out / "report.html"


def _where(comp: Comparison) -> str:
    """``"at the common peak 0.12"``, or ``"of the last rung"`` after the halving search."""
    return f"at the common peak {comp.peak:.3g}" if comp.search_path is None else "of the last rung"


def _peak_kind(comp: Comparison) -> str:
    return "peak rate" if comp.search_path is None else "rates centred on"


def _last_rung(comp: Comparison) -> str:
    """The results section's title after the halving search ("" for the grid search)."""
    if comp.search_path is None:
        return ""
    return f"Results of the last rung ({comp.steps} steps, every seed)"


def _schedule_rows(comp: Comparison) -> list[tuple[str, str]]:
    """(name, spec) of each schedule: the candidates at the common peak, or the last rung's
    configurations after the halving search."""
    if comp.search_path is None:
        return [
            (c.name, c.spec + (f" + plateau{c.plateau}" if c.plateau else ""))
            for c in comp.candidates
        ]
    seen: dict[str, str] = {}
    for r in comp.runs:
        seen.setdefault(r.schedule, r.spec + (f" + plateau{dict(r.plateau)}" if r.plateau else ""))
    return list(seen.items())
