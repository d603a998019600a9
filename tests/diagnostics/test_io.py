"""LogWriter: append and flush, NaN and inf on disk, CSV column checks; read back as written."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from lrkit.diagnostics.io import LogWriter, read_log


@pytest.mark.parametrize("name", ["run.csv", "run.jsonl"])
def test_nan_is_a_gap_and_inf_survives(tmp_path: Path, name: str) -> None:
    """NaN (not sampled) reads back as missing, inf (a non-finite norm) as inf, in both formats."""
    w = LogWriter(tmp_path / name, ["step", "loss", "grad_norm"])
    w.write([{"step": 0, "loss": 1.0, "grad_norm": math.inf}])
    w.write([{"step": 1, "loss": 0.5, "grad_norm": math.nan}])
    w.close()
    log = read_log(tmp_path / name)
    assert log.loss.tolist() == [1.0, 0.5]
    assert log.grad_norm is not None and math.isinf(log.grad_norm[0])
    assert math.isnan(log.grad_norm[1])


def test_appends_to_an_existing_csv_without_a_second_header(tmp_path: Path) -> None:
    """Reopening a CSV (a resumed run) appends rows; the header is written once."""
    for step in (0, 1):
        w = LogWriter(tmp_path / "a.csv", ["step", "loss"])
        w.write([{"step": step, "loss": 1.0}])
        w.close()
    assert (tmp_path / "a.csv").read_text().count("step,loss") == 1
    assert read_log(tmp_path / "a.csv").steps.tolist() == [0, 1]


def test_writer_errors(tmp_path: Path) -> None:
    """Unknown formats, CSV without columns and writes after close fail, naming the problem."""
    with pytest.raises(ValueError, match="format must be 'csv' or 'jsonl', got format=''"):
        LogWriter(tmp_path / "a.txt")
    with pytest.raises(ValueError, match="a CSV log needs its columns"):
        LogWriter(tmp_path / "a.csv")
    w = LogWriter(tmp_path / "b.jsonl")
    w.close()
    with pytest.raises(ValueError, match="is closed"):
        w.write([{"step": 0}])
