"""``lrkit diagnose LOG``: reads CSV, JSON lines and TensorBoard folders (plain SummaryWriter,
HF Trainer's tag names, a real Lightning run), prints findings, writes the HTML page."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from tests.diagnostics import _synthetic as synthetic

from lrkit.cli import main
from lrkit.diagnostics.io import LogWriter, canonical, read_log


def _rows(kind: str) -> list[dict[str, float]]:
    """The synthetic run of ``kind`` as log rows with the documented columns."""
    log = synthetic.healthy() if kind == "healthy" else synthetic.cases()[kind]
    rows: list[dict[str, float]] = []
    for i, s in enumerate(log.steps):
        r = {"step": int(s), "loss": float(log.loss[i]), "lr": float(log.lr[i])}  # type: ignore[index]
        if log.grad_norm is not None and np.isfinite(log.grad_norm[i]):
            r["grad_norm"] = float(log.grad_norm[i])
        for name, v in log.ratio.items():
            if np.isfinite(v[i]):
                r[f"ratio/{name}"] = float(v[i])
        rows.append(r)
    assert log.val_loss is not None
    rows += [
        {"step": int(s), "val_loss": float(v)}
        for s, v in zip(log.val_steps, log.val_loss, strict=True)
    ]
    return sorted(rows, key=lambda r: r["step"])


def _write(path: Path, rows: list[dict[str, float]]) -> Path:
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    w = LogWriter(path, cols)
    w.write(rows)
    w.close()
    return path


def test_csv_findings_printed_and_html_written(tmp_path: Path, capsys) -> None:
    """A CSV of an overfitting run: the finding, its evidence and advice are printed; the
    page embeds the plot and names the finding."""
    log = _write(tmp_path / "run.csv", _rows("overfitting"))
    page = tmp_path / "out.html"
    assert main(["diagnose", str(log), "-o", str(page)]) == 0
    out = capsys.readouterr().out
    assert "1. [" in out and "overfitting" in out and "evidence: best_val_loss=" in out
    assert "fix: stop at ~step" in out and f"report: {page}" in out
    text = page.read_text()
    assert "data:image/png;base64," in text and "overfitting" in text


def test_jsonl_and_json_output(tmp_path: Path, capsys) -> None:
    """A JSON-lines log of a healthy run gives one healthy finding, as JSON with --json."""
    log = tmp_path / "run.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in _rows("healthy")))
    assert main(["diagnose", str(log), "-o", "", "--json"]) == 0
    (f,) = json.loads(capsys.readouterr().out)
    assert f["kind"] == "healthy" and f["level"] == "ok"


@pytest.mark.slow
def test_tensorboard_folder_with_hf_trainer_tags(tmp_path: Path, capsys) -> None:
    """Event files with HF Trainer's tag names (train/loss, train/learning_rate, eval/loss,
    train/grad_norm) written by a real SummaryWriter are read and diagnosed."""
    from torch.utils.tensorboard import SummaryWriter

    rows = _rows("lr_too_high")
    w = SummaryWriter(str(tmp_path / "tb" / "run1"))
    for r in rows:
        for key, tag in (
            ("loss", "train/loss"),
            ("lr", "train/learning_rate"),
            ("val_loss", "eval/loss"),
            ("grad_norm", "train/grad_norm"),
        ):
            if key in r:
                w.add_scalar(tag, r[key], r["step"])
    w.close()
    log = read_log(tmp_path / "tb")
    assert len(log) == 600 and log.lr is not None and log.val_loss is not None
    assert main(["diagnose", str(tmp_path / "tb"), "-o", ""]) == 0
    assert "1. [critical] lr_too_high" in capsys.readouterr().out


@pytest.mark.slow
def test_real_lightning_tensorboard_run(tmp_path: Path) -> None:
    """A real Lightning fit with TensorBoardLogger and LearningRateMonitor: its event folder
    reads back with the loss, the rate (lr-SGD) and the validation loss."""
    pl = pytest.importorskip("lightning.pytorch")
    import torch

    class Net(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Linear(4, 1)

        def training_step(self, batch, _):
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            self.log("train_loss", loss)
            return loss

        def validation_step(self, batch, _):
            x, y = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=0.05)
            sched = torch.optim.lr_scheduler.StepLR(opt, 10)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    torch.manual_seed(0)
    x = torch.randn(256, 4)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [0.0]])
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
    trainer = pl.Trainer(
        max_epochs=2,
        logger=pl.loggers.TensorBoardLogger(str(tmp_path), name="lt"),
        callbacks=[pl.callbacks.LearningRateMonitor("step")],
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    trainer.fit(Net(), data, data)
    log = read_log(tmp_path / "lt")
    assert len(log) >= 25 and log.lr is not None and log.val_loss is not None
    assert log.lr[0] == pytest.approx(0.05, rel=1e-6) and np.nanmin(log.lr) < 0.01  # StepLR


@pytest.mark.parametrize(
    ("name", "column"),
    [
        ("train/loss", "loss"),
        ("Loss/train", "loss"),
        ("train_loss", "loss"),
        ("lr-SGD", "lr"),
        ("lr-AdamW/pg2", "lr/2"),
        ("eval/loss", "val_loss"),
        ("eval/accuracy", "val_accuracy"),
        ("train/grad_norm", "grad_norm"),
        ("ratio/fc1", "ratio/fc1"),
        ("epoch", None),
    ],
)
def test_other_tools_column_names(name: str, column: str | None) -> None:
    """Column and tag names of other tools map to the documented columns."""
    assert canonical(name) == column


def test_bad_logs_exit_2_with_a_message(tmp_path: Path, capsys) -> None:
    """A missing path, an unknown suffix and a log without a loss fail with one line."""
    assert main(["diagnose", str(tmp_path / "nope.csv")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    (tmp_path / "a.txt").write_text("x")
    assert main(["diagnose", str(tmp_path / "a.txt")]) == 2
    assert "use .csv, .jsonl or a TensorBoard folder" in capsys.readouterr().err
    (tmp_path / "b.csv").write_text("step,val_loss\n0,1.0\n")
    assert main(["diagnose", str(tmp_path / "b.csv")]) == 2
    assert "no row with a training loss" in capsys.readouterr().err
    (tmp_path / "tb").mkdir()
    assert main(["diagnose", str(tmp_path / "tb")]) == 2
    assert "no TensorBoard event file" in capsys.readouterr().err


def test_diagnose_csv_without_torch(tmp_path: Path) -> None:
    """Diagnosing a CSV (text only) never imports torch: the core is numpy-only."""
    log = _write(tmp_path / "run.csv", _rows("healthy"))
    code = textwrap.dedent(
        f"""
        import contextlib, io, sys
        from lrkit.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["diagnose", {str(log)!r}, "-o", ""]) == 0
        print(sorted(m for m in sys.modules if m.split(".")[0] == "torch"))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
