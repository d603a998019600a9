"""The binding side of the controller protocol (/work/notes/controller_protocol.md):
clock remapping, scales, floors, metrics, and controllers' state in checkpoints."""

from __future__ import annotations

import json

import pytest
import torch
from torch.optim.lr_scheduler import ReduceLROnPlateau

import lrkit
from lrkit.torch import Scheduler


class Halver:
    """A minimal plateau rule: halve the value whenever the metric does not improve."""

    def __init__(self, target: str = "lr", floor: float | None = None) -> None:
        self.target, self.floor = target, floor
        self.best: float | None = None
        self.n = 0
        self.seen: list[tuple[int, float]] = []

    def clock(self, step: float) -> float:
        return step

    def scale(self, step: int) -> float:
        return 0.5**self.n

    def observe(self, step: int, metric: float) -> None:
        self.seen.append((step, metric))
        if self.best is None or metric < self.best:
            self.best = metric
        else:
            self.n += 1

    def state_dict(self) -> dict:
        return {"best": self.best, "n": self.n}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.n = state["best"], state["n"]


class Rewind:
    """Restart the schedule's clock at the step where a metric above ``limit`` is seen."""

    target = "lr"
    floor = None

    def __init__(self, limit: float = 10.0) -> None:
        self.limit, self.origin = limit, 0

    def clock(self, step: float) -> float:
        return step - self.origin

    def scale(self, step: int) -> float:
        return 1.0

    def observe(self, step: int, metric: float) -> None:
        if metric > self.limit:
            self.origin = step

    def state_dict(self) -> dict:
        return {"origin": self.origin}

    def load_state_dict(self, state: dict) -> None:
        self.origin = state["origin"]


def _opt(momentum: float = 0.9) -> torch.optim.Optimizer:
    torch.manual_seed(0)
    return torch.optim.SGD(torch.nn.Linear(3, 1).parameters(), lr=1.0, momentum=momentum)


SCHED = lrkit.cosine(1.0, 0.0, steps=100)


def test_scale_applies_from_the_step_that_observed() -> None:
    """step(metric) advances, shows the metric at the new step, and writes s(k) * scale."""
    opt = _opt()
    h = Halver()
    s = Scheduler(opt, lr=SCHED, controllers=[h])
    for k, loss in enumerate([3.0, 2.0, 2.5, 2.5, 1.0], start=1):
        opt.step()
        s.step(metric=loss)
        assert h.seen[-1] == (k, loss)
        assert opt.param_groups[0]["lr"] == SCHED(k) * 0.5**h.n
    assert h.n == 2


def test_observe_does_not_advance_and_applies_at_once() -> None:
    """observe(x) leaves the clock and rewrites the current values with the new scale."""
    opt = _opt()
    h = Halver()
    s = Scheduler(opt, lr=SCHED, controllers=[h])
    s.step(to=10)
    s.observe(1.0)
    s.observe(torch.tensor(2.0))
    assert s.last_epoch == 10 and h.seen == [(10, 1.0), (10, 2.0)]
    assert opt.param_groups[0]["lr"] == SCHED(10) * 0.5


def test_clocks_compose_in_order_and_scales_multiply() -> None:
    """c = clock_2(clock_1(k)); v = s(c) * scale_1(k) * scale_2(k); floors take the max."""
    opt = _opt()
    r, h = Rewind(limit=10.0), Halver(floor=0.3)
    s = Scheduler(opt, lr=SCHED, controllers=[r, h])
    s.step(to=40)
    s.observe(20.0)  # rewind at 40 and first metric for h
    s.step(to=45)
    assert opt.param_groups[0]["lr"] == SCHED(5)
    s.observe(25.0)  # rewinds at 45; h: no improvement -> half
    s.step(to=60)
    assert opt.param_groups[0]["lr"] == pytest.approx(SCHED(15) * 0.5, rel=1e-15)
    s.step(to=98)
    h.n = 5
    s.observe(1.0)
    assert opt.param_groups[0]["lr"] == 0.3  # SCHED(53) / 32 < floor


def test_controller_only_touches_its_target() -> None:
    """A momentum controller leaves lr alone, and the lr schedule is not scaled by it."""
    opt = _opt()
    h = Halver(target="momentum")
    mom = lrkit.constant(0.9)
    s = Scheduler(opt, lr=SCHED, momentum=mom, controllers=[h])
    s.step(to=3)
    s.observe(1.0)
    s.observe(1.0)
    assert opt.param_groups[0]["momentum"] == 0.45
    assert opt.param_groups[0]["lr"] == SCHED(3)


def test_controller_state_round_trips_through_checkpoint() -> None:
    """Controllers' states are in state_dict['controllers'] and restore the same decisions."""
    losses = [5.0, 4.0, 4.5, 3.0, 3.5, 3.6, 2.0, 2.1, 2.2, 2.3]
    opt = _opt()
    s = Scheduler(opt, lr=SCHED, controllers=[Halver()])
    full = []
    for loss in losses:
        opt.step()
        s.step(loss)
        full.append(opt.param_groups[0]["lr"])
    opt1 = _opt()
    s1 = Scheduler(opt1, lr=SCHED, controllers=[Halver()])
    for loss in losses[:5]:
        opt1.step()
        s1.step(loss)
    state = json.loads(json.dumps(s1.state_dict()))
    assert state["controllers"] == [{"best": 3.0, "n": 2}]
    opt2 = _opt()
    s2 = Scheduler(opt2, lr=SCHED, controllers=[Halver()])
    s2.load_state_dict(state)
    rest = []
    for loss in losses[5:]:
        opt2.step()
        s2.step(loss)
        rest.append(opt2.param_groups[0]["lr"])
    assert rest == full[5:]


def test_real_plateau_controller_matches_torch_reduce_on_plateau() -> None:
    """lrkit.controllers.Plateau through the binding equals torch's ReduceLROnPlateau."""
    from lrkit.controllers import Plateau

    losses = [1.0, 0.9, 0.91, 0.92, 0.93, 0.8, 0.81, 0.82, 0.83, 0.84, 0.85, 0.86]
    opt_a, opt_b = _opt(), _opt()
    opt_a.param_groups[0]["lr"] = 0.1
    ref = ReduceLROnPlateau(opt_a, factor=0.5, patience=2, min_lr=0.02)
    s = Scheduler(opt_b, lr=0.1, controllers=[Plateau(factor=0.5, patience=2, floor=0.02)])
    for loss in losses:
        ref.step(loss)
        s.observe(loss)
        assert opt_b.param_groups[0]["lr"] == pytest.approx(opt_a.param_groups[0]["lr"], rel=1e-12)
    assert opt_b.param_groups[0]["lr"] < 0.1


def test_protocol_errors() -> None:
    """A metric without controllers, a controller for an undriven key, or a bad object fail."""
    opt = _opt()
    s = Scheduler(opt, lr=SCHED)
    with pytest.raises(TypeError, match=r"got metric=1.0 but no controllers"):
        s.step(1.0)
    with pytest.raises(ValueError, match=r"targets 'momentum', which has no schedule here"):
        Scheduler(opt, lr=SCHED, controllers=[Halver(target="momentum")])
    with pytest.raises(TypeError, match=r"controllers\[0\] = .* lacks \['target'"):
        Scheduler(opt, lr=SCHED, controllers=[object()])
    s2 = Scheduler(opt, lr=SCHED, controllers=[Halver()])
    with pytest.raises(ValueError, match=r"has 0 controller states but this scheduler has 1"):
        s2.load_state_dict(s.state_dict())


class ResetOnSpike:
    """Ask for an optimizer reset of group 1 when the metric exceeds ``limit``."""

    target = "lr"
    floor = None

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self._events: list[dict] = []

    def clock(self, step: float) -> float:
        return step

    def scale(self, step: int) -> float:
        return 1.0

    def observe(self, step: int, metric: float) -> None:
        if metric > self.limit:
            self._events.append(
                {"kind": "spike", "step": step, "reset_optimizer": True, "groups": [1]}
            )

    def pop_events(self) -> list[dict]:
        out, self._events = self._events, []
        return out

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def test_events_are_drained_and_optimizer_reset_applied() -> None:
    """An event asking for reset_optimizer drops Adam's state of the named groups only."""
    a, b = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.Adam([{"params": [a]}, {"params": [b]}], lr=0.1)
    s = Scheduler(opt, lr=0.1, controllers=[ResetOnSpike(limit=5.0)])
    for metric in (1.0, 2.0):
        (a.sum() + b.sum()).backward()
        opt.step()
        s.step(metric)
    assert s.last_events == [] and b in opt.state
    (a.sum() + b.sum()).backward()
    opt.step()
    s.step(9.0)
    assert [e["kind"] for e in s.last_events] == ["spike"]
    assert a in opt.state and b not in opt.state


def test_values_at_preview_does_not_move_a_later_restart() -> None:
    """Previewing future values does not make the controllers think that step was reached."""
    opt = _opt()
    r = lrkit.controllers.Restarts()
    s = Scheduler(opt, lr=SCHED, controllers=[r])
    for _ in range(10):
        opt.step()
        s.step()
    s.values_at(90)
    _ = s.base_lrs
    r.restart(to=0)
    opt.step()
    s.step()
    assert r.last_restart_step == 11
    assert opt.param_groups[0]["lr"] == SCHED(0)
