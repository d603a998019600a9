"""transformers: ``lrkit.torch.get_scheduler`` takes HF's scheduler names and gives HF's rates,
then a ``Plateau`` on ``eval_loss`` rides on top, fed by ``LrkitTrainerCallback``.

A tiny regression model built here (no download) is trained by a real ``transformers.Trainer``
with gradient accumulation. Prints the schedule lrkit built, its first rates next to
transformers' own ``get_scheduler`` for the same arguments, and the plateau's reductions.

Run: python examples/transformers_trainer.py        (pip install "lrkit[transformers]")
"""

from __future__ import annotations

import tempfile

import torch
import transformers

from lrkit.controllers import Plateau
from lrkit.integrations.transformers import LrkitTrainerCallback
from lrkit.torch import get_scheduler

transformers.logging.set_verbosity_error()
torch.manual_seed(0)
x = torch.randn(256, 8)
y = torch.tanh(x @ torch.randn(8, 1)) + 0.3 * torch.randn(256, 1)


class Rows(torch.utils.data.Dataset):
    def __init__(self, lo: int, hi: int) -> None:
        self.lo, self.hi = lo, hi

    def __len__(self) -> int:
        return self.hi - self.lo

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": x[self.lo + i], "labels": y[self.lo + i]}


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(8, 64), torch.nn.Tanh(), torch.nn.Linear(64, 1)
        )

    def forward(self, x, labels=None):
        out = self.net(x)
        return {"loss": torch.nn.functional.mse_loss(out, labels), "logits": out}


STEPS, WARMUP = 60, 6
model = Net()
opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
plateau = Plateau(factor=0.5, patience=1, threshold=1e-2, metric="eval_loss")
sched = get_scheduler(
    "cosine", opt, num_warmup_steps=WARMUP, num_training_steps=STEPS, controllers=[plateau]
)
print(f"lrkit schedule: {sched.schedules['lr']}")

probe = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-2)
theirs = transformers.get_scheduler(
    "cosine", probe, num_warmup_steps=WARMUP, num_training_steps=STEPS
)
hf_rates = [theirs.lr_lambdas[0](k) * 1e-2 for k in range(STEPS + 1)]
ours = sched.schedules["lr"]
print("step  lrkit        transformers")
for k in (0, 3, WARMUP, 30, STEPS):
    print(f"{k:4d}  {ours(k):.6e}  {hf_rates[k]:.6e}")
assert max(abs(ours(k) - hf_rates[k]) for k in range(STEPS + 1)) < 1e-15

callback = LrkitTrainerCallback()
with tempfile.TemporaryDirectory() as tmp:
    args = transformers.TrainingArguments(
        output_dir=tmp,
        report_to=[],
        per_device_train_batch_size=16,
        gradient_accumulation_steps=2,
        max_steps=STEPS,
        eval_strategy="steps",
        eval_steps=6,
        logging_steps=6,
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
    )
    trainer = transformers.Trainer(
        model,
        args,
        train_dataset=Rows(0, 128),
        eval_dataset=Rows(128, 256),
        optimizers=(opt, sched),
        callbacks=[callback],
    )
    trainer.train()
evals = [h["eval_loss"] for h in trainer.state.log_history if "eval_loss" in h]
print(f"plateau reductions at steps {[e['step'] for e in callback.events]}")
print(f"final lr: {sched.get_last_lr()[0]:.3g} at step {sched.last_epoch}")
print(f"loss: start {evals[0]:.4f} -> final {evals[-1]:.4f}")
