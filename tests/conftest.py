"""Shared test configuration: Hypothesis profiles, and the fixtures of the tests that train the
built-in tasks (torch imported only when they are used)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=200)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Tiny models run fastest (and steadiest on a shared machine) on one thread."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def task() -> Any:
    """The digits task, loaded once per module."""
    from lrkit.tune.tasks import load_task

    return load_task("digits")


class RecordingBar:
    """A stand-in for compare's progress bar that records its total at every update."""

    def __init__(self, total: int) -> None:
        self.total, self.n, self.totals = total, 0, [total]

    def update(self, k: int) -> None:
        self.n += k
        self.totals.append(self.total)

    def set_postfix_str(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.fixture
def progress_bars(monkeypatch: pytest.MonkeyPatch) -> list[RecordingBar]:
    """compare's progress bars, recorded (one RecordingBar per bar it opens)."""
    from lrkit.tune import search

    bars: list[RecordingBar] = []

    def make(enabled: bool, total: int, initial: int) -> RecordingBar:
        bars.append(RecordingBar(total))
        return bars[-1]

    monkeypatch.setattr(search, "progress_bar", make)
    return bars
