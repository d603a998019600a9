"""The fresh evaluation tasks of ``benchmarks/diagnose_accuracy.py`` (round 2): the 13 tasks of
the benchmark suite (``benchmarks/suite.py``) as :class:`diagnose_tasks.DiagTask`. No detector
threshold was ever chosen on them (the suite's own dev/eval split concerns the range test and the
search, not the diagnostics: here all 13 are evaluation).

Each task keeps the suite's data, model, optimizer, loss, steps and batch size. The rules that
turn a suite task into a diagnostics task were fixed before any of these runs:

- **peak**: the oracle grid's best rate of the ``warmup-cosine`` family
  (``benchmarks/data/oracle.json`` through ``benchmarks/oracle.py``), the same schedule shape
  as the healthy runs;
- **the layer of the layer cases**: the first module, in ``model.named_modules()`` order, that
  owns a parameter called ``weight``; a model with only one such module (the two logistic
  regressions) has no other layer to be out of balance with and skips the two layer cases;
- **transformer** (the ``no_warmup`` case): the model contains an ``nn.TransformerEncoder``.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from diagnose_tasks import Data, DiagTask
from torch import nn

FAMILY = "warmup-cosine"


def hot_layer(model: nn.Module) -> str | None:
    """The name of the first module owning a ``weight``; None when it is the only one."""
    owners = [
        n for n, m in model.named_modules() if "weight" in dict(m.named_parameters("", False))
    ]
    return owners[0] if len(owners) > 1 else None


def is_transformer(model: nn.Module) -> bool:
    """Whether ``model`` contains a transformer encoder."""
    return any(isinstance(m, nn.TransformerEncoder) for m in model.modules())


@functools.cache
def _task(name: str) -> Any:
    from suite import SUITE

    return SUITE[name].make()


def _data(name: str) -> tuple[Data, Data]:
    t = _task(name)
    return t.train, t.val


def _model(name: str) -> nn.Module:
    model: nn.Module = _task(name).model()
    return model


def _optimizer(name: str, params: Any, lr: float) -> torch.optim.Optimizer:
    opt: torch.optim.Optimizer = _task(name).optimizer(params, lr)
    return opt


def _loss(name: str, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    loss: torch.Tensor = _task(name).loss(out, y)
    return loss


def names() -> list[str]:
    """The suite's task names, in suite order."""
    from suite import SUITE

    return list(SUITE)


@functools.cache
def diag_task(name: str, oracle_path: str | None = None) -> DiagTask:
    """The suite task ``name`` as a diagnostics evaluation task; its peak read from the oracle
    (``oracle_path``, default ``benchmarks/data/oracle.json``) when first asked for."""
    import oracle

    path = Path(oracle_path) if oracle_path else oracle.CACHE
    cached = oracle.load(path)
    fam = cached[name].families.get(FAMILY) if name in cached else None
    if fam is None:
        raise LookupError(f"diagnose_suite: no {FAMILY} oracle for task {name!r} in {path}")
    t = _task(name)
    torch.manual_seed(0)
    model = t.model()
    return DiagTask(
        name,
        "eval",
        functools.partial(_data, name),
        functools.partial(_model, name),
        functools.partial(_optimizer, name),
        functools.partial(_loss, name),
        fam.best_rate,
        t.steps,
        t.batch_size,
        hot_layer(model),
        is_transformer(model),
    )
