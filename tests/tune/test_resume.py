"""Resume that cannot lie: a run is reused only if its file is valid, unedited, and was made by
the same task code and data, settings and lrkit version; anything else is retrained with a
one-line warning naming the file."""

from __future__ import annotations

import json
import textwrap

import pytest
import torch

import lrkit
from lrkit.tune._runs import ResumeWarning
from lrkit.tune.fingerprint import task_fingerprint
from lrkit.tune.search import compare
from lrkit.tune.tasks import load_task

pytestmark = pytest.mark.usefixtures("one_thread")

KW = dict(
    schedules=["constant", "cosine"],
    seeds=1,
    steps=12,
    peak=0.05,
    refine=False,
    progress=False,
    search="grid",
)


def _files(out):
    return {f.name: f for f in sorted((out / "runs").glob("*.json"))}


def _stamps(out):
    return {n: f.stat().st_mtime_ns for n, f in _files(out).items()}


@pytest.fixture
def done(tmp_path):
    """A finished comparison in tmp_path, and its result."""
    return tmp_path, compare("digits", out=tmp_path, **KW)


def test_clean_resume_reuses_everything_silently(done, recwarn):
    """An untouched folder: nothing retrained, no warning, same numbers."""
    out, first = done
    before = _stamps(out)
    again = compare("digits", out=out, resume=True, **KW)
    assert _stamps(out) == before
    assert not [w for w in recwarn if issubclass(w.category, ResumeWarning)]
    assert [r.val_loss for r in again.runs] == [r.val_loss for r in first.runs]


def test_edited_run_file_is_retrained(done):
    """A run file edited to a better loss (curve and final both) is noticed and retrained; the
    recommendation comes from the real run."""
    out, first = done
    name, path = next(iter(_files(out).items()))
    d = json.loads(path.read_text())
    d["final_val_loss"] = -5.0
    d["val"]["loss"][-1] = -5.0
    path.write_text(json.dumps(d))
    with pytest.warns(ResumeWarning, match=rf"retraining .*{name}: .*checksum"):
        again = compare("digits", out=out, resume=True, **KW)
    assert [r.final_val_loss for r in again.runs] == [r.final_val_loss for r in first.runs]
    assert json.loads(path.read_text())["final_val_loss"] != -5.0


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda d: "{not json", "unreadable"),
        (lambda d: json.dumps({**d, "schema": 1}), "schema must be 2"),
        (lambda d: json.dumps({k: v for k, v in d.items() if k != "lr"}), "lr must be a list"),
    ],
)
def test_unreadable_or_invalid_file_is_retrained(done, damage, match):
    """Broken JSON, another schema version or a missing field: retrained, with a warning."""
    out, _ = done
    name, path = next(iter(_files(out).items()))
    path.write_text(damage(json.loads(path.read_text())))
    before = _stamps(out)
    with pytest.warns(ResumeWarning, match=match):
        compare("digits", out=out, resume=True, **KW)
    after = _stamps(out)
    assert [n for n in after if after[n] != before[n]] == [name]


TASK = textwrap.dedent(
    """
    import torch
    from torch import nn

    def make_task():
        g = torch.Generator().manual_seed(0)
        x = torch.randn(64, 4, generator=g)
        y = (x[:, 0] > 0).long()
        return dict(model=lambda: nn.Linear(4, 2), optimizer=torch.optim.SGD,
                    loss=nn.functional.cross_entropy, train=(x, y), val=(x, y),
                    batch_size=16, steps=12, accuracy=True)
    """
)


def test_changed_task_code_makes_every_run_stale(tmp_path):
    """Editing the task's file (here, one hidden layer more) retrains every run on resume."""
    src = tmp_path / "mytask.py"
    src.write_text(TASK)
    ref = f"{src}:make_task"
    out = tmp_path / "rep"
    compare(ref, out=out, **KW)
    before = _stamps(out)
    src.write_text(
        TASK.replace(
            "nn.Linear(4, 2)", "nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))"
        )
    )
    with pytest.warns(ResumeWarning, match="stale"):
        compare(ref, out=out, resume=True, **KW)
    after = _stamps(out)
    assert all(after[n] != before[n] for n in before)


def test_fingerprint_follows_data_settings_and_version(monkeypatch):
    """Same task: same fingerprint; other data bytes, batch size or lrkit version: another."""
    a, b = load_task("digits"), load_task("digits")
    assert task_fingerprint(a) == task_fingerprint(b)
    c = load_task("digits")
    x, y = c.val
    y2 = y.clone()
    y2[0] = (y2[0] + 1) % 10
    c.val = (x, y2)
    assert task_fingerprint(c) != task_fingerprint(a)
    d = load_task("digits")
    d.batch_size = 33
    assert task_fingerprint(d) != task_fingerprint(a)
    monkeypatch.setattr(lrkit, "__version__", "99.0")
    assert task_fingerprint(load_task("digits")) != task_fingerprint(a)
    assert torch.equal(a.val[1], b.val[1])


@pytest.mark.slow
def test_edited_range_test_is_rerun(tmp_path):
    """A finder.json whose suggestion was edited (no longer the task's) is rerun, with a
    warning naming it."""
    kw = {**KW, "peak": None}
    first = compare("digits", out=tmp_path, **kw)
    path = tmp_path / "finder.json"
    d = json.loads(path.read_text())
    d["fingerprint"] = "0" * 16
    d["suggestion"] = 1e6
    path.write_text(json.dumps(d))
    with pytest.warns(ResumeWarning, match=r"rerunning the range test, .*finder.json: stale"):
        again = compare("digits", out=tmp_path, resume=True, **kw)
    assert again.peak == first.peak
