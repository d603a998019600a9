"""Each detector fires on a synthetic series with its pathology and stays silent on healthy ones."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from tests.diagnostics import _synthetic as synthetic

import lrkit
from lrkit import diagnostics as dg

CASES = synthetic.cases()
DETECTOR = {d.__name__: d for d in dg.DETECTORS}


def test_every_kind_has_a_case_and_a_detector() -> None:
    """The synthetic suite covers every kind but healthy, each with a detector of that name."""
    assert set(CASES) == set(dg.KINDS) - {"healthy"} == set(DETECTOR)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_detector_fires_on_its_pathology(kind: str) -> None:
    """The detector named after a pathology returns a finding of that kind on its series."""
    f = DETECTOR[kind](CASES[kind])
    assert f is not None and f.kind == kind
    assert f.summary and f.advice and f.evidence
    assert CASES[kind].steps[0] <= f.start <= f.end <= CASES[kind].steps[-1]


@pytest.mark.parametrize("kind", sorted(CASES))
def test_pathology_is_the_top_finding(kind: str) -> None:
    """diagnose ranks the injected pathology first."""
    assert dg.diagnose(CASES[kind])[0].kind == kind


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("name", sorted(DETECTOR))
def test_detector_is_silent_on_healthy_runs(name: str, seed: int) -> None:
    """No detector fires on a warmup-cosine run that converged, whatever the noise draw."""
    assert DETECTOR[name](synthetic.healthy(seed)) is None


def test_healthy_run_is_diagnosed_healthy() -> None:
    """diagnose returns exactly one healthy finding, with the loss range as evidence."""
    (f,) = dg.diagnose(synthetic.healthy())
    assert f.kind == "healthy" and f.level == "ok" and f.severity == 0.0
    assert f.facts["final_loss"] < f.facts["start_loss"]
    assert dg.healthy(synthetic.healthy()) == f
    assert dg.healthy(CASES["diverged"]) is None


@pytest.mark.parametrize("kind", sorted(CASES))
def test_advice_specs_parse(kind: str) -> None:
    """Every spec the advice suggests is valid lrkit text of the run's length (or longer); every
    kind but the two whose fix is not a schedule (clipping, a group multiplier) suggests one."""
    specs = [f.spec for f in dg.diagnose(CASES[kind]) if f.spec is not None]
    assert specs or kind in {"exploding_gradients", "layer_imbalance"}, kind
    for spec in specs:
        s = lrkit.parse(spec)
        assert s.duration is not None and s.duration >= 2


def test_lr_advice_moves_the_rate_the_right_way() -> None:
    """Too high: the suggested peak is lower than the run's; too low: higher."""
    high = dg.lr_too_high(CASES["lr_too_high"])
    low = dg.lr_too_low(CASES["lr_too_low"])
    assert high is not None and low is not None and high.spec and low.spec
    assert lrkit.parse(high.spec)(10_000) == 0.0  # decays to 0 at the end
    assert max(lrkit.parse(high.spec)(np.arange(600))) < synthetic.PEAK
    assert max(lrkit.parse(low.spec)(np.arange(600))) > synthetic.PEAK / 100


def test_diverged_reports_the_first_bad_step() -> None:
    """A NaN loss from step 300 gives a critical finding starting at 300."""
    f = dg.diverged(CASES["diverged"])
    assert f is not None and f.start == 300 and f.level == "critical"


def test_diverged_without_nan_when_loss_climbs_back() -> None:
    """A loss that falls, then climbs 10x above its best and stays there, counts as diverged."""
    t = np.arange(400.0)
    loss = np.where(t < 200, 2.0 * np.exp(-t / 50), 2.0 * np.exp(-4) * np.exp((t - 200) / 40))
    log = dg.RunLog(t, np.minimum(loss, 50.0), {"lr": {"0": np.full(400, 0.3)}})
    f = dg.diverged(log)
    assert f is not None and 200 <= f.start <= 260


def test_layer_imbalance_names_the_layer_and_multiplier() -> None:
    """The x100 layer is named, and its multiplier brings it back (about 1/100)."""
    f = dg.layer_imbalance(CASES["layer_imbalance"])
    assert f is not None and "'2'" in f.summary
    assert f.facts["decades_off"] == pytest.approx(2.0, abs=0.2)
    assert "group_mult={'2': 0.0" in f.advice


def test_layer_imbalance_on_a_starved_layer() -> None:
    """A layer updated 1000x less than the others is flagged as far smaller."""
    base = synthetic.progress_loss(synthetic.warmup_cosine())
    log = synthetic.make(base, synthetic.warmup_cosine(), ratio_scale={"0": 1e-3})
    f = dg.layer_imbalance(log)
    assert f is not None and "far smaller" in f.summary and f.facts["decades_off"] < -2.5


def test_layer_imbalance_defers_to_a_low_rate_when_the_rest_hardly_move() -> None:
    """A layer far above the others while they move < 5e-4 per update (a zero-initialised
    parameter at a low rate) is reported below lr_too_low, at severity 0.45."""
    t = np.arange(synthetic.N, dtype=float)
    low = synthetic.warmup_cosine(peak=synthetic.PEAK / 100)
    log = synthetic.make(2.3 - 0.0006 * t, low, ratio_scale={"2": 100.0})
    kinds = [f.kind for f in dg.diagnose(log)]
    assert kinds[0] == "lr_too_low" and "layer_imbalance" in kinds
    f = dg.layer_imbalance(log)
    assert f is not None and f.severity == 0.45 and "hardly move" in f.summary


def _two_groups(loss: np.ndarray, mult: float) -> dg.RunLog:
    lr = synthetic.warmup_cosine()
    log = synthetic.make(loss, lr)
    return dg.RunLog(
        steps=log.steps,
        loss=log.loss,
        hparams={"lr": {"rest": lr, "hot": mult * lr}},
        val_steps=log.val_steps,
        val=log.val,
        grad_norm=log.grad_norm,
        group_ratio={"rest": log.ratio["0"], "hot": log.ratio["2"]},
    )


def test_layer_imbalance_on_group_rates_when_the_run_failed_to_learn() -> None:
    """Groups 100x apart and a loss that never fell (a layer's rate killed the model) read as
    layer_imbalance; the same groups on a run that learnt do not."""
    flat = np.full(synthetic.N, 2.2)
    f = dg.layer_imbalance(_two_groups(flat, 100.0))
    assert f is not None and "'hot'" in f.summary and "failed to learn" in f.summary
    learnt = synthetic.progress_loss(synthetic.warmup_cosine())
    assert dg.layer_imbalance(_two_groups(learnt, 100.0)) is None
    assert dg.layer_imbalance(_two_groups(flat, 10.0)) is None


def _one_spike(bump: float) -> dg.RunLog:
    lr = synthetic.warmup_cosine()
    loss = synthetic.progress_loss(lr)
    loss[200:220] *= math.exp(bump)  # the loss's response to the spike (none when 0)
    g = np.exp(0.2 * np.random.default_rng(1).standard_normal(synthetic.N))
    g[200] = 80.0  # at 0.8 of the peak rate
    return synthetic.make(loss, lr, grad=g, noise=0.02)


def test_a_single_spike_the_loss_ignored_is_not_a_finding() -> None:
    """One gradient-norm spike with no rise of the loss is an odd batch: neither lr_too_high
    nor exploding_gradients fires."""
    log = _one_spike(0.0)
    assert dg.lr_too_high(log) is None and dg.exploding_gradients(log) is None


def test_a_single_spike_the_loss_felt_is_a_finding() -> None:
    """One gradient-norm spike at a high rate followed by a rise of the loss counts."""
    log = _one_spike(0.3)
    high, grads = dg.lr_too_high(log), dg.exploding_gradients(log)
    assert high is not None and grads is not None and grads.start == 200


def test_overfitting_points_at_the_best_validation() -> None:
    """The finding starts where validation was lowest (within one evaluation) and advises
    stopping there."""
    log = CASES["overfitting"]
    assert log.val_loss is not None
    best = log.val_steps[int(np.argmin(log.val_loss))]
    f = dg.overfitting(log)
    assert f is not None and abs(f.start - best) <= 30 and f"step {f.start}" in f.advice


def test_exploding_gradients_on_non_finite_norm() -> None:
    """An inf gradient norm (how the monitor records a non-finite one) fires at its step."""
    g = np.ones(600)
    g[420] = np.inf
    lr = synthetic.warmup_cosine()
    log = synthetic.make(synthetic.progress_loss(lr), lr, grad=g)
    f = dg.exploding_gradients(log)
    assert f is not None and f.start == 420 and f.facts["non_finite_norms"] == 1


def test_detectors_tolerate_minimal_logs() -> None:
    """A log with only steps and losses (no rate, validation, norms) is judged without error."""
    t = np.arange(50.0)
    for d in dg.DETECTORS:
        d(dg.RunLog(t, 2.0 - t / 100))
        d(dg.RunLog(t[:5], np.ones(5)))
    assert dg.diagnose(dg.RunLog(t[:3], np.ones(3)))[0].kind == "healthy"


def test_negative_losses_use_the_relative_scale() -> None:
    """A loss that goes negative (e.g. an ELBO) still gets judged: a climb back counts."""
    t = np.arange(300.0)
    loss = np.where(t < 150, -t / 10, -15.0 + (t - 150) * 0.5)
    f = dg.diverged(dg.RunLog(t, loss - 1.0))
    assert f is not None


def test_diagnose_rejects_other_types() -> None:
    """diagnose names itself and the wrong type."""
    with pytest.raises(TypeError, match="diagnose: log must be a RunLog, got dict"):
        dg.diagnose({})  # type: ignore[arg-type]


def test_min_severity_filters() -> None:
    """Findings below min_severity are dropped (healthy when none is left)."""
    log = CASES["plateau"]
    assert dg.diagnose(log, min_severity=0.99)[0].kind == "healthy"


def test_layer_imbalance_on_group_rates_felt_in_the_first_updates() -> None:
    """Groups 100x apart whose first recorded updates differ 30x in size read as
    layer_imbalance at severity 0.5 although the run learnt (a layer at 100x under Adam)."""
    learnt = synthetic.progress_loss(synthetic.warmup_cosine())
    log = _two_groups(learnt, 100.0)
    hot = np.array(log.group_ratio["hot"])
    sampled = np.flatnonzero(np.isfinite(hot))[:10]
    hot[sampled] *= 30.0
    felt = dg.RunLog(
        steps=log.steps,
        loss=log.loss,
        hparams=log.hparams,
        group_ratio={"rest": log.group_ratio["rest"], "hot": hot},
    )
    f = dg.layer_imbalance(felt)
    assert f is not None and f.severity == 0.5 and "first updates" in f.summary


def test_warmup_too_short_ranks_before_the_rate_it_explains() -> None:
    """A recovered early jump at a rate at its peak from step 0 ranks warmup_too_short first,
    before an lr_too_high finding on the same jump."""
    kinds = [f.kind for f in dg.diagnose(CASES["warmup_too_short"])]
    assert kinds[0] == "warmup_too_short"
    f = dg.warmup_too_short(CASES["warmup_too_short"])
    assert f is not None and f.severity > 0.85


def test_not_converged_after_an_anneal_needs_a_large_fall() -> None:
    """A validation loss still falling ~14% over the last quarter while the rate anneals to 0
    is the decay's own gain (silent); the old 10% threshold would have fired."""
    lr = synthetic.warmup_cosine()
    t = np.arange(synthetic.N, dtype=float)
    val = 0.5 * np.exp(-0.6 * t / synthetic.N)
    log = synthetic.make(synthetic.progress_loss(lr), lr, val=val)
    assert dg.not_converged(log) is None
    assert dg.not_converged(log, annealed_fall=0.1) is not None


def test_lr_too_low_not_called_when_updates_are_already_large() -> None:
    """A slow steady fall with updates of ~3% of the weights per step is not a rate too low
    (the slow-fall rule needs a typical update ratio below 1e-2); with ~1e-5 it is."""
    low = synthetic.warmup_cosine(peak=synthetic.PEAK / 100)
    t = np.arange(synthetic.N, dtype=float)
    loss = 2.3 - 0.0006 * t
    big = synthetic.make(loss, low, ratio_scale={k: 3000.0 for k in synthetic.LAYERS})
    assert dg.lr_too_low(big) is None
    assert dg.lr_too_low(CASES["lr_too_low"]) is not None


def _with_cos(log: dg.RunLog, cos: float, *, every: int = 5, seed: int = 1) -> dg.RunLog:
    """``log`` with ``grad_update_cos`` sampled every ``every`` steps around ``cos``."""
    rng = np.random.default_rng(seed)
    n = len(log)
    c = np.clip(cos + 0.15 * rng.standard_normal(n), -1, 1)
    return dataclasses.replace(log, grad_update_cos=np.where(np.arange(n) % every == 0, c, np.nan))


def test_alignment_reads_the_high_rate_part_after_the_start() -> None:
    """The median cosine over samples past 10% of the run at >= half the peak rate; None
    without the column or with fewer than 2 such samples."""
    from lrkit.diagnostics._series import alignment

    log = synthetic.healthy()
    assert alignment(log) is None
    n = len(log)
    cos = np.full(n, np.nan)
    cos[10] = 0.9  # before 10% of the run: ignored
    cos[[100, 200, 300]] = [0.1, 0.2, 0.3]  # rate >= half its peak until ~step 320
    cos[550] = -0.9  # rate below half: ignored
    got = alignment(dataclasses.replace(log, grad_update_cos=cos))
    assert got == (pytest.approx(0.2), 3)
    cos[[200, 300]] = np.nan
    assert alignment(dataclasses.replace(log, grad_update_cos=cos)) is None


def test_lr_too_low_when_steps_keep_going_downhill() -> None:
    """A healthy-looking loss whose updates keep pointing downhill (median cosine 0.4) reads
    lr_too_low at 0.75; at a cosine near 0 it is healthy; not when validation sits far above
    training (the data limits the run), nor when the steps overshoot (cosine -0.3)."""
    base = synthetic.healthy()
    aligned = _with_cos(base, 0.4)
    f = dg.lr_too_low(aligned)
    assert f is not None and f.severity == pytest.approx(0.75)
    assert dict(f.evidence)["grad_update_cos"] == pytest.approx(0.4, abs=0.05)
    assert dg.diagnose(aligned)[0].kind == "lr_too_low"
    assert dg.lr_too_low(_with_cos(base, 0.0)) is None
    assert dg.diagnose(_with_cos(base, 0.0))[0].kind == "healthy"
    lr = synthetic.warmup_cosine()
    far = synthetic.make(
        synthetic.progress_loss(lr), lr, val=np.full(synthetic.N, 2.0 * 0.05 + 0.5)
    )
    assert dg.lr_too_low(_with_cos(far, 0.4)) is None
    slow = CASES["lr_too_low"]
    assert dg.lr_too_low(slow) is not None
    assert dg.lr_too_low(_with_cos(slow, -0.3)) is None


def test_even_samples_thins_a_dense_start() -> None:
    """Samples on every step of the first 50, then every 20: the thinned log keeps the first
    10 and then one sample per 20 steps; grad_update_cos stays whole."""
    from lrkit.diagnostics._series import even_samples

    n = 200
    steps = np.arange(n)
    dense = (steps < 50) | (steps % 20 == 0)
    g = np.where(dense, 1.0, np.nan)
    log = dg.RunLog(steps, np.ones(n), grad_norm=g, ratio={"a": g}, grad_update_cos=g.copy())
    thin = even_samples(log)
    kept = np.flatnonzero(np.isfinite(thin.grad_norm))
    assert kept.tolist() == [*range(10), 29, 49, 80, 100, 120, 140, 160, 180]
    assert np.flatnonzero(np.isfinite(thin.ratio["a"])).tolist() == kept.tolist()
    assert np.isfinite(thin.grad_update_cos).sum() == dense.sum()
    uniform = dataclasses.replace(log, grad_norm=np.where(steps % 20 == 0, 1.0, np.nan), ratio={})
    assert even_samples(uniform) is uniform


def test_even_samples_never_hides_a_blow_up_and_tolerates_a_gap() -> None:
    """Off the even grid, a non-finite gradient norm stays (so exploding_gradients sees it
    through diagnose), finite ones go; one missing sample in a uniform log does not double
    the grid's spacing."""
    from lrkit.diagnostics._series import even_samples

    n = 1000
    steps = np.arange(n)
    dense = (steps < 50) | (steps % 20 == 0)
    g = np.where(dense, 1.0, np.nan)
    g[23] = np.inf
    log = dg.RunLog(steps, np.linspace(2, 1, n), grad_norm=g)
    kept = np.flatnonzero(~np.isnan(even_samples(log).grad_norm)).tolist()
    assert 23 in kept and 25 not in kept and 29 in kept
    assert dg.exploding_gradients(even_samples(log)) is not None
    assert "exploding_gradients" in [f.kind for f in dg.diagnose(log)]
    uniform = np.where(steps % 20 == 0, 1.0, np.nan)
    uniform[300] = np.nan
    thin = even_samples(dg.RunLog(steps, np.ones(n), grad_norm=uniform))
    assert np.isfinite(thin.grad_norm).sum() == (steps % 20 == 0).sum() - 1


def test_aligned_steps_do_not_read_low_rate_on_a_run_that_blew_up() -> None:
    """Aligned steps before a NaN loss (or a 1.5x rise) do not add lr_too_low to diverged."""
    base = _with_cos(synthetic.healthy(), 0.4)
    loss = np.array(base.loss)
    loss[400:] = np.nan
    blown = dataclasses.replace(base, loss=loss)
    assert dg.lr_too_low(blown) is None
    assert dg.diagnose(blown)[0].kind == "diverged"
    risen = np.array(base.loss)
    risen[300:] *= 3.0
    assert dg.lr_too_low(dataclasses.replace(base, loss=risen)) is None
