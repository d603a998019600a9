"""Report files: atomic writes with the usual permissions, JSON with NaN as null, CSV."""

from __future__ import annotations

import csv
import json
import math
import os
import stat

import numpy as np

from lrkit.tools import _files


def test_write_json_atomic_and_nan_to_null(tmp_path):
    """JSON is written via a temp file (none left behind); NaN/inf and numpy types become plain."""
    path = tmp_path / "sub" / "x.json"
    _files.write_json(
        path, {"a": float("nan"), "b": np.float32(1.5), "c": np.arange(3), "d": math.inf}
    )
    assert json.loads(path.read_text()) == {"a": None, "b": 1.5, "c": [0, 1, 2], "d": None}
    assert [p.name for p in path.parent.iterdir()] == ["x.json"]


def test_write_csv_round_trips(tmp_path):
    """CSV columns are the union of keys; values read back."""
    path = tmp_path / "r.csv"
    _files.write_csv(path, [{"a": 1, "b": 2.5}, {"a": 3, "c": "x"}])
    rows = list(csv.DictReader(path.open()))
    assert rows == [{"a": "1", "b": "2.5", "c": ""}, {"a": "3", "b": "", "c": "x"}]


def test_atomic_write_gives_the_permissions_open_would(tmp_path):
    """Report files are readable like any file the user writes (not mkstemp's private 0600)."""
    old = os.umask(0o022)
    try:
        _files.atomic_write(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644
