"""The compare engine on real (tiny) training: candidates, equal initialisation, resume, jobs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import lrkit
from lrkit.tune.search import (
    DEFAULT_SCHEDULES,
    builtin_schedule,
    candidates,
    compare,
    spec_schedule,
    train_run,
)
from lrkit.tune.tasks import load_task

pytestmark = pytest.mark.usefixtures("one_thread")


def test_default_candidates_are_bound_specs():
    """Every default candidate parses back to a schedule of the right length at the peak."""
    cands = candidates(None, 0.1, 200)
    assert [c.name for c in cands] == list(DEFAULT_SCHEDULES)
    for c in cands:
        s = lrkit.parse(c.spec)
        assert s.is_bound
        assert max(s(np.arange(200))) == pytest.approx(0.1)
    assert cands[-1].plateau is not None and all(c.plateau is None for c in cands[:-1])
    assert lrkit.parse(cands[1].spec)(np.array([66, 67, 134]))[[0, 1]].tolist() == [
        pytest.approx(0.1),
        pytest.approx(0.01),
    ]


def test_spec_with_peak_placeholder():
    """'peak' in spec text is replaced by the peak; '%' lengths bind to the run."""
    c = spec_schedule("warmup(cosine(peak, 0.1 * peak, steps='90%'), steps='10%')", 0.5, 100)
    s = lrkit.parse(c.spec)
    assert s(10) == pytest.approx(0.5) and s(100) == pytest.approx(0.05)
    with pytest.raises(ValueError, match="unknown schedule 'cosinus'"):
        spec_schedule("cosinus(peak, steps=10)", 0.5, 100)
    with pytest.raises(ValueError, match="unknown schedule 'fancy'"):
        builtin_schedule("fancy", 0.1, 100)
    with pytest.raises(ValueError, match="given twice"):
        candidates(["cosine", "cosine"], 0.1, 100)


def test_runs_share_initialisation_and_follow_schedule():
    """Same seed: same first loss under every schedule; the rates applied are the schedule's."""
    task = load_task("digits")
    task.eval_every = 1  # the first recorded training loss is the first update's
    steps = 30
    a = train_run(task, builtin_schedule("cosine", 0.05, steps), 0, steps)
    b = train_run(task, builtin_schedule("constant", 0.05, steps), 0, steps)
    c = train_run(task, builtin_schedule("constant", 0.05, steps), 1, steps)
    cos = lrkit.cosine(0.05, 0.0, steps=steps)
    assert list(a.lr) == pytest.approx([cos(k) for k in range(steps)])
    assert list(b.lr) == [0.05] * steps
    # equal seeds share the initial weights and first batch, so the first update's effect is equal
    assert a.train_loss[0] == b.train_loss[0] != c.train_loss[0]
    first = train_run(task, builtin_schedule("constant", 0.05, 10), 0, 10)
    again = train_run(task, builtin_schedule("constant", 0.05, 10), 0, 10)
    assert first.val_loss == again.val_loss


def test_plateau_lowers_the_rate():
    """Under the plateau candidate the rate drops by its factor once validation stalls."""
    task_small = load_task("digits")
    task_small.eval_every = 1
    rec = train_run(task_small, builtin_schedule("plateau", 2.0, 40), 0, 40)
    assert rec.lr[0] == 2.0
    assert min(rec.lr) <= 0.4 + 1e-12


@pytest.mark.slow
def test_compare_resume_redoes_only_missing(task, tmp_path):
    """A finished run is reused on resume; a deleted one is redone; results agree."""
    kw = dict(
        schedules=["constant", "cosine"],
        seeds=2,
        steps=20,
        peak=0.05,
        out=tmp_path,
        progress=False,
        search="grid",
    )
    first = compare("digits", **kw)
    files = sorted((tmp_path / "runs").glob("*.json"))
    assert len(files) == 4
    stamp = {f.name: f.stat().st_mtime_ns for f in files}
    files[0].unlink()
    second = compare("digits", resume=True, **kw)
    now = {f.name: f.stat().st_mtime_ns for f in (tmp_path / "runs").glob("*.json")}
    changed = [n for n in now if now[n] != stamp.get(n)]
    assert changed == [files[0].name]
    assert [r.final_val_loss for r in second.runs] == [r.final_val_loss for r in first.runs]
    assert first.recommendation in ("constant", "cosine")
    html = second.write(tmp_path)
    assert html.exists() and json.loads((tmp_path / "results.json").read_text())["peak"] == 0.05


@pytest.mark.slow
def test_compare_with_range_test_and_jobs(tmp_path):
    """Without a peak the range test runs; two worker processes give the in-process results."""
    kw = dict(schedules=["constant", "one-cycle"], seeds=1, steps=20, progress=False, search="grid")
    one = compare("digits", **kw, out=tmp_path / "a")
    two = compare("digits", **kw, jobs=2, out=tmp_path / "b")
    assert one.finder is not None and one.peak == one.finder.suggestion == two.peak
    assert (tmp_path / "a" / "finder.json").exists()
    assert [r.final_val_loss for r in one.runs] == [r.final_val_loss for r in two.runs]
    # the peak refinement runs through the same executor: same runs, same refined peak
    assert one.refined_peak == two.refined_peak
    assert len(one.refinements) == 2 and one.recommendation == two.recommendation
    losses = [r.final_val_loss for ref in one.refinements for r in ref.runs]
    assert losses == [r.final_val_loss for ref in two.refinements for r in ref.runs]


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"seeds": 0}, "seeds must be"),
        ({"steps": 5}, "steps must be an integer >= 10"),
        ({"jobs": 0}, "jobs must be an integer >= 1"),
        ({"resume": True}, "resume=True needs out="),
        ({"peak": -1.0}, "peak must be a finite number > 0"),
    ],
)
def test_compare_errors(kw, match):
    """Bad settings fail before any training."""
    with pytest.raises(ValueError, match=match):
        compare("digits", **{"peak": 0.1, **kw})


def test_train_run_leaves_global_rng(task):
    """A run seeds its own RNG and leaves the caller's torch RNG state untouched."""
    state = torch.get_rng_state()
    train_run(task, builtin_schedule("constant", 0.05, 10), 3, 10)
    assert torch.equal(torch.get_rng_state(), state)


def test_candidate_pickles_for_worker_processes():
    """Candidate (in lrkit.tune.candidates) round-trips through pickle, as jobs > 1 needs."""
    import pickle

    from lrkit.tune import search as mod

    c = builtin_schedule("plateau", 0.1, 50)
    assert pickle.loads(pickle.dumps(c)) == c
    assert set(mod.__all__) <= set(dir(mod))


def test_user_spec_gets_a_short_label():
    """'name=spec' names a spec candidate in tables and the recommendation; the refinement
    finds it again by that name."""
    c = spec_schedule("mine=cosine(peak, 0.1 * peak, steps='100%')", 0.5, 100)
    assert c.name == "mine" and lrkit.parse(c.spec)(100) == pytest.approx(0.05)
    comp = compare(
        "digits",
        schedules=["mine=cosine(peak, steps='100%')"],
        seeds=1,
        steps=12,
        peak=0.05,
        progress=False,
        search="grid",
    )
    assert [r.schedule for r in comp.summary] == ["mine"]
    assert comp.recommendation == "mine" and comp.refinement is not None
