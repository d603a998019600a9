"""Warmup-stable-decay (WSD; Hu et al., 2024 "MiniCPM"; Hägele et al., 2024)."""

from __future__ import annotations

from dataclasses import dataclass

from lrkit.schedules import _check as check
from lrkit.schedules._anneal import cos_weight, mix
from lrkit.schedules._arrays import Namespace, put
from lrkit.schedules._base import FloatArray, Schedule, register
from lrkit.schedules._units import Length, check_length

DECAY_SHAPES = ("linear", "cosine", "1-sqrt")


def decay_weight(shape: str, frac: FloatArray, xp: Namespace) -> FloatArray:
    """Weight of the peak during the decay at fraction ``frac`` in [0, 1] (1 -> 0)."""
    if shape == "linear":
        return 1.0 - frac
    if shape == "cosine":
        return cos_weight(frac, xp)
    return 1.0 - xp.sqrt(frac)


@register("wsd")
@dataclass(frozen=True, slots=True)
class WSD(Schedule):
    """See :func:`wsd`."""

    _positional = 2
    _lengths = ("warmup_steps", "stable_steps", "decay_steps")
    peak: float
    floor: float = 0.0
    warmup_steps: Length = 0
    stable_steps: Length = 0
    decay_steps: Length = 1
    decay: str = "1-sqrt"
    start: float = 0.0

    def _validate(self) -> None:
        owner = "wsd"
        self._set("peak", check.real(owner, "peak", self.peak))
        self._set("floor", check.real(owner, "floor", self.floor))
        self._set("start", check.real(owner, "start", self.start))
        self._set(
            "warmup_steps", check_length(owner, "warmup_steps", self.warmup_steps, allow_zero=True)
        )
        self._set(
            "stable_steps", check_length(owner, "stable_steps", self.stable_steps, allow_zero=True)
        )
        self._set("decay_steps", check_length(owner, "decay_steps", self.decay_steps))
        self._set("decay", check.choice(owner, "decay", self.decay, DECAY_SHAPES))

    def _eval(self, t: FloatArray, xp: Namespace) -> FloatArray:
        w_end = float(self.warmup_steps)  # type: ignore[arg-type]
        d_start = w_end + float(self.stable_steps)  # type: ignore[arg-type]
        d_steps = float(self.decay_steps)  # type: ignore[arg-type]

        def ramp(t: FloatArray) -> FloatArray:
            return mix(self.start, self.peak, 1.0 - t / w_end)

        def decay(t: FloatArray) -> FloatArray:
            frac = xp.minimum((t - d_start) / d_steps, 1.0)
            return mix(self.peak, self.floor, decay_weight(self.decay, frac, xp))

        out = xp.full_like(t, self.peak)
        if w_end > 0:
            out = put(xp, out, t < w_end, ramp, t)
        return put(xp, out, t >= d_start, decay, t)

    def _duration(self) -> float | None:
        return self.warmup_steps + self.stable_steps + self.decay_steps  # type: ignore[operator,return-value]


def wsd(
    peak: float,
    floor: float = 0.0,
    *,
    warmup_steps: Length = 0,
    stable_steps: Length,
    decay_steps: Length,
    decay: str = "1-sqrt",
    start: float = 0.0,
) -> WSD:
    """Warmup-stable-decay: a linear ramp, a long plateau at ``peak``, a short decay to ``floor``.

    With ``W = warmup_steps``, ``S = stable_steps``, ``D = decay_steps``:
    ``v = start * (1 - t/W) + peak * t/W`` for ``t < W``; ``peak`` for ``W <= t < W + S``;
    then with ``f = min((t - W - S) / D, 1)`` and ``w = 1 - f`` (``linear``),
    ``(1 + cos(pi f)) / 2`` (``cosine``) or ``1 - sqrt(f)`` (``1-sqrt``, the default, best in
    Hägele et al., 2024): ``v = peak * w + floor * (1 - w)``. The three lengths add up:
    the run is ``W + S + D`` steps. transformers' ``get_wsd_schedule(num_warmup_steps=W,
    num_stable_steps=S, num_decay_steps=D, min_lr_ratio=floor/peak, decay_type=...)``.

    Raises:
        ValueError: negative lengths, ``decay_steps`` not positive, unknown ``decay``.

    Holds ``floor`` from step ``W + S + D`` on.

    >>> s = wsd(1.0, 0.0, warmup_steps=10, stable_steps=80, decay_steps=10, decay="linear")
    >>> s(5), s(50), s(95), s(100)
    (0.5, 1.0, 0.5, 0.0)
    """
    return WSD(peak, floor, warmup_steps, stable_steps, decay_steps, decay, start)
