"""Keras 3 on the torch backend: an lrkit schedule in a real model.fit, saved and loaded, and
lrkit controllers on top of it (where Keras' own ReduceLROnPlateau raises)."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")  # before anything imports keras

from pathlib import Path

import keras
import numpy as np
import pytest

import lrkit
import lrkit.keras
from lrkit.controllers import Plateau

SPEC = "warmup(cosine(0.05, 0.001, steps=20), steps=4)"


class _Record(keras.callbacks.Callback):  # type: ignore[misc]
    """Records the rate the optimizer uses at each batch."""

    def __init__(self) -> None:
        super().__init__()
        self.lrs: list[float] = []

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self.lrs.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))


def _fit(lr: object, epochs: int, callbacks: list) -> keras.Model:
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=lr), loss="mse")
    model.fit(x, y, batch_size=16, epochs=epochs, verbose=0, callbacks=callbacks)
    return model


def test_fit_follows_schedule_and_survives_save_load(tmp_path: Path) -> None:
    """model.fit uses s(k) at update k (float32), and a .keras file loads the same schedule."""
    assert keras.backend.backend() == "torch"
    lr = lrkit.keras.schedule(SPEC)
    rec = _Record()
    model = _fit(lr, 10, [rec])  # 4 batches per epoch: 40 updates, past the end (24)
    want = lrkit.parse(SPEC)(np.arange(40))
    np.testing.assert_allclose(rec.lrs, want, rtol=1e-6, atol=1e-9)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    restored = loaded.optimizer._learning_rate
    assert restored.schedule == lrkit.parse(SPEC)
    assert restored.get_config() == lr.get_config()
    assert float(restored(7)) == pytest.approx(want[7], rel=1e-6)


def test_plateau_controller_on_top_of_a_schedule() -> None:
    """Keras' ReduceLROnPlateau raises TypeError on a schedule; lrkit's Plateau halves it."""
    with pytest.raises(TypeError):
        _fit(
            lrkit.keras.schedule(SPEC),
            3,
            [keras.callbacks.ReduceLROnPlateau(monitor="loss", mode="max", patience=0)],
        )
    lr = lrkit.keras.schedule(SPEC)
    rec = _Record()
    # mode="max" on a falling training loss: no epoch improves on the first, so with
    # patience=0 every later epoch end halves the rate.
    cb = lrkit.keras.controllers(lr, [Plateau(mode="max", factor=0.5, patience=0)], monitor="loss")
    _fit(lr, 4, [cb, rec])
    s = lrkit.parse(SPEC)
    scale = np.repeat([1.0, 1.0, 0.5, 0.25], 4)
    np.testing.assert_allclose(rec.lrs, s(np.arange(16)) * scale, rtol=1e-6, atol=1e-9)
    assert lr.driver is None  # detached after fit: plain schedule again


def test_errors_name_the_problem() -> None:
    """Bad arguments fail at construction with the function and the value in the message."""
    with pytest.raises(ValueError, match="bind"):
        lrkit.keras.schedule("cosine(1.0, steps='10%')")
    with pytest.raises(TypeError, match=r"lrkit\.keras\.schedule"):
        lrkit.keras.controllers(0.1, [Plateau()])
    with pytest.raises(ValueError, match="targets 'momentum'"):
        lrkit.keras.controllers(lrkit.keras.schedule(SPEC), [Plateau(target="momentum")])
