"""Run records round-trip through their JSON form exactly, and any edit to a saved run is
refused when it is read back (lrkit.tune.records)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lrkit.tools._files import _plain
from lrkit.tune.records import RecordError, RunResult

losses = st.floats(min_value=1e-6, max_value=1e3, allow_nan=False)
accs = st.one_of(st.none(), st.floats(min_value=0.0, max_value=1.0))


@st.composite
def runs(draw):
    """A finished, valid RunResult (converged or diverged)."""
    n = draw(st.integers(min_value=1, max_value=6))
    val = tuple(draw(st.lists(losses, min_size=n, max_size=n)))
    acc = tuple(draw(st.lists(accs, min_size=n, max_size=n)))
    diverged = draw(st.booleans())
    return RunResult(
        schedule=draw(st.text(min_size=1, max_size=8)),
        spec="cosine(0.1, 0.0, steps=10)",
        plateau=draw(st.one_of(st.none(), st.just({"factor": 0.2, "patience": 2}))),
        seed=draw(st.integers(0, 99)),
        steps=10 * n,
        lr=tuple(draw(st.lists(losses, min_size=1, max_size=5))),
        train_step=tuple(10 * (i + 1) for i in range(n)),
        train_loss=tuple(draw(st.lists(losses, min_size=n, max_size=n))),
        val_step=tuple(10 * (i + 1) for i in range(n)),
        val_loss=val,
        val_acc=acc,
        final_val_loss=math.inf if diverged else val[-1],
        final_acc=None if diverged else acc[-1],
        diverged=diverged,
        wall_s=draw(st.floats(0.0, 100.0)),
        key="k" * 16,
        start_val_loss=draw(losses),
        reason="chance level" if diverged else "",
    )


def _saved(run: RunResult) -> dict:
    """What a run file holds after write_json and json.loads."""
    return json.loads(json.dumps(_plain(run.to_json())))


@given(runs())
def test_round_trip_is_exact(run):
    """from_json(to_json(r)) == r, through the file's JSON form."""
    assert RunResult.from_json(_saved(run)) == run


@given(runs(), st.sampled_from(["final_val_loss", "seed", "wall_s", "start_val_loss"]))
def test_any_edit_is_refused(run, field):
    """Changing one value (even to a valid-looking one) is caught by the checksum or a check."""
    d = _saved(run)
    d[field] = (d[field] or 0) + 1
    with pytest.raises(RecordError):
        RunResult.from_json(d)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: d.pop("checksum"), "checksum"),
        (lambda d: d.update(schema=1), "schema must be 2"),
        (lambda d: d.update(seed=-1), "seed must be an integer >= 0"),
        (lambda d: d.update(lr=[0.1, None]), "lr must be a list of numbers"),
        (lambda d: d.update(diverged="no"), "diverged must be true or false"),
    ],
)
def test_invalid_fields_are_named(edit, match):
    """Each broken field is refused with a message naming it."""
    run = RunResult(
        "a",
        "a",
        None,
        0,
        10,
        (0.1,),
        (10,),
        (1.0,),
        (10,),
        (0.5,),
        (None,),
        0.5,
        None,
        False,
        1.0,
        "k",
        2.0,
        "",
    )
    d = _saved(run)
    edit(d)
    with pytest.raises(RecordError, match=match):
        RunResult.from_json(d)
