"""Kill-and-resume with the divergence guard: a real training script with a NaN loss and a x100
loss spike injected at random steps, SIGKILLed three times and resumed from its last checkpoint
each time, ends bitwise equal to the uninterrupted run (weights, lrs, every guard decision).

This file is also the training script: ``python test_kill_resume_guard.py DIR SEED`` trains
(resuming from ``DIR/ckpt.pt`` if present), checkpointing every few iterations atomically.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ITERS, EVERY, SEED = 48, 4, 20261202


def _faults(seed: int) -> dict[int, str]:
    """The iterations of the injected NaN and x100 spike (drawn from ``seed``)."""
    rng = random.Random(seed)
    nan_at, spike_at = rng.sample(range(12, ITERS - 6), 2)
    return {nan_at: "nan", spike_at: "spike"}


def _start(out: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, __file__, str(out), str(SEED)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def _finish(p: subprocess.Popen, timeout: float = 120.0) -> str:
    try:
        log = p.communicate(timeout=timeout)[0]
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, log
    return log


def _kill_at(p: subprocess.Popen, it: int) -> None:
    assert p.stdout is not None
    for line in p.stdout:
        if line.startswith("iter ") and int(line.split()[1]) >= it:
            p.send_signal(signal.SIGKILL)
            break
    p.wait(timeout=60)
    assert p.returncode == -signal.SIGKILL


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_guarded_run_killed_three_times_resumes_to_the_same_result(tmp_path: Path) -> None:
    """Three SIGKILLs at random iterations, each resumed from the last checkpoint: the same final
    weights, lr history and guard decisions (recoveries included) as without a kill."""
    rng = random.Random(SEED + 1)
    kills = sorted(rng.sample(range(EVERY + 1, ITERS - 2), 3))
    assert len(set(kills)) == 3  # each resume makes progress
    ref_dir, run_dir = tmp_path / "ref", tmp_path / "run"
    ref_dir.mkdir()
    run_dir.mkdir()
    ref_proc = _start(ref_dir)  # the uninterrupted run, beside the killed ones
    for it in kills:
        _kill_at(_start(run_dir), it)
        assert not (run_dir / "result.json").exists(), "the run finished before it was killed"
    log = _finish(_start(run_dir))
    ref_log = _finish(ref_proc)
    assert "resumed at iteration" in log
    ref = json.loads((ref_dir / "result.json").read_text())
    got = json.loads((run_dir / "result.json").read_text())
    assert [r["reason"] for r in ref["recoveries"]] == ["non-finite loss", "loss spike"] or [
        r["reason"] for r in ref["recoveries"]
    ] == ["loss spike", "non-finite loss"], ref_log
    assert got["recoveries"] == ref["recoveries"]
    assert got["decisions"] == ref["decisions"]
    assert got["weights"] == ref["weights"]
    assert len(ref["decisions"]) == ITERS


# ----------------------------------------------------------------------------- script
def _train(out: Path, seed: int) -> None:
    import torch

    import lrkit
    from lrkit.controllers import Plateau
    from lrkit.torch import Scheduler
    from lrkit.torch.guard import DivergenceGuard

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(8, 32), torch.nn.BatchNorm1d(32), torch.nn.ReLU(), torch.nn.Linear(32, 1)
    )
    opt = torch.optim.AdamW(model.parameters(), lr=1.0, weight_decay=1e-2)
    guard = DivergenceGuard(model, opt, snapshot_every=6, min_history=5, rewarm_steps=5)
    plateau = Plateau(factor=0.5, patience=3)
    sched = Scheduler(
        opt,
        lr=lrkit.warmup(lrkit.cosine(0.02, 1e-4, steps="85%"), steps="15%"),
        total_steps=ITERS,
        controllers=[plateau, guard.controller],
    )
    guard.attach(sched)
    ckpt = out / "ckpt.pt"
    it, decisions = 0, []
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        guard.load_state_dict(state["guard"])
        it, decisions = state["it"], state["decisions"]
        print(f"resumed at iteration {it}", flush=True)
    faults = _faults(seed)
    true_w = torch.randn(8, 1, generator=torch.Generator().manual_seed(7))
    while it < ITERS:
        gen = torch.Generator().manual_seed(it)
        x = torch.randn(64, 8, generator=gen)
        y = torch.tanh(x @ true_w)
        loss = torch.nn.functional.mse_loss(model(x), y)
        if faults.get(it) == "nan":
            loss = loss * float("nan")
        elif faults.get(it) == "spike":
            loss = loss * 100
        loss.backward()
        ok = guard.check(loss)
        if ok:
            opt.step()
            sched.step(metric=loss.item())
        opt.zero_grad()
        decisions.append([it, ok, sched.last_epoch, opt.param_groups[0]["lr"]])
        it += 1
        if it % EVERY == 0:
            tmp = out / "ckpt.pt.tmp"
            torch.save(
                {
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(),
                    "guard": guard.state_dict(),
                    "it": it,
                    "decisions": decisions,
                },
                tmp,
            )
            os.replace(tmp, ckpt)
        print(f"iter {it} ok {ok} loss {loss.item():.5f}", flush=True)
        time.sleep(0.02)  # stands for real work, so that the kill lands mid-run
    weights = [v for t in model.state_dict().values() for v in t.reshape(-1).tolist()]
    result = {"decisions": decisions, "recoveries": guard.recoveries, "weights": weights}
    (out / "result.json").write_text(json.dumps(result))


if __name__ == "__main__":
    _train(Path(sys.argv[1]), int(sys.argv[2]))
