"""Report pieces for the halving search, on a path made without training: the path table, the
printed lines, the reasoning sentence and the peak note."""

from __future__ import annotations

import math

from lrkit.tune import summary
from lrkit.tune.halving import HalvingOptions, Score, plan, successive_halving


def _path():
    """Families a and b, rates 0.5, 1, 2 (eta 2: rungs of 6, 3, 2 configurations at 10, 20 and
    40 steps); a's loss falls with the rate up to 4 (one extension up, then 8 is worse); b
    diverges at 2 and above."""
    p = plan(["a", "b"], HalvingOptions(n_rates=3, eta=2), steps=40, seeds=(0, 1))

    def evaluate(rung, configs):
        out = []
        for c in configs:
            if c.family == "b":
                v = math.inf if c.exponent >= 1 else 1.0 + 0.1 * abs(c.exponent)
            else:
                v = 0.5 + 0.1 * abs(c.exponent - 2)
            out.append(Score(c, (v,) * len(rung.seeds)))
        return out

    return successive_halving(p, 1.0, evaluate)


def test_path_rows_mark_every_outcome():
    """One row per configuration and rung, best first: promoted, cut, extended range,
    diverged, and the recommended one at the last rung."""
    path = _path()
    rows = summary.path_rows(path)
    assert summary.PATH_HEADER == ("rung", "steps", "seeds", "configuration", "val loss", "outcome")
    rung0 = [r for r in rows if r[0] == "0"]
    assert rung0[0] == ["0", "10", "0", "a@4", "0.5", "promoted, extended range"]
    assert ["0", "10", "0", "b@2", "diverged", "cut"] in rung0
    assert ["0", "10", "0", "a@8", "0.6", "promoted, extended range"] in rung0
    assert len(rung0) == 6 + 2
    last = [r for r in rows if r[0] == "2"]
    assert last[0] == ["2", "40", "0,1", "a@4", "0.5", "recommended, extended range"]
    assert len(last) == 2 and last[1][5] == ""


def test_lines_sentence_and_note():
    """The printed lines, the reasoning's first sentence and the peak note say what happened."""
    path = _path()
    lines = summary.path_lines(path)
    assert (
        lines[0]
        == "rung 0: 8 configurations x 10 steps (seed 0): 3 promoted, 5 cut (1 diverged); best a@4 (0.5)"
    )
    assert lines[2] == "rung 2: 2 configurations x 40 steps (seeds 0,1): recommended a@4"
    assert lines[3] == "range extended up for a: 4, 8"
    sentence = summary.path_sentence(path)
    assert sentence == (
        "Successive halving around 1 (3 rates a factor 2 apart per schedule): 8 configurations "
        "(6 + 2 from range extensions) for 10 steps on seed 0, the best 3 for 20 steps, the best "
        "2 for 40 steps on 2 seeds; ranges extended: a up to 8."
    )
    assert summary.path_note(path, from_range_test=False) == (
        "peak: 4 for a, the best of the halving search over 8 configurations, rates 0.5-8 "
        "(factor 2) around 1 given"
    )
