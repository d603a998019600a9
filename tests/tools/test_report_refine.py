"""Report pieces for the peak refinement: the trials table and the one-line peak note."""

from __future__ import annotations

import math

from lrkit.tools import report


def _ref(refined):
    trials = [
        {
            "peak": 0.05,
            "ratio": 0.5,
            "val_loss_mean": 0.3,
            "val_loss_std": 0.01,
            "diverged": 0,
            "seeds": 3,
        },
        {
            "peak": 0.1,
            "ratio": 1.0,
            "val_loss_mean": 0.2,
            "val_loss_std": 0.02,
            "diverged": 0,
            "seeds": 3,
        },
        {
            "peak": 0.2,
            "ratio": 2.0,
            "val_loss_mean": 0.15,
            "val_loss_std": 0.03,
            "diverged": 0,
            "seeds": 3,
        },
        {
            "peak": 0.4,
            "ratio": 4.0,
            "val_loss_mean": math.inf,
            "val_loss_std": 0.0,
            "diverged": 1,
            "seeds": 3,
        },
    ]
    return {
        "schedule": "wsd",
        "factor": 2.0,
        "max_steps": 2,
        "peak": 0.1,
        "refined_peak": refined,
        "trials": trials,
    }


def test_rows_mark_common_and_refined_and_divergence():
    """Each trial is one row; the common and refined peaks are marked; divergence is shown."""
    rows = report.refinement_rows(_ref(0.2))
    assert [r[0] for r in rows] == ["0.05", "0.1", "0.2", "0.4"]
    assert rows[1][3] == "common peak" and rows[2][3] == "refined" and rows[0][3] == ""
    assert rows[2][2] == "0.1500 ± 0.0300" and rows[3][2] == "diverged (1/3)"
    same = report.refinement_rows(_ref(0.1))
    assert same[1][3] == "common peak, refined"


def test_note_names_both_peaks_and_origin():
    """The note says where the peak came from and what it was refined to (or that it stayed)."""
    comp = {"peak": 0.1, "finder": {"suggestion": 0.1}, "refinement": _ref(0.2)}
    note = report.refinement_note(comp)
    assert note.startswith("peak: 0.1 from the range test, refined to 0.2 for wsd")
    assert "0.2 -> 0.15" in note and "tried 0.05, 0.2, 0.4" in note
    kept = report.refinement_note({"peak": 0.1, "finder": None, "refinement": _ref(0.1)})
    assert kept.startswith("peak: 0.1 given, kept after refinement for wsd")
    assert report.refinement_note({"peak": 0.1, "refinement": None}).endswith("(not refined)")
