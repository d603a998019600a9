"""lrkit.torch.Monitor: what it records (checked against hand computations), when it reads the
device, the files it writes (CSV, JSON lines, TensorBoard, after a crash), and its diagnosis of
real tiny training runs."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import lrkit
from lrkit.diagnostics.io import read_log, read_rows
from lrkit.torch import Monitor, Scheduler


def _tiny(seed: int = 0) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    x = torch.randn(64, 4)
    y = (x[:, 0] > 0).long()
    return model, x, y


def _train(model, opt, mon, x, y, steps, *, log_after=True, sched=None) -> None:
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        if not log_after:
            mon.log(loss)
        opt.step()
        if log_after:
            mon.log(loss)
        if sched is not None:
            sched.step()
        opt.zero_grad()


def test_records_match_hand_computation() -> None:
    """Loss, lr, gradient norm and per-layer update ratio at a sampled step are what plain
    SGD's arithmetic gives (||Δw|| = lr * ||g||)."""
    model, x, y = _tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    mon = Monitor(model, opt, every=5)
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    opt.step()
    mon.log(loss)
    opt.zero_grad()
    (row,) = mon.rows()
    assert row["step"] == 0 and row["loss"] == pytest.approx(loss.item())
    assert row["lr"] == 0.1 and "momentum" in row
    total = math.sqrt(sum(float(g.double().pow(2).sum()) for g in grads.values()))
    assert row["grad_norm"] == pytest.approx(total, rel=1e-6)  # float32 norms
    for layer in ("0", "2"):
        dw = math.sqrt(
            sum(
                float((0.1 * grads[f"{layer}.{k}"]).double().pow(2).sum())
                for k in ("weight", "bias")
            )
        )
        w = math.sqrt(
            sum(float(p.detach().double().pow(2).sum()) for p in model[int(layer)].parameters())
        )
        assert row[f"ratio/{layer}"] == pytest.approx(dw / w, rel=1e-5)
    assert row["group_ratio/0"] > 0


def test_costly_statistics_are_sampled_at_a_growing_interval() -> None:
    """Loss and lr on every update; gradient norm and ratios on every update of the first 50,
    then ``min(k, max(1, k // 25))`` after each sampled update ``k``: every k-th at the end."""
    model, x, y = _tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    mon = Monitor(model, opt, every=4)
    _train(model, opt, mon, x, y, 160)
    rows = mon.rows()
    assert [r["step"] for r in rows] == list(range(160))
    assert all("loss" in r and r["lr"] == 0.05 and r["momentum"] == 0.9 for r in rows)
    sampled = [*range(50), *range(50, 75, 2), *range(76, 100, 3), *range(100, 160, 4)]
    assert [r["step"] for r in rows if "grad_norm" in r] == sampled
    assert [r["step"] for r in rows if "ratio/0" in r] == sampled
    # the cosine of a sampled update is measured at the next update (157 for the last, 156)
    assert [r["step"] for r in rows if "grad_update_cos" in r] == sampled


def test_grad_update_cos_matches_hand_computation() -> None:
    """``grad_update_cos`` at a sampled update k is cos(w_{k+1} - w_k, -g_{k+1}), per group
    and over all parameters."""
    model, x, y = _tiny()
    head = list(model[2].parameters())
    body = list(model[0].parameters())
    opt = torch.optim.Adam([{"params": body, "name": "body"}, {"params": head, "name": "head"}])
    mon = Monitor(model, opt, every=4)
    _train(model, opt, mon, x, y, 3)
    before = [p.detach().clone() for p in model.parameters()]
    _train(model, opt, mon, x, y, 1)  # update 3
    after = [p.detach().clone() for p in model.parameters()]
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    grads = [p.grad.detach().clone() for p in model.parameters()]
    opt.step()  # update 4: its pre-hook measures update 3's cosine
    mon.log(loss)
    opt.zero_grad()
    row = next(r for r in mon.rows() if r["step"] == 3)

    def cos(idx: list[int]) -> float:
        dot = sum(float(-(grads[i] * (after[i] - before[i])).double().sum()) for i in idx)
        gn = math.sqrt(sum(float(grads[i].double().pow(2).sum()) for i in idx))
        dn = math.sqrt(sum(float((after[i] - before[i]).double().pow(2).sum()) for i in idx))
        return dot / (gn * dn)

    assert row["grad_update_cos"] == pytest.approx(cos([0, 1, 2, 3]), rel=1e-4)
    assert row["grad_update_cos/body"] == pytest.approx(cos([0, 1]), rel=1e-4)
    assert row["grad_update_cos/head"] == pytest.approx(cos([2, 3]), rel=1e-4)


@pytest.mark.parametrize(("lr", "sign"), [(1e-4, 1), (1.9, -1)])
def test_grad_update_cos_says_whether_steps_stop_short_or_overshoot(lr: float, sign: int) -> None:
    """On least squares (curvature <= 1 per direction up to the data's spread) plain SGD at a
    tiny rate keeps going downhill (cosine near +1); near 2 / curvature it overshoots along
    the stiffest direction (negative)."""
    torch.manual_seed(0)
    x = torch.randn(256, 3) * torch.tensor([1.0, 0.3, 0.1])
    y = x @ torch.tensor([1.0, -2.0, 3.0])
    model = torch.nn.Linear(3, 1, bias=False)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    mon = Monitor(model, opt, every=5)
    for _ in range(60):
        loss = 0.5 * (model(x).squeeze(1) - y).pow(2).mean()
        loss.backward()
        opt.step()
        mon.log(loss)
        opt.zero_grad()
    cos = np.array([r["grad_update_cos"] for r in mon.rows() if "grad_update_cos" in r])
    assert len(cos) > 20
    assert sign * float(np.median(cos)) > 0.5


@pytest.mark.parametrize("log_after", [True, False])
def test_loss_goes_to_its_update_before_or_after_step(log_after: bool) -> None:
    """monitor.log(loss) called before or after optimizer.step() lands on the same row."""
    model, x, y = _tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    mon = Monitor(model, opt, every=3)
    torch.manual_seed(0)
    _train(model, opt, mon, x, y, 7, log_after=log_after)
    model2, _, _ = _tiny()
    opt2 = torch.optim.SGD(model2.parameters(), lr=0.05)
    expected = []
    for _ in range(7):
        loss = torch.nn.functional.cross_entropy(model2(x), y)
        expected.append(float(loss))
        loss.backward()
        opt2.step()
        opt2.zero_grad()
    assert [r["loss"] for r in mon.rows()] == pytest.approx(expected)


def test_micro_batches_are_averaged() -> None:
    """With gradient accumulation, several log() calls before one update give their mean."""
    model, _, _ = _tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    mon = Monitor(model, opt)
    for values in ((1.0, 3.0), (2.0, 4.0, 6.0)):
        for v in values:
            mon.log(torch.tensor(v))
        opt.step()
    assert [r["loss"] for r in mon.rows()] == [2.0, 4.0]


def test_no_host_read_between_flushes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Between reads (every k updates) the monitor never copies a tensor to the host: the
    loss and statistics stay on the device (here: item, float, int, bool, tolist, numpy and cpu
    raise)."""
    model, x, y = _tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    mon = Monitor(model, opt, every=1000)

    def boom(*a: object, **k: object) -> None:
        raise AssertionError("host read")

    for name in ("item", "__float__", "__int__", "__index__", "__bool__", "tolist", "numpy", "cpu"):
        monkeypatch.setattr(torch.Tensor, name, boom)
    _train(model, opt, mon, x, y, 12)
    monkeypatch.undo()
    rows = mon.rows()
    assert len(rows) == 12 and "grad_norm" in rows[0] and all("loss" in r for r in rows)


def test_groups_get_their_own_columns(tmp_path: Path) -> None:
    """Named param groups: lr, gradient norm and ratio per group, as CSV columns."""
    model, x, y = _tiny()
    opt = torch.optim.SGD(
        [
            {"params": model[0].parameters(), "name": "body"},
            {"params": model[2].parameters(), "name": "head", "lr": 0.5},
        ],
        lr=0.05,
    )
    path = tmp_path / "run.csv"
    with Monitor(model, opt, every=2, path=path) as mon:
        _train(model, opt, mon, x, y, 4)
    log = read_log(path)
    assert set(log.hparams["lr"]) == {"body", "head"}
    assert log.hparams["lr"]["head"][0] == 0.5
    assert set(log.group_grad_norm) == {"body", "head"} and set(log.group_ratio) == {"body", "head"}
    assert set(log.ratio) == {"0", "2"}


def test_csv_is_written_while_training(tmp_path: Path) -> None:
    """The CSV holds every update read so far (flushed to disk), before the run ends."""
    model, x, y = _tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    path = tmp_path / "run.csv"
    mon = Monitor(model, opt, every=5, path=path)
    _train(model, opt, mon, x, y, 12)
    mon.log_val(val_loss=0.5)
    partial = read_log(path)
    assert partial.steps.tolist() == list(range(12))
    assert partial.val_loss is not None and partial.val_steps.tolist() == [11]
    mon.close()


def test_csv_rejects_undeclared_metrics_jsonl_takes_any(tmp_path: Path) -> None:
    """A CSV's columns are fixed (val_metrics=); JSON lines take any validation metric."""
    model, x, y = _tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    mon = Monitor(model, opt, path=tmp_path / "a.csv")
    with pytest.raises(ValueError, match="has no column 'val_acc'"):
        mon.log_val(val_loss=1.0, acc=0.5)
    mon.close()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    mon = Monitor(model, opt, path=tmp_path / "b.jsonl")
    _train(model, opt, mon, x, y, 3)
    mon.log_val(val_loss=1.0, acc=0.5)
    mon.close()
    log = read_log(tmp_path / "b.jsonl")
    assert log.val["val_acc"].tolist() == [0.5] and len(log) == 3


@pytest.mark.slow
def test_nothing_lost_when_the_script_crashes(tmp_path: Path) -> None:
    """A training script that raises mid-run leaves every logged update in its CSV."""
    path = tmp_path / "crash.csv"
    script = textwrap.dedent(
        f"""
        import torch
        from lrkit.torch import Monitor
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        mon = Monitor(model, opt, every=20, path={str(path)!r})
        for k in range(1000):
            loss = model(torch.randn(8, 3)).pow(2).mean()
            loss.backward(); opt.step(); mon.log(loss); opt.zero_grad()
            if k == 46:
                raise RuntimeError("boom")
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode != 0 and "boom" in proc.stderr
    assert read_log(path).steps.tolist() == list(range(47))


def test_tensorboard_scalars_round_trip(tmp_path: Path) -> None:
    """Scalars written through torch.utils.tensorboard read back (EventAccumulator) equal."""
    pytest.importorskip("tensorboard")
    model, x, y = _tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    mon = Monitor(model, opt, every=4, tensorboard=tmp_path / "tb")
    _train(model, opt, mon, x, y, 9)
    mon.log_val(val_loss=0.7)
    mon.close()
    rows = mon.rows()
    log = read_log(tmp_path / "tb")
    assert log.steps.tolist() == list(range(9))
    assert log.loss == pytest.approx([r["loss"] for r in rows if "loss" in r], rel=1e-6)
    assert log.val_loss is not None and log.val_loss.tolist() == pytest.approx([0.7])
    assert "ratio/0" in read_rows(tmp_path / "tb")[0]


def test_close_removes_the_hooks() -> None:
    """After close() further updates are not recorded."""
    model, x, y = _tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    mon = Monitor(model, opt)
    _train(model, opt, mon, x, y, 2)
    mon.close()
    opt.step()
    assert len(mon.rows()) == 2


def test_arguments_are_validated() -> None:
    """Bad arguments fail at construction, naming the argument and value."""
    model, _, _ = _tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with pytest.raises(ValueError, match="Monitor: every must be a positive integer, got every=0"):
        Monitor(model, opt, every=0)
    with pytest.raises(TypeError, match=r"Monitor: model must be a torch\.nn\.Module, got int"):
        Monitor(3, opt)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Monitor: tensorboard must be a folder or a SummaryWriter"):
        Monitor(model, opt, tensorboard=3)
    with pytest.raises(ValueError, match=r"Monitor\.log_val: give at least one metric"):
        Monitor(model, opt).log_val()


# ---------------------------------------------------------------------------- real runs
def _digits_run(task, mult: float, steps: int = 300) -> Monitor:
    torch.manual_seed(0)
    model = task.model()
    opt = task.optimizer(model.parameters(), 0.1)
    peak = 0.1 * mult
    sched = Scheduler(opt, lr=lrkit.warmup(lrkit.cosine(peak, 0.0, steps=steps - 15), steps=15))
    mon = Monitor(model, opt)
    batches = task.batches(0)
    for k in range(steps):
        xb, yb = next(batches)
        loss = task.loss(model(xb), yb)
        loss.backward()
        opt.step()
        mon.log(loss)
        sched.step()
        opt.zero_grad()
        if (k + 1) % 15 == 0:
            mon.log_val(val_loss=task.evaluate(model)[0])
    return mon


@pytest.mark.slow
def test_healthy_digits_run_is_diagnosed_healthy(task, one_thread) -> None:
    """A warmup-cosine run of the digits MLP at a good peak rate raises no finding."""
    mon = _digits_run(task, 1.0)
    assert [f.kind for f in mon.diagnose()] == ["healthy"]


@pytest.mark.slow
@pytest.mark.parametrize("mult", [10.0, 30.0])
def test_far_too_high_rate_is_diagnosed(task, one_thread, mult: float) -> None:
    """The same run at 10x and 30x the rate: the top finding is lr_too_high or diverged, and
    its advice lowers the rate."""
    top = _digits_run(task, mult).diagnose()[0]
    assert top.kind in ("lr_too_high", "diverged"), top
    assert top.spec is not None
    assert max(lrkit.parse(top.spec)(np.arange(300))) < 0.1 * mult


def test_tensor_hyperparameters_stay_on_device_until_a_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A rate (and betas) kept as tensors, as capturable optimizers do, is copied on its
    device each update and read with the losses at the next flush: the monitor itself never
    reads a tensor to the host between flushes, and the rows hold plain floats."""
    model, x, y = _tiny()
    lr = torch.tensor(0.01)
    betas = (torch.tensor(0.9), torch.tensor(0.999))
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=betas)

    def boom(*a: object, **k: object) -> None:
        raise AssertionError("host read")

    def guarded(hook):  # type: ignore[no-untyped-def]
        def run(self: Monitor) -> None:
            with monkeypatch.context() as m:
                for name in ("item", "__float__", "tolist", "numpy", "cpu"):
                    m.setattr(torch.Tensor, name, boom)
                hook(self)

        return run

    # the optimizer itself may read its tensor rate; only the monitor's hooks are guarded
    monkeypatch.setattr(Monitor, "_pre", guarded(Monitor._pre))
    monkeypatch.setattr(Monitor, "_post", guarded(Monitor._post))
    mon = Monitor(model, opt, every=1000)
    _train(model, opt, mon, x, y, 3)
    lr.fill_(0.02)  # changed in place, as a scheduler does: later rows see it, earlier do not
    _train(model, opt, mon, x, y, 2)
    rows = mon.rows()
    assert [r["lr"] for r in rows] == pytest.approx([0.01] * 3 + [0.02] * 2)
    assert all(type(r["lr"]) is float and r["momentum"] == pytest.approx(0.9) for r in rows)


def test_cosine_survives_a_read_between_its_update_and_the_next() -> None:
    """log_val (a read) right after a sampled update: that update's cosine, measured at the
    next update, still reaches its row (as a late row merged on reading)."""
    model, x, y = _tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    mon = Monitor(model, opt, every=4)
    for k in range(30):
        _train(model, opt, mon, x, y, 1)
        if k % 10 == 9:
            mon.log_val(val_loss=1.0)
    log = mon.run_log()
    sampled = np.isfinite(log.grad_norm)
    has_cos = np.isfinite(log.grad_update_cos)
    assert np.array_equal(has_cos[:-1], sampled[:-1]) and sampled[9] and has_cos[9]


def test_skipped_step_does_not_shift_later_losses() -> None:
    """log() after optimizer.step(): an iteration whose step is skipped (as GradScaler does)
    logs a loss with no update; it is dropped, and every later update keeps its own loss."""
    model, x, y = _tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    mon = Monitor(model, opt, every=4)
    expected = []
    for k in range(8):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        if k != 3:  # iteration 3: no update
            opt.step()
            expected.append(float(loss.detach()))
        mon.log(loss + 100.0 * (k == 3))
        opt.zero_grad()
    rows = mon.rows()
    assert [r["loss"] for r in rows] == pytest.approx(expected)


def test_cosine_off_keeps_no_copy_and_close_frees_it() -> None:
    """cosine=False: no grad_update_cos column and no parameter copy kept between updates;
    with the default, close() drops the kept copy."""
    model, x, y = _tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    mon = Monitor(model, opt, every=4, cosine=False)
    _train(model, opt, mon, x, y, 5)
    assert mon._delta is None and all("grad_update_cos" not in r for r in mon.rows())
    mon2 = Monitor(model, torch.optim.SGD(model.parameters(), lr=0.05), every=4)
    _train(model, mon2.optimizer, mon2, x, y, 3)
    assert mon2._delta is not None
    mon2.close()
    assert mon2._delta is None


def test_cosine_follows_the_descent_direction_of_a_maximising_optimizer() -> None:
    """SGD(maximize=True) on -L at a tiny rate keeps going uphill on -L, i.e. downhill on L:
    the cosine is measured against +g there, so it reads near +1 as for minimising L."""
    torch.manual_seed(0)
    x = torch.randn(256, 3)
    y = x @ torch.tensor([1.0, -2.0, 3.0])
    model = torch.nn.Linear(3, 1, bias=False)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, maximize=True)
    mon = Monitor(model, opt, every=5)
    for _ in range(30):
        loss = -0.5 * (model(x).squeeze(1) - y).pow(2).mean()
        loss.backward()
        opt.step()
        mon.log(loss)
        opt.zero_grad()
    cos = np.array([r["grad_update_cos"] for r in mon.rows() if "grad_update_cos" in r])
    assert float(np.median(cos)) > 0.5


def test_cosines_are_nan_when_a_part_is_not_finite() -> None:
    """An infinite gradient norm or dot gives NaN, not 0."""
    from lrkit.torch._monitor_stats import Buckets, cosines

    b = Buckets([0], [0], 1, 1)
    assert math.isnan(cosines([math.inf, 1.0, 1.0], b)[0])
    assert math.isnan(cosines([1.0, math.nan, 1.0], b)[0])
    assert cosines([2.0, 1.0, 1.0], b)[0] == pytest.approx(0.5)
    assert cosines([2.0, 1.0, 1.0], b, [-1.0])[0] == pytest.approx(-0.5)


def test_sparse_gradients_are_measured() -> None:
    """nn.Embedding(sparse=True): the sparse gradient is measured like a dense one."""
    torch.manual_seed(0)
    emb = torch.nn.Embedding(20, 4, sparse=True)
    opt = torch.optim.SGD(emb.parameters(), lr=0.1)
    mon = Monitor(emb, opt, every=2)
    idx = torch.tensor([1, 2, 3])
    first_grad_norm = float(2 * emb.weight.detach()[idx].norm())
    for _ in range(3):
        loss = emb(idx).pow(2).sum()
        loss.backward()
        opt.step()
        mon.log(loss)
        opt.zero_grad()
    rows = mon.rows()
    assert rows[0]["grad_norm"] == pytest.approx(first_grad_norm, rel=1e-5)
    assert all(math.isfinite(r["grad_update_cos"]) for r in rows[:2])


def test_param_group_added_later_warns_once_and_log_val_after_close_raises() -> None:
    """A group added after the Monitor was made is not recorded: one warning says so. A
    validation value logged after close() is an error that says so."""
    model, x, y = _tiny()
    opt = torch.optim.SGD(model[0].parameters(), lr=0.05)
    mon = Monitor(model, opt, every=4)
    _train(model, opt, mon, x, y, 1)
    opt.add_param_group({"params": model[2].parameters()})
    with pytest.warns(UserWarning, match="param groups"):
        _train(model, opt, mon, x, y, 2)
    mon.close()
    with pytest.raises(RuntimeError, match="closed"):
        mon.log_val(val_loss=0.5)
