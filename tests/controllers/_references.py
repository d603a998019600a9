"""Reference plateau rules re-typed from the libraries' sources, to compare Plateau against.

Each class reproduces one library's decision logic with the learning rate as a plain float (base
value 1.0), read from:

- Keras 3: keras/src/callbacks/reduce_lr_on_plateau.py, ``ReduceLROnPlateau.on_epoch_end``.
- optax: optax/contrib/_reduce_on_plateau.py, ``reduce_on_plateau._update_scale`` / ``update_fn``.
- fastai: fastai/callback/tracker.py, ``TrackerCallback.after_epoch`` and
  ``ReduceLROnPlateau.after_epoch``.

torch is not re-typed: the tests run ``torch.optim.lr_scheduler.ReduceLROnPlateau`` itself.
"""

from __future__ import annotations

import math


class KerasPlateau:
    """Keras ``ReduceLROnPlateau.on_epoch_end`` (mode min/max, min_delta, cooldown, min_lr)."""

    def __init__(self, mode, factor, patience, min_delta, cooldown, min_lr):
        self.mode, self.factor, self.patience = mode, factor, patience
        self.min_delta, self.cooldown, self.min_lr = min_delta, cooldown, min_lr
        self.best = math.inf if mode == "min" else -math.inf
        self.wait = 0
        self.cooldown_counter = 0
        self.lr = 1.0

    def monitor_op(self, a, b):
        if self.mode == "min":
            return a < b - self.min_delta
        return a > b + self.min_delta

    def in_cooldown(self):
        return self.cooldown_counter > 0

    def step(self, current):
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self.monitor_op(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                old_lr = self.lr
                if old_lr > self.min_lr:  # Keras compares with np.float32(min_lr)
                    self.lr = max(old_lr * self.factor, self.min_lr)
                    self.cooldown_counter = self.cooldown
                    self.wait = 0


class OptaxPlateau:
    """optax ``contrib.reduce_on_plateau`` (rtol, atol, cooldown, accumulation_size, min_scale)."""

    def __init__(self, factor, patience, rtol, atol, cooldown, accumulation_size, min_scale):
        self.factor, self.patience, self.rtol, self.atol = factor, patience, rtol, atol
        self.cooldown, self.accumulation_size, self.min_scale = (
            cooldown,
            accumulation_size,
            min_scale,
        )
        self.scale = 1.0
        self.best_value = math.inf
        self.plateau_count = 0
        self.cooldown_count = 0
        self.count = 0
        self.avg_value = 0.0

    def _update_scale(self):
        has_improved = self.avg_value < (1 - self.rtol) * self.best_value - self.atol
        if has_improved:
            self.best_value = self.avg_value
        curr = 0 if has_improved else self.plateau_count + 1
        if self.cooldown_count > 0:
            self.plateau_count = 0
            self.cooldown_count -= 1
        else:
            hit = curr == self.patience
            self.plateau_count = 0 if hit else curr
            self.scale = max(self.scale * self.factor if hit else self.scale, self.min_scale)
            self.cooldown_count = self.cooldown if hit else 0
        self.count = 0
        self.avg_value = 0.0

    def step(self, value):
        new_count = self.count + 1
        self.avg_value = (self.count * self.avg_value + value) / new_count
        self.count = new_count
        if new_count == self.accumulation_size:
            self._update_scale()


class FastaiPlateau:
    """fastai ``ReduceLROnPlateau`` (TrackerCallback comparison, wait >= patience, divisor)."""

    def __init__(self, mode, divisor, patience, min_delta, min_lr):
        self.comp_less = mode == "min"
        self.min_delta = -min_delta if self.comp_less else min_delta
        self.divisor, self.patience, self.min_lr = divisor, patience, min_lr
        self.best = math.inf if self.comp_less else -math.inf
        self.wait = 0
        self.lr = 1.0

    def step(self, val):
        shifted = val - self.min_delta
        new_best = shifted < self.best if self.comp_less else shifted > self.best
        if new_best:
            self.best = val
            self.wait = 0
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.lr = max(self.lr / self.divisor, self.min_lr)
                self.wait = 0
