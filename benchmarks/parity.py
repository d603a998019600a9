"""The same values everywhere: one spec per family evaluated by each backend, compared with
numpy float64.

For every family and combinator (a fixed, representative spec each), the values at steps
0..1.3x the run plus far past the end (10x, 1e5, 1e6) from torch float64, torch float32,
Keras 3 (torch backend) and optax/JAX (float32) are compared with numpy float64. Printed: the
largest absolute difference and the largest difference relative to the schedule's peak |value|.
float32 differences are float32 rounding (about 6e-8 of the peak); a step that float32 rounding
puts across a jump would show as a large difference (none in this table).

Run:  .venv/bin/python benchmarks/parity.py
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import jax.numpy as jnp
import keras
import numpy as np
import torch

import lrkit
import lrkit.keras
import lrkit.optax

SPECS = {
    "constant": "constant(0.1)",
    "linear": "linear(0.1, 0.001, steps=500)",
    "cosine": "cosine(0.1, 0.001, steps=500)",
    "step_decay": "step_decay(0.1, steps=100, gamma=0.5)",
    "multistep_decay": "multistep_decay(0.1, milestones=[100, 300], gamma=0.1)",
    "exponential": "exponential(0.1, gamma=0.99, end=0.001)",
    "polynomial": "polynomial(0.1, 0.001, steps=500, power=2.0, cycle=True)",
    "inverse_sqrt": "inverse_sqrt(0.1, steps=100)",
    "piecewise": "piecewise([0.1, 0.05, 0.01], boundaries=[100, 300])",
    "interpolate": "interpolate([0, 100, 400], [0.0, 0.1, 0.001], kind='cosine')",
    "cosine_restarts": "cosine_restarts(0.1, 0.001, steps=100, period_mult=2.0, peak_mult=0.7)",
    "cyclic": "cyclic(0.001, 0.1, steps_up=50, steps_down=150, mode='triangular2')",
    "one_cycle": "one_cycle(0.1, steps=500, three_phase=True)",
    "one_cycle_momentum": "one_cycle_momentum(steps=500)",
    "wsd": "wsd(0.1, 0.001, warmup_steps=50, stable_steps=300, decay_steps=150)",
    "warmup": "warmup(cosine(0.1, steps=450), steps=50, shape='exponential', start=1e-4)",
    ">> (sequence)": "linear(0.0, 0.1, steps=50) >> cosine(0.1, 0.001, steps=450)",
    "* (product)": "cosine(1.0, steps=500) * step_decay(0.1, steps=100, gamma=0.5)",
    "scale, clip": "clip(0.5 * cosine(0.2, steps=500), 0.01, 0.08)",
    "shift, advance": "shift(advance(linear(0.1, 0.0, steps=500), steps=50), steps=20)",
    "stretch": "stretch(one_cycle(0.1, steps=300), 1.7)",
    "repeat": "repeat(cosine(0.1, 0.001, steps=120), times=3)",
}


def steps(s: lrkit.Schedule) -> np.ndarray:
    d = s.duration
    end = 2000 if d is None or d < 1 else int(d)
    return np.unique(np.concatenate([np.arange(0, int(1.3 * end) + 1), [10 * end, 1e5, 1e6]]))


def backends(s: lrkit.Schedule, t: np.ndarray) -> dict[str, np.ndarray]:
    ints = t.astype(np.int64)
    return {
        "torch float64": s(torch.tensor(t, dtype=torch.float64)).numpy(),
        "torch float32": s(torch.tensor(t, dtype=torch.float32)).double().numpy(),
        "Keras": np.asarray(
            lrkit.keras.schedule(s)(keras.ops.convert_to_tensor(ints)), dtype=np.float64
        ),
        "optax": np.asarray(lrkit.optax.schedule(s)(jnp.asarray(ints.astype(np.int32))), float),
    }


def main() -> None:
    names = ["torch float64", "torch float32", "Keras", "optax"]
    print(f"keras backend: {keras.backend.backend()}; differences from numpy float64")
    print()
    print("| schedule | " + " | ".join(f"{n} abs / rel" for n in names) + " |")
    print("|---|" + "---:|" * len(names))
    for family, spec in SPECS.items():
        s = lrkit.parse(spec)
        t = steps(s)
        ref = s(t)
        peak = float(np.abs(ref).max())
        cells = []
        for name in names:
            diff = float(np.abs(backends(s, t)[name] - ref).max())
            cells.append(f"{diff:.1e} / {diff / peak:.1e}")
        print(f"| {family} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
