"""The diagnosis page: panels present only with their data, findings marked, page self-contained."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tests.diagnostics import _synthetic as synthetic

from lrkit import diagnostics as dg
from lrkit.diagnostics.report import plot_run, write_report


def test_full_log_draws_four_panels_and_marks_findings() -> None:
    """Loss, rate, gradient norm and the ratio heatmap share the step axis; each finding is
    annotated on the loss panel."""
    log = synthetic.cases()["overfitting"]
    findings = dg.diagnose(log)
    fig = plot_run(log, findings)
    axes = [a for a in fig.axes if a.get_label() != "<colorbar>"]
    assert len(axes) == 4
    assert axes[0].get_yscale() == "log"
    texts = [t.get_text() for t in axes[0].texts]
    assert texts == [f"{i + 1}. {f.kind}" for i, f in enumerate(findings)]
    assert all(a.get_xlim() == axes[0].get_xlim() for a in axes)


def test_grad_update_cos_gets_its_own_panel() -> None:
    """With ``grad_update_cos`` recorded, a fifth panel (between the gradient norm and the
    heatmap) shows its samples on [-1, 1] with the zero line."""
    import dataclasses

    log = synthetic.healthy()
    n = len(log)
    cos = np.where(np.arange(n) % 10 == 0, 0.3, np.nan)
    fig = plot_run(dataclasses.replace(log, grad_update_cos=cos), [])
    axes = [a for a in fig.axes if a.get_label() != "<colorbar>"]
    assert len(axes) == 5
    assert axes[3].get_ylim() == (-1.05, 1.05)
    assert np.allclose(axes[3].lines[0].get_ydata(), 0.3)


def test_minimal_log_draws_loss_and_rate_only() -> None:
    """A log with only loss and rate gets two panels and no annotation when healthy."""
    t = np.arange(100.0)
    log = dg.RunLog(t, 2 * np.exp(-t / 30) + 0.1, {"lr": {"0": np.full(100, 0.1)}})
    fig = plot_run(log, [])
    assert len(fig.axes) == 2 and not fig.axes[0].texts


def test_write_report_is_one_self_contained_page(tmp_path: Path) -> None:
    """The page embeds its PNG, lists every finding with its fix and spec, and its evidence."""
    log = synthetic.cases()["lr_too_high"]
    findings = dg.diagnose(log)
    page = write_report(log, findings, tmp_path / "r.html", source="run.csv").read_text()
    assert page.count("data:image/png;base64,") == 1 and "<script" not in page
    assert "http://" not in page and "https://" not in page
    for f in findings:
        assert f.kind in page and (f.spec is None or f.spec in page)
    assert "rebound_log = " in page
