"""Table formatters: aligned text, markdown and HTML."""

from __future__ import annotations

from lrkit.tools import tables


def test_text_table_aligns_numbers_right():
    """Numeric columns are right-aligned, text left-aligned, one separator row."""
    out = tables.text_table(["name", "loss"], [["a", "0.5"], ["long", "12.25"]]).splitlines()
    assert out[2] == "a       0.5"
    assert out[3] == "long  12.25"
    assert set(out[1].replace(" ", "")) == {"-"}
