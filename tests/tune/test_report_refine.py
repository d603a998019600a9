"""Report pieces for the peak refinement: the trials table and the one-line peak note."""

from __future__ import annotations

import dataclasses
import math

from lrkit.tune import report, summary
from lrkit.tune.records import PeakRefinement, RateTrial


def _ref(refined, schedule="wsd", shift=0.0, fixed=False):
    trials = [
        RateTrial(0.05, 0.5, 0.3, 0.01, 0, 3, ""),
        RateTrial(0.1, 1.0, 0.2, 0.02, 0, 3, ""),
        RateTrial(0.2, 2.0, 0.15, 0.03, 0, 3, ""),
        RateTrial(0.4, 4.0, math.inf, 0.0, 1, 3, ""),
    ]
    if fixed:
        trials = [t for t in trials if t.peak == 0.1]
    return PeakRefinement(
        schedule=schedule,
        factor=2.0,
        max_steps=2,
        peak=0.1,
        refined_peak=refined,
        steps=0,
        fixed=fixed,
        spec="",
        plateau=None,
        trials=tuple(dataclasses.replace(t, val_loss_mean=t.val_loss_mean + shift) for t in trials),
    )


def _note(refs, recommendation, from_range_test=True):
    ref = summary.chosen_refinement(refs, recommendation)
    return report.refinement_note(0.1, from_range_test, ref)


def test_rows_mark_common_and_refined_and_divergence():
    """Each trial is one row; the common and refined peaks are marked; divergence is shown."""
    rows = report.refinement_rows([_ref(0.2)])
    assert [r[1] for r in rows] == ["0.05", "0.1", "0.2", "0.4"] and rows[0][0] == "wsd"
    assert rows[1][4] == "common peak" and rows[2][4] == "refined" and rows[0][4] == ""
    assert rows[2][3] == "0.1500 ± 0.0300" and rows[3][3] == "diverged (1/3)"
    same = report.refinement_rows([_ref(0.1)], recommended="wsd")
    assert same[1][4] == "common peak, refined, recommended"
    two = report.refinement_rows([_ref(0.2), _ref(0.1, "cosine")], recommended="cosine")
    assert [r[0] for r in two] == ["wsd"] * 4 + ["cosine"] * 4
    assert [r[4] for r in two].count("common peak, refined, recommended") == 1


def test_note_names_both_peaks_and_origin():
    """The note says where the peak came from and what it was refined to (or that it stayed)."""
    refs = [_ref(0.1, "cosine"), _ref(0.2)]
    note = _note(refs, "wsd")
    assert note.startswith("peak: 0.1 from the range test, refined to 0.2 for wsd")
    assert "0.2 -> 0.15" in note and "tried 0.05, 0.2, 0.4" in note
    kept = _note(refs, "cosine", from_range_test=False)
    assert kept.startswith("peak: 0.1 given, kept after refinement for cosine")
    assert _note([], "wsd", from_range_test=False).endswith("(not refined)")


def test_recommend_refined_best_at_own_peak():
    """Among refined schedules the lowest loss at each one's refined peak wins, and the sentence
    says whether it overtook the common-peak choice."""
    name, why = summary.recommend_refined([_ref(0.1, "cosine"), _ref(0.2)], common="cosine")
    assert name == "wsd"  # 0.15 at 0.2 beats cosine's 0.2 at 0.1
    assert why.startswith("Refining the peaks of cosine, wsd: wsd at peak 0.2 reached 0.15")
    assert "lower than cosine at its own best peak 0.1 (0.2), so wsd is recommended" in why
    assert "seed spread" not in why  # 0.05 apart, spread hypot(0.02, 0.03) ~ 0.036
    name, why = summary.recommend_refined([_ref(0.2), _ref(0.2, "cosine", 0.01)], common="wsd")
    assert name == "wsd" and why.endswith("0.15 ± 0.03, the lowest.")
    close = [_ref(0.2, "cosine"), _ref(0.2, "wsd", -0.01)]
    name, why = summary.recommend_refined(close, common="cosine")
    assert name == "wsd" and why.endswith("(within the seed spread: more seeds would tell).")


def test_recommend_refined_keeps_common_when_all_diverged():
    """When every refined schedule diverged at its refined rate the common choice stays."""
    bad = _ref(0.4)
    assert summary.recommend_refined([bad], common="wsd") == (
        "wsd",
        "Refining the peak of wsd: no rate tried converged on every seed; wsd is kept.",
    )
    assert summary.recommend_refined([], common="wsd") == ("wsd", "")


def test_recommend_refined_when_the_common_choice_diverged():
    """A common-peak choice that diverged at its refined rate is named as such, not as '-'."""
    bad = _ref(0.4, "wsd")
    name, why = summary.recommend_refined([bad, _ref(0.2, "cosine")], common="wsd")
    assert name == "cosine"
    assert why.endswith("wsd diverged on some seed at every rate tried, so cosine is recommended.")


def test_fixed_rate_record_is_marked():
    """A schedule whose spec does not use the peak is marked in the table and the note."""
    fixed = _ref(0.1, "constant(0.2)", fixed=True)
    rows = report.refinement_rows([fixed], recommended="constant(0.2)")
    assert rows == [
        ["constant(0.2)", "0.1", "1", "0.2000 ± 0.0200", "does not use the peak, recommended"]
    ]
    assert _note([fixed], "constant(0.2)", from_range_test=False) == (
        "peak: 0.1 given; constant(0.2) does not use it (its spec fixes the rates)"
    )
