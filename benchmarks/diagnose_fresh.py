"""The fresh evaluation tasks of ``benchmarks/diagnose_accuracy.py`` (round 3): 7 small offline
tasks whose data and models appear nowhere else in lrkit (not in ``diagnose_tasks.py``, not in
``suite.py``, not in ``lrkit.tune``). No detector threshold was chosen on them.

==================  ==========================================================  ============
task                data, model                                                 optimizer
==================  ==========================================================  ============
``moons-mlp``       make_moons (2000, noise 0.25), 2-32-32-2 tanh MLP           SGD
``circles-mlp``     make_circles (2000, noise 0.1) + 6 noise features, MLP      Adam
``iris-mlp``        load_iris (150 rows), 4-32-3 ReLU MLP, batch 16              SGD+momentum
``sparse-reg``      make_sparse_uncorrelated (2000, 10 features), MLP, MSE      AdamW
``runsign-lstm``    sign of the running sum of 12 steps in -3..3, LSTM         Adam
``reverse-tf``      reverse 8 tokens out of 10, 1-layer transformer (width 32)  AdamW
``calendar-gru``    next character of the ``calendar`` module's source, GRU      Adam
==================  ==========================================================  ============

Rules fixed before any pathology was run (the same as round 2's for the suite tasks):

- **peak**: the best final validation loss of warmup (5%) + cosine to 0 over a grid of 10 rates
  a factor 2 apart starting at the suite's low end for the optimizer (SGD 4e-3, SGD+momentum
  1e-3, Adam/AdamW 1e-4), extended upward one doubling at a time while the best is the top
  rate (14 rates at most), seed 0, the same training loop as the accuracy benchmark (no
  Monitor); computed by ``python benchmarks/diagnose_fresh.py --peaks`` and cached in
  ``benchmarks/data/diagnose_fresh_peaks.json``;
- **the layer of the layer cases**: the first module owning a ``weight``
  (``diagnose_suite.hot_layer``);
- **transformer** (the ``no_warmup`` case): the model contains an ``nn.TransformerEncoder``.

The machinery takes the spec table as an argument (:func:`make_task`, :func:`healthy_val_loss`,
:func:`grid_peaks`, :func:`main`), so round 4's set (``benchmarks/diagnose_fresh4.py``) reuses it.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import itertools
import json
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import torch
from diagnose_suite import hot_layer, is_transformer
from diagnose_tasks import Data, DiagTask, _standard, batch_indices
from diagnose_tasks import _split as _seeded_split
from suite import GRID_LOW
from torch import nn

PEAKS = Path(__file__).resolve().parent / "data" / "diagnose_fresh_peaks.json"
GRID_SIZE = 10
GRID_MAX = 14


def _split(x: np.ndarray, y: np.ndarray, frac: float = 0.25) -> tuple[Data, Data]:
    """``diagnose_tasks``' split with this file's seed, 5."""
    return _seeded_split(x, y, seed=5, frac=frac)


@functools.cache
def _moons() -> tuple[Data, Data]:
    from sklearn.datasets import make_moons

    x, y = make_moons(2000, noise=0.25, random_state=11)
    return _split(_standard(x), y.astype(np.int64))


@functools.cache
def _circles() -> tuple[Data, Data]:
    from sklearn.datasets import make_circles

    x, y = make_circles(2000, noise=0.1, factor=0.5, random_state=12)
    noise = np.random.default_rng(12).normal(size=(len(x), 6))
    return _split(_standard(np.hstack([x, noise])), y.astype(np.int64))


@functools.cache
def _iris() -> tuple[Data, Data]:
    from sklearn.datasets import load_iris

    d = load_iris()
    return _split(_standard(d.data), d.target.astype(np.int64), 0.3)


@functools.cache
def _sparse() -> tuple[Data, Data]:
    from sklearn.datasets import make_sparse_uncorrelated

    x, y = make_sparse_uncorrelated(2000, 10, random_state=13)
    y = (y - y.mean()) / y.std()
    return _split(_standard(x), y.astype(np.float32)[:, None])


@functools.cache
def _runsign() -> tuple[Data, Data]:
    rng = np.random.default_rng(14)
    x = rng.integers(-3, 4, size=(3000, 12))
    y = (np.cumsum(x, 1) > 0).astype(np.int64)  # per position: is the running sum positive
    return _split((x + 3).astype(np.int64), y)


@functools.cache
def _reverse() -> tuple[Data, Data]:
    rng = np.random.default_rng(15)
    x = rng.integers(0, 10, size=(4000, 8))
    return _split(x.astype(np.int64), x[:, ::-1].copy().astype(np.int64), 0.1)


@functools.cache
def _calendar() -> tuple[Data, Data]:
    import calendar

    text = inspect.getsource(calendar)
    codes = np.frombuffer(text.encode("ascii", "replace"), dtype=np.uint8).astype(np.int64)
    codes = np.clip(codes, 10, 127) - 10  # 118 symbols
    win = np.lib.stride_tricks.sliding_window_view(codes, 13)[::4]
    x, y = torch.as_tensor(win[:, :-1].copy()), torch.as_tensor(win[:, 1:].copy())
    n = len(x) // 8
    return (x[:-n], y[:-n]), (x[-n:], y[-n:])


def _seq_ce(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))


class SeqRNN(nn.Module):
    """Embedding, one recurrent layer (LSTM or GRU), a linear head at every position."""

    def __init__(self, vocab: int, dim: int, hidden: int, n_out: int, cell: str) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.rnn = (nn.LSTM if cell == "lstm" else nn.GRU)(dim, hidden, batch_first=True)
        self.head = nn.Linear(hidden, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits at every position."""
        return self.head(self.rnn(self.embed(x))[0])


class Reverser(nn.Module):
    """Token embedding + learnt positions, one post-norm encoder layer (not causal), a head."""

    def __init__(self, vocab: int = 10, length: int = 8, dim: int = 32) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.randn(length, dim) * 0.1)
        layer = nn.TransformerEncoderLayer(dim, 4, 64, dropout=0.0, batch_first=True)
        self.body = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.head = nn.Linear(dim, vocab)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the reversed sequence at every position."""
        return self.head(self.body(self.embed(x) + self.pos))


def _mlp(
    sizes: tuple[int, ...],
    act: type[nn.Module] = nn.ReLU,
    *,
    norm: bool = False,
    dropout: float = 0.0,
) -> nn.Module:
    """Linear layers of ``sizes``; after each hidden one a LayerNorm (``norm``), ``act`` and a
    dropout (``dropout`` > 0)."""
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(sizes[:-1]):
        layers += [nn.Linear(a, b), *([nn.LayerNorm(b)] if norm else []), act()]
        layers += [nn.Dropout(dropout)] if dropout > 0 else []
    return nn.Sequential(*layers, nn.Linear(sizes[-2], sizes[-1]))


OPTIMIZERS = {
    "SGD": lambda p, lr: torch.optim.SGD(p, lr=lr),
    "SGD+momentum": lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9),
    "Adam": lambda p, lr: torch.optim.Adam(p, lr=lr),
    "AdamW": lambda p, lr: torch.optim.AdamW(p, lr=lr, weight_decay=0.01),
}

#: A task of a fresh set: (data, model, optimizer name (a key of OPTIMIZERS and GRID_LOW), loss,
#: steps, batch).
Spec = tuple[Any, Any, str, Any, int, int]

SPECS: dict[str, Spec] = {
    "moons-mlp": (
        _moons,
        functools.partial(_mlp, (2, 32, 32, 2), nn.Tanh),
        "SGD",
        nn.functional.cross_entropy,
        300,
        32,
    ),
    "circles-mlp": (
        _circles,
        functools.partial(_mlp, (8, 64, 64, 2)),
        "Adam",
        nn.functional.cross_entropy,
        300,
        32,
    ),
    "iris-mlp": (
        _iris,
        functools.partial(_mlp, (4, 32, 3)),
        "SGD+momentum",
        nn.functional.cross_entropy,
        200,
        16,
    ),
    "sparse-reg": (
        _sparse,
        functools.partial(_mlp, (10, 64, 64, 1)),
        "AdamW",
        nn.functional.mse_loss,
        300,
        32,
    ),
    "runsign-lstm": (
        _runsign,
        functools.partial(SeqRNN, 7, 8, 32, 2, "lstm"),
        "Adam",
        _seq_ce,
        300,
        32,
    ),
    "reverse-tf": (_reverse, Reverser, "AdamW", _seq_ce, 300, 32),
    "calendar-gru": (
        _calendar,
        functools.partial(SeqRNN, 118, 16, 64, 118, "gru"),
        "Adam",
        _seq_ce,
        300,
        16,
    ),
}


def make_task(specs: Mapping[str, Spec], name: str, peak: float = math.nan) -> DiagTask:
    """The task ``name`` of the table ``specs`` as an evaluation task at ``peak``; its layer
    and transformer flag read from a model built at seed 0."""
    data, model, opt, loss, steps, batch = specs[name]
    torch.manual_seed(0)
    m = model()
    return DiagTask(
        name, "eval", data, model, OPTIMIZERS[opt], loss, peak, steps, batch,
        hot_layer(m), is_transformer(m),
    )  # fmt: skip


def cached_peak(path: Path, name: str, where: str) -> float:
    """The peak of task ``name`` in the cached grid ``path`` (written by :func:`grid_peaks`);
    ``where`` names the task set in the error."""
    cached = json.loads(path.read_text()) if path.exists() else {}
    if name not in cached:
        raise LookupError(f"{where}: no peak for task {name!r} in {path}; run --peaks")
    peak: float = cached[name]["peak"]
    return peak


def healthy_val_loss(task: DiagTask, seed: int = 0) -> float:
    """Warmup (5%) + cosine to 0 at ``task.peak``: the last validation loss (inf if it
    diverged), with the batches and validation slice of ``diagnose_accuracy.run_one``."""
    import lrkit
    from lrkit.torch import Scheduler

    torch.set_num_threads(1)
    peak = task.peak
    (xt, yt), (xv, yv) = task.data()
    xv, yv = xv[:512], yv[:512]
    torch.manual_seed(seed)
    model = task.model()
    opt = task.optimizer(model.parameters(), peak)
    n, w = task.steps, math.ceil(0.05 * task.steps)
    sched = Scheduler(opt, lr=lrkit.warmup(lrkit.cosine(peak, 0.0, steps=n - w), steps=w))
    order = batch_indices(len(xt), task.batch, seed)
    for _ in range(n):
        idx = next(order)
        loss = task.loss(model(xt[idx]), yt[idx])
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad()
        if not math.isfinite(loss.item()):
            return math.inf
    model.eval()
    with torch.no_grad():
        v = float(task.loss(model(xv), yv))
    return v if math.isfinite(v) else math.inf


def grid_peaks(specs: Mapping[str, Spec], path: Path) -> dict[str, Any]:
    """The grid of each task of ``specs`` and its best rate, written to ``path`` after each
    task: 10 rates a factor 2 apart from ``GRID_LOW`` of its optimizer, extended upward one
    doubling at a time while the best is the top rate (14 at most), seed 0."""
    out: dict[str, Any] = {}
    for name, spec in specs.items():
        low = GRID_LOW[spec[2]]
        grid = [low * 2**k for k in range(GRID_SIZE)]
        losses = [healthy_val_loss(make_task(specs, name, r)) for r in grid]
        best = min(range(len(grid)), key=lambda i: losses[i])
        while best == len(grid) - 1 and len(grid) < GRID_MAX:  # best at the top: extend it
            grid.append(2 * grid[-1])
            losses.append(healthy_val_loss(make_task(specs, name, grid[-1])))
            best = min(range(len(grid)), key=lambda i: losses[i])
        out[name] = {"optimizer": spec[2], "grid": grid, "val_loss": losses, "peak": grid[best]}
        edge = " (grid edge!)" if best in (0, len(grid) - 1) else ""
        print(f"{name}: peak {grid[best]:.3g}{edge}; losses {[round(v, 3) for v in losses]}")
        path.write_text(json.dumps(out, indent=1))
    return out


@dataclass(frozen=True, eq=False)
class FreshSet:
    """One fresh task set: its name (for errors), its spec table and the file caching its
    healthy peaks; the functions a benchmark needs from it."""

    where: str
    specs: Mapping[str, Spec]
    path: Path

    def names(self) -> list[str]:
        """The task names, in table order."""
        return list(self.specs)

    @functools.cache  # noqa: B019 (a handful of module-level sets, alive for the whole run)
    def diag_task(self, name: str, peaks: str | None = None) -> DiagTask:
        """The task ``name`` with its peak from the cached grid (``peaks``, default
        :attr:`path`)."""
        path = Path(peaks) if peaks else self.path
        return make_task(self.specs, name, cached_peak(path, name, self.where))

    def final_val_loss(self, name: str, peak: float, seed: int = 0) -> float:
        """The healthy run of task ``name`` at ``peak``: its last validation loss
        (:func:`healthy_val_loss`)."""
        return healthy_val_loss(make_task(self.specs, name, peak), seed)

    def peaks(self, path: Path | None = None) -> dict[str, Any]:
        """The grid of each task and its best rate, written to ``path`` (default
        :attr:`path`)."""
        return grid_peaks(self.specs, path or self.path)

    def main(self, doc: str) -> None:
        """The command line: ``--peaks`` computes and caches the healthy peaks."""
        ap = argparse.ArgumentParser(description=doc.split("\n")[0])
        ap.add_argument("--peaks", action="store_true", help="compute and cache the healthy peaks")
        if ap.parse_args().peaks:
            self.peaks()


FRESH = FreshSet("diagnose_fresh", SPECS, PEAKS)
names, diag_task, final_val_loss, peaks = (
    FRESH.names, FRESH.diag_task, FRESH.final_val_loss, FRESH.peaks
)  # fmt: skip

if __name__ == "__main__":
    FRESH.main(__doc__)
