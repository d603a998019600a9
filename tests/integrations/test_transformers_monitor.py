"""``LrkitTrainerCallback(diagnostics=...)``: a real transformers.Trainer recorded by Monitor."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from lrkit.diagnostics import KINDS  # noqa: E402
from lrkit.integrations.transformers import LrkitTrainerCallback  # noqa: E402
from lrkit.torch import get_scheduler  # noqa: E402

from .test_transformers import Data, Record, Tiny, _args  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


class Losses(transformers.TrainerCallback):  # type: ignore[misc]
    """The training loss the Trainer logs at each step (logging_steps=1)."""

    def __init__(self) -> None:
        self.loss: dict[int, float] = {}

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
        if logs and "loss" in logs:
            self.loss[state.global_step] = logs["loss"]


def test_monitor_records_each_step_and_each_evaluation(tmp_path: Path) -> None:
    """diagnostics=True with gradient accumulation: one row per optimizer step with the loss
    the Trainer logs for it and the rate it used, one val_loss row per evaluation, in
    <output_dir>/lrkit_monitor.jsonl; diagnose() returns findings; eval timings are left out."""
    model = Tiny()
    opt = torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.0)
    sched = get_scheduler("cosine", opt, num_warmup_steps=2, num_training_steps=12)
    cb, rec, losses = LrkitTrainerCallback(diagnostics=True), Record(), Losses()
    trainer = transformers.Trainer(
        model,
        _args(tmp_path, eval_strategy="steps", eval_steps=4),
        train_dataset=Data(32, 0),
        eval_dataset=Data(16, 1),
        optimizers=(opt, sched),
        callbacks=[rec, losses, cb],
    )
    trainer.train()
    rows = [json.loads(s) for s in (tmp_path / "lrkit_monitor.jsonl").read_text().splitlines()]
    train = [r for r in rows if "loss" in r]
    assert [r["step"] for r in train] == list(range(12))
    assert [r["lr"] for r in train] == pytest.approx([rec.lrs[k] for k in range(12)])
    assert [r["loss"] for r in train] == pytest.approx(
        [losses.loss[k + 1] for k in range(12)], rel=1e-3
    )
    val = [r for r in rows if "val_loss" in r]
    assert [r["step"] for r in val] == [3, 7, 11]
    assert not any(k.endswith(("runtime", "per_second")) for r in rows for k in r)
    findings = cb.diagnose()
    assert findings and all(f.kind in KINDS for f in findings)
    with pytest.raises(ValueError, match="no Monitor attached"):
        LrkitTrainerCallback().diagnose()
