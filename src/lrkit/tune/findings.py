"""Each compared schedule's diagnostics: the findings of :func:`lrkit.diagnostics.diagnose` on
its first seed's run, for ``compare``'s printout, ``results.json`` and HTML report.

A comparison run records the mean training loss of every ``eval_every`` window (at the window's
last step), the rate at every update and the validation loss at the same steps; its
:class:`~lrkit.diagnostics.RunLog` has one row per window: step ``s``, that window's mean loss,
the rate applied at update ``s`` (``lr[s - 1]``) and ``val_loss`` at the validation steps,
after a row at step 0 whose training and validation loss are the initialised model's validation
loss (``start_val_loss``, the run's starting level, so a run that ends above it shows). A run
stopped by a non-finite loss gets one more row at the update that produced it, with loss ``inf``
(so the ``diverged`` detector sees where). The detectors see a coarser curve than a
:class:`lrkit.torch.Monitor` log (about 20 rows at the built-in tasks' defaults; curve-shape
detectors need at least 10).

numpy and the standard library only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lrkit.diagnostics import Finding, RunLog, diagnose
from lrkit.tune.records import RunResult

__all__ = [
    "TOP",
    "findings_html",
    "findings_json",
    "findings_lines",
    "run_log",
    "schedule_findings",
]

#: How many findings per schedule are kept (most severe first).
TOP = 3


def run_log(run: RunResult) -> RunLog | None:
    """The :class:`~lrkit.diagnostics.RunLog` of one comparison run (see the module docstring);
    None when the run recorded no training step at all."""
    start = math.isfinite(run.start_val_loss) and bool(run.lr)
    steps = [0] * start + [int(s) for s in run.train_step]
    loss = [run.start_val_loss] * start + [float(v) for v in run.train_loss]
    if run.diverged and len(run.lr) > (steps[-1] if steps else 0):
        steps.append(len(run.lr))  # the update whose loss was not finite
        loss.append(math.inf)
    if not steps:
        return None
    lr = [float(run.lr[min(max(s, 1), len(run.lr)) - 1]) if run.lr else math.nan for s in steps]
    a = np.asarray
    return RunLog(
        steps=a(steps),
        loss=a(loss),
        hparams={"lr": {"0": a(lr)}} if run.lr else {},
        val_steps=a([0] * start + list(run.val_step)),
        val={"val_loss": a([run.start_val_loss] * start + list(run.val_loss))},
    )


def schedule_findings(
    runs: Sequence[RunResult], seeds: Sequence[int], *, top: int = TOP
) -> dict[str, tuple[Finding, ...]]:
    """Per schedule (in the order of ``runs``), the ``top`` most severe findings of
    :func:`lrkit.diagnostics.diagnose` on its run with the first of ``seeds`` (its lowest seed
    when that one is missing); a lone ``healthy`` finding when no detector fires.

    Raises:
        ValueError: ``top`` < 1.
    """
    if top < 1:
        raise ValueError(f"schedule_findings: top must be a positive integer, got top={top!r}")
    first = seeds[0] if seeds else None
    chosen: dict[str, RunResult] = {}
    for r in runs:
        old = chosen.get(r.schedule)
        if old is None or (old.seed != first and (r.seed == first or r.seed < old.seed)):
            chosen[r.schedule] = r
    out: dict[str, tuple[Finding, ...]] = {}
    for name, r in chosen.items():
        log = run_log(r)
        if log is not None:
            out[name] = tuple(diagnose(log)[:top])
    return out


def _unhealthy(findings: Sequence[Finding]) -> list[Finding]:
    return [f for f in findings if f.kind != "healthy"]


def findings_json(findings: Mapping[str, Sequence[Finding]]) -> dict[str, list[dict[str, Any]]]:
    """``{schedule: [Finding.to_dict(), ...]}`` for ``results.json``."""
    return {name: [f.to_dict() for f in fs] for name, fs in findings.items()}


def findings_lines(findings: Mapping[str, Sequence[Finding]]) -> list[str]:
    """The CLI's lines: one per schedule with a problem (its top finding's kind, level and
    advice up to its first ``"; "``, and how many more), or the single line
    ``diagnostics: all healthy``."""
    lines = []
    for name, fs in findings.items():
        bad = _unhealthy(fs)
        if not bad:
            continue
        f = bad[0]
        more = f" (+{len(bad) - 1} more)" if len(bad) > 1 else ""
        advice = (f.advice or f.summary).split("; ")[0]
        lines.append(f"diagnostics: {name}: {f.kind} [{f.level}]: {advice}{more}")
    return lines or ["diagnostics: all healthy"]


def findings_html(findings: Mapping[str, Sequence[Finding]]) -> str:
    """The report's section body: a table of every schedule's findings (kind, level, steps,
    what was seen, the fix)."""
    from lrkit.tools.tables import html_table

    rows = []
    for name, fs in findings.items():
        for f in fs:
            where = str(f.start) if f.start == f.end else f"{f.start}-{f.end}"
            rows.append((name, f.kind, f.level, where, f.summary, f.advice + _spec(f)))
    return html_table(("schedule", "finding", "level", "steps", "evidence", "fix"), rows) + (
        "<p>Findings of <code>lrkit.diagnostics.diagnose</code> on each schedule's first-seed "
        "run at the common peak, most severe first; the log is the training "
        "loss averaged over each validation interval, so short-lived events may not show.</p>"
    )


def _spec(f: Finding) -> str:
    return f" e.g. {f.spec}" if f.spec else ""
