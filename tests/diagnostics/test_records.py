"""RunLog and Finding: validation, read-only arrays, building from rows, JSON form."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from lrkit.diagnostics import Finding, RunLog


def test_runlog_arrays_are_read_only() -> None:
    """A log's series cannot be modified after construction (frozen record)."""
    log = RunLog([0, 1, 2], [1.0, 0.9, 0.8], {"lr": {"g": [0.1, 0.1, 0.1]}})
    with pytest.raises(ValueError):
        log.loss[0] = 5.0
    with pytest.raises(AttributeError):
        log.loss = np.zeros(3)  # type: ignore[misc]
    assert log.lr is not None and log.lr.tolist() == [0.1, 0.1, 0.1]
    assert log.total_steps == 3 and len(log) == 3 and log.val_loss is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps": [], "loss": []}, "RunLog: steps must not be empty"),
        ({"steps": [0, 2, 1], "loss": [1, 1, 1]}, "strictly increasing"),
        ({"steps": [0, 1], "loss": [1.0]}, r"loss must have one value per step \(2\), got 1"),
        (
            {"steps": [0, 1], "loss": [1, 1], "hparams": {"lr": {"0": [1]}}},
            r"hparams\['lr'\]\['0'\] must have one value per step",
        ),
        (
            {"steps": [0, 1], "loss": [1, 1], "val_steps": [1], "val": {"val_loss": [1, 2]}},
            r"val\['val_loss'\] must have one value per step \(1\)",
        ),
    ],
)
def test_runlog_rejects_inconsistent_series(kwargs: dict, message: str) -> None:
    """Mismatched lengths and unordered steps fail at construction, naming the series."""
    with pytest.raises(ValueError, match=message):
        RunLog(**kwargs)


def test_from_rows_merges_training_and_validation_rows() -> None:
    """Rows sharing a step merge; missing cells are NaN; group and layer columns are split."""
    rows = [
        {"step": 0, "loss": 2.0, "lr/body": 0.1, "lr/head": 1.0, "grad_norm": 3.0},
        {"step": 1, "loss": 1.5, "lr/body": 0.1, "lr/head": 1.0, "ratio/fc1": 1e-3},
        {"step": 1, "val_loss": 1.7, "val_acc": 0.5},
        {"step": "2", "loss": "1.2", "lr/body": "0.05", "lr/head": "", "extra": "x"},
    ]
    log = RunLog.from_rows(rows)
    assert log.steps.tolist() == [0, 1, 2]
    assert log.loss.tolist() == [2.0, 1.5, 1.2]
    assert list(log.hparams["lr"]) == ["body", "head"]
    assert np.isnan(log.hparams["lr"]["head"][2])
    assert log.val_steps.tolist() == [1] and log.val["val_acc"].tolist() == [0.5]
    assert log.grad_norm is not None and np.isnan(log.grad_norm[1])
    assert log.ratio["fc1"][1] == 1e-3


def test_from_rows_plain_lr_is_group_zero() -> None:
    """A bare ``lr`` column (a one-group log) is group "0" and the main rate."""
    log = RunLog.from_rows([{"step": s, "loss": 1.0, "lr": 0.1} for s in range(3)])
    assert list(log.hparams["lr"]) == ["0"] and log.lr is not None


def test_from_rows_errors_name_the_row() -> None:
    """A row without a step and a log without any loss are rejected with the reason."""
    with pytest.raises(ValueError, match="row 1 has no step"):
        RunLog.from_rows([{"step": 0, "loss": 1}, {"loss": 2}])
    with pytest.raises(ValueError, match="no row with a training loss"):
        RunLog.from_rows([{"step": 0, "val_loss": 1}])


def test_finding_validates_and_serialises() -> None:
    """Unknown kinds and out-of-range severities fail; to_dict is JSON-ready with the level."""
    f = Finding("lr_too_high", 0.72, 10, 20, "rose", (("rebound", 0.5),), "lower it", "x")
    d = json.loads(json.dumps(f.to_dict()))
    assert d["level"] == "critical" and d["evidence"] == {"rebound": 0.5}
    assert "[critical] lr_too_high (steps 10-20): rose" in str(f)
    with pytest.raises(ValueError, match="Finding: kind must be one of"):
        Finding("bad", 0.5, 0, 1, "")
    with pytest.raises(ValueError, match=r"severity must be in \[0, 1\], got severity=1.5"):
        Finding("plateau", 1.5, 0, 1, "")
    with pytest.raises(ValueError, match="end must be >= start, got start=5, end=1"):
        Finding("plateau", 0.5, 5, 1, "")
    assert Finding("plateau", 0.2, 0, 0, "").level == "info"
    assert Finding("plateau", 0.5, 0, 0, "").level == "warning"


def test_import_diagnostics_loads_neither_torch_nor_matplotlib() -> None:
    """The core diagnostics (every submodule but the torch-free I/O) stay numpy-only."""
    code = (
        "import importlib, pkgutil, sys, lrkit.diagnostics as d\n"
        "for i in pkgutil.iter_modules(d.__path__, d.__name__ + '.'):\n"
        "    importlib.import_module(i.name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'matplotlib',"
        " 'tensorboard')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_runlog_copies_the_callers_arrays() -> None:
    """The log's arrays are read-only copies: the caller's own arrays stay writable."""
    loss = np.array([2.0, 1.0, 0.5])
    log = RunLog(np.arange(3), loss)
    loss[0] = 9.0
    assert log.loss[0] == 2.0 and not log.loss.flags.writeable
