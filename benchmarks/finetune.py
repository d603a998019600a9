"""Does fine-tuning with per-group rates help? And does the batch-size rule?

**Fine-tuning.** A small residual MLP (``embed``, ``blocks.0..2``, ``head``; 17k parameters) is
pre-trained on sklearn's digits 0-4 (900 images, 8x8), then fine-tuned with a new head on a
shifted task: digits 5-9 with only 20 training images per class (100 in all), validated on the
other ~800 images of 5-9. Every strategy gets the same budget (20 epochs of batch 16, AdamW,
weight decay 0.01 off norms and biases, a 10% warmup then cosine, built with
:func:`lrkit.torch.param_groups` and :class:`lrkit.torch.Scheduler`):

- ``full``: every parameter at one rate;
- ``head only``: the backbone frozen;
- ``layer-wise decay``: ``param_groups(layer_decay=d)``, head x1, each level below x d;
- ``discriminative``: the backbone at ``r`` times the head's rate (``{"embed.*": r, "blocks.*":
  r, "head.*": 1}``);
- ``gradual unfreezing``: :class:`lrkit.torch.Unfreeze.every` ``("4ep")``: the head from the
  start, one level more every 4 epochs from the top, each re-warmed over one epoch.

Reported: the new task's final validation loss and how much the old task's validation loss rose
(forgetting: the fine-tuned backbone with the old head, against the pre-trained model), mean and
standard error over seeds.

**Batch size.** The same network trained from scratch on all ten digits (1,200 training images,
SGD with momentum 0.9, 15 epochs, warmup of 1 epoch then cosine) at batch 16, then at batch 128
(x8) for the same 15 epochs: at the same rate, with the linear rule keeping the warmup's length
in epochs, with the linear rule and a warmup stretched x8 (``scale_for_batch``'s default), and
with the square-root rule.

**Development and evaluation seeds.** Every rate (base rate, ``d``, ``r``, the batch-16 rate) is
chosen from a small grid by the mean new-task loss on the development seeds 0-2; the tables report
the chosen settings on the evaluation seeds 3-9, which took no part in the choice. A seed fixes
the pre-training, the 100 fine-tuning images and the initialisation of the new head.

Run: ``.venv/bin/python benchmarks/finetune.py --cache /tmp/lrkit-finetune.json`` (one thread,
about 2 minutes of CPU from scratch: 225 runs; 10 minutes of wall time when measured on a
machine loaded by other jobs; the cache makes reruns instant).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

import lrkit
from lrkit.tools.tables import markdown_table
from lrkit.torch import Scheduler, Unfreeze, param_groups

DEV, EVAL = (0, 1, 2), (3, 4, 5, 6, 7, 8, 9)
RATES = (3e-4, 1e-3, 3e-3, 1e-2, 3e-2)
DECAYS = (0.3, 0.5, 0.7)
BACKBONE = (0.03, 0.1, 0.3)
SGD_RATES = (0.003, 0.01, 0.03, 0.1, 0.3)
FT_EPOCHS, FT_BATCH, PER_CLASS = 20, 16, 20
BS_EPOCHS, BS_BASE, BS_BIG = 15, 16, 128


# --------------------------------------------------------------------------- data and model
def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    d = load_digits()
    return torch.tensor(d.data / 16.0, dtype=torch.float32), torch.tensor(d.target)


X, Y = _digits()
_SPLIT = np.random.default_rng(12345).permutation(len(Y))


def _task_a() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Digits 0-4: a fixed half for pre-training, the other half to measure forgetting."""
    idx = np.array([i for i in _SPLIT if Y[i] < 5])
    half = len(idx) // 2
    return X[idx[:half]], Y[idx[:half]], X[idx[half:]], Y[idx[half:]]


def _task_b(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Digits 5-9 (labels 0-4): 20 training images per class drawn by ``seed``, the rest val."""
    rng = np.random.default_rng(seed)
    train = []
    for c in range(5, 10):
        train += list(rng.choice(np.flatnonzero(Y.numpy() == c), PER_CLASS, replace=False))
    val = np.array([i for i in range(len(Y)) if Y[i] >= 5 and i not in set(train)])
    tr = np.array(train)
    return X[tr], Y[tr] - 5, X[val], Y[val] - 5


class Block(nn.Module):
    """A pre-norm residual MLP block."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.fc = nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.nn.functional.gelu(self.fc(self.norm(x)))


class Net(nn.Module):
    """``embed``, ``blocks.0..2``, ``norm``, ``head``."""

    def __init__(self, n_out: int, d: int = 64, depth: int = 3) -> None:
        super().__init__()
        self.embed = nn.Linear(64, d)
        self.blocks = nn.ModuleList(Block(d) for _ in range(depth))
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, n_out)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        for b in self.blocks:
            h = b(h)
        return self.norm(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float(nn.functional.cross_entropy(model(x), y))


def _train(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    sched: Scheduler,
    data: tuple[torch.Tensor, torch.Tensor],
    epochs: int,
    batch: int,
    seed: int,
) -> None:
    x, y = data
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(y), generator=g)
        for i in range(0, len(y), batch):
            b = perm[i : i + batch]
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(x[b]), y[b]).backward()
            opt.step()
            sched.step()


# --------------------------------------------------------------------------- fine-tuning
_PRETRAINED: dict[int, dict[str, torch.Tensor]] = {}


def _pretrained(seed: int) -> dict[str, torch.Tensor]:
    """The model pre-trained on digits 0-4 with this seed (AdamW 3e-3, 30 epochs)."""
    if seed not in _PRETRAINED:
        torch.manual_seed(seed)
        model = Net(5)
        xa, ya, _, _ = _task_a()
        opt = torch.optim.AdamW(param_groups(model, weight_decay=0.01), lr=1.0)
        steps = 30 * math.ceil(len(ya) / 32)
        sched = Scheduler(
            opt, lr=lrkit.warmup(lrkit.cosine(3e-3, steps="90%"), steps="10%"), total_steps=steps
        )
        _train(model, opt, sched, (xa, ya), 30, 32, seed)
        _PRETRAINED[seed] = {k: v.clone() for k, v in model.state_dict().items()}
    return _PRETRAINED[seed]


def finetune(strategy: str, lr: float, knob: float | None, seed: int) -> dict[str, float]:
    """One fine-tuning run; returns the new task's val loss and the old task's loss rise."""
    state = _pretrained(seed)
    model = Net(5)
    model.load_state_dict(state)
    _, _, xa_val, ya_val = _task_a()
    before = _loss(model, xa_val, ya_val)
    old_head = nn.Linear(64, 5)
    old_head.load_state_dict({"weight": state["head.weight"], "bias": state["head.bias"]})
    torch.manual_seed(10_000 + seed)
    model.head = nn.Linear(64, 5)  # the new task's head
    xb, yb, xb_val, yb_val = _task_b(seed)
    controllers: list[Any] = []
    if strategy == "head only":
        for n, p in model.named_parameters():
            p.requires_grad_(n.startswith("head."))
        groups = param_groups(model, weight_decay=0.01)
    elif strategy == "layer-wise decay":
        groups = param_groups(model, layer_decay=knob, weight_decay=0.01)
    elif strategy == "discriminative":
        assert knob is not None
        mults = {"embed.*": knob, "blocks.*": knob, "norm.*": knob, "head.*": 1.0}
        groups = param_groups(model, mults, weight_decay=0.01)
    else:  # full, gradual unfreezing
        groups = param_groups(model, weight_decay=0.01)
        if strategy == "gradual unfreezing":
            controllers = [Unfreeze.every("4ep", rewarm_steps=math.ceil(len(yb) / FT_BATCH))]
    opt = torch.optim.AdamW(groups, lr=1.0)
    spe = math.ceil(len(yb) / FT_BATCH)
    sched = Scheduler(
        opt,
        lr=lrkit.warmup(lrkit.cosine(lr, steps="90%"), steps="10%"),
        controllers=controllers,
        total_steps=FT_EPOCHS * spe,
        steps_per_epoch=spe,
    )
    _train(model, opt, sched, (xb, yb), FT_EPOCHS, FT_BATCH, seed)
    new = _loss(model, xb_val, yb_val)
    with torch.no_grad():
        after = float(nn.functional.cross_entropy(old_head(model.features(xa_val)), ya_val))
    return {"new": new, "forgetting": after - before}


#: strategy -> the grid of (lr, knob) it is tuned over, and what the knob is.
STRATEGIES: dict[str, tuple[list[tuple[float, float | None]], str]] = {
    "full": ([(lr, None) for lr in RATES], ""),
    "head only": ([(lr, None) for lr in RATES], ""),
    "layer-wise decay": (list(itertools.product(RATES, DECAYS)), "d"),
    "discriminative": (list(itertools.product(RATES, BACKBONE)), "r"),
    "gradual unfreezing": ([(lr, None) for lr in RATES], ""),
}


# --------------------------------------------------------------------------- batch size
def batch_run(variant: str, lr: float, seed: int) -> dict[str, float]:
    """Train from scratch on all ten digits; ``variant`` says the batch and the rule."""
    idx = _SPLIT
    n_train = 1200
    xtr, ytr, xva, yva = X[idx[:n_train]], Y[idx[:n_train]], X[idx[n_train:]], Y[idx[n_train:]]
    spe0 = math.ceil(n_train / BS_BASE)
    base = lrkit.warmup(lrkit.cosine(lr, steps=(BS_EPOCHS - 1) * spe0), steps=spe0)
    batch = BS_BASE if variant == "batch 16" else BS_BIG
    spe = math.ceil(n_train / batch)
    if variant == "batch 16":
        schedule: lrkit.Schedule = base
    elif variant == "x8, same rate":
        schedule = lrkit.rescale(base, total_steps=BS_EPOCHS * spe)
    else:
        rule = "sqrt" if "sqrt" in variant else "linear"
        factor = 1.0 if "warmup 1 epoch" in variant else None
        schedule = lrkit.scale_for_batch(
            base,
            base_batch=BS_BASE,
            batch=BS_BIG,
            rule=rule,
            warmup_factor=factor,
            dataset_size=n_train,
        )
    torch.manual_seed(seed)
    model = Net(10)
    opt = torch.optim.SGD(param_groups(model, weight_decay=1e-4), lr=1.0, momentum=0.9)
    steps = math.ceil(schedule.duration or 1)
    sched = Scheduler(opt, lr=schedule, total_steps=steps)
    epochs = math.ceil(steps / spe)  # the stretched warmup adds a little
    _train(model, opt, sched, (xtr, ytr), epochs, batch, seed)
    loss = _loss(model, xva, yva)
    return {"new": loss if math.isfinite(loss) else float("inf")}


BATCH_VARIANTS = (
    "batch 16",
    "x8, same rate",
    "x8, linear rule, warmup 1 epoch",
    "x8, linear rule, warmup x8",
    "x8, sqrt rule, warmup x2.8",
)


# --------------------------------------------------------------------------- runs and tables
class Cache:
    """Results keyed by the run's arguments, kept in a JSON file between invocations."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.data: dict[str, dict[str, float]] = {}
        if path is not None and path.exists():
            self.data = json.loads(path.read_text())

    def get(self, fn: Callable[..., dict[str, float]], *args: Any) -> dict[str, float]:
        key = json.dumps([fn.__name__, *args])
        if key not in self.data:
            self.data[key] = fn(*args)
            if self.path is not None:
                self.path.write_text(json.dumps(self.data))
        return self.data[key]


def _mean_se(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=float)
    return float(a.mean()), float(a.std(ddof=1) / math.sqrt(len(a)))


def _fmt(values: list[float]) -> str:
    m, se = _mean_se(values)
    return f"{m:.3f} ± {se:.3f}"


def main() -> None:
    """Tune on the development seeds, report on the evaluation seeds, print markdown tables."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", help="JSON file of finished runs (reruns skip them)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cache = Cache(Path(args.cache) if args.cache else None)
    t0 = time.perf_counter()

    rows = []
    for name, (grid, knob) in STRATEGIES.items():
        dev = {
            (lr, k): np.mean([cache.get(finetune, name, lr, k, s)["new"] for s in DEV])
            for lr, k in grid
        }
        lr, k = min(dev, key=lambda c: dev[c])
        runs = [cache.get(finetune, name, lr, k, s) for s in EVAL]
        setting = f"lr={lr:g}" + (f", {knob}={k:g}" if knob else "")
        rows.append(
            [
                name,
                setting,
                f"{dev[(lr, k)]:.3f}",
                _fmt([r["new"] for r in runs]),
                _fmt([r["forgetting"] for r in runs]),
            ]
        )
    print(
        f"Fine-tuning, digits 0-4 -> 5-9 with {PER_CLASS} images per class; settings chosen on "
        f"seeds {DEV[0]}-{DEV[-1]} (development), reported on seeds {EVAL[0]}-{EVAL[-1]} "
        f"(evaluation), mean ± standard error\n"
    )
    header = [
        "strategy",
        "chosen (dev)",
        "dev new-task loss",
        "eval new-task loss",
        "eval old-task loss rise",
    ]
    print(markdown_table(header, rows))

    dev16 = {
        lr: np.mean([cache.get(batch_run, "batch 16", lr, s)["new"] for s in DEV])
        for lr in SGD_RATES
    }
    lr16 = min(dev16, key=lambda r: dev16[r])
    brows = []
    for variant in BATCH_VARIANTS:
        runs = [cache.get(batch_run, variant, lr16, s)["new"] for s in EVAL]
        brows.append([variant, _fmt(runs)])
    print(
        f"\nBatch size, all ten digits from scratch, SGD momentum 0.9, {BS_EPOCHS} epochs; "
        f"batch-16 rate lr={lr16:g} chosen on seeds {DEV[0]}-{DEV[-1]}, the x8 rows use the "
        f"rule with no tuning; evaluation seeds {EVAL[0]}-{EVAL[-1]}\n"
    )
    print(markdown_table(["run", "eval validation loss"], brows))
    print(f"\n({time.perf_counter() - t0:.0f} s; new runs cached in {args.cache})")


if __name__ == "__main__":
    main()
