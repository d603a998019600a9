"""Small offline training tasks for ``benchmarks/diagnose_accuracy.py`` (each run: seconds on
one CPU thread). Round 1 split them into a development half (the detectors' thresholds were
tuned on it) and an evaluation half (reported once); since round 2 all 8 are development, and
the evaluation tasks come from ``benchmarks/diagnose_suite.py``.

Development: ``digits-mlp`` (scikit-learn digits, MLP, SGD+momentum), ``mnist1d-mlp`` (MNIST-1D,
MLP, AdamW), ``friedman-mlp`` (Friedman #1 regression, MSE, SGD+momentum), ``pysrc-transformer``
(a 2-layer character transformer on Python's own ``argparse`` source, AdamW).
Round 1's evaluation half: ``cancer-mlp`` (breast cancer, MLP, Adam), ``digits-cnn`` (a small CNN on the 8x8
digits, SGD+momentum), ``pysrc-lstm`` (a character LSTM on Python's ``difflib`` source, AdamW),
``topics-transformer`` (a 1-layer character transformer on Python's help text, AdamW).
"""

from __future__ import annotations

import functools
import inspect
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

Data = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class DiagTask:
    """One task: data, model, optimizer, and the peak rate of its healthy run (the best final
    validation loss of peaks 0.3x, 1x, 3x, 10x a first guess, warmup + cosine, seed 0)."""

    name: str
    half: str  # "dev" or "eval"
    data: Callable[[], tuple[Data, Data]]
    model: Callable[[], nn.Module]
    optimizer: Callable[[Any, float], torch.optim.Optimizer]
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    peak: float
    steps: int = 300
    batch: int = 32
    layer: str | None = "0"  # the module whose rate multiplier is injected (None: no case)
    transformer: bool = False


def _split(x: np.ndarray, y: np.ndarray, seed: int = 0, frac: float = 0.25) -> tuple[Data, Data]:
    perm = np.random.default_rng(seed).permutation(len(x))
    n = round(len(x) * frac)
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    return (xt[perm[n:]], yt[perm[n:]]), (xt[perm[:n]], yt[perm[:n]])


def _standard(x: np.ndarray) -> np.ndarray:
    return ((x - x.mean(0)) / (x.std(0) + 1e-8)).astype(np.float32)


def batch_indices(n: int, batch: int, seed: int) -> Iterator[torch.Tensor]:
    """Endless mini-batches of row indices over ``n`` rows: consecutive slices of a shuffle,
    reshuffled when the next slice would run past the end; the order depends only on
    ``seed``."""
    gen = torch.Generator().manual_seed(1000 + seed)
    while True:
        perm = torch.randperm(n, generator=gen)
        for pos in range(0, max(n - batch, 0) + 1, batch):
            yield perm[pos : pos + batch]


@functools.cache
def _digits() -> tuple[Data, Data]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return _split((d.data / 16.0).astype(np.float32), d.target.astype(np.int64))


@functools.cache
def _digits_img() -> tuple[Data, Data]:
    (xt, yt), (xv, yv) = _digits()
    return (xt.reshape(-1, 1, 8, 8), yt), (xv.reshape(-1, 1, 8, 8), yv)


@functools.cache
def _mnist1d() -> tuple[Data, Data]:
    from lrkit.tune.tasks import load_task

    t = load_task("mnist1d")
    return t.train, t.val


@functools.cache
def _friedman() -> tuple[Data, Data]:
    from sklearn.datasets import make_friedman1

    x, y = make_friedman1(n_samples=3000, n_features=10, noise=0.5, random_state=0)
    y = (y - y.mean()) / y.std()
    return _split(x.astype(np.float32), y.astype(np.float32)[:, None])


@functools.cache
def _cancer() -> tuple[Data, Data]:
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer()
    return _split(_standard(d.data), d.target.astype(np.int64))


def _chars(text: str, context: int, limit: int = 60_000) -> tuple[Data, Data]:
    codes = np.frombuffer(text[:limit].encode("ascii", "replace"), dtype=np.uint8).astype(np.int64)
    codes = np.clip(codes, 9, 127) - 9
    win = np.lib.stride_tricks.sliding_window_view(codes, context + 1)[::3]
    x, y = torch.as_tensor(win[:, :-1].copy()), torch.as_tensor(win[:, 1:].copy())
    n = len(x) // 10
    return (x[:-n], y[:-n]), (x[-n:], y[-n:])


@functools.cache
def _argparse_src() -> tuple[Data, Data]:
    import argparse

    return _chars(inspect.getsource(argparse), 16)


@functools.cache
def _difflib_src() -> tuple[Data, Data]:
    import difflib

    return _chars(inspect.getsource(difflib), 16)


@functools.cache
def _topics() -> tuple[Data, Data]:
    from pydoc_data.topics import topics

    return _chars("\n".join(topics[k] for k in sorted(topics)), 16)


VOCAB = 119


def _seq_ce(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))


class CharTransformer(nn.Module):
    """A causal character transformer: embedding + positions, ``layers`` encoder blocks, head."""

    def __init__(self, dim: int = 32, layers: int = 2, heads: int = 2, context: int = 16):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, dim)
        self.pos = nn.Parameter(torch.zeros(context, dim))
        block = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.0, batch_first=True)
        self.blocks = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.head = nn.Linear(dim, VOCAB)
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(context))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Next-character logits at every position of ``x`` (batch, context)."""
        h = self.embed(x) + self.pos[: x.shape[1]]
        return self.head(self.blocks(h, mask=self.mask, is_causal=True))


class CharLSTM(nn.Module):
    """Embedding, one LSTM layer, a linear head over the next character at every position."""

    def __init__(self, dim: int = 16, hidden: int = 48):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, dim)
        self.lstm = nn.LSTM(dim, hidden, batch_first=True)
        self.head = nn.Linear(hidden, VOCAB)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Next-character logits at every position."""
        return self.head(self.lstm(self.embed(x))[0])


def _mlp(*sizes: int) -> Callable[[], nn.Module]:
    def make() -> nn.Module:
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(sizes[:-1]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        return nn.Sequential(*layers, nn.Linear(sizes[-2], sizes[-1]))

    return make


def _cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(128, 10),
    )


def _sgd(params: Any, lr: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=lr, momentum=0.9)


def _adamw(params: Any, lr: float) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=lr, weight_decay=0.01)


def _adam(params: Any, lr: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=lr)


_ce = nn.functional.cross_entropy

TASKS = (
    DiagTask("digits-mlp", "dev", _digits, _mlp(64, 128, 10), _sgd, _ce, 0.3, layer="0"),
    DiagTask(
        "mnist1d-mlp", "dev", _mnist1d, _mlp(40, 128, 128, 10), _adamw, _ce, 9e-3, 400, 64, "2"
    ),
    DiagTask(
        "friedman-mlp", "dev", _friedman, _mlp(10, 64, 64, 1), _sgd, nn.functional.mse_loss, 0.06
    ),
    DiagTask(
        "pysrc-transformer",
        "dev",
        _argparse_src,
        CharTransformer,
        _adamw,
        _seq_ce,
        9e-3,
        300,
        16,
        "head",
        True,
    ),
    DiagTask("cancer-mlp", "dev", _cancer, _mlp(30, 64, 2), _adam, _ce, 9e-3, layer="2"),
    DiagTask("digits-cnn", "dev", _digits_img, _cnn, _sgd, _ce, 0.15, layer="2"),
    DiagTask("pysrc-lstm", "dev", _difflib_src, CharLSTM, _adamw, _seq_ce, 0.1, 300, 16, "head"),
    DiagTask(
        "topics-transformer",
        "dev",
        _topics,
        functools.partial(CharTransformer, 48, 1, 4),
        _adamw,
        _seq_ce,
        9e-3,
        300,
        16,
        "embed",
        True,
    ),
)
BY_NAME = {t.name: t for t in TASKS}
