"""Plots and a self-contained HTML page for a diagnosed run (matplotlib imported lazily).

:func:`plot_run` draws, on a shared step axis: the training loss (and validation loss) on a
log axis with each finding shaded where it happened, the learning rate of each group beneath,
the gradient norm, the cosine of each sampled update with the next descent direction
(``grad_update_cos``: above 0 the steps stop short, below 0 they overshoot), and a heatmap of
``log10`` update-to-weight ratios per layer over time.
:func:`write_report` puts that figure, the findings and their evidence into one HTML page.
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lrkit.diagnostics._finding import Finding
from lrkit.diagnostics._log import RunLog
from lrkit.diagnostics._series import running_median
from lrkit.tools._files import atomic_write
from lrkit.tools.html import html_page
from lrkit.tools.tables import html_table

__all__ = ["plot_run", "write_report"]

_COLORS = {"critical": "#d62728", "warning": "#ff7f0e", "info": "#1f77b4", "ok": "#2ca02c"}


def _panels(log: RunLog) -> list[str]:
    out = ["loss", "lr"]
    if log.grad_norm is not None and np.isfinite(log.grad_norm).any():
        out.append("grad")
    if log.grad_update_cos is not None and np.isfinite(log.grad_update_cos).any():
        out.append("cos")
    if log.ratio or log.group_ratio:
        out.append("ratio")
    return out


def plot_run(log: RunLog, findings: Sequence[Finding] = (), *, title: str = "") -> Any:
    """The figure described in the module docstring (a matplotlib ``Figure`` on an Agg canvas,
    no pyplot). Panels without data (no gradient norm, no ratio) are left out."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = _panels(log)
    heights = {"loss": 3.0, "lr": 1.4, "grad": 1.4, "cos": 1.2, "ratio": 1.8}
    fig = Figure(figsize=(9.0, sum(heights[p] for p in panels) + 0.6), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(
        len(panels), 1, sharex=True, gridspec_kw={"height_ratios": [heights[p] for p in panels]}
    )
    axes = np.atleast_1d(axes)
    by = dict(zip(panels, axes, strict=True))
    steps = np.asarray(log.steps)
    ax = by["loss"]
    loss = np.asarray(log.loss, dtype=float)
    positive = bool(np.all(loss[np.isfinite(loss)] > 0))
    ax.plot(steps, loss, color="0.6", lw=0.8, label="training loss")
    vl = log.val_loss
    if vl is not None and len(vl):
        ax.plot(log.val_steps, vl, "o-", color="C1", ms=3, lw=1.2, label="validation loss")
    if positive:
        ax.set_yscale("log")
    for i, f in enumerate(findings):
        if f.kind == "healthy":
            continue
        color = _COLORS[f.level]
        for a in axes:
            a.axvspan(f.start, max(f.end, f.start + 1), color=color, alpha=0.08)
        ax.axvline(f.start, color=color, lw=1, ls="--")
        ax.annotate(
            f"{i + 1}. {f.kind}",
            (f.start, 0.97 - 0.09 * (i % 5)),
            xycoords=("data", "axes fraction"),
            fontsize=8,
            color=color,
            va="top",
        )
    ax.set_ylabel("loss")
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title(title or "training run", fontsize="medium")
    ax = by["lr"]
    for name, groups in log.hparams.items():
        if name != "lr":
            continue
        for g, values in groups.items():
            ax.plot(steps, values, lw=1.2, label=f"lr {g}" if len(groups) > 1 else "lr")
    if len(log.hparams.get("lr", {})) > 1:
        ax.legend(fontsize=7, loc="upper right")
    ax.set_ylabel("lr")
    if "grad" in by and log.grad_norm is not None:
        ax = by["grad"]
        norm = np.asarray(log.grad_norm)
        ok = np.isfinite(norm)
        ax.plot(steps[ok], norm[ok], ".-", ms=2, lw=0.8, color="C2")
        bad = np.isinf(norm)
        if bad.any():  # non-finite norms: red crosses at the top of the panel
            top = np.nanmax(norm[ok]) if ok.any() else 1.0
            ax.plot(steps[bad], np.full(bad.sum(), top), "rx")
        if ok.any() and np.all(norm[ok] > 0):
            ax.set_yscale("log")
        ax.set_ylabel("grad norm")
    if "cos" in by and log.grad_update_cos is not None:
        ax = by["cos"]
        cos = np.asarray(log.grad_update_cos)
        ok = np.isfinite(cos)
        ax.plot(steps[ok], cos[ok], ".", ms=2, color="C4")
        k = max(1, min(9, int(ok.sum()) // 10) | 1)  # a running median of the samples
        if ok.sum() >= k:
            ax.plot(steps[ok], running_median(cos[ok], k), lw=1.2, color="C4")
        ax.axhline(0.0, color="0.5", lw=0.8)
        ax.set_ylim(-1.05, 1.05)
        ax.set_ylabel("cos(Δw, −g')", fontsize=8)
    if "ratio" in by:
        _heatmap(by["ratio"], fig, log, list(axes))
    axes[-1].set_xlabel("step")
    axes[-1].set_xlim(steps[0], max(steps[-1], steps[0] + 1))
    if "ratio" not in by:
        fig.tight_layout()
    return fig


def _heatmap(ax: Any, fig: Any, log: RunLog, all_axes: list[Any]) -> None:
    source = log.ratio or log.group_ratio
    names = list(source)
    mat = np.stack([np.asarray(source[k]) for k in names])
    cols = np.flatnonzero(np.isfinite(mat).any(axis=0))
    if not cols.size:
        return
    sub = mat[:, cols]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(sub > 0, np.log10(sub), np.nan)
    s = np.asarray(log.steps)[cols].astype(float)
    edges = np.concatenate([s, [s[-1] + (s[-1] - s[-2] if len(s) > 1 else 1)]])
    mesh = ax.pcolormesh(edges, np.arange(len(names) + 1), q, cmap="viridis", shading="flat")
    ax.set_yticks(np.arange(len(names)) + 0.5)
    ax.set_yticklabels([n if len(n) <= 22 else "…" + n[-21:] for n in names], fontsize=6)
    ax.set_ylabel("update ratio")
    # the colour bar takes its width from every panel, so the step axes stay aligned
    fig.colorbar(mesh, ax=all_axes, label="log10 ||Δw||/||w||", pad=0.01, fraction=0.03)


def write_report(
    log: RunLog,
    findings: Sequence[Finding],
    path: str | os.PathLike[str],
    *,
    title: str = "lrkit diagnose",
    source: str = "",
) -> Path:
    """Write one self-contained HTML page (the figure embedded as PNG): the findings with
    their advice and spec, the plots, and each finding's evidence. Returns the path."""
    fig = plot_run(log, findings, title=source or title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    img = base64.b64encode(buf.getvalue()).decode("ascii")
    rows = [
        (
            str(i + 1),
            f.kind,
            f.level,
            f"{f.start}-{f.end}",
            f.summary,
            f.advice + (f" e.g. {f.spec}" if f.spec else ""),
        )
        for i, f in enumerate(findings)
    ]
    table = html_table(("#", "finding", "level", "steps", "what", "fix"), rows)
    evidence = "".join(
        f"<p><b>{i + 1}. {html.escape(f.kind)}</b>: "
        + ", ".join(f"{html.escape(k)} = {v:.4g}" for k, v in f.evidence)
        + "</p>"
        for i, f in enumerate(findings)
    )
    intro = (
        f"<p>{len(log)} steps ({int(log.steps[0])}-{int(log.steps[-1])})"
        + (f" from <code>{html.escape(source)}</code>" if source else "")
        + ". Shaded: where each finding happened. Rules: docs/diagnostics.md.</p>"
    )
    sections = [
        ("Findings", intro + table),
        ("Plots", f'<img alt="run" src="data:image/png;base64,{img}">'),
        ("Evidence", evidence),
    ]
    out = Path(path)
    atomic_write(out, html_page(title, sections))
    return out
