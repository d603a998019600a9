"""``lrkit plot`` (a curve in the terminal or a PNG) and ``lrkit show`` (a schedule's numbers).

A spec on the command line is the text form (``"warmup(cosine(1e-3, steps=9000), steps=1000)"``)
or the path of a ``.json`` file holding :meth:`lrkit.Schedule.to_dict` output.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from lrkit.schedules import Schedule, from_dict, parse
from lrkit.tools._sampling import breakpoints, sample_steps
from lrkit.tools.termplot import default_width, termplot

#: ``show`` finds min and max at every step of runs up to this long, else on a strided sample.
SHOW_DENSE_LIMIT = 2_000_001


def add_parser(sub: Any) -> None:
    """Register ``plot`` and ``show`` on the sub-command parser ``sub``."""
    plot = sub.add_parser(
        "plot",
        help="draw schedules in the terminal or to an image",
        description="Draw one or more schedules over steps 0..N, as text or (with -o) an image.",
    )
    plot.add_argument("specs", nargs="+", metavar="SPEC", help="schedule text or a .json file")
    _run_arguments(plot)
    plot.add_argument("-o", "--output", metavar="FILE", help="write a matplotlib image (.png)")
    plot.add_argument("--log", action="store_true", help="log-scale y axis")
    plot.add_argument(
        "--label", action="append", metavar="NAME", help="curve name, once per spec, in order"
    )
    plot.add_argument("--title", help="figure title (with -o)")
    plot.add_argument(
        "--name", default="lr", help="the hyperparameter's name, for the y axis (default lr)"
    )
    plot.add_argument("--width", type=int, help="text plot width (default $COLUMNS)")
    plot.add_argument("--height", type=int, default=16, help="text plot rows (default 16)")
    plot.add_argument(
        "--style", choices=("braille", "markers"), help="text plot drawing characters"
    )
    plot.set_defaults(func=run_plot)

    show = sub.add_parser(
        "show",
        help="print a schedule's spec, length and values",
        description="Print the canonical spec, the length, values at key steps, min and max.",
    )
    show.add_argument("spec", metavar="SPEC", help="schedule text or a .json file")
    _run_arguments(show)
    show.add_argument("--json", action="store_true", help="print the dict form as JSON")
    show.set_defaults(func=run_show)


def _run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--steps", type=int, help="last step to evaluate (default: the schedule's length)"
    )
    p.add_argument(
        "--total-steps", type=int, help="the run's length, for '%%' lengths (default --steps)"
    )
    p.add_argument("--steps-per-epoch", type=int, help="steps per epoch, for 'ep' lengths")


def load_spec(text: str) -> Schedule:
    """A schedule from its text form, or from a ``.json`` file holding its dict form.

    Raises:
        ValueError: the file cannot be read or is not JSON; SpecError for a bad spec.
    """
    if text.strip().endswith(".json"):
        path = Path(text.strip())
        try:
            data = json.loads(path.read_text())
        except OSError as exc:
            raise ValueError(f"cannot read spec file {text!r}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"spec file {text!r} is not valid JSON: {exc}") from None
        return from_dict(data)
    return parse(text)


def _bind(spec: str, s: Schedule, args: argparse.Namespace) -> Schedule:
    if s.is_bound:
        return s
    total = args.total_steps if args.total_steps is not None else args.steps
    try:
        return s.bind(total, steps_per_epoch=args.steps_per_epoch)
    except ValueError as exc:
        raise ValueError(
            f"{spec!r}: {exc}; on the command line pass --steps-per-epoch for 'ep' lengths and "
            f"--total-steps (or --steps) for '%' lengths"
        ) from None


def _check_positive(name: str, value: int | None) -> None:
    if value is not None and value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {name}={value}")


def _horizon(pairs: list[tuple[str, Schedule]], steps: int | None) -> int:
    """``--steps`` or the longest duration; names a cyclic spec when there is none."""
    if steps is not None:
        return steps
    for spec, s in pairs:
        if s.duration is None:
            raise ValueError(f"{spec!r} never settles (cyclic); pass --steps N")
    longest = max(float(s.duration) for _, s in pairs)  # type: ignore[arg-type]
    return max(1, int(np.ceil(longest)))


def _load_all(specs: list[str], args: argparse.Namespace) -> list[tuple[str, Schedule]]:
    _check_positive("--steps", args.steps)
    _check_positive("--total-steps", args.total_steps)
    _check_positive("--steps-per-epoch", args.steps_per_epoch)
    return [(spec, _bind(spec, load_spec(spec), args)) for spec in specs]


def run_plot(args: argparse.Namespace) -> int:
    """``lrkit plot``: a text plot on stdout, or an image with ``-o``."""
    pairs = _load_all(args.specs, args)
    steps = _horizon(pairs, args.steps)
    labels = args.label or [
        Path(spec).stem if spec.strip().endswith(".json") else str(s) for spec, s in pairs
    ]
    if len(labels) != len(pairs):
        raise ValueError(
            f"--label must be given once per spec, got {len(labels)} labels for {len(pairs)} specs"
        )
    if len(set(labels)) != len(labels):
        raise ValueError(f"curve labels must differ, got {labels!r}; name them with --label")
    named = dict(zip(labels, (s for _, s in pairs), strict=True))
    if args.output:
        try:
            from lrkit.tools.plot import plot_schedules

            plot_schedules(named, steps, log=args.log, path=args.output, title=args.title,
                           ylabel=args.name)  # fmt: skip
        except ImportError as exc:
            print(f"lrkit plot: error: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            raise ValueError(f"cannot write {args.output!r}: {exc.strerror or exc}") from None
        print(f"wrote {args.output} ({len(named)} curve{'s' * (len(named) > 1)}, 0..{steps})")
        return 0
    width = args.width if args.width is not None else max(default_width() - 1, 20)
    print(termplot(named, steps, width=width, height=args.height, log=args.log, style=args.style))
    return 0


def _fmt(v: float) -> str:
    return f"{v:.6g}"


def key_steps(s: Schedule, steps: int) -> list[tuple[int, str]]:
    """Steps worth tabulating: 0, phase ends (when few), quarters of the run, the last step."""
    out: dict[int, str] = {0: "start"}
    ends = breakpoints(s, steps)
    if len(ends) <= 12:
        for b in ends:
            out.setdefault(round(b), "end" if b == s.duration else "phase end")
    for q in (1, 2, 3):
        out.setdefault(round(steps * q / 4), f"{q}/4")
    out[steps] = "final" if s.duration is not None and steps >= s.duration else "last"
    return sorted(out.items())


def run_show(args: argparse.Namespace) -> int:
    """``lrkit show``: spec, length, a table of values, min and max."""
    unbound = load_spec(args.spec)
    if args.json:
        print(json.dumps(unbound.to_dict(), indent=2))
        return 0
    ((spec, s),) = _load_all([args.spec], args)
    duration = s.duration
    print(f"spec:    {unbound}")
    if str(s) != str(unbound):
        print(f"bound:   {s}")
    if duration is None:
        print("length:  never settles (cyclic)")
    else:
        print(f"length:  {_fmt(duration)} steps, then holds {_fmt(s(duration))}")
    if duration is None and args.steps is None:
        print("values:  pass --steps N to tabulate a cyclic schedule over steps 0..N")
        return 0
    steps = _horizon([(spec, s)], args.steps)
    rows = key_steps(s, steps)
    values = s(np.asarray([step for step, _ in rows], dtype=np.float64))
    step_w = max(4, *(len(str(step)) for step, _ in rows))
    print(f"values over steps 0..{steps}:")
    print(f"  {'step':>{step_w}}  {'value':<12}")
    for (step, note), v in zip(rows, values, strict=True):
        print(f"  {step:>{step_w}}  {_fmt(float(v)):<12}  {note}")
    xs = sample_steps(steps, [s], max_points=SHOW_DENSE_LIMIT)
    ys = s(xs)
    lo, hi = int(np.argmin(ys)), int(np.argmax(ys))
    exact = "" if len(xs) == steps + 1 else " (sampled)"
    print(f"min:     {_fmt(float(ys[lo]))} at step {int(xs[lo])}{exact}")
    print(f"max:     {_fmt(float(ys[hi]))} at step {int(xs[hi])}{exact}")
    return 0
