"""Fixtures shared by the tests that train the built-in tasks."""

from __future__ import annotations

import pytest
import torch

from lrkit.tune.tasks import load_task


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run fastest (and steadiest on a shared machine) on one thread."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def task():
    """The digits task, loaded once per module."""
    return load_task("digits")
