"""``scale_for_batch`` and ``rescale``: rules, warmups, run length from a dataset, warnings, errors."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lrkit as L
from lrkit.schedules._scaling import LINEAR_RULE_LIMIT, BatchScalingWarning


@pytest.mark.parametrize(
    ("rule", "base", "batch", "peak"),
    [
        # Goyal et al. 2017, sec. 2.1: lr = 0.1 * batch / 256 for ResNet-50 (8k -> 3.2)
        ("linear", 256, 8192, 3.2),
        # Krizhevsky 2014 ("one weird trick"), Hoffer et al. 2017: lr * sqrt(batch ratio)
        ("sqrt", 256, 1024, 0.2),
        ("linear", 1024, 256, 0.025),
        ("sqrt", 1024, 256, 0.05),
    ],
)
def test_reference_peaks(rule: str, base: int, batch: int, peak: float) -> None:
    """The peak after scaling is the rule's: 0.1 * k (linear) or 0.1 * sqrt(k)."""
    s = L.warmup(L.cosine(0.1, steps=900), steps=100)
    b = L.scale_for_batch(s, base_batch=base, batch=batch, rule=rule)
    assert float(np.max(b(np.arange(0, 40_000.0)))) == pytest.approx(peak, rel=1e-12)


def test_dataset_size_keeps_the_epochs() -> None:
    """With dataset_size the run keeps its epochs: 10 epochs of 100 steps become 10 of 13."""
    s = L.warmup(L.cosine(0.1, 0.0, steps=900), steps=100)
    b = L.scale_for_batch(s, base_batch=100, batch=800, dataset_size=10_000, warmup_factor=1)
    assert b.duration == pytest.approx(10 * math.ceil(10_000 / 800))
    assert b(13) == pytest.approx(0.8)  # the warmup keeps its epoch (13 steps), peak 0.1 * 8
    assert b(b.duration) == pytest.approx(0.0, abs=1e-15)


def test_dataset_size_default_warmup_takes_a_larger_share() -> None:
    """The default warmup_factor (k) stretches the warmup, then the run is fit to its epochs."""
    s = L.warmup(L.cosine(0.1, 0.0, steps=900), steps=100)
    b = L.scale_for_batch(s, base_batch=100, batch=400, dataset_size=10_000)
    assert b.duration == pytest.approx(250)  # 10 epochs of 25 steps
    ramp = 400 * 250 / 1300  # the 400-step ramp of a 1300-step schedule, fit into 250 steps
    assert b(ramp) == pytest.approx(0.4)
    assert b(ramp / 2) == pytest.approx(0.2)


def test_explicit_epochs_set_the_new_run_length() -> None:
    """epochs= sets the run's length at the new batch (here 20 epochs of 25 steps)."""
    s = L.warmup(L.linear(0.1, 0.0, steps=900), steps=100)
    b = L.scale_for_batch(
        s, base_batch=100, batch=400, dataset_size=10_000, epochs=20, warmup_factor=1
    )
    assert b.duration == pytest.approx(500)


@given(
    st.integers(min_value=1, max_value=4096),
    st.integers(min_value=1, max_value=4096),
    st.sampled_from(["linear", "sqrt"]),
)
def test_peak_scales_by_the_rule(base: int, batch: int, rule: str) -> None:
    """For any pair of batches the schedule's maximum is multiplied by k exactly once."""
    s = L.warmup(L.constant(0.01), steps=10)
    k = batch / base if rule == "linear" else math.sqrt(batch / base)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BatchScalingWarning)
        b = L.scale_for_batch(s, base_batch=base, batch=batch, rule=rule)
    assert b(10**7) == pytest.approx(0.01 * k, rel=1e-12)
    assert b.duration == max(1, round(10 * max(k, 1.0)))


def test_warns_where_the_linear_rule_is_known_to_break() -> None:
    """Linear rule beyond 8k, or a >2x rate without warmup: BatchScalingWarning naming the source."""
    s = L.warmup(L.cosine(0.1, steps=900), steps=100)
    with pytest.warns(BatchScalingWarning, match=r"about 8k \(Goyal et al., 2017"):
        L.scale_for_batch(s, base_batch=256, batch=2 * LINEAR_RULE_LIMIT)
    with pytest.warns(BatchScalingWarning, match="no warmup"):
        L.scale_for_batch(L.cosine(0.1, steps=900), base_batch=256, batch=2048)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        L.scale_for_batch(s, base_batch=256, batch=LINEAR_RULE_LIMIT)
        L.scale_for_batch(s, base_batch=256, batch=4 * LINEAR_RULE_LIMIT, rule="sqrt")
        L.scale_for_batch(
            L.wsd(0.1, warmup_steps=10, stable_steps=80, decay_steps=10), base_batch=1, batch=16
        )


def test_hostile_schedules_are_type_errors_naming_the_argument() -> None:
    """A non-schedule first argument is a TypeError naming it, not an AttributeError."""
    with pytest.raises(TypeError, match=r"^rescale: schedule must be a Schedule, got schedule=0.5"):
        L.rescale(0.5, total_steps=100)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"^scale_for_batch: schedule must be a Schedule, got schedule=0.5"
    ):
        L.scale_for_batch(0.5, base_batch=1, batch=2)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="schedule must be a Schedule"):
        L.scale_for_batch("cosine(1, steps=3)", base_batch=1, batch=2)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": 3}, r"epochs needs dataset_size, got epochs=3"),
        ({"dataset_size": 0}, r"dataset_size must be a positive integer, got dataset_size=0"),
        ({"dataset_size": 10, "epochs": -1.0}, r"epochs must be .*got epochs=-1.0"),
        ({"dataset_size": 10, "epochs": math.nan}, r"epochs must be .*got epochs=nan"),
    ],
)
def test_errors_name_the_argument(kwargs: dict, message: str) -> None:
    """Bad run-length arguments raise ValueError naming the argument and value."""
    with pytest.raises(ValueError, match=message):
        L.scale_for_batch(L.linear(1.0, 0.0, steps=10), base_batch=1, batch=2, **kwargs)


def test_dataset_size_needs_a_finite_schedule() -> None:
    """A schedule that never settles cannot be rescaled from a dataset size."""
    with pytest.raises(ValueError, match="with dataset_size the schedule must have a positive"):
        L.scale_for_batch(L.inverse_sqrt(1.0, steps=3), base_batch=1, batch=2, dataset_size=10)
