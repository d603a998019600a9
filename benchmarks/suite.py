"""The benchmark suite behind ``benchmarks/oracle.py`` and ``benchmarks/tune_quality.py``: 13
small offline training tasks (each full run 0.2-2 s on one CPU thread), split into a
**development** half (range-test rules and search defaults are tuned on it) and an
**evaluation** half (only reported, never tuned on).

Every task is a :class:`lrkit.tune.Task`, so ``lrkit compare benchmarks/suite.py:wave_cnn`` runs
on it. Data: scikit-learn's bundled sets and generators, Python's own help text
(``pydoc_data.topics``), and synthetic sequences; nothing is downloaded.

========================  =====  =========================================  ==============
task                      half   model and data                             optimizer
========================  =====  =========================================  ==============
``digits_cnn_bn``         dev    CNN with BatchNorm, 8x8 digits             SGD+momentum
``deep_mlp``              dev    8-layer plain MLP, make_classification     SGD+momentum
``char_transformer``      dev    2-layer causal transformer, help text      AdamW
``gru_count``             dev    GRU counting a symbol in a sequence        Adam
``diabetes_mse``          dev    MLP regression (MSE), diabetes             SGD
``digits_autoencoder``    dev    MLP autoencoder (MSE), 8x8 digits          Adam
``logreg_cancer``         dev    logistic regression, breast cancer         SGD
``wave_cnn``              eval   1-D CNN, no normalisation, waveforms       SGD+momentum
``char_lstm``             eval   LSTM language model, help text             Adam
``wine_mlp``              eval   tiny tabular MLP, wine (178 rows)          AdamW
``friedman_mse``          eval   MLP regression (MSE), Friedman #1          SGD
``logreg_highdim``        eval   logistic regression, 100 features          SGD+momentum
``sort_transformer``      eval   transformer encoder sorting tokens         AdamW
========================  =====  =========================================  ==============
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from lrkit.tune import Task

Data = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class SuiteTask:
    """A task of the suite: its half (``"dev"`` or ``"eval"``), its optimizer family and how
    to make it."""

    name: str
    half: str
    optimizer: str
    make: Callable[[], Task]

    @property
    def grid_low(self) -> float:
        """The lowest rate of its oracle grid, by optimizer family (:data:`GRID_LOW`; the grid
        is ``grid_low * 2**k``, ``k = 0..11``, extended by ``benchmarks/oracle.py`` while a
        family's best rate sits at an edge)."""
        return GRID_LOW[self.optimizer]


# ---------------------------------------------------------------------------- helpers
def _split(x: np.ndarray, y: np.ndarray, val_frac: float, seed: int = 0) -> tuple[Data, Data]:
    perm = np.random.default_rng(seed).permutation(len(x))
    n_val = round(len(x) * val_frac)
    va, tr = perm[:n_val], perm[n_val:]
    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = torch.as_tensor(y)
    return (xt[tr], yt[tr]), (xt[va], yt[va])


def _standardise(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(0)) / (x.std(0) + 1e-8)


def _mlp(sizes: tuple[int, ...]) -> nn.Module:
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(sizes[:-1]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    return nn.Sequential(*layers)


def _sgd(params: Any, lr: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=lr)


def _momentum(params: Any, lr: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=lr, momentum=0.9)


def _adam(params: Any, lr: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=lr)


def _adamw(params: Any, lr: float) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=lr, weight_decay=0.01)


def _seq_ce(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over every position: ``out`` (N, T, C), ``y`` (N, T)."""
    return nn.functional.cross_entropy(out.flatten(0, 1), y.flatten())


def _mse(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.mse_loss(out, y)


# ---------------------------------------------------------------------------- data
@functools.lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data.astype(np.float32) / 16.0, d.target.astype(np.int64)


@functools.lru_cache(maxsize=2)
def _text(start: int, n_chars: int) -> np.ndarray:
    """Python's help text as character codes 0..95 (printable ASCII and newline)."""
    from pydoc_data.topics import topics

    text = "\n".join(topics[k] for k in sorted(topics))[start : start + n_chars]
    codes = np.frombuffer(text.encode("ascii", "replace"), dtype=np.uint8).astype(np.int64)
    codes = np.where(codes == 10, 127, codes)  # newline -> 127, then shift 32..127 -> 0..95
    return np.clip(codes, 32, 127) - 32


def _windows(codes: np.ndarray, context: int, n_val: int) -> tuple[Data, Data]:
    """Non-overlapping-start windows (stride ``context // 2``), next-character targets per
    position; the last ``n_val`` windows are validation."""
    w = np.lib.stride_tricks.sliding_window_view(codes, context + 1)[:: context // 2]
    x, y = torch.as_tensor(w[:, :-1].copy()), torch.as_tensor(w[:, 1:].copy())
    return (x[:-n_val], y[:-n_val]), (x[-n_val:], y[-n_val:])


VOCAB = 96


# ---------------------------------------------------------------------------- dev tasks
class _DigitsCNN(nn.Module):
    def __init__(self, norm: bool) -> None:
        super().__init__()
        bn: Callable[[int], nn.Module] = nn.BatchNorm2d if norm else (lambda _: nn.Identity())
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            bn(16),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            bn(32),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(32 * 16, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.view(-1, 1, 8, 8))


def digits_cnn_bn() -> Task:
    """8x8 digits, a 2-conv CNN with BatchNorm, SGD+momentum, batch 32, 150 steps."""
    x, y = _digits()
    train, val = _split(x, y, 0.25)
    return Task(
        "digits_cnn_bn",
        functools.partial(_DigitsCNN, True),
        _momentum,
        nn.functional.cross_entropy,
        train,
        val,
        batch_size=32,
        steps=150,
        accuracy=True,
    )


@functools.lru_cache(maxsize=1)
def _blobs() -> tuple[Data, Data]:
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=3000, n_features=20, n_informative=12, n_classes=4, random_state=1
    )
    return _split(_standardise(x), y.astype(np.int64), 0.25)


def deep_mlp() -> Task:
    """make_classification (3000 rows, 20 features, 4 classes), an 8-layer plain ReLU MLP of
    width 64 (no normalisation, no residuals), SGD+momentum, batch 64, 300 steps."""
    train, val = _blobs()
    return Task(
        "deep_mlp",
        functools.partial(_mlp, (20, *[64] * 7, 4)),
        _momentum,
        nn.functional.cross_entropy,
        train,
        val,
        batch_size=64,
        steps=300,
        accuracy=True,
    )


class _TinyTransformer(nn.Module):
    """Token embedding + learnt positions, ``layers`` pre-norm encoder layers (causal when
    asked), a linear head per position."""

    def __init__(
        self, vocab: int, length: int, dim: int, layers: int, causal: bool, n_out: int
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.randn(length, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(
            dim, 4, 2 * dim, dropout=0.0, batch_first=True, norm_first=True
        )
        self.body = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(dim, n_out)
        mask = nn.Transformer.generate_square_subsequent_mask(length) if causal else None
        self.register_buffer("mask", mask, persistent=False)
        self.causal = causal

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x) + self.pos[: x.shape[1]]
        mask = self.mask[: x.shape[1], : x.shape[1]] if self.causal else None
        return self.head(self.body(h, mask=mask, is_causal=self.causal))


@functools.lru_cache(maxsize=1)
def _char_transformer_data() -> tuple[Data, Data]:
    return _windows(_text(0, 60_000), 32, 128)


def char_transformer() -> Task:
    """Next-character prediction on Python's help text (first 60k characters, windows of 32,
    every position predicted), a 2-layer causal transformer (width 48), AdamW, batch 32,
    150 steps; per-token accuracy."""
    train, val = _char_transformer_data()
    return Task(
        "char_transformer",
        functools.partial(_TinyTransformer, VOCAB, 32, 48, 2, True, VOCAB),
        _adamw,
        _seq_ce,
        train,
        val,
        batch_size=32,
        steps=150,
        accuracy=True,
    )


class _GRUClassifier(nn.Module):
    def __init__(self, vocab: int, hidden: int, n_out: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, 16)
        self.rnn = nn.GRU(16, hidden, batch_first=True)
        self.head = nn.Linear(hidden, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h = self.rnn(self.embed(x))
        return self.head(h[-1])


@functools.lru_cache(maxsize=1)
def _count_data() -> tuple[Data, Data]:
    rng = np.random.default_rng(7)
    x = rng.integers(0, 6, size=(3000, 20))
    y = np.minimum((x == 0).sum(1), 6)  # how many zeros (0..6+): 7 classes
    return _split(x.astype(np.int64), y.astype(np.int64), 0.2)


def gru_count() -> Task:
    """Sequences of 20 symbols out of 6; the class is how many are 0 (capped at 6): a GRU
    (hidden 32) reads the sequence, Adam, batch 64, 200 steps."""
    train, val = _count_data()
    train = (train[0].long(), train[1])
    val = (val[0].long(), val[1])
    return Task(
        "gru_count",
        functools.partial(_GRUClassifier, 6, 32, 7),
        _adam,
        nn.functional.cross_entropy,
        train,
        val,
        batch_size=64,
        steps=200,
        accuracy=True,
    )


@functools.lru_cache(maxsize=1)
def _diabetes() -> tuple[Data, Data]:
    from sklearn.datasets import load_diabetes

    d = load_diabetes()
    y = _standardise(d.target.astype(np.float64))[:, None]
    return _split(_standardise(d.data), y.astype(np.float32), 0.25)


def diabetes_mse() -> Task:
    """scikit-learn's diabetes regression (442 rows, 10 features, standardised target), MLP
    10-64-64-1, MSE, plain SGD, batch 32, 300 steps."""
    train, val = _diabetes()
    return Task(
        "diabetes_mse",
        functools.partial(_mlp, (10, 64, 64, 1)),
        _sgd,
        _mse,
        train,
        val,
        batch_size=32,
        steps=300,
    )


def digits_autoencoder() -> Task:
    """8x8 digits reconstructed through a 12-unit bottleneck: MLP 64-48-12-48-64, MSE, Adam,
    batch 64, 300 steps."""
    x, _ = _digits()
    (xt, _), (xv, _) = _split(x, np.zeros(len(x), dtype=np.int64), 0.25)
    return Task(
        "digits_autoencoder",
        functools.partial(_mlp, (64, 48, 12, 48, 64)),
        _adam,
        _mse,
        (xt, xt),
        (xv, xv),
        batch_size=64,
        steps=300,
    )


@functools.lru_cache(maxsize=1)
def _cancer() -> tuple[Data, Data]:
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer()
    return _split(_standardise(d.data), d.target.astype(np.int64), 0.3)


def logreg_cancer() -> Task:
    """Logistic regression (a linear layer, a convex problem) on scikit-learn's breast cancer
    data (569 rows, 30 standardised features), plain SGD, batch 32, 200 steps."""
    train, val = _cancer()
    return Task(
        "logreg_cancer",
        functools.partial(nn.Linear, 30, 2),
        _sgd,
        nn.functional.cross_entropy,
        train,
        val,
        batch_size=32,
        steps=200,
        accuracy=True,
    )


# ---------------------------------------------------------------------------- eval tasks
@functools.lru_cache(maxsize=1)
def _waves() -> tuple[Data, Data]:
    rng = np.random.default_rng(11)
    n, length = 2400, 64
    kind = rng.integers(0, 4, size=n)
    cycles = rng.uniform(1.5, 5.0, size=(n, 1))
    phase = rng.uniform(0, 1, size=(n, 1))
    t = (np.arange(length)[None, :] / length) * cycles + phase
    frac = t % 1.0
    shapes = np.stack(
        [
            np.sin(2 * np.pi * t),
            np.where(frac < 0.5, 1.0, -1.0),
            4 * np.abs(frac - 0.5) - 1,
            2 * frac - 1,
        ]
    )
    x = shapes[kind, np.arange(n)] * rng.uniform(0.5, 2.0, size=(n, 1))
    x = x + rng.normal(0, 0.4, size=x.shape)
    return _split(x[:, None, :], kind.astype(np.int64), 0.25)


def _wave_cnn_model() -> nn.Module:
    return nn.Sequential(
        nn.Conv1d(1, 16, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool1d(2),
        nn.Conv1d(16, 32, 5, padding=2),
        nn.ReLU(),
        nn.AdaptiveAvgPool1d(1),
        nn.Flatten(),
        nn.Linear(32, 4),
    )


def wave_cnn() -> Task:
    """Noisy waveforms of length 64 (sine, square, triangle, sawtooth; random frequency, phase
    and amplitude), a 1-D CNN without normalisation, SGD+momentum, batch 32, 200 steps."""
    train, val = _waves()
    return Task(
        "wave_cnn",
        _wave_cnn_model,
        _momentum,
        nn.functional.cross_entropy,
        train,
        val,
        batch_size=32,
        steps=200,
        accuracy=True,
    )


class _CharLSTM(nn.Module):
    def __init__(self, vocab: int, hidden: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, 32)
        self.rnn = nn.LSTM(32, hidden, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(self.embed(x))[0])


@functools.lru_cache(maxsize=1)
def _char_lstm_data() -> tuple[Data, Data]:
    return _windows(_text(200_000, 60_000), 32, 128)


def char_lstm() -> Task:
    """Next-character prediction on another part of Python's help text (characters 200k-260k),
    an LSTM (hidden 96), Adam, batch 32, 150 steps; per-token accuracy."""
    train, val = _char_lstm_data()
    return Task(
        "char_lstm",
        functools.partial(_CharLSTM, VOCAB, 96),
        _adam,
        _seq_ce,
        train,
        val,
        batch_size=32,
        steps=150,
        accuracy=True,
    )


@functools.lru_cache(maxsize=1)
def _wine() -> tuple[Data, Data]:
    from sklearn.datasets import load_wine

    d = load_wine()
    return _split(_standardise(d.data), d.target.astype(np.int64), 0.3)


def wine_mlp() -> Task:
    """scikit-learn's wine data (178 rows, 13 features, 3 classes; tiny tabular), MLP 13-32-3,
    AdamW, batch 16, 150 steps."""
    train, val = _wine()
    return Task(
        "wine_mlp",
        functools.partial(_mlp, (13, 32, 3)),
        _adamw,
        nn.functional.cross_entropy,
        train,
        val,
        batch_size=16,
        steps=150,
        accuracy=True,
    )


@functools.lru_cache(maxsize=1)
def _friedman() -> tuple[Data, Data]:
    from sklearn.datasets import make_friedman1

    x, y = make_friedman1(n_samples=2000, n_features=10, noise=1.0, random_state=3)
    return _split(_standardise(x), _standardise(y)[:, None].astype(np.float32), 0.25)


def friedman_mse() -> Task:
    """Friedman #1 regression (2000 rows, 10 features, noise 1, standardised target), MLP
    10-64-64-1, MSE, plain SGD, batch 32, 300 steps."""
    train, val = _friedman()
    return Task(
        "friedman_mse",
        functools.partial(_mlp, (10, 64, 64, 1)),
        _sgd,
        _mse,
        train,
        val,
        batch_size=32,
        steps=300,
    )


@functools.lru_cache(maxsize=1)
def _highdim() -> tuple[Data, Data]:
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=2500,
        n_features=100,
        n_informative=30,
        n_classes=5,
        class_sep=0.8,
        random_state=5,
    )
    return _split(_standardise(x), y.astype(np.int64), 0.25)


def logreg_highdim() -> Task:
    """Multinomial logistic regression (convex) on make_classification (2500 rows, 100
    features, 5 classes), SGD+momentum, batch 32, 200 steps."""
    train, val = _highdim()
    return Task(
        "logreg_highdim",
        functools.partial(nn.Linear, 100, 5),
        _momentum,
        nn.functional.cross_entropy,
        train,
        val,
        batch_size=32,
        steps=200,
        accuracy=True,
    )


@functools.lru_cache(maxsize=1)
def _sort_data() -> tuple[Data, Data]:
    rng = np.random.default_rng(13)
    x = rng.integers(0, 16, size=(4000, 8))
    y = np.sort(x, axis=1)
    return _split(x.astype(np.int64), y.astype(np.int64), 0.1)


def sort_transformer() -> Task:
    """Sort 8 tokens out of 16: a 2-layer transformer encoder (width 32, not causal) outputs the
    sorted sequence position by position, AdamW, batch 64, 200 steps; per-token accuracy."""
    train, val = _sort_data()
    train = (train[0].long(), train[1])
    val = (val[0].long(), val[1])
    return Task(
        "sort_transformer",
        functools.partial(_TinyTransformer, 16, 8, 32, 2, False, 16),
        _adamw,
        _seq_ce,
        train,
        val,
        batch_size=64,
        steps=200,
        accuracy=True,
    )


# ---------------------------------------------------------------------------- the suite
#: The lowest rate of the oracle grid by optimizer family, fixed before any run.
GRID_LOW = {"SGD": 4e-3, "SGD+momentum": 1e-3, "Adam": 1e-4, "AdamW": 1e-4}

SUITE: dict[str, SuiteTask] = {
    s.name: s
    for s in (
        SuiteTask("digits_cnn_bn", "dev", "SGD+momentum", digits_cnn_bn),
        SuiteTask("deep_mlp", "dev", "SGD+momentum", deep_mlp),
        SuiteTask("char_transformer", "dev", "AdamW", char_transformer),
        SuiteTask("gru_count", "dev", "Adam", gru_count),
        SuiteTask("diabetes_mse", "dev", "SGD", diabetes_mse),
        SuiteTask("digits_autoencoder", "dev", "Adam", digits_autoencoder),
        SuiteTask("logreg_cancer", "dev", "SGD", logreg_cancer),
        SuiteTask("wave_cnn", "eval", "SGD+momentum", wave_cnn),
        SuiteTask("char_lstm", "eval", "Adam", char_lstm),
        SuiteTask("wine_mlp", "eval", "AdamW", wine_mlp),
        SuiteTask("friedman_mse", "eval", "SGD", friedman_mse),
        SuiteTask("logreg_highdim", "eval", "SGD+momentum", logreg_highdim),
        SuiteTask("sort_transformer", "eval", "AdamW", sort_transformer),
    )
}


def half(name: str) -> list[str]:
    """The task names of one half, ``"dev"`` or ``"eval"``, in suite order."""
    return [t.name for t in SUITE.values() if t.half == name]
