"""The fresh evaluation tasks of ``benchmarks/diagnose_accuracy.py`` (round 5): 8 small offline
tasks whose data and models appear nowhere else in lrkit (not in ``diagnose_tasks.py``,
``diagnose_fresh.py``, ``diagnose_fresh4.py``, ``suite.py``, ``finetune.py`` or ``lrkit.tune``).
No detector threshold was chosen on them, and no pathology was run on them before their peaks
were fixed.

=====================  =========================================================  ============
task                   data, model                                                optimizer
=====================  =========================================================  ============
``friedman2-dense``    make_friedman2 (3000 rows), MLP with dense skip            SGD+momentum
                       connections (each layer sees all earlier outputs), MSE
``scurve-silu``        make_s_curve: the curve position t from the 3-D point,     Adam
                       SiLU MLP, MSE
``blobs-wide``         make_blobs (8000 rows, 20-D, 10 overlapping classes), one  SGD
                       wide hidden layer (512)
``checker-siren``      4x4 checkerboard on the square, 5% labels flipped,         AdamW
                       sine-activation MLP (SIREN initialisation)
``bothsides-bigru``    tag each token of 12 (6 symbols) whose symbol occurs       Adam
                       both before and after it, bidirectional GRU
``fractions-mlm``      masked characters in 8-character windows of the            AdamW
                       ``fractions`` module's source, 1-layer post-LayerNorm
                       transformer encoder (not causal), learnt positions
``events-attn``        64-sample noisy signals holding one event (spike, bump,    SGD+momentum
                       step, burst), 1-D convolution + BatchNorm, additive
                       attention pooling
``polycurve-huber``    16-point cubic curves with noise and outliers: denoise,    SGD
                       ELU MLP, Huber loss summed over a curve's points
=====================  =========================================================  ============

The rules are round 3's (``benchmarks/diagnose_fresh.py``, whose machinery this file reuses):
the peak is the best final validation loss of warmup (5%) + cosine to 0 over a grid of 10 rates
a factor 2 apart from ``suite.GRID_LOW`` of the optimizer, extended upward while the best is
the top rate (14 at most), seed 0; computed by ``python benchmarks/diagnose_fresh5.py --peaks``
and cached in ``benchmarks/data/diagnose_fresh5_peaks.json``. The layer of the layer cases is
the first module owning a ``weight``; the ``no_warmup`` case applies to ``fractions-mlm``.

A causal post-LayerNorm character transformer with learnt positions, first suggested for the
``fractions`` source, is already ``diagnose_tasks.CharTransformer``; ``fractions-mlm`` predicts
masked characters from both sides instead. Sine/square waveforms are the suite's ``wave_cnn``
data; ``events-attn`` classifies a localised event instead of a waveform.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import torch
from diagnose_fresh import FreshSet, Spec, _mlp, _seq_ce
from diagnose_tasks import VOCAB, Data, _chars, _standard
from diagnose_tasks import _split as _seeded_split
from torch import nn

PEAKS = Path(__file__).resolve().parent / "data" / "diagnose_fresh5_peaks.json"


def _split(x: np.ndarray, y: np.ndarray, frac: float = 0.25) -> tuple[Data, Data]:
    """``diagnose_tasks``' split with this file's seed, 7."""
    return _seeded_split(x, y, seed=7, frac=frac)


# ---------------------------------------------------------------------------- data
@functools.cache
def _friedman2() -> tuple[Data, Data]:
    from sklearn.datasets import make_friedman2

    x, y = make_friedman2(3000, noise=30.0, random_state=31)
    y = (y - y.mean()) / y.std()
    return _split(_standard(x), y.astype(np.float32)[:, None])


@functools.cache
def _scurve() -> tuple[Data, Data]:
    from sklearn.datasets import make_s_curve

    x, t = make_s_curve(3000, noise=0.1, random_state=32)
    t = (t - t.mean()) / t.std()
    return _split(_standard(x), t.astype(np.float32)[:, None])


@functools.cache
def _blobs() -> tuple[Data, Data]:
    from sklearn.datasets import make_blobs

    x, y = make_blobs(8000, n_features=20, centers=10, cluster_std=11.0, random_state=33)
    return _split(_standard(x), y.astype(np.int64))


@functools.cache
def _checker() -> tuple[Data, Data]:
    rng = np.random.default_rng(34)
    n, cells = 4000, 4
    x = rng.uniform(-1.0, 1.0, size=(n, 2))
    cell = np.floor((x + 1.0) / 2.0 * cells).astype(np.int64)
    y = (cell.sum(1) % 2) ^ (rng.random(n) < 0.05)
    return _split(x.astype(np.float32), y.astype(np.int64))


@functools.cache
def _both_sides() -> tuple[Data, Data]:
    """Sequences of 12 tokens of 6 symbols; a token is tagged when its symbol occurs both
    earlier and later in the sequence."""
    rng = np.random.default_rng(35)
    x = rng.integers(0, 6, size=(4000, 12))
    onehot = np.eye(6, dtype=np.int64)[x]  # (rows, positions, symbols)
    before = np.cumsum(onehot, 1) - onehot
    after = np.cumsum(onehot[:, ::-1], 1)[:, ::-1] - onehot
    seen_before = np.take_along_axis(before, x[..., None], 2)[..., 0] > 0
    seen_after = np.take_along_axis(after, x[..., None], 2)[..., 0] > 0
    return _split(x.astype(np.int64), (seen_before & seen_after).astype(np.int64))


MASK = VOCAB  # the masked-character symbol, after the VOCAB characters of ``_chars``


@functools.cache
def _fractions_masked() -> tuple[Data, Data]:
    """Windows of 8 characters of ``fractions``' source, each character replaced by ``MASK``
    with probability 0.15 (at least one per window); the target is the character where masked,
    -100 (ignored by the loss) elsewhere."""
    import fractions

    (xt, _), (xv, _) = _chars(inspect.getsource(fractions), 8)
    rng = np.random.default_rng(36)
    out = []
    for x in (xt, xv):
        masked = rng.random(tuple(x.shape)) < 0.15
        masked[np.arange(len(x)), rng.integers(0, x.shape[1], len(x))] = True
        m = torch.as_tensor(masked)
        out.append((x.masked_fill(m, MASK), x.masked_fill(~m, -100)))
    return out[0], out[1]


def _event(kind: int, length: int, where: int, rng: np.random.Generator) -> np.ndarray:
    """One event at ``where``: a spike, a wide bump, a step, or a burst of oscillation
    (the caller picks the sign)."""
    k = np.arange(length) - where
    if kind == 0:
        return 3.0 * np.exp(-0.5 * k**2)
    if kind == 1:
        return 1.5 * np.exp(-0.5 * (k / 5.0) ** 2)
    if kind == 2:
        return 1.2 * (k >= 0)
    phase = rng.uniform(0, 2 * np.pi)
    return 1.5 * np.sin(2 * np.pi * 0.3 * k + phase) * np.exp(-0.5 * (k / 3.0) ** 2)


@functools.cache
def _events() -> tuple[Data, Data]:
    rng = np.random.default_rng(37)
    n, length = 3000, 64
    kind = rng.integers(0, 4, size=n)
    x = rng.normal(0.0, 0.5, size=(n, length)) + rng.normal(0.0, 0.3, size=(n, 1))
    for i in range(n):
        amp = rng.uniform(0.7, 1.3) * rng.choice([-1.0, 1.0])
        x[i] += amp * _event(int(kind[i]), length, int(rng.integers(8, length - 8)), rng)
    return _split(x[:, None, :].astype(np.float32), kind.astype(np.int64))


@functools.cache
def _polycurves() -> tuple[Data, Data]:
    rng = np.random.default_rng(38)
    n, points = 4000, 16
    t = np.linspace(-1.0, 1.0, points)
    coef = rng.normal(0.0, 1.0, size=(n, 4))
    clean = coef @ np.vander(t, 4, increasing=True).T
    noisy = clean + rng.normal(0.0, 0.3, size=clean.shape)
    outliers = rng.random(clean.shape) < 0.05
    noisy = noisy + outliers * rng.normal(0.0, 3.0, size=clean.shape)
    scale = clean.std()
    return _split((noisy / scale).astype(np.float32), (clean / scale).astype(np.float32))


# ---------------------------------------------------------------------------- models
class DenseMLP(nn.Module):
    """Each hidden layer sees the input and every earlier hidden output, concatenated
    (DenseNet's connectivity in an MLP; Huang et al., 2017); a linear head on all of them."""

    def __init__(self, n_in: int = 4, width: int = 32, depth: int = 3, n_out: int = 1) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(n_in + k * width, width) for k in range(depth))
        self.head = nn.Linear(n_in + depth * width, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The regression output."""
        for layer in self.layers:
            x = torch.cat([x, torch.relu(layer(x))], 1)
        return self.head(x)


class Siren(nn.Module):
    """Linear layers with ``sin(w0 * .)`` between them and SIREN's initialisation
    (Sitzmann et al., 2020): the first layer uniform in +-1/fan_in, the others in
    +-sqrt(6 / fan_in) / w0."""

    def __init__(self, sizes: tuple[int, ...] = (2, 64, 64, 2), w0: float = 6.0) -> None:
        super().__init__()
        self.w0 = w0
        layers = [nn.Linear(a, b) for a, b in itertools.pairwise(sizes)]
        with torch.no_grad():
            for k, layer in enumerate(layers):
                bound = 1 / sizes[0] if k == 0 else math.sqrt(6 / layer.in_features) / w0
                layer.weight.uniform_(-bound, bound)
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits."""
        for layer in self.layers[:-1]:
            x = torch.sin(self.w0 * layer(x))
        return self.layers[-1](x)


class BiGRUTagger(nn.Module):
    """Embedding, one bidirectional GRU layer, a linear head on both directions at every
    position."""

    def __init__(self, vocab: int = 6, dim: int = 8, hidden: int = 32) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.rnn = nn.GRU(dim, hidden, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Tag logits at every position."""
        return self.head(self.rnn(self.embed(x))[0])


class MaskedCharEncoder(nn.Module):
    """Character and position embeddings (``nn.Embedding`` both), one post-LayerNorm encoder
    layer with GELU that sees the whole window, a head over the characters."""

    def __init__(self, context: int = 8, dim: int = 64) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB + 1, dim)
        self.pos = nn.Embedding(context, dim)
        layer = nn.TransformerEncoderLayer(
            dim, 4, 2 * dim, dropout=0.0, activation="gelu", batch_first=True, norm_first=False
        )
        self.body = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.head = nn.Linear(dim, VOCAB)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Character logits at every position."""
        pos = self.pos(torch.arange(x.shape[1], device=x.device))
        return self.head(self.body(self.embed(x) + pos))


class EventAttention(nn.Module):
    """A 1-D convolution, BatchNorm and ReLU give features at every sample; additive attention
    (Bahdanau et al., 2015: ``v . tanh(W h)``) weighs the samples; a linear head on the
    weighted sum."""

    def __init__(self, channels: int = 24, n_out: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, channels, 7, padding=3)
        self.norm = nn.BatchNorm1d(channels)
        self.score = nn.Sequential(nn.Linear(channels, 16), nn.Tanh(), nn.Linear(16, 1))
        self.head = nn.Linear(channels, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the event kind of ``x`` (batch, 1, length)."""
        h = torch.relu(self.norm(self.conv(x))).transpose(1, 2)
        weights = torch.softmax(self.score(h), dim=1)
        return self.head((weights * h).sum(1))


def _huber_per_curve(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The Huber loss (``smooth_l1_loss``, beta 1) summed over a curve's points, averaged over
    the curves."""
    return nn.functional.smooth_l1_loss(out, y, reduction="sum") / len(y)


_ce = nn.functional.cross_entropy
_mse = nn.functional.mse_loss

SPECS: dict[str, Spec] = {
    "friedman2-dense": (_friedman2, DenseMLP, "SGD+momentum", _mse, 300, 32),
    "scurve-silu": (
        _scurve,
        functools.partial(_mlp, (3, 64, 64, 1), nn.SiLU),
        "Adam",
        _mse,
        300,
        32,
    ),
    "blobs-wide": (_blobs, functools.partial(_mlp, (20, 512, 10)), "SGD", _ce, 400, 64),
    "checker-siren": (_checker, Siren, "AdamW", _ce, 400, 32),
    "bothsides-bigru": (_both_sides, BiGRUTagger, "Adam", _seq_ce, 300, 32),
    "fractions-mlm": (_fractions_masked, MaskedCharEncoder, "AdamW", _seq_ce, 500, 64),
    "events-attn": (_events, EventAttention, "SGD+momentum", _ce, 300, 32),
    "polycurve-huber": (
        _polycurves,
        functools.partial(_mlp, (16, 64, 64, 16), nn.ELU),
        "SGD",
        _huber_per_curve,
        500,
        64,
    ),
}


FRESH = FreshSet("diagnose_fresh5", SPECS, PEAKS)
names, diag_task, final_val_loss, peaks = (
    FRESH.names, FRESH.diag_task, FRESH.final_val_loss, FRESH.peaks
)  # fmt: skip

if __name__ == "__main__":
    FRESH.main(__doc__)
