"""Built-in training tasks for ``lrkit find`` / ``lrkit compare``, and the plug-in protocol.

A task is a small, complete training problem: a model factory, an optimizer factory, a loss and
train/validation data. Built-in (all offline, CPU, seconds):

* ``digits`` (default): scikit-learn's 8x8 handwritten digits, an MLP, SGD with momentum.
* ``mnist1d``: the MNIST-1D data set (Greydanus, 2020) generated offline by the ``mnist1d``
  package, an MLP, AdamW.
* ``charlm``: a character-level language model (an MLP over a 16-character window, Bengio et
  al., 2003) on the English help text shipped with Python (``pydoc_data.topics``), AdamW.

A user's task is ``"module:function"`` (or ``"path/to/file.py:function"``); the function takes no
argument and returns a :class:`Task` or a dict with the same keys:

* ``model``: ``() -> nn.Module`` (called after ``torch.manual_seed(seed)``, so equal seeds give
  equal initialisations);
* ``optimizer``: ``(params, lr) -> Optimizer``;
* ``loss``: ``(outputs, targets) -> scalar tensor``;
* ``train``, ``val``: ``(inputs, targets)`` tensor pairs (whole data in memory);
* optional: ``name``, ``batch_size`` (64), ``steps`` (the default budget, 300), ``accuracy``
  (report classification accuracy, False), ``eval_every`` (steps between validations),
  ``device`` (where its trials run, e.g. ``"cuda:1"``; default: ``compare``'s ``device``).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import itertools
import random
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lrkit.tune.builtin_tasks import BUILTIN


@dataclass
class Task:
    """A training problem: see the module docstring for each field."""

    name: str
    model: Callable[[], nn.Module]
    optimizer: Callable[[Any, float], torch.optim.Optimizer]
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    batch_size: int = 64
    steps: int = 300
    accuracy: bool = False
    eval_every: int | None = None
    device: str | None = None

    def __post_init__(self) -> None:
        owner = f"task {self.name!r}"
        for key in ("model", "optimizer", "loss"):
            if not callable(getattr(self, key)):
                raise TypeError(f"{owner}: {key} must be callable, got {getattr(self, key)!r}")
        for key in ("train", "val"):
            pair = getattr(self, key)
            if (
                not isinstance(pair, (tuple, list))
                or len(pair) != 2
                or not all(isinstance(t, torch.Tensor) for t in pair)
            ):
                raise TypeError(f"{owner}: {key} must be an (inputs, targets) pair of tensors")
            if len(pair[0]) != len(pair[1]) or len(pair[0]) == 0:
                raise ValueError(
                    f"{owner}: {key} inputs and targets must have the same non-zero length, "
                    f"got {len(pair[0])} and {len(pair[1])}"
                )
            setattr(self, key, (pair[0], pair[1]))
        if self.eval_every is None and isinstance(self.steps, int):
            self.eval_every = max(1, self.steps // 20)
        if self.device is not None:
            self.device = resolve_device(self.device, owner)
        for key in ("batch_size", "steps", "eval_every"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{owner}: {key} must be a positive integer, got {key}={v!r}")

    def batches(
        self, seed: int, *, batch_size: int | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Endless shuffled mini-batches of the training data; the order depends only on ``seed``."""
        x, y = self.train
        bs = min(batch_size or self.batch_size, len(x))
        gen = torch.Generator().manual_seed(10_007 + seed)
        while True:
            perm = torch.randperm(len(x), generator=gen)
            for i in range(0, len(x) - bs + 1, bs):
                idx = perm[i : i + bs]
                yield x[idx], y[idx]

    def val_batches(
        self, device: str | torch.device = "cpu", limit: int = 2048
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The validation data in batches of ``batch_size``, at most ``limit`` examples, on
        ``device``: what the range test's probes are scored on (``find_lr(val_data=...)``)."""
        n, step = min(len(self.val[0]), limit), self.batch_size
        x, y = self.val[0][:n], self.val[1][:n]
        return [(x[i : i + step].to(device), y[i : i + step].to(device)) for i in range(0, n, step)]

    def evaluate(self, model: nn.Module) -> tuple[float, float | None]:
        """Validation loss (mean over the examples) and accuracy (None unless ``accuracy``).

        Accuracy is per target: ``correct / targets.numel()``, with the prediction
        ``outputs.argmax(-1)``, so a sequence task with one target per position ((N, T) targets,
        (N, T, C) outputs) gets per-token accuracy. It is None (undefined) when the predictions'
        shape is not the targets' (e.g. a regression output) or the targets are not integers.
        """
        x, y = self.val
        dev = next((p.device for p in model.parameters()), torch.device("cpu"))
        was = model.training
        model.eval()
        total, correct, defined = 0.0, 0, self.accuracy and not y.is_floating_point()
        with torch.no_grad():
            for i in range(0, len(x), 2048):
                out = model(x[i : i + 2048].to(dev))
                target = y[i : i + 2048].to(dev)
                total += float(self.loss(out, target)) * len(out)
                if defined:
                    pred = out.argmax(-1)
                    if pred.shape != target.shape:
                        defined = False
                    else:
                        correct += int((pred == target).sum())
        model.train(was)
        return total / len(x), (correct / y.numel() if defined else None)

    @functools.cached_property
    def chance_accuracy(self) -> float | None:
        """The accuracy of always predicting the most frequent validation target (None when the
        task reports no accuracy): a run that does no better has learnt nothing."""
        y = self.val[1]
        if not self.accuracy or y.is_floating_point() or y.numel() == 0 or int(y.min()) < 0:
            return None
        return float(torch.bincount(y.flatten()).max()) / y.numel()


def resolve_device(device: str | None, owner: str = "compare") -> str:
    """The device trials run on: ``device`` checked (``"cpu"``, ``"cuda"``, ``"cuda:1"``,
    ``"mps"``), or, for None, ``"cuda"`` when CUDA is available, else ``"cpu"``.

    Raises:
        ValueError: a string torch does not read as a device, or a device not available here.
    """
    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"{owner}: device must be e.g. 'cpu' or 'cuda', got device={device!r}"
        ) from None
    if dev.type == "cuda" and (
        not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count()
    ):
        raise ValueError(f"{owner}: device {device!r} is not available here (no such CUDA device)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{owner}: device {device!r} is not available here")
    return str(dev)


# ---------------------------------------------------------------------------- built-ins
def _split(x: np.ndarray, y: np.ndarray, val_frac: float, seed: int) -> tuple[Any, Any]:
    perm = np.random.default_rng(seed).permutation(len(x))
    n_val = round(len(x) * val_frac)
    va, tr = perm[:n_val], perm[n_val:]
    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = torch.as_tensor(y)
    return (xt[tr], yt[tr]), (xt[va], yt[va])


def _mlp(sizes: tuple[int, ...]) -> Callable[[], nn.Module]:
    def make() -> nn.Module:
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(sizes[:-1]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(sizes[-2], sizes[-1]))
        return nn.Sequential(*layers)

    return make


def _sgd(params: Any, lr: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=lr, momentum=0.9)


def _adamw(params: Any, lr: float) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=lr, weight_decay=0.01)


@functools.lru_cache(maxsize=1)
def _digits_data() -> tuple[Any, Any]:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = d.data.astype(np.float32) / 16.0
    return _split(x, d.target.astype(np.int64), 0.2, 0)


def digits() -> Task:
    """scikit-learn's handwritten digits (1797 8x8 images, 10 classes): MLP 64-128-10, SGD with
    momentum 0.9, batch 32, 300 steps (about 7 epochs), 20% held out."""
    train, val = _digits_data()
    return Task(
        name="digits",
        model=_mlp((64, 128, 10)),
        optimizer=_sgd,
        loss=nn.functional.cross_entropy,
        train=train,
        val=val,
        batch_size=32,
        steps=300,
        accuracy=True,
    )


@functools.lru_cache(maxsize=1)
def _mnist1d_data() -> tuple[Any, Any]:
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as exc:
        raise ValueError("task 'mnist1d' needs the mnist1d package: pip install mnist1d") from exc
    np_state, py_state = np.random.get_state(), random.getstate()
    try:  # make_dataset seeds the global RNGs; keep the caller's
        d = make_dataset(get_dataset_args())
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    tr = (torch.as_tensor(d["x"], dtype=torch.float32), torch.as_tensor(d["y"], dtype=torch.int64))
    va = (
        torch.as_tensor(d["x_test"], dtype=torch.float32),
        torch.as_tensor(d["y_test"], dtype=torch.int64),
    )
    return tr, va


def mnist1d() -> Task:
    """MNIST-1D (4000 train / 1000 test sequences of length 40, 10 classes), generated offline
    with the package's default arguments: MLP 40-256-256-10, AdamW, batch 64, 600 steps."""
    train, val = _mnist1d_data()
    return Task(
        name="mnist1d",
        model=_mlp((40, 256, 256, 10)),
        optimizer=_adamw,
        loss=nn.functional.cross_entropy,
        train=train,
        val=val,
        batch_size=64,
        steps=600,
        accuracy=True,
    )


_CONTEXT = 16
_CHARS = 120_000


@functools.lru_cache(maxsize=1)
def _charlm_data() -> tuple[Any, Any, int]:
    from pydoc_data.topics import topics

    text = "\n".join(topics[k] for k in sorted(topics))[:_CHARS]
    codes = np.frombuffer(text.encode("ascii", "replace"), dtype=np.uint8).astype(np.int64)
    codes = np.clip(codes, 9, 127) - 9  # tab .. DEL -> 0 .. 118
    vocab = 119
    windows = np.lib.stride_tricks.sliding_window_view(codes, _CONTEXT + 1)
    x, y = windows[:, :-1].copy(), windows[:, -1].copy()
    n_val = len(x) // 10  # the last 10% of the text
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    return (xt[:-n_val], yt[:-n_val]), (xt[-n_val:], yt[-n_val:]), vocab


class CharMLP(nn.Module):
    """Embed a window of characters, concatenate, two layers, predict the next character."""

    def __init__(self, vocab: int, context: int = _CONTEXT, dim: int = 24, hidden: int = 256):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.net = nn.Sequential(
            nn.Linear(context * dim, hidden), nn.ReLU(), nn.Linear(hidden, vocab)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits over the next character for each window in ``x`` (batch, context)."""
        return self.net(self.embed(x).flatten(1))


def charlm() -> Task:
    """A character-level language model on Python's bundled help text (``pydoc_data.topics``,
    first 120k characters; the last 10% is validation): MLP over 16 characters, AdamW, batch 128,
    600 steps. The text comes with the Python version, so results vary slightly across them."""
    train, val, vocab = _charlm_data()
    return Task(
        name="charlm",
        model=functools.partial(CharMLP, vocab),
        optimizer=_adamw,
        loss=nn.functional.cross_entropy,
        train=train,
        val=val,
        batch_size=128,
        steps=600,
        accuracy=True,
    )


# ---------------------------------------------------------------------------- loading
def _from_mapping(d: Mapping[str, Any], ref: str) -> Task:
    known = {f.name for f in fields(Task)}
    unknown = set(d) - known
    if unknown:
        raise ValueError(f"task {ref!r}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
    missing = {"model", "optimizer", "loss", "train", "val"} - set(d)
    if missing:
        raise ValueError(f"task {ref!r}: missing keys {sorted(missing)}")
    return Task(**{"name": ref, **d})


def load_task(ref: str | Task | None = None) -> Task:
    """Resolve a task: a :class:`Task`, a built-in name, ``"module:function"`` or
    ``"path/file.py:function"``. ``None`` means ``"digits"``.

    Raises:
        ValueError: an unknown name, a module or function that cannot be found, or a function
            that does not return a task.

    >>> load_task("digits").name
    'digits'
    """
    if ref is None:
        ref = "digits"
    if isinstance(ref, Task):
        return ref
    if not isinstance(ref, str):
        raise TypeError(f"load_task: ref must be a task name or 'module:function', got {ref!r}")
    if ref in BUILTIN:
        return {"digits": digits, "mnist1d": mnist1d, "charlm": charlm}[ref]()
    if ":" not in ref:
        raise ValueError(
            f"load_task: unknown task {ref!r}; built-in: {', '.join(BUILTIN)}, "
            "or 'module:function' for your own"
        )
    mod_name, _, func_name = ref.rpartition(":")
    try:
        if mod_name.endswith(".py"):
            path = Path(mod_name)
            spec = importlib.util.spec_from_file_location(f"_lrkit_task_{path.stem}", path)
            if spec is None or spec.loader is None or not path.exists():
                raise ValueError(f"load_task: no such file {mod_name!r} in {ref!r}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(mod_name)
    except ImportError as exc:
        raise ValueError(f"load_task: cannot import {mod_name!r} from {ref!r}: {exc}") from None
    func = getattr(module, func_name, None)
    if not callable(func):
        raise ValueError(f"load_task: {mod_name!r} has no function {func_name!r} (from {ref!r})")
    out = func()
    if isinstance(out, Task):
        return out
    if isinstance(out, Mapping):
        return _from_mapping(out, ref)
    raise ValueError(f"load_task: {ref!r} returned {type(out).__name__}, expected a Task or dict")
