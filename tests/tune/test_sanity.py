"""Sanity a user can rely on: runs at chance level or no better than their start count as
diverged, nothing diverged is recommended, per-token accuracy, "n/a" for one seed, and a
warning for a spec written for another run length."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lrkit.tune import report, summary
from lrkit.tune.candidates import builtin_schedule, length_notes
from lrkit.tune.records import SummaryRow
from lrkit.tune.search import compare, train_run
from lrkit.tune.tasks import Task

pytestmark = pytest.mark.usefixtures("one_thread")


def test_huge_peak_recommends_nothing_and_suggests_lower():
    """--peak 1e6: every run is diverged (non-finite, worse than its start or at chance), so
    nothing is recommended and the reasoning points to a lower range."""
    comp = compare(
        "digits",
        peak=1e6,
        steps=30,
        seeds=1,
        schedules=["constant", "cosine"],
        progress=False,
        search="grid",
    )
    assert all(r.diverged and r.reason for r in comp.runs)
    assert comp.recommendation == "" and comp.recommended_spec == ""
    assert "none is recommended" in comp.reasoning and "--peak 1e+05" in comp.reasoning


def test_run_that_learns_nothing_counts_as_diverged(task):
    """A rate too small to move the model leaves it at chance level: diverged, with a reason;
    a sensible rate is not."""
    dead = train_run(task, builtin_schedule("constant", 1e-9, 20), 0, 20)
    assert dead.diverged and math.isinf(dead.final_val_loss)
    assert "chance level" in dead.reason or "initial model" in dead.reason
    assert math.isfinite(dead.start_val_loss)
    ok = train_run(task, builtin_schedule("constant", 0.05, 20), 0, 20)
    assert not ok.diverged and ok.reason == "" and ok.final_val_loss < ok.start_val_loss


def test_recommend_skips_a_schedule_that_diverged_on_one_seed():
    """The lowest mean over the surviving seeds does not win if a seed diverged."""
    rows = [
        SummaryRow("risky", "", 3, 1, 0.1, 0.01, None, 1.0),
        SummaryRow("safe", "", 3, 0, 0.2, 0.01, None, 1.0),
    ]
    assert summary.recommend(rows)[0] == "safe"
    assert summary.recommend(rows[:1])[0] == ""


class _Echo(nn.Module):
    """Predicts each input token as its own target: per-token accuracy 1 exactly."""

    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, vocab)
        with torch.no_grad():
            self.embed.weight.copy_(10 * torch.eye(vocab))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, T) tokens -> (N, T, vocab) logits."""
        return self.embed(x)


def _seq_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(out.flatten(0, 1), y.flatten())


def test_sequence_targets_get_per_token_accuracy():
    """(N, T) targets: accuracy is correct tokens / tokens (it was / sequences: 8x too high)."""
    y = torch.randint(0, 5, (40, 8), generator=torch.Generator().manual_seed(0))
    task = Task("seq", lambda: _Echo(5), torch.optim.SGD, _seq_loss, (y, y), (y, y), accuracy=True)
    _, acc = task.evaluate(task.model())
    assert acc == 1.0
    half = y.clone()
    half[:, ::2] = (half[:, ::2] + 1) % 5
    task2 = Task(
        "seq", lambda: _Echo(5), torch.optim.SGD, _seq_loss, (y, half), (y, half), accuracy=True
    )
    assert task2.evaluate(task2.model())[1] == pytest.approx(0.5)


def test_accuracy_is_off_when_undefined():
    """Float (regression) targets: no accuracy, and no chance level, even if asked for."""
    x = torch.randn(20, 3)
    task = Task(
        "reg",
        lambda: nn.Linear(3, 1),
        torch.optim.SGD,
        nn.functional.mse_loss,
        (x, x[:, :1]),
        (x, x[:, :1]),
        accuracy=True,
    )
    assert task.evaluate(task.model())[1] is None and task.chance_accuracy is None


def test_one_seed_prints_na_not_zero():
    """With one seed the spread is unknown: "± n/a", never "± 0"."""
    runs = [r for r in _one_seed_runs()]
    rows, _ = report.summarise(runs, ["a"])
    assert rows[0].val_loss_std is None
    assert report.summary_rows(rows)[0][1] == "0.5000 ± n/a"
    assert "± n/a over 1 seed(s)" in report.recommend(rows)[1]


def _one_seed_runs():
    from lrkit.tune.records import RunResult

    return [
        RunResult(
            "a",
            "a",
            None,
            0,
            4,
            (0.1,) * 4,
            (4,),
            (0.6,),
            (4,),
            (0.5,),
            (None,),
            0.5,
            None,
            False,
            1.0,
        )
    ]


def test_spec_length_other_than_the_run_warns():
    """A spec that settles long before the run ends is flagged; '%' lengths are not."""
    notes = length_notes(["cosine(peak, steps=10)", "cosine(peak, steps='100%')", "wsd"], 30)
    assert len(notes) == 1 and "settles after 10 steps but each run has 30" in notes[0]
    with pytest.warns(UserWarning, match="settles after 10 steps"):
        comp = compare(
            "digits",
            peak=0.05,
            steps=20,
            seeds=1,
            refine=False,
            progress=False,
            schedules=["cosine(peak, steps=10)"],
            search="grid",
        )
    assert comp.notes and "settles after 10" in comp.notes[0]
