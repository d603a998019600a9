"""Kill-and-resume: a training run killed with SIGKILL at a random step and resumed from its last
checkpoint ends with the same weights (bitwise) and learning-rate history as an uninterrupted run.

This file is also the training script: ``python test_kill_resume.py DIR`` trains (resuming from
``DIR/ckpt.pt`` if present), checkpointing every few steps with an atomic write.
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

STEPS, EVERY = 40, 4


def _start(out: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, __file__, str(out)],
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


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_killed_run_resumes_to_the_same_result(tmp_path: Path) -> None:
    """SIGKILL at a random step, resume: same final weights and lr history as without a kill."""
    kill_at = random.Random(20240611).randrange(EVERY + 1, STEPS - EVERY)
    ref_dir, run_dir = tmp_path / "ref", tmp_path / "run"
    ref_dir.mkdir()
    run_dir.mkdir()
    _finish(_start(ref_dir))
    p = _start(run_dir)
    assert p.stdout is not None
    for line in p.stdout:
        if line.startswith("step ") and int(line.split()[1]) >= kill_at:
            p.send_signal(signal.SIGKILL)
            break
    p.wait(timeout=60)
    assert p.returncode == -signal.SIGKILL
    assert not (run_dir / "result.json").exists(), "the run finished before it was killed"
    assert (run_dir / "ckpt.pt").exists()
    log = _finish(_start(run_dir))
    assert "resumed at step" in log
    ref = json.loads((ref_dir / "result.json").read_text())
    got = json.loads((run_dir / "result.json").read_text())
    assert got["lrs"] == ref["lrs"]
    assert got["momenta"] == ref["momenta"]
    assert got["weights"] == ref["weights"]
    assert len(ref["lrs"]) == STEPS


# ----------------------------------------------------------------------------- script
def _train(out: Path) -> None:
    import torch

    import lrkit
    from lrkit.controllers import Plateau
    from lrkit.torch import Scheduler

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
    opt = torch.optim.SGD(model.parameters(), lr=1.0, momentum=0.9, weight_decay=1e-4)
    plateau = Plateau(factor=0.5, patience=2)
    sched = Scheduler(
        opt,
        lr=lrkit.warmup(lrkit.cosine(0.05, 1e-4, steps="85%"), steps="15%"),
        momentum=lrkit.linear(0.95, 0.85, steps="100%"),
        total_steps=STEPS,
        controllers=[plateau],
    )
    ckpt = out / "ckpt.pt"
    history: dict[str, list[float]] = {"lrs": [], "momenta": []}
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        history = state["history"]
        print(f"resumed at step {sched.last_epoch}", flush=True)
    w = torch.Generator().manual_seed(7)
    true_w = torch.randn(8, 1, generator=w)
    for step in range(sched.last_epoch, STEPS):
        gen = torch.Generator().manual_seed(step)
        x = torch.randn(64, 8, generator=gen)
        y = torch.tanh(x @ true_w)
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step(metric=loss.item())
        history["lrs"].append(opt.param_groups[0]["lr"])
        history["momenta"].append(opt.param_groups[0]["momentum"])
        if sched.last_epoch % EVERY == 0:
            tmp = out / "ckpt.pt.tmp"
            torch.save(
                {
                    "model": model.state_dict(),
                    "opt": opt.state_dict(),
                    "sched": sched.state_dict(),
                    "history": history,
                },
                tmp,
            )
            os.replace(tmp, ckpt)
        print(f"step {sched.last_epoch} loss {loss.item():.5f}", flush=True)
        time.sleep(0.02)  # stands for real work, so that the kill lands mid-run
    weights = [v for p in model.parameters() for v in p.detach().reshape(-1).tolist()]
    (out / "result.json").write_text(json.dumps({**history, "weights": weights}))


if __name__ == "__main__":
    _train(Path(sys.argv[1]))
