"""Differential test of ``cosine_restarts`` against Keras' ``CosineDecayRestarts`` (installed
with the ``keras`` extra), over random non-integer ``period_mult``: every restart lands on the
same step (a missed restart was 0.0 where Keras gives the peak), values agree to 1e-5.

Keras runs in a subprocess with ``KERAS_BACKEND=numpy``, so that its backend and
global settings do not leak into the other tests.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import lrkit

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("keras") is None, reason="keras is not installed"
)

KERAS_VALUES = """
import json, sys
import numpy as np
import keras
from keras.optimizers.schedules import CosineDecayRestarts
out = []
for steps, m, n in json.loads(sys.stdin.read()):
    s = CosineDecayRestarts(1.0, first_decay_steps=steps, t_mul=m, m_mul=1.0, alpha=0.0)
    out.append(np.asarray(s(np.arange(n, dtype=np.float64))).tolist())
print(json.dumps(out))
"""


def keras_values(cases: list[list[float]]) -> list[list[float]]:
    """Keras' values at steps 0..n-1 for each ``[steps, period_mult, n]``."""
    env = {**os.environ, "KERAS_BACKEND": "numpy"}
    done = subprocess.run(
        [sys.executable, "-c", KERAS_VALUES],
        input=json.dumps(cases),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_restarts_land_where_keras_puts_them() -> None:
    """40 random (steps, period_mult in [1, 3]) and the reported case: same restarts as Keras."""
    rng = np.random.default_rng(20261202)
    cases = [[int(rng.integers(1, 200)), float(rng.uniform(1.0, 3.0)), 3_000] for _ in range(40)]
    cases.append([116, 2.299437508015398, 3_000])  # the reported miss at step 116
    for (steps, m, n), ref in zip(cases, keras_values(cases), strict=True):
        s = lrkit.cosine_restarts(1.0, 0.0, steps=int(steps), period_mult=m)
        got, want = s(np.arange(n)), np.asarray(ref)
        # A restart jumps back to (near) the peak: the same steps in both.
        restarts = np.nonzero(np.diff(want) > 0.5)[0] + 1
        np.testing.assert_array_equal(
            np.nonzero(np.diff(got) > 0.5)[0] + 1, restarts, err_msg=f"{steps}, {m}"
        )
        # (Keras computes in float32 here: values agree to its precision.)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5, err_msg=f"{steps}, {m}")
    assert lrkit.cosine_restarts(1, 0, steps=116, period_mult=2.299437508015398)(116) == 1.0


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_float32_tensor_restarts_land_where_keras_puts_them() -> None:
    """The same 41 cases on a torch float32 tensor: the restart slack is 4 float32 ulps (a
    float64 slack rounds to 1.0 in float32 and missed the first restart in 12 of them)."""
    import torch

    rng = np.random.default_rng(20261202)
    cases = [[int(rng.integers(1, 200)), float(rng.uniform(1.0, 3.0)), 3_000] for _ in range(40)]
    cases.append([116, 2.299437508015398, 3_000])
    for (steps, m, n), ref in zip(cases, keras_values(cases), strict=True):
        s = lrkit.cosine_restarts(1.0, 0.0, steps=int(steps), period_mult=m)
        got = s(torch.arange(n, dtype=torch.float32)).double().numpy()
        want = np.asarray(ref)
        np.testing.assert_array_equal(
            np.nonzero(np.diff(got) > 0.5)[0] + 1,
            np.nonzero(np.diff(want) > 0.5)[0] + 1,
            err_msg=f"{steps}, {m}",
        )
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-4, err_msg=f"{steps}, {m}")
