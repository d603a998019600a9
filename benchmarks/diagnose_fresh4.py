"""The fresh evaluation tasks of ``benchmarks/diagnose_accuracy.py`` (round 4): 8 small offline
tasks whose data and models appear nowhere else in lrkit (not in ``diagnose_tasks.py``,
``diagnose_fresh.py``, ``suite.py`` or ``lrkit.tune``). No detector threshold was chosen on
them, and no pathology was run on them before their peaks were fixed.

====================  ==========================================================  ============
task                  data, model                                                 optimizer
====================  ==========================================================  ============
``hastie-mlp``        make_hastie_10_2 (3000 rows), 10-64-64-2 ReLU MLP           SGD
``quantiles-mlp``     make_gaussian_quantiles (3 classes, 6 features), LayerNorm  AdamW
                      + GELU MLP
``swissroll-reg``     make_swiss_roll: the roll position t from the 3-D point,    SGD+momentum
                      tanh MLP, MSE
``multilabel-mlp``    make_multilabel_classification (40 features, 6 labels),     Adam
                      MLP with dropout, binary cross-entropy per label
``shapes-cnn``        12x12 noisy images of bars, crosses, boxes, corners, 2-D    SGD+momentum
                      CNN with max pooling
``parens-tf``         is a string of 20 parentheses balanced, 2-layer causal      AdamW
                      pre-LayerNorm transformer encoder, mean pooling
``textwrap-tcn``      next character of the ``textwrap`` module's source, causal  Adam
                      dilated 1-D convolutions
``ratings-mf``        noisy rank-4 rating matrix (300 users x 200 items), user    Adam
                      and item embeddings, dot product + biases, MSE
====================  ==========================================================  ============

The rules are round 3's (``benchmarks/diagnose_fresh.py``, whose machinery this file reuses):
the peak is the best final validation loss of warmup (5%) + cosine to 0 over a grid of 10 rates
a factor 2 apart from ``suite.GRID_LOW`` of the optimizer, extended upward while the best is
the top rate (14 at most), seed 0; computed by ``python benchmarks/diagnose_fresh4.py --peaks``
and cached in ``benchmarks/data/diagnose_fresh4_peaks.json``. The layer of the layer cases is
the first module owning a ``weight``; the ``no_warmup`` case applies to ``parens-tf``.

make_classification, first suggested for the dropout MLP, is already the data of two suite
tasks (``deep_mlp``, ``logreg_highdim``); ``multilabel-mlp`` uses its multi-label sibling.
"""

from __future__ import annotations

import functools
import inspect
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import torch
from diagnose_fresh import FreshSet, Spec, _mlp, _seq_ce
from diagnose_tasks import VOCAB, Data, _chars, _standard
from diagnose_tasks import _split as _seeded_split
from torch import nn

PEAKS = Path(__file__).resolve().parent / "data" / "diagnose_fresh4_peaks.json"


def _split(x: np.ndarray, y: np.ndarray, frac: float = 0.25) -> tuple[Data, Data]:
    """``diagnose_tasks``' split with this file's seed, 6."""
    return _seeded_split(x, y, seed=6, frac=frac)


# ---------------------------------------------------------------------------- data
@functools.cache
def _hastie() -> tuple[Data, Data]:
    from sklearn.datasets import make_hastie_10_2

    x, y = make_hastie_10_2(3000, random_state=21)  # y = 1 where sum(x**2) > 9.34, else -1
    return _split(_standard(x), (y > 0).astype(np.int64))


@functools.cache
def _quantiles() -> tuple[Data, Data]:
    from sklearn.datasets import make_gaussian_quantiles

    x, y = make_gaussian_quantiles(n_samples=3000, n_features=6, n_classes=3, random_state=22)
    return _split(_standard(x), y.astype(np.int64))


@functools.cache
def _swissroll() -> tuple[Data, Data]:
    from sklearn.datasets import make_swiss_roll

    x, t = make_swiss_roll(3000, noise=0.3, random_state=23)
    t = (t - t.mean()) / t.std()
    return _split(_standard(x), t.astype(np.float32)[:, None])


@functools.cache
def _multilabel() -> tuple[Data, Data]:
    from sklearn.datasets import make_multilabel_classification

    x, y = make_multilabel_classification(
        3000, n_features=40, n_classes=6, n_labels=2, random_state=24
    )
    return _split(_standard(x), y.astype(np.float32))


def _shape(kind: int, size: int) -> np.ndarray:
    """A ``size`` x ``size`` stroke drawing: horizontal bar, vertical bar, cross, box, corner."""
    img = np.zeros((size, size))
    mid = size // 2
    if kind in (0, 2):
        img[mid, :] = 1.0
    if kind in (1, 2):
        img[:, mid] = 1.0
    if kind == 3:
        img[[0, -1], :] = img[:, [0, -1]] = 1.0
    if kind == 4:
        img[0, :] = img[:, 0] = 1.0
    return img


@functools.cache
def _shapes() -> tuple[Data, Data]:
    rng = np.random.default_rng(25)
    n, side = 3000, 12
    kind = rng.integers(0, 5, size=n)
    x = rng.normal(0.0, 0.5, size=(n, 1, side, side))
    for i in range(n):
        size = int(rng.integers(4, 8))
        r, c = rng.integers(0, side - size + 1, size=2)
        x[i, 0, r : r + size, c : c + size] += rng.uniform(0.7, 1.3) * _shape(kind[i], size)
    return _split(x.astype(np.float32), kind.astype(np.int64))


def _balanced(x: np.ndarray) -> np.ndarray:
    """Whether each row of ``x`` (0 ``(``, 1 ``)``) is a balanced string of parentheses."""
    depth = np.cumsum(1 - 2 * x, axis=-1)
    return (depth.min(-1) >= 0) & (depth[..., -1] == 0)


def _dyck(rng: np.random.Generator, length: int) -> np.ndarray:
    """A random balanced string of ``length`` parentheses: open at depth 0, close when the
    rest is needed to close, else a fair coin."""
    out, depth = [], 0
    for k in range(length):
        opens = depth == 0 or (depth + 1 < length - k and rng.random() < 0.5)
        out.append(0 if opens else 1)
        depth += 1 if opens else -1
    return np.array(out)


@functools.cache
def _parens() -> tuple[Data, Data]:
    """4000 distinct strings of 20 parentheses, 2000 balanced; the others are a balanced string
    with one symbol flipped (the counts differ) or a shuffle of 10 ``(`` and 10 ``)`` that is
    not balanced (the counts agree, a prefix closes more than it opened)."""
    rng = np.random.default_rng(26)
    n, length = 4000, 20
    rows: dict[bytes, tuple[np.ndarray, int]] = {}
    while len(rows) < n:
        x, y = _dyck(rng, length), int(len(rows) < n // 2)  # the balanced half first
        if not y and rng.random() < 0.5:
            x[rng.integers(length)] ^= 1
        while not y and _balanced(x):
            x = rng.permutation(x)
        rows.setdefault(x.tobytes(), (x, y))
    xs, ys = zip(*rows.values(), strict=True)
    return _split(np.stack(xs).astype(np.int64), np.array(ys, dtype=np.int64))


@functools.cache
def _textwrap_src() -> tuple[Data, Data]:
    import textwrap

    return _chars(inspect.getsource(textwrap), 32)


@functools.cache
def _ratings() -> tuple[Data, Data]:
    rng = np.random.default_rng(27)
    users, items, rank, n = 300, 200, 4, 12000
    u, v = rng.normal(size=(users, rank)), rng.normal(size=(items, rank))
    bu, bi = rng.normal(0, 0.5, users), rng.normal(0, 0.5, items)
    pairs = np.stack([rng.integers(0, users, n), rng.integers(0, items, n)], 1)
    r = (u[pairs[:, 0]] * v[pairs[:, 1]]).sum(1) / np.sqrt(rank) + bu[pairs[:, 0]]
    r = r + bi[pairs[:, 1]] + rng.normal(0, 0.3, n)
    return _split(pairs.astype(np.int64), ((r - r.mean()) / r.std()).astype(np.float32), 0.2)


# ---------------------------------------------------------------------------- models
def _shapes_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 12, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(12, 24, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveMaxPool2d(1),
        nn.Flatten(),
        nn.Linear(24, 5),
    )


class ParenEncoder(nn.Module):
    """Token embedding + learnt positions, 2 causal pre-LayerNorm encoder layers with a final
    norm (each position sees its prefix, whose depth it can count), the mean over positions, a
    linear head."""

    def __init__(self, length: int = 20, dim: int = 32) -> None:
        super().__init__()
        self.embed = nn.Embedding(2, dim)
        self.pos = nn.Parameter(torch.randn(length, dim) * 0.1)
        layer = nn.TransformerEncoderLayer(
            dim, 4, 64, dropout=0.0, batch_first=True, norm_first=True
        )
        self.body = nn.TransformerEncoder(layer, 2, nn.LayerNorm(dim), enable_nested_tensor=False)
        self.head = nn.Linear(dim, 2)
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(length))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of balanced or not."""
        h = self.body(self.embed(x) + self.pos, mask=self.mask, is_causal=True)
        return self.head(h.mean(1))


class CausalTCN(nn.Module):
    """Embedding, residual blocks of causal 1-D convolutions (kernel 2, dilation 1, 2, 4, 8:
    each position sees the 16 characters up to itself), a 1x1 convolution head."""

    def __init__(
        self, vocab: int = VOCAB, dim: int = 48, dilations: tuple[int, ...] = (1, 2, 4, 8)
    ):
        super().__init__()
        self.dilations = dilations
        self.embed = nn.Embedding(vocab, dim)
        self.convs = nn.ModuleList(nn.Conv1d(dim, dim, 2, dilation=d) for d in dilations)
        self.head = nn.Conv1d(dim, vocab, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Next-character logits at every position of ``x`` (batch, length)."""
        h = self.embed(x).transpose(1, 2)
        for d, conv in zip(self.dilations, self.convs, strict=True):
            h = h + torch.relu(conv(nn.functional.pad(h, (d, 0))))
        return self.head(h).transpose(1, 2)


class MatrixFactorisation(nn.Module):
    """Rating of (user, item): the dot product of their embeddings plus a bias of each."""

    def __init__(self, users: int = 300, items: int = 200, dim: int = 8) -> None:
        super().__init__()
        self.user = nn.Embedding(users, dim)
        self.item = nn.Embedding(items, dim)
        self.user_bias = nn.Embedding(users, 1)
        self.item_bias = nn.Embedding(items, 1)
        for e in (self.user, self.item):
            nn.init.normal_(e.weight, 0.0, 0.3)
        for e in (self.user_bias, self.item_bias):
            nn.init.zeros_(e.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Ratings of the (user, item) rows of ``x``."""
        u, i = x[:, 0], x[:, 1]
        dot = (self.user(u) * self.item(i)).sum(1)
        return dot + self.user_bias(u)[:, 0] + self.item_bias(i)[:, 0]


_ce = nn.functional.cross_entropy
_mse = nn.functional.mse_loss

SPECS: dict[str, Spec] = {
    "hastie-mlp": (_hastie, functools.partial(_mlp, (10, 64, 64, 2)), "SGD", _ce, 400, 32),
    "quantiles-mlp": (
        _quantiles,
        functools.partial(_mlp, (6, 64, 64, 3), nn.GELU, norm=True),
        "AdamW",
        _ce,
        300,
        32,
    ),
    "swissroll-reg": (
        _swissroll,
        functools.partial(_mlp, (3, 64, 64, 1), nn.Tanh),
        "SGD+momentum",
        _mse,
        300,
        32,
    ),
    "multilabel-mlp": (
        _multilabel,
        functools.partial(_mlp, (40, 128, 128, 6), dropout=0.2),
        "Adam",
        nn.functional.binary_cross_entropy_with_logits,
        300,
        32,
    ),
    "shapes-cnn": (_shapes, _shapes_cnn, "SGD+momentum", _ce, 300, 32),
    "parens-tf": (_parens, ParenEncoder, "AdamW", _ce, 300, 32),
    "textwrap-tcn": (_textwrap_src, CausalTCN, "Adam", _seq_ce, 300, 16),
    "ratings-mf": (_ratings, MatrixFactorisation, "Adam", _mse, 400, 64),
}


FRESH = FreshSet("diagnose_fresh4", SPECS, PEAKS)
names, diag_task, final_val_loss, peaks = (
    FRESH.names, FRESH.diag_task, FRESH.final_val_loss, FRESH.peaks
)  # fmt: skip

if __name__ == "__main__":
    FRESH.main(__doc__)
