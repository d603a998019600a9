"""Named metrics: each controller receives only the metric it watches (issue 10, item 3)."""

from __future__ import annotations

import math
import warnings

import pytest

torch = pytest.importorskip("torch")

import lrkit  # noqa: E402
from lrkit.controllers import (  # noqa: E402
    ControllerWarning,
    Plateau,
    RestartOnPlateau,
    RestartOnShift,
    Restarts,
)
from lrkit.torch import Scheduler  # noqa: E402


def _opt() -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=1.0)


def _train_losses(n: int) -> list[float]:
    """A training loss that wobbles without improving (what a plateau would react to)."""
    return [1.0 + 0.2 * math.sin(1.7 * k) for k in range(n)]


def test_training_loss_for_the_shift_detector_no_longer_drives_the_plateau() -> None:
    """Plateau(val_loss) + RestartOnShift(train_loss): per-step training losses reach only the
    detector, so the plateau acts on the validation losses alone (no reductions here)."""
    plateau = Plateau(factor=0.5, patience=2, metric="val_loss")
    shift = RestartOnShift(burn_in=10, metric="train_loss")
    opt = _opt()
    sched = Scheduler(opt, lr=lrkit.constant(0.1), controllers=[plateau, shift])
    reference = Plateau(factor=0.5, patience=2)
    losses = _train_losses(70)
    for k, loss in enumerate(losses):
        opt.step()
        sched.step(train_loss=loss)
        if k % 10 == 9:
            val = 1.0 / (k + 1)  # improving every epoch
            sched.observe(val_loss=val)
            reference.observe(sched.last_epoch, val)
    assert plateau.num_evals == 7
    assert plateau.num_reductions == 0
    assert opt.param_groups[0]["lr"] == 0.1
    assert shift.detector.state_dict()["n"] == len(losses)
    ours, theirs = plateau.state_dict(), reference.state_dict()
    assert ours["settings"] | {"metric": None} == theirs["settings"]
    assert {k: v for k, v in ours.items() if k != "settings"} == {
        k: v for k, v in theirs.items() if k != "settings"
    }


def test_unnamed_metric_goes_only_to_controllers_that_name_none() -> None:
    """observe(x) keeps working as before named metrics: it feeds the metric=None controllers."""
    unnamed, named = Plateau(patience=0), Plateau(patience=0, metric="val_loss")
    sched = Scheduler(_opt(), lr=0.1, controllers=[unnamed, named])
    sched.observe(1.0)
    sched.step(2.0)
    sched.observe(torch.tensor(3.0))
    assert (unnamed.num_evals, named.num_evals) == (3, 0)
    sched.observe(1.0, val_loss=torch.tensor(5.0))
    assert (unnamed.num_evals, named.num_evals) == (4, 1)
    assert named.best == 5.0


def test_metric_names_lists_what_the_controllers_watch() -> None:
    """metric_names: the watched names in controller order, each once; Restarts watches none."""
    ctls = [
        RestartOnShift(metric="train_loss"),
        Plateau(metric="val_loss"),
        RestartOnPlateau(metric="val_loss"),
        Plateau(),
        Restarts(),
    ]
    sched = Scheduler(_opt(), lr=0.1, controllers=ctls)
    assert sched.metric_names == ("train_loss", "val_loss")
    assert [c.watches_metric for c in ctls] == [True, True, True, True, False]


def test_bad_metrics_are_refused_naming_the_problem() -> None:
    """A name nobody watches, an unnamed metric nobody takes, a non-number: TypeError."""
    sched = Scheduler(_opt(), lr=0.1, controllers=[Plateau(metric="val_loss")])
    with pytest.raises(TypeError, match=r"no controller watches metric 'val_los'.*'val_loss'"):
        sched.observe(val_los=1.0)
    with pytest.raises(TypeError, match=r"unnamed metric=1.0.*observe\(val_loss=\.\.\.\)"):
        sched.observe(1.0)
    with pytest.raises(TypeError, match=r"metric must be a number, got val_loss='x'"):
        sched.observe(val_loss="x")
    with pytest.raises(TypeError, match=r"give a metric"):
        sched.observe()
    with pytest.raises(TypeError, match=r"no controllers observe metrics"):
        Scheduler(_opt(), lr=0.1).observe(val_loss=1.0)


@pytest.mark.parametrize("name", ["", "to", "metric", 3])
def test_controller_metric_name_is_validated(name: object) -> None:
    """metric= must be None or a non-empty name that step() can take by keyword."""
    with pytest.raises(ValueError, match=r"Plateau: metric must be None or a metric name"):
        Plateau(metric=name)  # type: ignore[arg-type]


def test_starved_controller_warns_once_after_a_whole_epoch() -> None:
    """A watching controller fed nothing for more than steps_per_epoch steps warns once, saying
    how to feed it; the controller fed every epoch does not warn."""
    fed, starved = Plateau(metric="val_loss"), Plateau(metric="train_loss")
    opt = _opt()
    sched = Scheduler(opt, lr=0.1, controllers=[fed, starved], steps_per_epoch=10)
    assert sched.metric_wait == 10
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for k in range(40):
            opt.step()
            sched.step()
            if k % 10 == 9:
                sched.observe(val_loss=1.0)
    msgs = [str(w.message) for w in caught if issubclass(w.category, ControllerWarning)]
    assert len(msgs) == 1
    assert "Plateau(metric='train_loss') has received no metric for 11 steps" in msgs[0]
    assert "scheduler.observe(train_loss=value)" in msgs[0]


def test_metric_wait_defaults_and_can_be_turned_off() -> None:
    """Without steps_per_epoch the wait is 1000 steps; metric_wait=None silences the warning."""
    opt = _opt()
    sched = Scheduler(opt, lr=0.1, controllers=[Plateau()])
    assert sched.metric_wait == 1000
    sched.metric_wait = None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(1500):
            opt.step()
            sched.step()
    with pytest.raises(ValueError, match=r"metric_wait: must be None or an integer >= 1"):
        sched.metric_wait = 0


def test_set_clock_and_guard_controller_do_not_count_as_starved() -> None:
    """step(to=k) jumps do not count as unfed steps; controllers that use no metric never warn."""
    opt = _opt()
    sched = Scheduler(opt, lr=0.1, controllers=[Plateau(metric="val_loss"), Restarts()])
    sched.metric_wait = 5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sched.step(to=1000)
        for _ in range(5):
            opt.step()
            sched.step()


def test_metric_name_is_part_of_the_state() -> None:
    """A checkpoint of a controller watching another metric does not load (settings mismatch)."""
    a = Plateau(metric="val_loss")
    a.observe(0, 1.0)
    state = a.state_dict()
    assert state["settings"]["metric"] == "val_loss"
    with pytest.raises(
        ValueError, match=r"other settings \(metric: checkpoint 'val_loss', here 'val_acc'\)"
    ):
        Plateau(metric="val_acc").load_state_dict(state)
    b = Plateau(metric="val_loss")
    b.load_state_dict(state)
    assert b.best == 1.0
    sched = Scheduler(_opt(), lr=0.1, controllers=[Plateau(metric="val_loss")])
    other = Scheduler(_opt(), lr=0.1, controllers=[Plateau()])
    with pytest.raises(ValueError, match=r"metric: checkpoint 'val_loss', here None"):
        other.load_state_dict(sched.state_dict())
