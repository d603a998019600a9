"""A real transformers.Trainer (tiny model made here, no downloads) with lrkit's Scheduler."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from lrkit.controllers import Plateau  # noqa: E402
from lrkit.integrations.transformers import LrkitTrainerCallback  # noqa: E402
from lrkit.torch import get_scheduler  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


class Data(torch.utils.data.Dataset):  # type: ignore[misc]
    """A linear regression task made from a seed."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 4, generator=g)
        self.y = self.x @ torch.tensor([[1.0], [-2.0], [0.5], [0.0]])

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[i], "labels": self.y[i]}


class Tiny(torch.nn.Module):
    """One linear layer returning transformers' output dict."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin = torch.nn.Linear(4, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, Any]:
        out = self.lin(x)
        return {"loss": torch.nn.functional.mse_loss(out, labels), "logits": out}


class Record(transformers.TrainerCallback):  # type: ignore[misc]
    """The lr each optimizer step uses, by global step (read when the step begins)."""

    def __init__(self) -> None:
        self.lrs: dict[int, float] = {}

    def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self.lrs.setdefault(state.global_step, kw["optimizer"].param_groups[0]["lr"])


def _args(out: Path, **kw: Any) -> Any:
    base = {
        "output_dir": str(out),
        "report_to": [],
        "per_device_train_batch_size": 4,
        "gradient_accumulation_steps": 2,
        "max_steps": 12,  # 32 samples / 4 / 2 = 4 optimizer steps per epoch, 3 epochs
        "learning_rate": 0.05,
        "use_cpu": True,
        "save_strategy": "no",
        "logging_steps": 1,
        "disable_tqdm": True,
        "seed": 0,
    }
    return transformers.TrainingArguments(**{**base, **kw})


def _train(out: Path, make: Any = None, resume: Path | None = None, **kw: Any) -> tuple:
    """Train Tiny; ``make(opt)`` returns (scheduler, callbacks) or None for HF's own."""
    model = Tiny()
    rec = Record()
    cbs: list[Any] = [rec]
    optimizers: Any = (None, None)
    if make is not None:
        opt = torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.0)
        sched, extra = make(opt)
        optimizers = (opt, sched)
        cbs += extra
    trainer = transformers.Trainer(
        model,
        _args(out, **kw),
        train_dataset=Data(32, 0),
        eval_dataset=Data(16, 1),
        optimizers=optimizers,
        callbacks=cbs,
    )
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    return rec.lrs, model, trainer


def _cosine(opt: Any) -> tuple[Any, list[Any]]:
    return get_scheduler("cosine", opt, num_warmup_steps=2, num_training_steps=12), []


@pytest.mark.slow
def test_gradient_accumulation_follows_transformers_cosine(tmp_path: Path) -> None:
    """With gradient_accumulation_steps=2, get_scheduler('cosine') gives each optimizer step the
    rate transformers' own lr_scheduler_type='cosine' gives it, and the same weights."""
    ours, m1, t1 = _train(tmp_path / "ours", _cosine)
    theirs, m2, _ = _train(
        tmp_path / "theirs", lr_scheduler_type="cosine", warmup_steps=2, optim="adamw_torch"
    )
    assert sorted(ours) == list(range(12))
    assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-18)
    sched = t1.lr_scheduler
    assert all(ours[k] == sched.schedules["lr"](k) for k in ours)
    for a, b in zip(m1.parameters(), m2.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.slow
def test_resume_from_checkpoint_continues_exactly(tmp_path: Path) -> None:
    """train(resume_from_checkpoint=checkpoint-4) gives steps 4..11 the uninterrupted run's
    rates and ends with its weights, bitwise."""
    full, m_full, _ = _train(tmp_path / "a", _cosine, save_strategy="steps", save_steps=4)
    ckpt = tmp_path / "a" / "checkpoint-4"
    assert (ckpt / "scheduler.pt").exists()
    rest, m_rest, _ = _train(tmp_path / "b", _cosine, resume=ckpt)
    assert sorted(rest) == list(range(4, 12))
    assert rest == {k: full[k] for k in range(4, 12)}
    for a, b in zip(m_full.parameters(), m_rest.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.slow
def test_plateau_reacts_to_eval_loss_and_training_loss_reaches_its_controller(
    tmp_path: Path,
) -> None:
    """Plateau(metric='eval_loss') halves the rate at each stalled evaluation (a rate too small
    to move the loss); a controller watching 'loss' gets one value per logging step."""
    plateau = Plateau(factor=0.5, patience=0, metric="eval_loss")
    train_watch = Plateau(patience=10**6, metric="loss")
    cb = LrkitTrainerCallback()

    def make(opt: Any) -> tuple[Any, list[Any]]:
        for g in opt.param_groups:
            g["lr"] = 1e-9
        return get_scheduler("constant", opt, controllers=[plateau, train_watch]), [cb]

    lrs, _, _ = _train(tmp_path, make, eval_strategy="steps", eval_steps=3, max_steps=9)
    assert plateau.num_evals == 3  # evaluations at steps 3, 6, 9
    assert [e["step"] for e in cb.events] == [6, 9]
    assert [lrs[k] for k in (5, 6, 8)] == [1e-9, 0.5e-9, 0.5e-9]
    assert train_watch.num_evals == 9


@pytest.mark.slow
def test_warns_when_the_watched_metric_is_not_logged(tmp_path: Path) -> None:
    """A controller watching 'val_loss' (transformers logs 'eval_loss'): one warning at the
    first evaluation naming what was logged."""

    def make(opt: Any) -> tuple[Any, list[Any]]:
        sched = get_scheduler("constant", opt, controllers=[Plateau(metric="val_loss")])
        return sched, [LrkitTrainerCallback()]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _train(tmp_path, make, eval_strategy="steps", eval_steps=2, max_steps=4)
    msgs = [str(w.message) for w in caught if "LrkitTrainerCallback" in str(w.message)]
    assert len(msgs) == 1 and "'val_loss'" in msgs[0] and "'eval_loss'" in msgs[0]
