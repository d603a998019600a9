"""Tables as text: aligned plain text (numbers right-aligned), GitHub markdown, and HTML with
escaped cells.

Standard library only. Every formatter takes a header and rows of cells (any values, shown with
``str``).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

__all__ = ["html_table", "markdown_table", "text_table"]


def text_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """An aligned plain-text table (numbers right-aligned).

    >>> print(text_table(["a", "bb"], [["x", 1], ["yy", 22]]))
    a   bb
    --  --
    x    1
    yy  22
    """
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    numeric = [
        all(_is_number(r[i]) for r in cells[1:]) and len(cells) > 1 for i in range(len(header))
    ]

    def fmt(row: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(row, widths, numeric, strict=True)
        ).rstrip()

    lines = [fmt(cells[0]), "  ".join("-" * w for w in widths)]
    return "\n".join(lines + [fmt(r) for r in cells[1:]])


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table.

    >>> print(markdown_table(["a", "b"], [[1, 2]]))
    | a | b |
    |---|---|
    | 1 | 2 |
    """
    out = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def _is_number(s: str) -> bool:
    head = s.split(" ")[0].replace("±", "").replace("%", "")
    try:
        float(head)
    except ValueError:
        return s in ("-", "n/a", "diverged")
    return True


def html_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """An HTML ``<table>`` with escaped cells."""
    th = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"
