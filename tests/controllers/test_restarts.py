"""Restarts, bumps, restart-on-plateau and restart-on-shift: values, detection, state, errors."""

from __future__ import annotations

import json
import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

import lrkit
from lrkit.controllers import Cusum, PageHinkley, RestartOnPlateau, RestartOnShift, Restarts


def _value(schedule, ctls, k):
    """The protocol's formula, written out: clock chain, product of scales, max of floors."""
    c = k
    for ctl in ctls:
        c = ctl.clock(c)
    v = schedule(c) * math.prod(ctl.scale(k) for ctl in ctls)
    floors = [ctl.floor for ctl in ctls if ctl.floor is not None]
    return max(v, max(floors)) if floors else v


def test_restart_rewinds_the_clock_with_lower_peak_and_slower_decay():
    """After restart(to, peak_factor, stretch) at a, value(k) = p * s(to + (k - a) / r)."""
    s = lrkit.warmup(lrkit.cosine(1.0, 0.0, steps=90), steps=10)
    r = Restarts()
    r.restart(to=5, at=60, peak_factor=0.5, stretch=2.0)
    for k in range(60):
        assert _value(s, [r], k) == s(k)
    for k in range(60, 200):
        assert _value(s, [r], k) == pytest.approx(0.5 * s(5 + (k - 60) / 2.0), abs=1e-15)


def test_restart_defaults_to_the_next_step_computed():
    """restart() without at= acts from one step after the last step the controller was shown."""
    r = Restarts()
    for k in range(7):
        r.clock(k)
        r.scale(k)
    r.restart(to=0)
    assert r.last_restart_step == 7 and r.clock(6) == 6 and r.clock(7) == 0


def test_bump_multiplies_then_decays_back_to_one():
    """bump(factor, steps) multiplies by factor at its start and by 1 from start + steps on."""
    r = Restarts()
    r.bump(factor=3.0, steps=10, at=20, shape="linear")
    assert [r.scale(k) for k in (19, 20, 25, 30, 40)] == pytest.approx([1, 3, 2, 1, 1])
    r.bump(factor=2.0, steps=4, at=22)  # overlapping bumps multiply
    assert r.scale(22) == pytest.approx((1 + 2 * 0.8) * 2.0)


def test_restart_and_bump_events_carry_reset_requests():
    """Each restart/bump leaves an event; reset_optimizer and groups are carried through."""
    r = Restarts(reset_optimizer=True, groups=[1])
    r.restart(to=0, at=3)
    r.bump(at=5, reset_optimizer=False)
    events = r.pop_events()
    assert [(e["kind"], e["step"], e["reset_optimizer"], e["groups"]) for e in events] == [
        ("restart", 3, True, [1]),
        ("bump", 5, False, [1]),
    ]


def test_restart_on_plateau_restarts_and_rejudges():
    """A plateau triggers a restart; the best is forgotten; peak_decay lowers later peaks."""
    r = RestartOnPlateau(patience=2, threshold=0.0, peak_factor=0.8, peak_decay=0.5, to=0)
    seq = [1.0, 0.9, 0.9, 0.9, 0.9, 2.0, 1.9, 1.9, 1.9, 1.9]
    for k, m in enumerate(seq):
        r.observe(k, m)
    assert r.num_restarts == 2
    assert [x[0] for x in r.restarts] == [4, 9]
    assert r.scale(5) == 0.8 and r.scale(9) == 0.4 and r.clock(12) == 3.0


def test_restart_on_plateau_max_restarts():
    """After max_restarts the controller stops restarting."""
    r = RestartOnPlateau(patience=0, max_restarts=1)
    for k in range(10):
        r.observe(k, 1.0)
    assert r.num_restarts == 1


@given(st.lists(st.floats(0.0, 3.0), min_size=1, max_size=60), st.integers(0, 60))
def test_resume_restart_on_plateau_equals_uninterrupted(metrics, cut):
    """RestartOnPlateau resumed from a JSON copy of its state decides as the original."""
    kw = dict(patience=2, cooldown=1, to=3, stretch=2.0, peak_decay=0.5)
    a, b = RestartOnPlateau(**kw), RestartOnPlateau(**kw)
    cut = min(cut, len(metrics))
    for k in range(cut):
        a.observe(k, metrics[k])
    b.load_state_dict(json.loads(json.dumps(a.state_dict(), allow_nan=False)))
    for k in range(cut, len(metrics)):
        a.observe(k, metrics[k])
        b.observe(k, metrics[k])
        assert (a.clock(k), a.scale(k)) == (b.clock(k), b.scale(k))


def _shifting_losses(seed, n=400, shift_at=250):
    """A noisy, decaying training loss that jumps up and stays up at ``shift_at``."""
    rnd = random.Random(seed)
    out = []
    for k in range(n):
        base = 0.2 + 0.8 * math.exp(-k / 60)
        if k >= shift_at:
            base = 0.2 + 0.8 * math.exp(-(k - shift_at) / 60) + 0.1
        out.append(base * (1 + 0.1 * rnd.gauss(0, 1)))
    return out


@pytest.mark.parametrize("detector", ["cusum", "page_hinkley"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shift_detectors_fire_soon_after_the_shift_and_not_before(detector, seed):
    """On a decaying noisy loss that jumps at step 250, the restart comes within 10 steps of it
    and there is no false alarm before."""
    r = RestartOnShift(detector, to=0)
    for k, m in enumerate(_shifting_losses(seed)):
        r.observe(k, m)
    assert r.shift_steps, "the shift was missed"
    assert 250 <= r.shift_steps[0] <= 260
    assert r.num_restarts >= 1 and r.last_restart_step == r.shift_steps[0]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("cls", [Cusum, PageHinkley])
def test_detectors_are_quiet_on_a_stationary_noisy_stream(cls, seed):
    """With default settings, no alarm on 2000 draws of a stationary noisy loss."""
    rnd = random.Random(100 + seed)
    d = cls()
    assert not any(d.update(1.0 + 0.1 * rnd.gauss(0, 1)) for _ in range(2000))


def test_restart_on_shift_state_round_trip():
    """RestartOnShift resumed mid-stream from JSON state restarts at the same steps."""
    losses = _shifting_losses(3)
    a, b = RestartOnShift(), RestartOnShift()
    for k, m in enumerate(losses[:240]):
        a.observe(k, m)
    b.load_state_dict(json.loads(json.dumps(a.state_dict(), allow_nan=False)))
    for k, m in enumerate(losses[240:], start=240):
        a.observe(k, m)
        b.observe(k, m)
    assert a.shift_steps == b.shift_steps and a.shift_steps
    assert a.state_dict() == b.state_dict()


def test_restart_on_shift_skips_non_finite_loss():
    """A NaN loss warns and neither feeds the detector nor triggers a restart."""
    r = RestartOnShift(burn_in=3)
    for k in range(5):
        r.observe(k, 1.0)
    with pytest.warns(UserWarning, match="non-finite"):
        r.observe(5, float("nan"))
    assert r.detector.n == 5 and r.num_restarts == 0


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: Restarts(target="l r"), "target='l r'"),
        (lambda: Restarts(floor=-1), "floor=-1"),
        (lambda: Restarts(groups="0"), "groups='0'"),
        (lambda: Restarts().restart(to=-1), "Restarts.restart: to must be >= 0, got to=-1"),
        (lambda: Restarts().restart(stretch=0), "stretch=0"),
        (lambda: Restarts().restart(peak_factor=-1), "peak_factor=-1"),
        (lambda: Restarts().restart(at=-2), "at=-2"),
        (lambda: Restarts().bump(steps=0), "Restarts.bump: steps must be an integer >= 1"),
        (lambda: Restarts().bump(factor=0), "factor=0"),
        (lambda: Restarts().bump(shape="exp"), "shape='exp'"),
        (lambda: RestartOnPlateau(peak_decay=1.5), "peak_decay=1.5"),
        (lambda: RestartOnPlateau(max_restarts=-1), "max_restarts=-1"),
        (lambda: RestartOnPlateau(patience=-1), "patience=-1"),
        (lambda: RestartOnShift("adwin"), "detector='adwin'"),
        (lambda: RestartOnShift(threshold=0), "RestartOnShift: threshold must be > 0"),
        (lambda: RestartOnShift("page_hinkley", drift=-1), "RestartOnShift: drift must be >= 0"),
        (lambda: RestartOnShift(alpha=0), "alpha=0"),
        (lambda: RestartOnShift(burn_in=0), "burn_in=0"),
        (lambda: RestartOnShift(min_interval=-1), "min_interval=-1"),
    ],
)
def test_bad_arguments_raise_naming_argument_and_value(call, match):
    """Bad arguments raise ValueError/TypeError naming the argument and its value."""
    with pytest.raises((ValueError, TypeError), match=match):
        call()
