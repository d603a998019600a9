"""The compat ReduceLROnPlateau as frameworks and resume code use torch's (issue 10, item 6)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from lrkit.torch import compat as C  # noqa: E402

T = torch.optim.lr_scheduler
METRICS = [1.0, 0.9, 0.95, 0.95, 0.95, 0.96, 0.97, 0.8, 0.85, 0.86, 0.9, 0.91, 0.92, 0.93]


def _opt(lr: float = 1.0) -> torch.optim.Optimizer:
    p = torch.nn.Parameter(torch.zeros(2))
    q = torch.nn.Parameter(torch.zeros(2))
    return torch.optim.SGD([{"params": [p]}, {"params": [q], "lr": 0.5 * lr}], lr=lr)


def test_is_an_instance_of_torchs_reduce_lr_on_plateau() -> None:
    """isinstance(..., torch ReduceLROnPlateau): Lightning then passes it the monitored metric."""
    s = C.ReduceLROnPlateau(_opt())
    assert isinstance(s, T.ReduceLROnPlateau)
    assert isinstance(s, T.LRScheduler)


@pytest.mark.parametrize("cls", [C.ReduceLROnPlateau, T.ReduceLROnPlateau])
def test_loads_after_the_optimizer_state_was_loaded_first(cls: type) -> None:
    """Optimizer state loaded, then the scheduler built and loaded: same rates as never stopped,
    and as torch's in the same sequence (it used to refuse the load: other base rates)."""
    args = {"factor": 0.5, "patience": 1, "min_lr": [0.0, 0.1]}
    ref_opt = _opt()
    ref = cls(ref_opt, **args)
    opt = _opt()
    sched = cls(opt, **args)
    for m in METRICS[:7]:
        ref.step(m)
        sched.step(m)
    opt_state, sched_state = opt.state_dict(), sched.state_dict()
    assert opt.param_groups[0]["lr"] < 1.0
    new_opt = _opt()
    new_opt.load_state_dict(opt_state)
    new = cls(new_opt)  # built on the reduced rates, with default settings
    new.load_state_dict(sched_state)
    for m in METRICS[7:]:
        ref.step(m)
        new.step(m)
        assert [g["lr"] for g in new_opt.param_groups] == [g["lr"] for g in ref_opt.param_groups]
    assert (new.factor, new.patience, new.min_lrs) == (0.5, 1, [0.0, 0.1])


def test_load_restores_mode_factor_patience_and_the_rest() -> None:
    """load_state_dict adopts the checkpoint's settings, as torch's does (into a default one)."""
    settings = {
        "mode": "max",
        "factor": 0.25,
        "patience": 2,
        "threshold": 0.01,
        "threshold_mode": "abs",
        "cooldown": 1,
        "min_lr": 0.05,
        "eps": 1e-6,
    }
    src_t, src_c = T.ReduceLROnPlateau(_opt(), **settings), C.ReduceLROnPlateau(_opt(), **settings)
    for m in METRICS[:5]:
        src_t.step(-m)
        src_c.step(-m)
    dst_t_opt, dst_c_opt = _opt(), _opt()
    dst_t, dst_c = T.ReduceLROnPlateau(dst_t_opt), C.ReduceLROnPlateau(dst_c_opt)
    dst_t.load_state_dict(src_t.state_dict())
    dst_c.load_state_dict(src_c.state_dict())
    for name in ("mode", "factor", "patience", "threshold", "threshold_mode", "cooldown", "eps"):
        assert getattr(dst_c, name) == getattr(dst_t, name) == settings[name], name
    assert dst_c.min_lrs == dst_t.min_lrs == [0.05, 0.05]
    assert (dst_c.best, dst_c.num_bad_epochs) == (dst_t.best, dst_t.num_bad_epochs)
    # the default-built torch scheduler kept its optimizer's rates; feed both the same metrics
    for g_t, g_c in zip(dst_t_opt.param_groups, dst_c_opt.param_groups, strict=True):
        g_t["lr"] = g_c["lr"]
    for m in METRICS[5:]:
        dst_t.step(-m)
        dst_c.step(-m)
        assert [g["lr"] for g in dst_c_opt.param_groups] == pytest.approx(
            [g["lr"] for g in dst_t_opt.param_groups], rel=1e-12
        )


def test_a_refused_load_changes_nothing() -> None:
    """A checkpoint with invalid settings raises and leaves the scheduler and the rates alone."""
    opt = _opt()
    s = C.ReduceLROnPlateau(opt, factor=0.5, patience=0)
    s.step(1.0)
    s.step(1.0)
    before = (s.state_dict(), [g["lr"] for g in opt.param_groups])
    bad = C.ReduceLROnPlateau(_opt(), factor=0.5, patience=0).state_dict()
    bad["plateau"]["factor"] = 2.0
    with pytest.raises(ValueError, match=r"factor must be < 1.0, got factor=2.0"):
        s.load_state_dict(bad)
    assert (s.state_dict(), [g["lr"] for g in opt.param_groups]) == before
