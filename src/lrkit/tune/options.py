"""The settings of a comparison (:class:`CompareOptions`), validated when built: what
:func:`lrkit.tune.compare` takes as keywords, as one frozen record.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lrkit.tune._refine_runs import RefineOptions
from lrkit.tune.executors import Executor
from lrkit.tune.halving import SEARCHES, HalvingOptions
from lrkit.tune.tasks import resolve_device


@dataclass(frozen=True)
class CompareOptions:
    """The settings of :func:`compare` (see there), validated when built; ``seeds`` is kept as
    the tuple of seeds. ``search`` is ``"halving"`` (successive halving over schedule x rate,
    set by ``halving``) or ``"grid"`` (every schedule at one common peak, then the peak
    refinement set by ``refine``); the settings of the other search must stay at their
    defaults."""

    schedules: tuple[str, ...] | None = None
    seeds: tuple[int, ...] = (0, 1, 2)
    steps: int | None = None
    peak: float | None = None
    target: float | None = None
    jobs: int = 1
    out: Path | None = None
    resume: bool = False
    progress: bool = True
    finder_steps: int = 100
    refine: RefineOptions = field(default_factory=RefineOptions)
    executor: Executor | None = None
    device: str | None = None
    search: str = "halving"
    halving: HalvingOptions = field(default_factory=HalvingOptions)

    def __post_init__(self) -> None:
        if self.search not in SEARCHES:
            raise ValueError(
                f"compare: search must be 'halving' or 'grid', got search={self.search!r}"
            )
        if self.search == "grid" and self.halving != HalvingOptions():
            raise ValueError(
                "compare: budget, n_rates, eta and factor set the halving search, got "
                f"{_changed(self.halving, HalvingOptions())} with search='grid'"
            )
        if self.search == "halving" and self.refine != RefineOptions():
            raise ValueError(
                "compare: refine, refine_factor, refine_steps and refine_top set the grid "
                f"search's refinement, got {_changed(self.refine, RefineOptions())} with "
                "search='halving' (add search='grid', or --search grid)"
            )
        s = self.steps
        if s is not None and (isinstance(s, bool) or not isinstance(s, int) or s < 10):
            raise ValueError(f"compare: steps must be an integer >= 10, got steps={s!r}")
        j = self.jobs
        if isinstance(j, bool) or not isinstance(j, int) or j < 1:
            raise ValueError(f"compare: jobs must be an integer >= 1, got jobs={j!r}")
        if self.executor is not None and self.jobs != 1:
            raise ValueError(
                f"compare: give jobs or executor, not both, got jobs={j!r} and an executor"
            )
        if self.device is not None:
            resolve_device(self.device)
        if self.resume and self.out is None:
            raise ValueError("compare: resume=True needs out= (the report folder)")
        p = self.peak
        if p is not None and not (
            isinstance(p, (int, float)) and not isinstance(p, bool) and 0 < p < math.inf
        ):
            raise ValueError(f"compare: peak must be a finite number > 0, got peak={p!r}")

    @classmethod
    def from_settings(cls, **settings: Any) -> CompareOptions:
        """Options from :func:`compare`'s keyword settings (``seeds`` a count or a sequence,
        ``out`` a path or str, ``refine`` a bool, ``refine_factor``/``refine_steps``/
        ``refine_top``, and the halving search's ``budget``/``n_rates``/``eta``/``factor``).

        Raises:
            TypeError: an unknown setting.
            ValueError: a bad value (the message names it).
        """
        refine_keys = {"refine": "enabled", "refine_factor": "factor"}
        refine_keys |= {"refine_steps": "max_steps", "refine_top": "top"}
        halving_keys = {f.name for f in dataclasses.fields(HalvingOptions)}
        known = {f.name for f in dataclasses.fields(cls)} - {"refine", "halving"}
        unknown = set(settings) - known - set(refine_keys) - halving_keys
        if unknown:
            raise TypeError(
                f"compare: unknown setting(s) {sorted(unknown)}; known: "
                f"{sorted(known | set(refine_keys) | halving_keys)}"
            )
        refine = RefineOptions(
            **{refine_keys[k]: settings.pop(k) for k in list(settings) if k in refine_keys}
        )
        halving = HalvingOptions(
            **{k: settings.pop(k) for k in list(settings) if k in halving_keys}
        )
        if "seeds" in settings:
            settings["seeds"] = _seed_list(settings["seeds"])
        if settings.get("schedules") is not None:
            settings["schedules"] = tuple(settings["schedules"])
        if settings.get("out") is not None:
            settings["out"] = Path(settings["out"])
        return cls(refine=refine, halving=halving, **settings)


def _changed(opts: object, default: object) -> str:
    """The fields of ``opts`` that differ from ``default``, as ``name=value`` (the names a user
    types: ``refine`` for ``enabled``, ``refine_<x>`` for the other refinement settings)."""
    names = {"enabled": "refine", "factor": "refine_factor", "max_steps": "refine_steps"}
    names["top"] = "refine_top"
    out = []
    for f in dataclasses.fields(opts):  # type: ignore[arg-type]
        v = getattr(opts, f.name)
        if v != getattr(default, f.name):
            name = names.get(f.name, f.name) if isinstance(opts, RefineOptions) else f.name
            out.append(f"{name}={v!r}")
    return ", ".join(out)


def _seed_list(seeds: object) -> tuple[int, ...]:
    out = (
        list(range(seeds))
        if isinstance(seeds, int) and not isinstance(seeds, bool)
        else list(seeds)  # type: ignore[call-overload]
        if isinstance(seeds, Sequence) and not isinstance(seeds, str)
        else []
    )
    if not out or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in out):
        raise ValueError(
            f"compare: seeds must be a positive count or integers >= 0, got seeds={seeds!r}"
        )
    return tuple(out)
