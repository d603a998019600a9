"""Reference values from the published formulas of libraries torch does not cover.

Each reference below is re-typed (not imported: Keras, optax, transformers and timm are not
dependencies) from the library's documented formula; the comment above it cites the source
file and names that library's convention. Values are compared at every integer step of a
range that goes past the end, ``rtol=1e-9`` (plus ``atol=1e-15`` for values that reach 0).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

import lrkit

RTOL, ATOL = 1e-9, 1e-15


def compare(s: lrkit.Schedule, ref: Callable[[int], float], n: int) -> None:
    """``s(t)`` equals ``ref(t)`` for t = 0 .. n-1, scalar and vectorised."""
    expected = np.array([ref(t) for t in range(n)])
    np.testing.assert_allclose([s(t) for t in range(n)], expected, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(s(np.arange(n)), expected, rtol=RTOL, atol=ATOL)


# ----------------------------------------------------------------------------- Keras
# keras/src/optimizers/schedules/learning_rate_schedule.py, ExponentialDecay:
#   p = step / decay_steps; p = floor(p) if staircase; lr = initial * decay_rate ** p
def keras_exponential_decay(initial: float, decay_steps: int, rate: float, staircase: bool):
    def f(step: int) -> float:
        p = step / decay_steps
        if staircase:
            p = math.floor(p)
        return initial * rate**p

    return f


@pytest.mark.parametrize("staircase", [False, True])
@pytest.mark.parametrize(("decay_steps", "rate"), [(10, 0.5), (7, 0.96), (1, 0.9)])
def test_exponential_matches_keras_exponential_decay(
    decay_steps: int, rate: float, staircase: bool
) -> None:
    """exponential(gamma=decay_rate, every=decay_steps, staircase) is Keras ExponentialDecay."""
    compare(
        lrkit.exponential(0.1, gamma=rate, every=decay_steps, staircase=staircase),
        keras_exponential_decay(0.1, decay_steps, rate, staircase),
        60,
    )


# Keras CosineDecayRestarts (same file; SGDR, Loshchilov & Hutter 2017), alpha = 0:
#   fraction = step / first_decay_steps; period i spans fractions
#   [sum_{j<i} t_mul**j, sum_{j<=i} t_mul**j); inside it
#   lr = initial * m_mul**i * 0.5 * (1 + cos(pi * (fraction - sum_{j<i} t_mul**j) / t_mul**i)).
# (Keras finds i with a logarithm; the period sums are the same numbers without its rounding.)
def keras_cosine_decay_restarts(initial: float, first: int, t_mul: float, m_mul: float):
    def f(step: int) -> float:
        frac = step / first
        i, start = 0, 0.0
        while frac >= start + t_mul**i:
            start += t_mul**i
            i += 1
        inner = (frac - start) / t_mul**i
        return initial * m_mul**i * 0.5 * (1.0 + math.cos(math.pi * inner))

    return f


@pytest.mark.parametrize(
    ("first", "t_mul", "m_mul"),
    [(10, 2.0, 1.0), (10, 1.5, 0.5), (8, 1.0, 0.8), (4, 3.0, 0.9), (20, 1.25, 1.0)],
)
def test_cosine_restarts_matches_keras_cosine_decay_restarts(
    first: int, t_mul: float, m_mul: float
) -> None:
    """cosine_restarts(peak, 0, steps, period_mult=t_mul, peak_mult=m_mul) is Keras
    CosineDecayRestarts with alpha=0, float t_mul and m_mul < 1 included."""
    compare(
        lrkit.cosine_restarts(0.2, 0.0, steps=first, period_mult=t_mul, peak_mult=m_mul),
        keras_cosine_decay_restarts(0.2, first, t_mul, m_mul),
        150,
    )


# Keras PolynomialDecay (same file):
#   cycle:     decay_steps = decay_steps * (1 if step == 0 else ceil(step / decay_steps))
#   otherwise: step = min(step, decay_steps)
#   lr = (initial - end) * (1 - step / decay_steps) ** power + end
def keras_polynomial_decay(initial: float, steps: int, end: float, power: float, cycle: bool):
    def f(step: int) -> float:
        horizon = steps
        if cycle:
            horizon = steps * (1 if step == 0 else math.ceil(step / steps))
        else:
            step = min(step, steps)
        return (initial - end) * (1 - step / horizon) ** power + end

    return f


@pytest.mark.parametrize("cycle", [False, True])
@pytest.mark.parametrize(
    ("steps", "end", "power"), [(10, 0.001, 1.0), (13, 0.0, 2.0), (5, 0.01, 0.5)]
)
def test_polynomial_matches_keras_polynomial_decay(
    steps: int, end: float, power: float, cycle: bool
) -> None:
    """polynomial(start, end, steps, power, cycle) is Keras PolynomialDecay, cycle=True included."""
    compare(
        lrkit.polynomial(0.1, end, steps=steps, power=power, cycle=cycle),
        keras_polynomial_decay(0.1, steps, end, power, cycle),
        70,
    )


# Keras PiecewiseConstantDecay (same file): values[0] for step <= boundaries[0],
# values[i] for boundaries[i-1] < step <= boundaries[i], values[-1] for step > boundaries[-1].
def keras_piecewise_constant(boundaries: list[int], values: list[float]):
    def f(step: int) -> float:
        for b, v in zip(boundaries, values, strict=False):
            if step <= b:
                return v
        return values[-1]

    return f


@pytest.mark.parametrize(
    ("boundaries", "values"), [([10, 20], [1.0, 0.5, 0.1]), ([0, 3], [0.3, 0.2, 0.1])]
)
def test_piecewise_reproduces_keras_piecewise_constant_with_shifted_boundaries(
    boundaries: list[int], values: list[float]
) -> None:
    """Keras switches one step after its boundary: piecewise(boundaries=[b + 1 ...]) matches."""
    compare(
        lrkit.piecewise(values, boundaries=[b + 1 for b in boundaries]),
        keras_piecewise_constant(boundaries, values),
        30,
    )


def test_piecewise_switches_at_its_boundary_unlike_keras() -> None:
    """lrkit's piecewise changes value at the boundary step itself (Keras one step later)."""
    s = lrkit.piecewise([1.0, 0.5], boundaries=[10])
    keras = keras_piecewise_constant([10], [1.0, 0.5])
    assert (s(9), s(10)) == (1.0, 0.5)
    assert (keras(10), keras(11)) == (1.0, 0.5)


# Keras CosineDecay (same file) with warmup_target: for step < warmup_steps
#   lr = (warmup_target - initial) * step / warmup_steps + initial, then with
#   s = min(step - warmup_steps, decay_steps): warmup_target * ((1 - alpha) * cos_w + alpha),
#   cos_w = 0.5 * (1 + cos(pi * s / decay_steps)).
def keras_cosine_decay(initial: float, decay_steps: int, alpha: float, target: float, warm: int):
    def f(step: int) -> float:
        if step < warm:
            return (target - initial) * step / warm + initial
        s = min(step - warm, decay_steps)
        cos_w = 0.5 * (1 + math.cos(math.pi * s / decay_steps))
        return target * ((1 - alpha) * cos_w + alpha)

    return f


@pytest.mark.parametrize(("decay", "alpha", "warm"), [(30, 0.0, 5), (20, 0.1, 10), (15, 0.05, 1)])
def test_warmup_cosine_matches_keras_cosine_decay_with_warmup(
    decay: int, alpha: float, warm: int
) -> None:
    """Keras CosineDecay(initial, decay_steps, alpha, warmup_target, warmup_steps) is
    warmup(cosine(target, alpha * target, steps=decay_steps), steps=warmup_steps, start=initial):
    Keras' decay_steps do not include the warmup, as in lrkit."""
    initial, target = 0.001, 0.1
    compare(
        lrkit.warmup(lrkit.cosine(target, alpha * target, steps=decay), steps=warm, start=initial),
        keras_cosine_decay(initial, decay, alpha, target, warm),
        warm + decay + 10,
    )


@pytest.mark.parametrize(("decay", "alpha"), [(30, 0.0), (20, 0.1), (1, 0.5)])
def test_cosine_matches_keras_cosine_decay(decay: int, alpha: float) -> None:
    """Keras CosineDecay(initial, decay_steps, alpha) without warmup is
    cosine(initial, alpha * initial, steps=decay_steps), held past decay_steps."""
    compare(
        lrkit.cosine(0.1, alpha * 0.1, steps=decay),
        keras_cosine_decay(0.1, decay, alpha, 0.1, 0),
        decay + 10,
    )


# ----------------------------------------------------------------------------- optax
# optax/schedules/_schedule.py: linear_schedule(init, end, transition_steps):
#   frac = 1 - min(count, transition_steps) / transition_steps; (init - end) * frac + end.
# cosine_decay_schedule(init_value, decay_steps, alpha): count = min(count, decay_steps);
#   init_value * ((1 - alpha) * 0.5 * (1 + cos(pi * count / decay_steps)) + alpha).
# warmup_cosine_decay_schedule(init, peak, warmup_steps, decay_steps, end): join_schedules of
#   linear_schedule(init, peak, warmup_steps) and
#   cosine_decay_schedule(peak, decay_steps - warmup_steps, alpha=end / peak) at [warmup_steps]
#   (its decay_steps INCLUDE the warmup).
# optax/schedules/_join.py: join_schedules(schedules, boundaries): output = schedules[0](step);
#   for each (boundary, schedule): output = schedule(step - boundary) if step >= boundary.
def optax_linear(init: float, end: float, steps: int):
    return lambda c: (init - end) * (1 - min(c, steps) / steps) + end


def optax_cosine_decay(init: float, decay_steps: int, alpha: float):
    def f(c: int) -> float:
        c = min(c, decay_steps)
        return init * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * c / decay_steps)) + alpha)

    return f


def optax_join(schedules: list[Callable[[int], float]], boundaries: list[int]):
    def f(step: int) -> float:
        out = schedules[0](step)
        for b, s in zip(boundaries, schedules[1:], strict=True):
            if step >= b:
                out = s(step - b)
        return out

    return f


def optax_warmup_cosine(init: float, peak: float, warm: int, decay_steps: int, end: float):
    return optax_join(
        [optax_linear(init, peak, warm), optax_cosine_decay(peak, decay_steps - warm, end / peak)],
        [warm],
    )


@pytest.mark.parametrize(
    ("init", "warm", "decay_steps", "end"),
    [(0.0, 10, 100, 0.0), (1e-4, 5, 40, 1e-3), (0.01, 1, 9, 0.02)],
)
def test_warmup_cosine_matches_optax_warmup_cosine_decay(
    init: float, warm: int, decay_steps: int, end: float
) -> None:
    """optax warmup_cosine_decay_schedule(init, peak, W, decay_steps, end) is
    warmup(cosine(peak, end, steps=decay_steps - W), steps=W, start=init)."""
    peak = 0.1
    compare(
        lrkit.warmup(lrkit.cosine(peak, end, steps=decay_steps - warm), steps=warm, start=init),
        optax_warmup_cosine(init, peak, warm, decay_steps, end),
        decay_steps + 10,
    )


@pytest.mark.parametrize(("decay", "alpha"), [(50, 0.0), (17, 0.1)])
def test_cosine_matches_optax_cosine_decay(decay: int, alpha: float) -> None:
    """optax cosine_decay_schedule(init, decay_steps, alpha) is cosine(init, alpha * init,
    steps=decay_steps), held past decay_steps."""
    compare(
        lrkit.cosine(0.3, alpha * 0.3, steps=decay),
        optax_cosine_decay(0.3, decay, alpha),
        decay + 10,
    )


def test_sequence_with_boundaries_matches_optax_join_schedules() -> None:
    """sequence(schedules, boundaries=[...]) is optax join_schedules: absolute boundaries,
    each child's clock restarting at 0 at its boundary (and cut short by the next one)."""
    ref = optax_join(
        [optax_linear(0.0, 1.0, 10), optax_cosine_decay(1.0, 50, 0.1), optax_linear(0.5, 0.05, 20)],
        [10, 40],
    )
    s = lrkit.sequence(
        [
            lrkit.linear(0.0, 1.0, steps=10),
            lrkit.cosine(1.0, 0.1, steps=50),
            lrkit.linear(0.5, 0.05, steps=20),
        ],
        boundaries=[10, 40],
    )
    compare(s, ref, 80)


# ----------------------------------------------------------------------------- transformers
# src/transformers/optimization.py, _get_wsd_scheduler_lambda (multiplies the optimizer's lr):
#   t < W:          progress = t / max(1, W); factor = progress (linear warmup),
#                   factor * (1 - min_lr_ratio) + min_lr_ratio
#   W <= t < W + S: 1
#   t < W + S + D:  progress = (t - W - S) / max(1, D); factor = 1 - progress (linear),
#                   0.5 * (1 + cos(pi * 2 * num_cycles * progress)) (cosine, num_cycles = 0.5),
#                   1 - sqrt(progress) (1-sqrt); factor * (1 - min_lr_ratio) + min_lr_ratio
#   after:          min_lr_ratio
def hf_wsd(lr: float, warm: int, stable: int, decay: int, decay_type: str, ratio: float):
    def f(t: int) -> float:
        if t < warm:
            factor = t / max(1, warm)
            return lr * (factor * (1 - ratio) + ratio)
        if t < warm + stable:
            return lr
        if t < warm + stable + decay:
            p = (t - warm - stable) / max(1, decay)
            if decay_type == "linear":
                factor = 1 - p
            elif decay_type == "cosine":
                factor = 0.5 * (1 + math.cos(math.pi * 2 * 0.5 * p))
            else:
                factor = 1 - math.sqrt(p)
            return lr * (factor * (1 - ratio) + ratio)
        return lr * ratio

    return f


@pytest.mark.parametrize("decay_type", ["linear", "cosine", "1-sqrt"])
@pytest.mark.parametrize(
    ("warm", "stable", "decay", "ratio"), [(10, 50, 20, 0.0), (5, 20, 13, 0.1), (0, 7, 3, 0.0)]
)
def test_wsd_matches_transformers_get_wsd_schedule(
    warm: int, stable: int, decay: int, ratio: float, decay_type: str
) -> None:
    """wsd(peak, floor=r*peak, start=r*peak, W, S, D, decay) is transformers get_wsd_schedule
    (linear warmup) with min_lr_ratio=r, all three decay types."""
    lr = 0.3
    s = lrkit.wsd(
        lr,
        ratio * lr,
        warmup_steps=warm,
        stable_steps=stable,
        decay_steps=decay,
        decay=decay_type,
        start=ratio * lr,
    )
    compare(s, hf_wsd(lr, warm, stable, decay, decay_type, ratio), warm + stable + decay + 10)


# _get_inverse_sqrt_schedule_lr_lambda: t < W: t / max(1, W); otherwise
#   1 / sqrt((t + timescale - W) / timescale), timescale defaulting to W.
def hf_inverse_sqrt(lr: float, warm: int, timescale: int | None):
    timescale = timescale or warm

    def f(t: int) -> float:
        if t < warm:
            return lr * t / max(1, warm)
        return lr / math.sqrt((t + timescale - warm) / timescale)

    return f


@pytest.mark.parametrize(("warm", "timescale"), [(10, None), (4, 25), (100, 30)])
def test_warmup_inverse_sqrt_matches_transformers(warm: int, timescale: int | None) -> None:
    """transformers get_inverse_sqrt_schedule(W, timescale) is
    warmup(inverse_sqrt(peak, steps=timescale or W), steps=W)."""
    lr = 0.01
    s = lrkit.warmup(lrkit.inverse_sqrt(lr, steps=timescale or warm), steps=warm)
    compare(s, hf_inverse_sqrt(lr, warm, timescale), 300)


# _get_polynomial_decay_schedule_with_warmup_lr_lambda: t < W: t / max(1, W) * lr_init;
#   t > N: lr_end; else (lr_init - lr_end) * (1 - (t - W) / (N - W)) ** power + lr_end.
def hf_polynomial(lr_init: float, warm: int, total: int, lr_end: float, power: float):
    def f(t: int) -> float:
        if t < warm:
            return lr_init * t / max(1, warm)
        if t > total:
            return lr_end
        return (lr_init - lr_end) * (1 - (t - warm) / (total - warm)) ** power + lr_end

    return f


@pytest.mark.parametrize(
    ("warm", "total", "lr_end", "power"),
    [(10, 100, 1e-7, 1.0), (5, 50, 1e-3, 2.0), (3, 13, 0.0, 0.5)],
)
def test_warmup_polynomial_matches_transformers(
    warm: int, total: int, lr_end: float, power: float
) -> None:
    """transformers get_polynomial_decay_schedule_with_warmup(W, N, lr_end, power) is
    warmup(polynomial(lr, lr_end, steps=N - W, power), steps=W): N includes the warmup."""
    lr = 0.05
    s = lrkit.warmup(lrkit.polynomial(lr, lr_end, steps=total - warm, power=power), steps=warm)
    compare(s, hf_polynomial(lr, warm, total, lr_end, power), total + 10)


# _get_cosine_schedule_with_warmup_lr_lambda (num_cycles = 0.5): t < W: t / max(1, W);
#   progress = (t - W) / max(1, N - W); max(0, 0.5 * (1 + cos(pi * 2 * num_cycles * progress))).
# _get_linear_schedule_with_warmup_lr_lambda: t < W: t / max(1, W);
#   max(0, (N - t) / max(1, N - W)).
def hf_cosine(lr: float, warm: int, total: int):
    def f(t: int) -> float:
        if t < warm:
            return lr * t / max(1, warm)
        progress = (t - warm) / max(1, total - warm)
        return lr * max(0.0, 0.5 * (1 + math.cos(math.pi * 2 * 0.5 * progress)))

    return f


def hf_linear(lr: float, warm: int, total: int):
    def f(t: int) -> float:
        if t < warm:
            return lr * t / max(1, warm)
        return lr * max(0.0, (total - t) / max(1, total - warm))

    return f


@pytest.mark.parametrize(("warm", "total"), [(10, 100), (1, 20), (50, 60)])
def test_warmup_cosine_matches_transformers_cosine_with_warmup(warm: int, total: int) -> None:
    """transformers get_cosine_schedule_with_warmup(W, N) is warmup(cosine(lr, 0, steps=N - W),
    steps=W) for t <= N (past N transformers' cosine climbs again; lrkit holds 0)."""
    lr = 0.1
    s = lrkit.warmup(lrkit.cosine(lr, 0.0, steps=total - warm), steps=warm)
    compare(s, hf_cosine(lr, warm, total), total + 1)
    assert hf_cosine(lr, warm, total)(2 * total - warm) == pytest.approx(lr)  # transformers
    assert s(2 * total - warm) == 0.0  # lrkit holds


@pytest.mark.parametrize(("warm", "total"), [(10, 100), (1, 20), (0, 30)])
def test_warmup_linear_matches_transformers_linear_with_warmup(warm: int, total: int) -> None:
    """transformers get_linear_schedule_with_warmup(W, N) is warmup(linear(lr, 0, steps=N - W),
    steps=W) (or just the linear decay when W = 0), past N included."""
    lr = 0.1
    decay = lrkit.linear(lr, 0.0, steps=total - warm)
    s = lrkit.warmup(decay, steps=warm) if warm else decay
    compare(s, hf_linear(lr, warm, total), total + 10)


# ----------------------------------------------------------------------------- timm
# timm/scheduler/cosine_lr.py, CosineLRScheduler._get_lr with cycle_mul = 1, cycle_limit = 1:
#   t < warmup_t: warmup_lr_init + t * (base - warmup_lr_init) / warmup_t
#   else: t -= warmup_t if warmup_prefix; i = t // t_initial; t_curr = t - i * t_initial;
#         lr_min + 0.5 * (base - lr_min) * (1 + cos(pi * t_curr / t_initial)) if i < 1 else lr_min
def timm_cosine(base: float, t_initial: int, lr_min: float, warm: int, init: float, prefix: bool):
    def f(t: int) -> float:
        if t < warm:
            return init + t * (base - init) / warm
        if prefix:
            t = t - warm
        i = t // t_initial
        t_curr = t - i * t_initial
        if i < 1:
            return lr_min + 0.5 * (base - lr_min) * (1 + math.cos(math.pi * t_curr / t_initial))
        return lr_min

    return f


@pytest.mark.parametrize(("t_initial", "warm"), [(100, 10), (30, 5), (12, 1)])
def test_timm_cosine_with_warmup_prefix(t_initial: int, warm: int) -> None:
    """timm CosineLRScheduler(warmup_prefix=True) is
    warmup(cosine(base, lr_min, steps=t_initial), steps=warmup_t, start=warmup_lr_init)."""
    base, lr_min, init = 0.1, 1e-5, 1e-6
    s = lrkit.warmup(lrkit.cosine(base, lr_min, steps=t_initial), steps=warm, start=init)
    compare(s, timm_cosine(base, t_initial, lr_min, warm, init, True), t_initial + warm + 10)


@pytest.mark.parametrize(("t_initial", "warm"), [(100, 10), (30, 5), (12, 1)])
def test_timm_cosine_with_warmup_overlay(t_initial: int, warm: int) -> None:
    """timm CosineLRScheduler(warmup_prefix=False) (the default) lays the warmup over the first
    steps of the cosine: linear(init, base, steps=W) >> cosine(base, lr_min, steps=T).advance(W)."""
    base, lr_min, init = 0.1, 1e-5, 1e-6
    s = lrkit.linear(init, base, steps=warm) >> lrkit.cosine(base, lr_min, steps=t_initial).advance(
        warm
    )
    assert s.duration == t_initial
    compare(s, timm_cosine(base, t_initial, lr_min, warm, init, False), t_initial + 10)
