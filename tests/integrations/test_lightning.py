"""Real lightning.Trainer fits on CPU with lrkit's Scheduler, controllers and LrkitCallback."""

from __future__ import annotations

import csv
import logging
import warnings
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pl = pytest.importorskip("lightning.pytorch")

import lrkit  # noqa: E402
from lrkit.controllers import Plateau  # noqa: E402
from lrkit.integrations.lightning import LrkitCallback  # noqa: E402
from lrkit.torch import Scheduler  # noqa: E402
from lrkit.torch import compat as C  # noqa: E402

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*does not have many workers:UserWarning",
    "ignore:.*LeafSpec",
)
logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)

SCHEDULE = lrkit.warmup(lrkit.cosine(0.05, 0.001, steps=12), steps=4)
MOMENTUM = lrkit.linear(0.95, 0.85, steps=16)


def _data(seed: int = 0) -> torch.utils.data.DataLoader:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(32, 4, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [0.0]]) + 0.1 * torch.randn(32, 1, generator=g)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)


class Tiny(pl.LightningModule):
    """A linear regression whose optimizer and scheduler are built by ``make``."""

    def __init__(self, make: Any, val_losses: list[float] | None = None) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Linear(4, 1)
        self.make = make
        self.val_losses = val_losses
        self.seen: dict[int, tuple[float, float]] = {}

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        g = self.optimizers().optimizer.param_groups[0]
        self.seen.setdefault(self.global_step, (g["lr"], g.get("momentum", 0.0)))
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        if self.val_losses is not None:  # a scripted validation curve
            loss = torch.tensor(self.val_losses[self.current_epoch])
        self.log("val_loss", loss)

    def configure_optimizers(self) -> Any:
        return self.make(self.parameters())


def _fit(module: Tiny, tmp_path: Path, *, epochs: int, ckpt: Path | None = None, **kw: Any) -> Any:
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
        **{"logger": False, **kw},
    )
    trainer.fit(module, _data(), _data(1), ckpt_path=ckpt)
    return trainer


def _sgd_lrkit(controllers: list[Any]) -> Any:
    def make(params: Any) -> Any:
        opt = torch.optim.SGD(params, lr=0.05, momentum=0.9)
        sched = Scheduler(opt, lr=SCHEDULE, momentum=MOMENTUM, controllers=controllers)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    return make


@pytest.mark.slow
def test_values_per_step_equal_the_schedule_and_are_logged(tmp_path: Path) -> None:
    """With gradient accumulation 2, every optimizer step k uses lr s(k) and momentum m(k)
    exactly, and the callback logs both per step to the trainer's logger."""
    module = Tiny(_sgd_lrkit([]))
    logger = pl.loggers.CSVLogger(tmp_path, name="run")
    _fit(
        module,
        tmp_path,
        epochs=5,
        accumulate_grad_batches=2,
        callbacks=[LrkitCallback()],
        logger=logger,
        log_every_n_steps=1,
    )
    assert sorted(module.seen) == list(range(10))  # 4 batches / 2 per update * 5 epochs
    for k, (lr, mom) in module.seen.items():
        assert (lr, mom) == (SCHEDULE(k), MOMENTUM(k)), k
    with open(Path(logger.log_dir) / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("lrkit/lr")]
    logged = {int(r["step"]): (float(r["lrkit/lr"]), float(r["lrkit/momentum"])) for r in rows}
    assert logged == {k: (SCHEDULE(k), MOMENTUM(k)) for k in range(10)}


@pytest.mark.slow
def test_plateau_reacts_to_val_loss_and_train_metrics_reach_their_controller(
    tmp_path: Path,
) -> None:
    """Plateau(metric='val_loss') halves the lr after the scripted validation losses stall;
    a controller watching 'train_loss' gets one value per optimizer step, not the val loss."""
    plateau = Plateau(factor=0.5, patience=1, metric="val_loss")
    train_watch = Plateau(patience=10**6, metric="train_loss")
    module = Tiny(_sgd_lrkit([plateau, train_watch]), val_losses=[1.0, 0.5, 0.6, 0.6, 0.6])
    cb = LrkitCallback()
    _fit(module, tmp_path, epochs=5, callbacks=[cb])
    # validations after epochs 0..4 (steps 4, 8, ..., 20): better, better, bad, bad -> reduce
    assert plateau.num_evals == 5
    assert plateau.last_reduced_step == 16
    assert [e["kind"] for e in cb.events] == ["reduce"]
    assert train_watch.num_evals == 20
    for k, (lr, _) in module.seen.items():
        assert lr == (0.5 * SCHEDULE(k) if k >= 16 else SCHEDULE(k)), k


@pytest.mark.slow
def test_checkpoint_resume_continues_exactly(tmp_path: Path) -> None:
    """Trainer.fit(ckpt_path=...) after 2 epochs ends with the uninterrupted run's rates, plateau
    decisions and weights, bitwise."""
    curve = [1.0, 0.9, 0.95, 0.95, 0.95]

    def run(**kw: Any) -> Tiny:
        return Tiny(_sgd_lrkit([Plateau(factor=0.5, patience=1, metric="val_loss")]), curve)

    full = run()
    _fit(full, tmp_path / "full", epochs=5, callbacks=[LrkitCallback()])
    first = run()
    t1 = _fit(first, tmp_path / "a", epochs=2, callbacks=[LrkitCallback()])
    ckpt = tmp_path / "mid.ckpt"
    t1.save_checkpoint(ckpt)
    second = run()
    _fit(second, tmp_path / "b", epochs=5, ckpt=ckpt, callbacks=[LrkitCallback()])
    resumed = {**first.seen, **second.seen}
    assert resumed == full.seen
    assert any(lr < SCHEDULE(k) for k, (lr, _) in full.seen.items())  # the plateau acted
    for a, b in zip(full.parameters(), second.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.slow
def test_compat_reduce_on_plateau_gets_the_monitored_metric(tmp_path: Path) -> None:
    """lrkit's drop-in with Lightning's monitor='val_loss' gives torch's rates in the same fit
    (Lightning used to call step() without the metric: TypeError)."""
    curve = [1.0, 0.9, 0.95, 0.95, 0.95, 0.97]

    def make(cls: type) -> Any:
        def build(params: Any) -> Any:
            opt = torch.optim.SGD(params, lr=0.05)
            sched = cls(opt, factor=0.5, patience=1)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val_loss"}}

        return build

    ours, theirs = (
        Tiny(make(C.ReduceLROnPlateau), curve),
        Tiny(make(torch.optim.lr_scheduler.ReduceLROnPlateau), curve),
    )
    _fit(ours, tmp_path / "ours", epochs=6)
    _fit(theirs, tmp_path / "theirs", epochs=6)
    assert ours.seen == theirs.seen
    assert min(lr for lr, _ in ours.seen.values()) == 0.025  # reduced once during the fit


@pytest.mark.slow
def test_warns_when_a_watched_metric_is_never_logged(tmp_path: Path) -> None:
    """A controller watching 'val_acc', which the module never logs: one warning naming it and
    the metrics that were logged; none for 'val_loss', logged only at the first validation
    (after epoch 1); an unnamed Plateau gets a warning saying how to name it."""
    ctls = [Plateau(metric="val_acc"), Plateau(), Plateau(metric="val_loss")]
    module = Tiny(_sgd_lrkit(ctls))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _fit(module, tmp_path, epochs=2, callbacks=[LrkitCallback()], check_val_every_n_epoch=2)
    msgs = [str(w.message) for w in caught if "LrkitCallback" in str(w.message)]
    assert sum("watches 'val_acc' but no metric of that name" in m for m in msgs) == 1
    assert not any("watches 'val_loss'" in m for m in msgs)
    assert ctls[2].num_evals == 1
    assert any("'train_loss'" in m and "'val_loss'" in m for m in msgs)
    assert any("Plateau watch(es) no named metric" in m for m in msgs)


def test_monitor_feeds_the_unnamed_controllers() -> None:
    """LrkitCallback(monitor=...) with no controller taking the unnamed metric is refused."""
    from lrkit.integrations._feed import plan_for

    opt = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=0.1)
    named = Scheduler(opt, lr=0.1, controllers=[Plateau(metric="val_loss")])
    with pytest.raises(ValueError, match=r"monitor='val_loss' feeds the controllers that name"):
        plan_for("LrkitCallback", named, train_metrics=None, monitor="val_loss")
    opt2 = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=0.1)
    both = Scheduler(opt2, lr=0.1, controllers=[Plateau(), Plateau(metric="train/loss")])
    plan = plan_for("LrkitCallback", both, train_metrics=None, monitor="val_loss")
    assert (plan.train, plan.val, plan.unnamed, plan.unnamed_is_train) == (
        ("train/loss",),
        (),
        "val_loss",
        False,
    )
