"""Where trials train (--device): default CUDA when available else CPU, a task may name its
device, each trial's model and data are moved there, and the device is part of the run key.
Runs on the CPU here; on a machine with CUDA the parametrised test also trains there."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lrkit.cli import main
from lrkit.tune._runs import run_key, train_run
from lrkit.tune.candidates import builtin_schedule
from lrkit.tune.search import compare
from lrkit.tune.tasks import Task, resolve_device

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


class _Watch(nn.Module):
    """A linear model that records the device of every input it sees."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 2)
        self.seen: set[str] = set()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Record x's device type, then the linear map (fails if x and weights differ)."""
        self.seen.add(x.device.type)
        return self.lin(x)


def _task(device=None):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    y = (x[:, 0] > 0).long()
    made: list[_Watch] = []

    def model():
        made.append(_Watch())
        return made[-1]

    task = Task(
        "watch",
        model,
        torch.optim.SGD,
        nn.functional.cross_entropy,
        (x, y),
        (x, y),
        batch_size=16,
        steps=12,
        accuracy=True,
        device=device,
    )
    return task, made


def test_default_device_is_cuda_when_available_else_cpu():
    """None resolves to cuda exactly when CUDA is available."""
    assert resolve_device(None) == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("device", DEVICES)
def test_trial_moves_model_and_data_to_its_device(device):
    """Every batch and the validation data reach the model on the trial's device."""
    task, made = _task()
    res = train_run(task, builtin_schedule("constant", 0.1, 12), 0, 12, device)
    assert made[-1].seen == {torch.device(device).type}
    assert not res.diverged


def test_task_names_its_device_and_compare_uses_it():
    """A task's own device is used when compare is not told one; compare's overrides it. The
    task names torch's 'meta' device (no data, so training stops at the first read), which
    tells the two apart on a machine without CUDA, where the default is the CPU."""
    settings = dict(
        peak=0.1, steps=12, seeds=1, schedules=["constant"], refine=False, search="grid"
    )
    task, made = _task(device="meta")
    with pytest.raises(RuntimeError, match="meta"):
        compare(task, progress=False, **settings)
    assert made[-1].seen == {"meta"}
    task, made = _task(device="meta")
    comp = compare(task, progress=False, device="cpu", **settings)
    assert comp.device == "cpu" and made[-1].seen == {"cpu"}
    assert comp.to_dict()["device"] == "cpu"


def test_bad_or_absent_devices_fail_before_training():
    """A string that is no device, or CUDA where there is none, fails when the settings are
    built, naming the argument."""
    with pytest.raises(
        ValueError, match=r"device must be e\.g\. 'cpu' or 'cuda', got device='warp'"
    ):
        compare("digits", peak=0.1, device="warp")
    with pytest.raises(ValueError, match="task 'watch': device must be"):
        _task(device="warp")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device 'cuda' is not available here"):
            compare("digits", peak=0.1, device="cuda")


def test_device_is_part_of_the_run_key():
    """A run made on another device is not reused on resume (numbers differ across devices)."""
    cand = builtin_schedule("cosine", 0.1, 20)
    assert run_key("t", cand, 0, 20, "f", "cpu") != run_key("t", cand, 0, 20, "f", "cuda")


def test_cli_bad_device_is_one_line(tmp_path, capsys):
    """lrkit compare --device warp exits 2 with the message, before any training."""
    assert main(["compare", "--peak", "0.1", "--device", "warp", "-o", str(tmp_path)]) == 2
    assert "device must be" in capsys.readouterr().err
