"""The README's example runs as printed, and its promised values hold."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _example_block() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Example", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    if match is None:
        raise AssertionError("README has no python block under '## Example'")
    return match.group(1)


def test_readme_example_runs() -> None:
    """The 15-line example under '## Example' executes without error."""
    namespace: dict = {}
    exec(compile(_example_block(), str(README), "exec"), namespace)
    s = namespace["s"]
    assert (s(500), s(1_000), s(10_000)) == (0.0005, 0.001, 1e-05)
    assert str(s) == "warmup(cosine(0.001, 1e-05, steps=9000), steps=1000)"
    assert namespace["t"].duration == 20_000


def test_readme_example_is_short() -> None:
    """The example stays within the 15 lines the README promises a reader."""
    lines = [line for line in _example_block().splitlines() if line.strip()]
    assert len(lines) <= 15
