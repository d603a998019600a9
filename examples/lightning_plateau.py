"""Lightning: a warmup-cosine schedule with a plateau on ``val_loss`` and a shift detector on
``train_loss``, fed by ``LrkitCallback`` from what the LightningModule logs.

Each controller receives only the metric it names. The callback logs ``lrkit/lr`` every step
(here to a CSV logger in a temporary folder) and the plateau's reductions as events.

Run: python examples/lightning_plateau.py        (pip install "lrkit[lightning]")
"""

from __future__ import annotations

import logging
import tempfile
import warnings

import lightning.pytorch as pl
import torch

import lrkit
from lrkit.controllers import Plateau, RestartOnShift
from lrkit.integrations.lightning import LrkitCallback
from lrkit.torch import Scheduler

warnings.filterwarnings("ignore", ".*does not have many workers.*")
warnings.filterwarnings("ignore", ".*LeafSpec.*")
logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
torch.manual_seed(0)
x = torch.randn(256, 8)
y = torch.tanh(x @ torch.randn(8, 1)) + 0.3 * torch.randn(256, 1)
train = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[:64], y[:64]), batch_size=16)
val = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[64:], y[64:]), batch_size=64)
EPOCHS = 20


class Net(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(8, 64), torch.nn.Tanh(), torch.nn.Linear(64, 1)
        )
        self.losses: list[float] = []

    def training_step(self, batch, batch_idx):
        loss = torch.nn.functional.mse_loss(self.net(batch[0]), batch[1])
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        loss = torch.nn.functional.mse_loss(self.net(batch[0]), batch[1])
        self.log("val_loss", loss)
        self.losses.append(loss.item())

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.parameters(), lr=1e-2)
        sched = Scheduler(
            opt,
            lr=lrkit.warmup(lrkit.cosine(1e-2, 1e-4, steps="95%"), steps="5%"),
            total_steps=EPOCHS * len(train),
            controllers=[
                Plateau(factor=0.5, patience=2, threshold=1e-2, metric="val_loss"),
                RestartOnShift(burn_in=20, metric="train_loss"),
            ],
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


model = Net()
callback = LrkitCallback()
with tempfile.TemporaryDirectory() as tmp:
    trainer = pl.Trainer(
        max_epochs=EPOCHS,
        accelerator="cpu",
        logger=pl.loggers.CSVLogger(tmp),
        callbacks=[callback],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
    )
    trainer.fit(model, train, val)
sched = trainer.lr_scheduler_configs[0].scheduler
print(f"watched metrics: {sched.metric_names}")
print(f"controller events: {[(e['kind'], e['step']) for e in callback.events]}")
print(f"final lr: {sched.get_last_lr()[0]:.3g} at step {sched.last_epoch}")
print(f"loss: start {model.losses[0]:.4f} -> final {model.losses[-1]:.4f}")
