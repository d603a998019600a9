"""A comparison's report as markdown (``report.md`` next to ``report.html``): the
recommendation, the compute used, the summary table, and the halving search's path or the peak
refinement's table, for pasting into an issue or a notebook. No plots.

Standard library only (and :mod:`lrkit.tune.report`'s table cells).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lrkit.tools.tables import markdown_table
from lrkit.tune.findings import findings_lines
from lrkit.tune.report import PATH_TEXT, SUMMARY_HEADER, rounded, summary_rows
from lrkit.tune.summary import (
    PATH_HEADER,
    REFINEMENT_HEADER,
    _fmt,
    path_rows,
    refinement_rows,
)

if TYPE_CHECKING:
    from lrkit.tune.comparison import Comparison


def markdown_report(comp: Comparison) -> str:
    """The report's text as markdown: recommendation and reasoning, the peak note, the spec to
    use, the compute line, the summary (of the last rung, or at the common peak), then the
    search path (halving) or the refinement table (grid) and the diagnostics."""
    spec = rounded(comp.recommended_spec)
    parts = [
        f"# lrkit compare: {comp.task}",
        f"**Recommendation: {comp.recommendation or 'none'}**",
        comp.reasoning,
        f"{comp.refinement_note()}.",
    ]
    if spec:
        parts.append(f"```\n{spec}\n```")
    parts.append(f"{comp.compute_note()}.")
    where = (
        f"at the common peak {comp.peak:.3g}"
        if comp.search_path is None
        else f"of the last rung ({comp.steps} steps, every seed)"
    )
    parts += [
        f"## Results {where}",
        markdown_table(SUMMARY_HEADER, summary_rows(comp.summary)),
        f"Task `{comp.task}`, {comp.steps} steps per run, seeds {list(comp.seeds)}, target loss "
        f"{_fmt(comp.target)}. Final validation loss: mean ± sample std over seeds.",
    ]
    if comp.search_path is not None:
        parts += [
            "## Search path",
            markdown_table(PATH_HEADER, path_rows(comp.search_path)),
            PATH_TEXT,
        ]
    if comp.refinements:
        rows = refinement_rows(comp.refinements, comp.recommendation)
        parts += ["## Peak refinement", markdown_table(REFINEMENT_HEADER, rows)]
    lines = findings_lines(comp.findings)
    if lines:
        parts += ["## Diagnostics", "\n".join(f"- {x}" for x in lines)]
    return "\n\n".join(parts) + "\n"
