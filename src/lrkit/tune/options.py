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
from lrkit.tune.tasks import resolve_device


@dataclass(frozen=True)
class CompareOptions:
    """The settings of :func:`compare` (see there), validated when built; ``seeds`` is kept as
    the tuple of seeds."""

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

    def __post_init__(self) -> None:
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
        ``refine_top``).

        Raises:
            TypeError: an unknown setting.
            ValueError: a bad value (the message names it).
        """
        refine_keys = {"refine": "enabled", "refine_factor": "factor"}
        refine_keys |= {"refine_steps": "max_steps", "refine_top": "top"}
        known = {f.name for f in dataclasses.fields(cls)} - {"refine"}
        unknown = set(settings) - known - set(refine_keys)
        if unknown:
            raise TypeError(
                f"compare: unknown setting(s) {sorted(unknown)}; known: "
                f"{sorted(known | set(refine_keys))}"
            )
        refine = RefineOptions(
            **{refine_keys[k]: settings.pop(k) for k in list(settings) if k in refine_keys}
        )
        if "seeds" in settings:
            settings["seeds"] = _seed_list(settings["seeds"])
        if settings.get("schedules") is not None:
            settings["schedules"] = tuple(settings["schedules"])
        if settings.get("out") is not None:
            settings["out"] = Path(settings["out"])
        return cls(refine=refine, **settings)


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
