"""Summaries of a schedule comparison: per-schedule aggregates over seeds (:func:`summarise`),
the recommendation with its reasoning at the common peak (:func:`recommend`) and after the peak
refinement (:func:`recommend_refined`), the refinement's table cells and one-line note, and the
halving search's path as table cells, lines and notes. Plots, HTML and files built from them live
in :mod:`lrkit.tune.report`.

numpy and the standard library only.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from lrkit.tune.halving import SearchPath
from lrkit.tune.records import PeakRefinement, RunResult, SummaryRow


def _fmt(x: float | None, digits: int = 4) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x:.{digits}g}"


def _sd(x: float | None) -> str:
    return "n/a" if x is None else _fmt(x, 2)


def spread(a: float | None, b: float | None) -> float:
    """The combined seed spread ``sqrt(s_a^2 + s_b^2)`` of two standard deviations (an unknown
    one, from a single seed, counts as 0)."""
    return math.hypot(a or 0.0, b or 0.0)


def mean_pm_std(mean: float, std: float | None) -> str:
    """``"0.1234 ± 0.0123"``; ``"0.1234 ± n/a"`` when the spread is unknown (one seed)."""
    return f"{mean:.4f} ± " + ("n/a" if std is None else f"{std:.4f}")


def summarise(
    runs: Sequence[RunResult], order: Sequence[str], target: float | None = None
) -> tuple[list[SummaryRow], float | None]:
    """Aggregate runs by schedule, in ``order``.

    Per schedule: the mean and sample standard deviation (``ddof=1``; None for one seed) of the
    final validation loss over seeds that did not diverge, the number that diverged, the mean
    final accuracy, the mean wall time, and the mean over seeds of the first validation step
    whose loss is ``<= target`` (with how many seeds reached it). ``target`` defaults to the
    median of the schedules' mean final losses (so about half of them reach it). Returns
    ``(rows, target)``.
    """
    by: dict[str, list[RunResult]] = {n: [] for n in order}
    for r in runs:
        by.setdefault(r.schedule, []).append(r)
    rows: list[SummaryRow] = []
    for name, rs in by.items():
        finals = np.array([r.final_val_loss for r in rs], dtype=float)
        ok = finals[np.isfinite(finals)]
        accs = [r.final_acc for r in rs if r.final_acc is not None]
        rows.append(
            SummaryRow(
                schedule=name,
                spec=rs[0].spec if rs else "",
                seeds=len(rs),
                diverged=int(np.sum(~np.isfinite(finals))),
                val_loss_mean=float(ok.mean()) if ok.size else math.inf,
                val_loss_std=float(ok.std(ddof=1)) if ok.size > 1 else None,
                acc_mean=float(np.mean(accs)) if accs else None,
                wall_s_mean=float(np.mean([r.wall_s for r in rs])) if rs else 0.0,
            )
        )
    means = [r.val_loss_mean for r in rows if math.isfinite(r.val_loss_mean)]
    if target is None and means:
        target = float(np.median(means))
    out = []
    for row in rows:
        hits = []
        for r in by[row.schedule]:
            steps = [
                s
                for s, v in zip(r.val_step, r.val_loss, strict=False)
                if target is not None and v <= target
            ]
            if steps:
                hits.append(steps[0])
        out.append(
            dataclasses.replace(
                row,
                steps_to_target=float(np.mean(hits)) if hits else None,
                reached_target=len(hits),
            )
        )
    return out, target


def recommend(rows: Sequence[SummaryRow], best: str | None = None) -> tuple[str, str]:
    """Pick, among the schedules that converged on every seed, the one with the lowest mean
    final validation loss (or ``best``, when chosen elsewhere: the halving search's judgement
    of the same runs); explain, naming the ones within the seed spread
    (``|m_a - m_b| <= sqrt(s_a^2 + s_b^2)``) and the fastest to target. A schedule that diverged
    on any seed (non-finite, no better than its initial model, or at chance level) is never
    recommended.

    Returns ``(name, reasoning)``; ``("", reason)`` when every schedule diverged on some seed.
    """
    ok = [r for r in rows if math.isfinite(r.val_loss_mean) and not r.diverged]
    if not ok:
        return "", (
            "every schedule diverged on some seed (a non-finite loss, no better than the "
            "initial model, or chance level), so none is recommended: lower the peak rate "
            "(--peak) and compare again."
        )
    chosen = next((r for r in ok if r.schedule == best), None)
    best_row = chosen if chosen is not None else min(ok, key=lambda r: r.val_loss_mean)
    return best_row.schedule, _reasons(rows, ok, best_row)


def _reasons(rows: Sequence[SummaryRow], ok: Sequence[SummaryRow], best: SummaryRow) -> str:
    """The reasoning for ``best`` among the converged rows ``ok`` of ``rows``."""
    n = best.seeds - best.diverged
    why = [
        f"{best.schedule} reached the lowest mean final validation loss, "
        f"{_fmt(best.val_loss_mean)} ± {_sd(best.val_loss_std)} over {n} seed(s)."
    ]
    tied = [
        r.schedule
        for r in ok
        if r is not best
        and r.val_loss_mean - best.val_loss_mean <= spread(r.val_loss_std, best.val_loss_std)
    ]
    if tied:
        why.append(
            f"Within the seed spread of it: {', '.join(tied)}; the difference from them is not "
            "significant at this budget (more seeds would tell)."
        )
    else:
        second = sorted((r for r in ok if r is not best), key=lambda r: r.val_loss_mean)[:1]
        if second:
            s = second[0]
            gap = 100 * (s.val_loss_mean / best.val_loss_mean - 1)
            why.append(f"The runner-up, {s.schedule}, is {gap:.1f}% worse, beyond the seed spread.")
    reached = [r for r in ok if r.steps_to_target is not None]
    if reached:
        fast = min(reached, key=lambda r: r.steps_to_target or 0.0)
        why.append(
            f"Fastest to the target loss: {fast.schedule} ({fast.steps_to_target:.0f} steps)."
        )
    div = [r.schedule for r in rows if r.diverged]
    if div:
        why.append(f"Diverged in some seeds: {', '.join(div)}.")
    return " ".join(why)


def ranked(rows: Sequence[SummaryRow]) -> list[SummaryRow]:
    """The rows with a finite mean final validation loss, lowest first (ties keep row order)."""
    return sorted(
        (r for r in rows if math.isfinite(r.val_loss_mean)), key=lambda r: r.val_loss_mean
    )


def recommend_refined(refs: Sequence[PeakRefinement], common: str) -> tuple[str, str]:
    """Pick among refined schedules, each at its own refined peak, the one with the lowest mean
    final validation loss (a rate where a seed diverged counts as infinitely bad); ``common``,
    the choice at the common peak, is kept when every refined trial diverged. Returns
    ``(name, one sentence)``."""
    if not refs:
        return common, ""
    names = ", ".join(r.schedule for r in refs)
    what = f"Refining the peak{'s' if len(refs) > 1 else ''} of {names}"
    at = {r.schedule: r.at_refined for r in refs}
    finite = [r for r in refs if math.isfinite(at[r.schedule].val_loss_mean)]
    if not finite:
        return common, f"{what}: no rate tried converged on every seed; {common} is kept."
    best = min(finite, key=lambda r: at[r.schedule].val_loss_mean)
    name, t = best.schedule, at[best.schedule]
    head = (
        f"{what}: {name} at peak {t.peak:.3g} reached "
        f"{_fmt(t.val_loss_mean)} ± {_sd(t.val_loss_std)}"
    )
    if name == common or common not in at:
        return name, f"{head}, the lowest."
    c = at[common]
    if not math.isfinite(c.val_loss_mean):
        return name, (
            f"{head}; {common} diverged on some seed at every rate tried, so {name} is recommended."
        )
    tied = c.val_loss_mean - t.val_loss_mean <= spread(c.val_loss_std, t.val_loss_std)
    return name, (
        f"{head}, lower than {common} at its own best peak {c.peak:.3g} "
        f"({_fmt(c.val_loss_mean)}), so {name} is recommended"
        + (" (within the seed spread: more seeds would tell)." if tied else ".")
    )


def chosen_refinement(refs: Sequence[PeakRefinement], recommendation: str) -> PeakRefinement | None:
    """The refinement of the recommended schedule (None when it was not refined)."""
    return next((r for r in refs if r.schedule == recommendation), None)


REFINEMENT_HEADER = ("schedule", "peak", "x range-test peak", "val loss", "")


def refinement_rows(refs: Sequence[PeakRefinement], recommended: str = "") -> list[list[str]]:
    """The refinements' trials as table cells: the schedule, the rate, its ratio to the common
    peak, the mean ± std final validation loss (``diverged`` when a seed did) and a mark on
    each schedule's common and refined rates, and on the recommended one."""
    out = []
    for ref in refs:
        for t in ref.trials:
            m = t.val_loss_mean
            loss = (
                mean_pm_std(m, t.val_loss_std)
                if math.isfinite(m)
                else (f"diverged ({t.diverged}/{t.seeds})")
            )
            mark = [
                s
                for s, r in (("common peak", ref.peak), ("refined", ref.refined_peak))
                if t.peak == r
            ]
            if ref.fixed:
                mark = ["does not use the peak"]
            if ref.schedule == recommended and t.peak == ref.refined_peak:
                mark.append("recommended")
            row = [ref.schedule, f"{t.peak:.3g}", f"{t.ratio:.3g}", loss, ", ".join(mark)]
            out.append(row)
    return out


def refinement_note(peak: float, from_range_test: bool, ref: PeakRefinement | None) -> str:
    """One line on the recommended schedule's peak: where it came from and what its refinement
    ``ref`` made of it, e.g. ``peak: 0.12 from the range test, refined to 0.24 for wsd (...)``."""
    origin = "from the range test" if from_range_test else "given"
    head = f"peak: {peak:.3g} {origin}"
    if not ref:
        return head + " (not refined)"
    if ref.fixed:
        return f"{head}; {ref.schedule} does not use it (its spec fixes the rates)"
    by = {t.peak: t for t in ref.trials}
    tried = ", ".join(f"{t.peak:.3g}" for t in ref.trials if t.peak != ref.peak)
    at_peak = _fmt(by[ref.peak].val_loss_mean)
    if ref.refined_peak == ref.peak:
        return (
            f"{head}, kept after refinement for {ref.schedule} (tried {tried}: none beat its "
            f"mean final validation loss {at_peak})"
        )
    return (
        f"{head}, refined to {ref.refined_peak:.3g} for {ref.schedule} (mean final "
        f"validation loss {at_peak} -> {_fmt(by[ref.refined_peak].val_loss_mean)}; "
        f"tried {tried}; factor {ref.factor:g}, at most {ref.max_steps} steps)"
    )


# ---------------------------------------------------------------------------- halving path
PATH_HEADER = ("rung", "steps", "seeds", "configuration", "val loss", "outcome")


def _seeds(seeds: Sequence[int]) -> str:
    return ",".join(map(str, seeds))


def path_sentence(path: SearchPath) -> str:
    """One sentence on how the halving search went, for the reasoning: ``"Successive halving
    around 0.12 (5 rates a factor 2 apart per schedule): 35 configurations for 33 steps on
    seed 0, the best 12 for 100 steps, the best 4 for 300 steps on 3 seeds."``"""
    p = path.plan
    parts = []
    for r in path.rungs:
        n, rung = len(r.scores), r.rung
        more = n - rung.size if rung.index == 0 else 0
        extra = f" ({rung.size} + {more} from range extensions)" if more > 0 else ""
        what = f"{n} configurations{extra}" if rung.index == 0 else f"the best {n}"
        on = f" on seed {rung.seeds[0]}" if len(rung.seeds) == 1 else f" on {len(rung.seeds)} seeds"
        shown = rung.index == 0 or rung.seeds != path.rungs[rung.index - 1].rung.seeds
        again = "" if rung.new_seeds or not n else " (already trained: no new runs)"
        parts.append(f"{what} for {rung.horizon} steps" + (on if shown else "") + again)
    moved = ", ".join(
        f"{e.family} {_side(e.direction)} to {e.rates[-1]:.3g}" for e in path.extensions
    )
    ext = f"; ranges extended: {moved}" if moved else ""
    return (
        f"Successive halving around {path.center:.3g} ({p.n_rates} rates a factor {p.factor:g} "
        f"apart per schedule): {', '.join(parts)}{ext}."
    )


def _side(direction: int) -> str:
    return "up" if direction > 0 else "down"


def path_rows(path: SearchPath) -> list[list[str]]:
    """The halving path as table cells (:data:`PATH_HEADER`), rung by rung, best first: the
    rung, its steps and seeds, the configuration, its loss (the mean over the rung's seeds;
    ``diverged`` when a seed did) and what became of it (promoted, cut, recommended; the rates
    beyond the planned range are marked ``extended range``)."""
    lo, hi = path.plan.exponents[0], path.plan.exponents[-1]
    rec = path.recommended
    out = []
    for r in path.rungs:
        last = r.rung.index == len(path.rungs) - 1
        keep = set(r.promoted)
        for s in sorted(r.scores, key=lambda s: s.loss):
            c = s.config
            loss = _fmt(s.loss) if math.isfinite(s.loss) else "diverged"
            mark = ["recommended" if c == rec else ""] if last else []
            if not last:
                mark.append("promoted" if c in keep else "cut")
            if not c.fixed and not lo <= c.exponent <= hi:
                mark.append("extended range")
            row = [str(r.rung.index), str(r.rung.horizon), _seeds(r.rung.seeds), c.label, loss]
            out.append([*row, ", ".join(m for m in mark if m)])
    return out


def path_lines(path: SearchPath) -> list[str]:
    """The halving path in a few lines (one per rung, one per range extension)."""
    out = []
    for r in path.rungs:
        rung = r.rung
        n = len(r.scores)
        head = (
            f"rung {rung.index}: {n} configuration{'s' * (n != 1)} x {rung.horizon} steps "
            f"(seed{'s' if len(rung.seeds) > 1 else ''} {_seeds(rung.seeds)})"
        )
        n_div = sum(not math.isfinite(s.loss) for s in r.scores)
        div = f" ({n_div} diverged)" if n_div else ""
        if r.scores and not rung.new_seeds:
            head += " (already trained)"
        top = [s for s in sorted(r.scores, key=lambda s: s.loss) if math.isfinite(s.loss)][:1]
        best = f"; best {top[0].config.label} ({_fmt(top[0].loss)})" if top else ""
        if rung.index < len(path.rungs) - 1:
            out.append(f"{head}: {len(r.promoted)} promoted, {len(r.cut)} cut{div}{best}")
        else:
            rec = path.recommended
            what = f"recommended {rec.label}" if rec else "none converged on every seed"
            out.append(f"{head}: {what}{div}{best if rec is None else ''}")
    for e in path.extensions:
        rates = ", ".join(f"{x:.3g}" for x in e.rates)
        out.append(f"range extended {_side(e.direction)} for {e.family}: {rates}")
    return out


def path_note(path: SearchPath, from_range_test: bool) -> str:
    """One line on the recommended configuration's rate and where it came from, e.g.
    ``peak: 0.241 for cosine, best of 0.03-0.48 around 0.12 from the range test``."""
    origin = "from the range test" if from_range_test else "given"
    rates = [s.config.rate for s in path.rungs[0].scores if not s.config.fixed]
    span = f"{min(rates):.3g}-{max(rates):.3g}" if rates else f"{path.center:.3g}"
    rec = path.recommended
    tried = (
        f"{len(path.rungs[0].scores)} configurations, rates {span} (factor "
        f"{path.plan.factor:g}) around {path.center:.3g} {origin}"
    )
    if rec is None:
        return f"peak: none recommended; tried {tried}"
    if rec.fixed:
        return f"peak: {rec.family} does not use it (its spec fixes the rates); tried {tried}"
    return f"peak: {rec.rate:.3g} for {rec.family}, the best of the halving search over {tried}"
