"""Synthetic training series with one known pathology each (and a healthy one), for the detector
tests: the loss follows ``L = floor + (L0 - floor) * exp(-k * sum(lr) / peak)`` (progress in
proportion to the rate spent) with log-normal batch noise, and each pathology bends one part."""

from __future__ import annotations

from typing import Any

import numpy as np

from lrkit.diagnostics import RunLog

N = 600
PEAK = 0.1
LAYERS = ("0", "2", "4")


def warmup_cosine(n: int = N, peak: float = PEAK, warm: int = 30) -> np.ndarray:
    """The healthy rate: linear warmup over ``warm`` steps, cosine to 0 over the rest."""
    t = np.arange(n, dtype=float)
    u = np.clip((t - warm) / (n - warm), 0, 1)
    return np.where(t < warm, peak * t / warm, peak * 0.5 * (1 + np.cos(np.pi * u)))


def progress_loss(
    lr: np.ndarray, k: float = 12.0, l0: float = 2.3, floor: float = 0.05
) -> np.ndarray:
    """The noise-free loss for progress in proportion to the cumulative rate."""
    spent = np.cumsum(lr) / (PEAK * len(lr))
    return floor + (l0 - floor) * np.exp(-k * spent)


def make(
    loss: np.ndarray,
    lr: np.ndarray,
    *,
    seed: int = 0,
    noise: float = 0.08,
    val: np.ndarray | None = None,
    val_every: int = 30,
    ratio_scale: dict[str, float] | None = None,
    grad: np.ndarray | None = None,
) -> RunLog:
    """A RunLog from a clean loss and rate: noise added, validation every ``val_every`` steps
    (the clean loss x1.1 unless given), update ratios ``1e-3 * lr / peak`` per layer (times
    ``ratio_scale``), gradient norms around 1 (or ``grad``), sampled every 10 steps."""
    rng = np.random.default_rng(seed)
    n = len(loss)
    steps = np.arange(n)
    noisy = loss * np.exp(noise * rng.standard_normal(n))
    vs = steps[val_every - 1 :: val_every]
    vl = (loss * 1.1)[vs] if val is None else val[vs]
    sampled = steps % 10 == 0
    ratio: dict[str, Any] = {}
    for name in LAYERS:
        r = 1e-3 * np.maximum(lr, 1e-6) / PEAK * (ratio_scale or {}).get(name, 1.0)
        r = r * np.exp(0.2 * rng.standard_normal(n))
        ratio[name] = np.where(sampled, r, np.nan)
    g = np.exp(0.2 * rng.standard_normal(n)) if grad is None else grad
    return RunLog(
        steps=steps,
        loss=noisy,
        hparams={"lr": {"0": lr}},
        val_steps=vs,
        val={"val_loss": vl},
        grad_norm=np.where(sampled, g, np.nan),
        ratio=ratio,
    )


def healthy(seed: int = 0) -> RunLog:
    """Warmup + cosine, converged by the end, validation tracking training."""
    lr = warmup_cosine()
    return make(progress_loss(lr), lr, seed=seed)


def cases() -> dict[str, RunLog]:
    """One run per pathology, keyed by the kind that should be the top finding."""
    n, t = N, np.arange(N, dtype=float)
    lr = warmup_cosine()
    out: dict[str, RunLog] = {}

    nan = progress_loss(lr).copy()
    nan[300:] = np.nan
    out["diverged"] = make(nan, lr)

    const = np.full(n, PEAK)
    wild = progress_loss(const, k=3.0) * np.exp(0.8 * np.clip(np.sin(t / 25), 0, None) * (t > 150))
    out["lr_too_high"] = make(wild, const)

    low = warmup_cosine(peak=PEAK / 100)
    out["lr_too_low"] = make(2.3 - 0.0006 * t, low, ratio_scale={k: 1e-2 for k in LAYERS})

    jump = progress_loss(const, k=3.0) * np.exp(0.7 * np.exp(-(((t - 25) / 12) ** 2)))
    out["warmup_too_short"] = make(jump, const)

    early = warmup_cosine(n=60, warm=3)
    early = np.concatenate([early, np.full(n - 60, early[-1])])
    out["decay_too_early"] = make(progress_loss(early, k=60.0), early)

    flat_top = np.minimum(const, PEAK * t / 30)
    slow = progress_loss(flat_top, k=3.0)
    out["not_converged"] = make(slow, flat_top, val=slow * 1.1)

    flat = np.maximum(progress_loss(const, k=40.0), 1.0)
    out["plateau"] = make(flat, const)

    base = progress_loss(lr)
    over = base * 1.1 * np.exp(0.4 * np.clip((t - 250) / 350, 0, None))
    out["overfitting"] = make(base, lr, val=over)

    out["layer_imbalance"] = make(base, lr, ratio_scale={"2": 100.0})

    g = np.exp(0.2 * np.random.default_rng(1).standard_normal(n))
    g[[470, 520, 560]] = 80.0  # late, at a low rate: not explained by the rate
    out["exploding_gradients"] = make(base, lr, grad=g)
    return out
