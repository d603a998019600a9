"""One spec written once drives a PyTorch loop, a Lightning fit, a transformers Trainer, a Keras
fit and an optax loop, with the same values.

The spec text below is turned into a torch scheduler (``lrkit.torch.Scheduler``: in a plain loop,
in a ``lightning.Trainer`` and in a ``transformers.Trainer``), a Keras ``LearningRateSchedule``
(``lrkit.keras.schedule``, torch backend) and an optax schedule (``lrkit.optax.schedule``); each
trains a tiny linear regression for 48 updates (past the schedule's end at 40) and records the
learning rate of every update. The script prints them side by side and exits with status 1 if
any framework differs from lrkit's own values by more than float32 rounding.

Run:  python examples/one_spec_everywhere.py
      (needs lrkit[torch,lightning,transformers,keras,jax])
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is imported

import numpy as np

import lrkit

SPEC = "warmup(cosine(0.05, 0.001, steps=32), steps=8)"
UPDATES = 48
rng = np.random.default_rng(0)
X = rng.normal(size=(64, 3)).astype(np.float32)
Y = (X @ np.array([1.5, -2.0, 0.5], dtype=np.float32))[:, None]


def with_torch() -> list[float]:
    """lrkit.torch.Scheduler on a torch.optim.SGD loop."""
    import torch

    from lrkit.torch import Scheduler

    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    sched = Scheduler(opt, lr=SPEC)
    x, y = torch.from_numpy(X), torch.from_numpy(Y)
    lrs = []
    for _ in range(UPDATES):
        lrs.append(opt.param_groups[0]["lr"])
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
        sched.step()
    return lrs


def with_lightning() -> list[float]:
    """lrkit.torch.Scheduler returned by configure_optimizers, stepped by a lightning.Trainer."""
    import lightning
    import torch

    from lrkit.torch import Scheduler

    seen: list[float] = []

    class Net(lightning.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(3, 1)

        def training_step(self, batch: list[torch.Tensor], _: int) -> torch.Tensor:
            x, y = batch
            return torch.nn.functional.mse_loss(self.layer(x), y)

        def configure_optimizers(self) -> dict:
            opt = torch.optim.SGD(self.parameters(), lr=0.0)
            sched = Scheduler(opt, lr=SPEC)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    class Record(lightning.Callback):
        def on_train_batch_start(self, trainer: lightning.Trainer, *args: object) -> None:
            seen.append(trainer.optimizers[0].param_groups[0]["lr"])

    torch.manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(Y))
    trainer = lightning.Trainer(
        max_steps=UPDATES,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[Record()],
    )
    trainer.fit(Net(), torch.utils.data.DataLoader(data, batch_size=4))
    return seen


def with_transformers() -> list[float]:
    """lrkit.torch.Scheduler passed to a transformers.Trainer as its scheduler."""
    import tempfile

    import torch
    import transformers

    from lrkit.torch import Scheduler

    seen: list[float] = []

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(3, 1)

        def forward(self, x: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"loss": torch.nn.functional.mse_loss(self.layer(x), labels)}

    class Record(transformers.TrainerCallback):
        def on_step_begin(self, args: object, state: object, control: object, **kw: object):
            seen.append(kw["optimizer"].param_groups[0]["lr"])  # type: ignore[attr-defined]

    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    rows = [
        {"x": torch.from_numpy(a), "labels": torch.from_numpy(b)} for a, b in zip(X, Y, strict=True)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        args = transformers.TrainingArguments(
            output_dir=tmp,
            report_to=[],
            per_device_train_batch_size=4,
            max_steps=UPDATES,
            save_strategy="no",
            use_cpu=True,
            disable_tqdm=True,
        )
        transformers.Trainer(
            model=model,
            args=args,
            train_dataset=rows,
            optimizers=(opt, Scheduler(opt, lr=SPEC)),
            callbacks=[Record()],
        ).train()
    return seen


def with_keras() -> list[float]:
    """lrkit.keras.schedule in a real model.fit (16 batches of 4 per epoch, 3 epochs)."""
    import keras

    import lrkit.keras

    seen: list[float] = []

    class Record(keras.callbacks.Callback):  # type: ignore[misc]
        def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
            seen.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(lrkit.keras.schedule(SPEC)), loss="mse")
    model.fit(X, Y, batch_size=4, epochs=UPDATES // 16, verbose=0, callbacks=[Record()])
    return seen


def with_optax() -> list[float]:
    """lrkit.optax.schedule inside optax.inject_hyperparams(optax.sgd), jitted."""
    import jax
    import jax.numpy as jnp
    import optax

    import lrkit.optax

    opt = optax.inject_hyperparams(optax.sgd)(learning_rate=lrkit.optax.schedule(SPEC))
    params = {"w": jnp.zeros((3, 1)), "b": jnp.zeros(1)}
    state = opt.init(params)

    def loss(p: dict) -> jax.Array:
        return jnp.mean((jnp.asarray(X) @ p["w"] + p["b"] - jnp.asarray(Y)) ** 2)

    @jax.jit
    def step(p: dict, s: optax.OptState) -> tuple:
        updates, s = opt.update(jax.grad(loss)(p), s, p)
        return optax.apply_updates(p, updates), s

    lrs = []
    for _ in range(UPDATES):
        params, state = step(params, state)
        lrs.append(float(state.hyperparams["learning_rate"]))  # the rate this update used
    return lrs


def main() -> int:
    want = lrkit.parse(SPEC)(np.arange(UPDATES))
    got = {
        "torch": with_torch(),
        "lightning": with_lightning(),
        "transformers": with_transformers(),
        "keras": with_keras(),
        "optax": with_optax(),
    }
    print(f"spec: {SPEC}")
    print(f"{'update':>6}  {'lrkit':>12}  " + "  ".join(f"{n:>12}" for n in got))
    for k in (0, 4, 8, 16, 24, 39, 40, 47):
        row = "  ".join(f"{got[n][k]:12.6f}" for n in got)
        print(f"{k:>6}  {want[k]:12.6f}  {row}")
    worst = {
        n: float(np.max(np.abs(np.array(v) - want) / np.abs(want).max())) for n, v in got.items()
    }
    print("max difference / peak: " + ", ".join(f"{n} {d:.1e}" for n, d in worst.items()))
    same = all(d < 1e-6 for d in worst.values())
    print(f"same values everywhere: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
