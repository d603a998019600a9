"""Root conftest: doctests in ``src/lrkit`` run with every public lrkit name in scope."""

from __future__ import annotations

import pytest

import lrkit


@pytest.fixture(autouse=True)
def _lrkit_doctest_namespace(doctest_namespace: dict) -> None:
    """Doctests see lrkit's public names, as after ``from lrkit import *``."""
    for name in lrkit.__all__:
        doctest_namespace[name] = getattr(lrkit, name)
    doctest_namespace["lrkit"] = lrkit
