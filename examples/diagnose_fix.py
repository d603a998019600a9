"""A broken run diagnosed by lrkit.torch.Monitor, then fixed by following its advice.

The first run trains scikit-learn's digits with a peak rate 10x too high. The Monitor (two
lines in the loop) records it and ``monitor.diagnose()`` says what is wrong, with evidence and a
schedule spec; the second run uses that spec and is diagnosed again. The log of each run is
also a CSV file that ``lrkit diagnose`` reads (and draws: ``lrkit diagnose broken.csv``).

Run: ``python examples/diagnose_fix.py`` (a few seconds on a CPU).
"""

import tempfile
from pathlib import Path

import torch

import lrkit
from lrkit.torch import Monitor, Scheduler
from lrkit.tune.tasks import load_task

torch.set_num_threads(1)
task = load_task("digits")  # an MLP 64-128-10, SGD with momentum, 300 steps of batch 32
folder = Path(tempfile.mkdtemp(prefix="lrkit-diagnose-"))


def train(schedule: lrkit.Schedule, log_path: Path) -> Monitor:
    """300 steps of the digits MLP under ``schedule``, recorded by a Monitor."""
    torch.manual_seed(0)
    model = task.model()
    opt = task.optimizer(model.parameters(), 0.1)
    sched = Scheduler(opt, lr=schedule)
    monitor = Monitor(model, opt, path=log_path)  # <- the Monitor
    batches = task.batches(seed=0)
    for step in range(task.steps):
        x, y = next(batches)
        loss = task.loss(model(x), y)
        loss.backward()
        opt.step()
        monitor.log(loss)  # <- one call per step
        sched.step()
        opt.zero_grad()
        if (step + 1) % 15 == 0:
            monitor.log_val(val_loss=task.evaluate(model)[0])  # <- one call per evaluation
    monitor.close()
    return monitor


broken = lrkit.warmup(lrkit.cosine(3.0, 0.0, steps=285), steps=15)
first = train(broken, folder / "broken.csv")
findings = first.diagnose()
print(f"run 1: {broken}")
for f in findings:
    print(f"  {f}")
top = findings[0]
assert top.kind in ("lr_too_high", "diverged") and top.spec is not None, top

fixed = lrkit.parse(top.spec)  # the advice, as a schedule
second = train(fixed, folder / "fixed.csv")
print(f"run 2: {fixed}")
for f in second.diagnose():
    print(f"  {f}")

val1 = first.run_log().val_loss
val2 = second.run_log().val_loss
assert val1 is not None and val2 is not None
print(f"final validation loss: {val1[-1]:.3f} (broken) -> {val2[-1]:.3f} (with the advice)")
print(f"logs: {folder}/broken.csv, {folder}/fixed.csv (try: lrkit diagnose {folder}/broken.csv)")
train_loss = second.run_log().loss
print(f"loss: start {train_loss[0]:.4f} -> final {train_loss[-10:].mean():.4f}")
