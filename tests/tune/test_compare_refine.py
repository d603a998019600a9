"""compare's peak refinement on real (tiny) digits training: record, bounds, resume, opt-out."""

from __future__ import annotations

import json
import math

import pytest

from lrkit.tune.search import builtin_schedule, compare, train_run
from lrkit.tune.tasks import load_task

KW = dict(
    schedules=["constant", "cosine"], seeds=2, steps=20, peak=0.05, progress=False, search="grid"
)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.slow
def test_refinement_runs_within_bounds_and_is_in_the_json(tmp_path):
    """The recommended family is retrained at factor steps (bounded), the losses recorded are
    those of real runs at those rates, and the refined peak is the best trial, in the JSON."""
    comp = compare("digits", out=tmp_path, refine_steps=2, **KW)
    ref = comp.refinement
    assert ref is not None and ref.schedule == comp.recommendation
    rates = [t.peak for t in ref.trials]
    ks = [round(math.log2(r / 0.05)) for r in rates]
    assert rates == pytest.approx([0.05 * 2.0**k for k in ks], rel=1e-12)
    assert 0 in ks and -1 in ks and 1 in ks and all(abs(k) <= 2 for k in ks)
    assert len(ks) in (3, 4) and len(ref.runs) == 2 * (len(ks) - 1)
    best = min(ref.trials, key=lambda t: t.val_loss_mean)
    assert comp.refined_peak == best.peak == ref.refined_peak
    assert f"{comp.refined_peak!r}" in comp.recommended_spec or comp.refined_peak == 0.05
    # one refinement run recomputed from scratch: same family, rate, seed -> same loss
    run = ref.runs[0]
    rate = next(t.peak for t in ref.trials if t.spec == run.spec)
    again = train_run(load_task("digits"), builtin_schedule(ref.schedule, rate, 20), run.seed, 20)
    assert again.final_val_loss == run.final_val_loss
    comp.write(tmp_path)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["refined_peak"] == comp.refined_peak and saved["peak"] == 0.05
    saved_ref = next(r for r in saved["refinements"] if r["schedule"] == comp.recommendation)
    assert len(saved_ref["trials"]) == len(ks)
    assert "Peak refinement" in (tmp_path / "report.html").read_text()
    # refinement runs live apart from the comparison's runs
    assert len(comp.runs) == 4 and len(list((tmp_path / "runs").glob("*.json"))) == 4
    n_refine = sum(len(r.runs) for r in comp.refinements)
    assert len(list((tmp_path / "runs" / "refine").glob("*.json"))) == n_refine


@pytest.mark.slow
def test_top_schedules_refined_and_best_at_own_peak_recommended():
    """The refine_top best at the common peak are refined, in that order, and the
    recommendation is the one with the lowest mean loss at its own refined peak."""
    kw = {**KW, "schedules": ["constant", "cosine", "wsd", "step"]}
    comp = compare("digits", refine_top=2, **kw)
    finite = [r for r in comp.summary if math.isfinite(r.val_loss_mean)]
    top = sorted(finite, key=lambda r: r.val_loss_mean)[:2]
    assert [r.schedule for r in comp.refinements] == [r.schedule for r in top]
    assert comp.common_recommendation == top[0].schedule

    def at_refined(ref):
        return next(t for t in ref.trials if t.peak == ref.refined_peak)

    best = min(comp.refinements, key=lambda r: at_refined(r).val_loss_mean)
    assert comp.recommendation == best.schedule
    assert comp.refinement is best and comp.refined_peak == best.refined_peak
    assert comp.reasoning.startswith("At the common peak 0.05: ")
    assert "Refining the peaks of " + ", ".join(r.schedule for r in top) in comp.reasoning
    # each refined trial's loss is the mean over the seeds of that schedule's runs at that rate
    for ref in comp.refinements:
        for t in ref.trials:
            if t.peak != 0.05:
                v = [r.final_val_loss for r in ref.runs if r.spec == t.spec]
                assert t.val_loss_mean == pytest.approx(sum(v) / len(v), rel=1e-12)


def test_one_step_bound(tmp_path):
    """refine_steps=1 tries only the two neighbours."""
    comp = compare("digits", refine_steps=1, refine_factor=3.0, **KW)
    assert [t.ratio for t in comp.refinement.trials] == pytest.approx([1 / 3, 1.0, 3.0])
    assert len(comp.refinement.runs) == 4


def test_resume_does_not_redo_refinement_runs(tmp_path):
    """On resume every refinement run is read back from disk: files untouched, same records."""
    first = compare("digits", out=tmp_path, **KW)
    files = sorted((tmp_path / "runs" / "refine").glob("*.json"))
    stamp = {f.name: f.stat().st_mtime_ns for f in files}
    second = compare("digits", out=tmp_path, resume=True, **KW)
    assert {f.name: f.stat().st_mtime_ns for f in files} == stamp
    # wall times would differ if any run had been redone
    assert [r.wall_s for r in second.refinement.runs] == [r.wall_s for r in first.refinement.runs]
    assert second.refined_peak == first.refined_peak


def test_no_refine_skips_it(tmp_path):
    """refine=False trains only the candidates; the spec is at the common peak."""
    comp = compare("digits", out=tmp_path, refine=False, **{**KW, "seeds": 1})
    assert comp.refinement is None and comp.refined_peak == 0.05
    assert not (tmp_path / "runs" / "refine").exists()
    assert "0.05" in comp.recommended_spec
    assert comp.to_dict()["refinements"] == [] and comp.refinements == ()
    assert comp.recommendation == comp.common_recommendation


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"refine_factor": 1.0}, "compare: refine_factor must be a finite number > 1"),
        ({"refine_steps": 0}, "compare: refine_steps must be an integer >= 1, got refine_steps=0"),
        ({"refine_top": 0}, "compare: refine_top must be an integer >= 1, got refine_top=0"),
    ],
)
def test_refine_settings_validated_before_training(kw, match):
    """Bad refinement settings fail before the range test or any run."""
    with pytest.raises(ValueError, match=match):
        compare("digits", peak=0.1, **kw)


@pytest.mark.slow
def test_specs_with_a_common_prefix_keep_their_own_refinement_files(tmp_path):
    """Two spec texts alike in their first 40 characters get distinct run files, so every
    refinement run is on disk and a resume retrains none of them."""
    a = "wsd(peak, 0.0, warmup_steps=2, stable_steps=14, decay_steps=4)"
    b = "wsd(peak, 0.0, warmup_steps=2, stable_steps=12, decay_steps=6)"
    kw = {**KW, "schedules": [a, b], "seeds": 1}
    first = compare("digits", out=tmp_path, **kw)
    n = sum(len(r.runs) for r in first.refinements)
    assert len(first.refinements) == 2 and n >= 4
    files = sorted((tmp_path / "runs" / "refine").glob("*.json"))
    assert len(files) == n
    stamp = {f.name: f.stat().st_mtime_ns for f in files}
    compare("digits", out=tmp_path, resume=True, **kw)
    assert {f.name: f.stat().st_mtime_ns for f in files} == stamp


@pytest.mark.slow
def test_spec_without_peak_is_not_retrained_and_takes_no_slot():
    """A spec that ignores the peak gets a record with its common-peak trial only (no runs),
    and refine_top still refines that many schedules that do use the peak."""
    kw = {**KW, "schedules": ["constant(0.2)", "constant", "cosine"]}
    comp = compare("digits", refine_top=1, **kw)
    fixed = [r for r in comp.refinements if r.fixed]
    moving = [r for r in comp.refinements if not r.fixed]
    assert len(moving) == 1 and len(moving[0].runs) >= 4
    assert len(fixed) == 1  # at 20 steps the fixed 0.2 beats everything at the 0.05 peak
    for r in fixed:
        assert r.schedule == "constant(0.2)" and r.runs == ()
        assert [t.peak for t in r.trials] == [0.05] and r.refined_peak == 0.05
    ranked = sorted(comp.summary, key=lambda r: r.val_loss_mean)
    names = [r.schedule for r in ranked]
    # records follow the common-peak ranking up to the first schedule that uses the peak
    assert [r.schedule for r in comp.refinements] == names[: len(comp.refinements)]
    assert moving[0].schedule == next(n for n in names if n != "constant(0.2)")
