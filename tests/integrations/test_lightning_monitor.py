"""``LrkitCallback(diagnostics=...)``: a real lightning.Trainer fit recorded by lrkit's Monitor."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pl = pytest.importorskip("lightning.pytorch")

import lrkit  # noqa: E402
from lrkit.integrations._monitor import batch_loss, val_metrics  # noqa: E402
from lrkit.integrations.lightning import LrkitCallback  # noqa: E402
from lrkit.torch import Monitor, Scheduler  # noqa: E402

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*does not have many workers:UserWarning",
    "ignore:.*LeafSpec",
)
logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)

STEPS = 40  # 5 epochs of 8 batches


def _data(seed: int) -> torch.utils.data.DataLoader:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 4, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [0.0]]) + 0.1 * torch.randn(64, 1, generator=g)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)


class Tiny(pl.LightningModule):
    """A linear regression under an lrkit schedule at ``peak``; records the loss of each step."""

    def __init__(self, peak: float) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Linear(4, 1)
        self.peak = peak
        self.losses: list[float] = []

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.losses.append(float(loss.detach()))
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self) -> Any:
        opt = torch.optim.SGD(self.parameters(), lr=self.peak)
        sched = Scheduler(opt, lr=lrkit.cosine(self.peak, 0.0, steps=STEPS))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def _fit(module: Tiny, root: Path, cb: LrkitCallback) -> None:
    trainer = pl.Trainer(
        max_epochs=STEPS // 8,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=root,
        callbacks=[cb],
    )
    trainer.fit(module, _data(0), _data(1))


def test_monitor_log_has_every_step_with_loss_and_rate(tmp_path: Path) -> None:
    """diagnostics=True: the log in the trainer's folder has one row per optimizer step with
    that step's loss and scheduled rate, validation rows, and diagnose() returns findings."""
    module, cb = Tiny(0.05), LrkitCallback(diagnostics=True)
    _fit(module, tmp_path, cb)
    lines = [json.loads(s) for s in (tmp_path / "lrkit_monitor.jsonl").read_text().splitlines()]
    train = [r for r in lines if "loss" in r]
    assert [r["step"] for r in train] == list(range(STEPS))
    assert [r["loss"] for r in train] == pytest.approx(module.losses, rel=1e-6)
    want = lrkit.cosine(0.05, 0.0, steps=STEPS)
    assert [r["lr"] for r in train] == pytest.approx([float(want(k)) for k in range(STEPS)])
    val = [r for r in lines if "val_loss" in r]
    assert [r["step"] for r in val] == [8 * e - 1 for e in range(1, STEPS // 8 + 1)]
    assert cb.diagnostics_monitor is not None
    log = cb.diagnostics_monitor.run_log()
    assert len(log) == STEPS and log.grad_norm is not None
    findings = cb.diagnose()
    assert findings and all(f.kind in lrkit.diagnostics.KINDS for f in findings)


def test_a_far_too_high_rate_is_diagnosed(tmp_path: Path) -> None:
    """At an absurd peak the fit blows up; the log goes to the given path and the top finding
    says the rate is the problem."""
    out = tmp_path / "sub" / "mon.csv"
    module, cb = Tiny(5.0), LrkitCallback(diagnostics=out)
    _fit(module, tmp_path, cb)
    assert out.exists() and len(out.read_text().splitlines()) > STEPS
    kinds = [f.kind for f in cb.diagnose()]
    assert kinds[0] in {"diverged", "lr_too_high", "exploding_gradients"}, kinds


def test_a_given_monitor_is_fed_and_left_attached(tmp_path: Path) -> None:
    """A Monitor passed in (built on the optimizer the module returns) is fed every step and
    flushed, and stays attached after the fit (its owner closes it)."""
    module = Tiny(0.05)
    opt = torch.optim.SGD(module.parameters(), lr=0.05)
    sched = Scheduler(opt, lr=lrkit.cosine(0.05, 0.0, steps=STEPS))
    module.configure_optimizers = lambda: {  # type: ignore[method-assign]
        "optimizer": opt,
        "lr_scheduler": {"scheduler": sched, "interval": "step"},
    }
    mon = Monitor(module, opt)
    cb = LrkitCallback(diagnostics=mon)
    assert cb.diagnostics_monitor is mon
    _fit(module, tmp_path, cb)
    assert [r["step"] for r in mon.rows() if "loss" in r] == list(range(STEPS))
    opt.step()
    mon.log(1.0)
    assert mon.rows()[-1]["step"] == STEPS
    mon.close()
    with pytest.raises(ValueError, match="no Monitor attached"):
        LrkitCallback().diagnose()


def test_helpers_read_losses_and_validation_metrics() -> None:
    """The loss comes from a tensor or a dict's "loss"; validation names are normalised."""
    t = torch.tensor(0.5)
    assert float(batch_loss(t)) == 0.5 and float(batch_loss({"loss": t})) == 0.5
    assert batch_loss(None) is None and batch_loss({"x": t}) is None
    got = val_metrics({"val_loss": t, "val/acc": 0.9, "train_loss": 1.0, "val_vec": torch.ones(3)})
    assert got == {"val_loss": 0.5, "val_acc": 0.9}
    with pytest.raises(TypeError, match="diagnostics must be"):
        LrkitCallback(diagnostics=3)  # type: ignore[arg-type]
