"""Spec forms: the JSON-ready dict (``to_dict`` / ``from_dict``) and the one-line text form.

The text form is the Python call syntax that ``str(schedule)`` prints, e.g.
``warmup(cosine(0.001, 1e-05, steps=9000), steps=1000)`` or
``linear(0.0, 0.001, steps=1000) >> cosine(0.001, steps=9000)``. It is parsed with
:mod:`ast` and only literals, known constructor names, keyword arguments, lists, ``>>`` and
``*`` are accepted: nothing is evaluated, so a spec from a config file or a command line
cannot run code.
"""

from __future__ import annotations

import ast
import difflib
import inspect
from collections.abc import Callable, Mapping
from numbers import Real
from typing import Any

from lrkit.schedules import _anneal, _combinators, _cyclic, _decay, _one_cycle, _time, _wsd
from lrkit.schedules._base import Schedule, registry
from lrkit.schedules._errors import ScheduleTypeError, SpecError

CONSTRUCTORS: dict[str, Callable[..., Schedule]] = {
    name: getattr(module, name)
    for module, names in (
        (_decay, ("constant", "step_decay", "multistep_decay", "exponential", "polynomial",
                  "inverse_sqrt")),
        (_anneal, ("linear", "cosine", "piecewise", "interpolate")),
        (_cyclic, ("cosine_restarts", "cyclic")),
        (_one_cycle, ("one_cycle", "one_cycle_momentum")),
        (_wsd, ("wsd",)),
        (_combinators, ("warmup", "sequence", "product", "scale", "clip")),
        (_time, ("shift", "advance", "stretch", "repeat")),
    )
    for name in names
}  # fmt: skip


#: Per spec name, the arguments its public constructor requires.
_REQUIRED: dict[str, tuple[str, ...]] = {
    name: tuple(
        p.name
        for p in inspect.signature(ctor).parameters.values()
        if p.default is inspect.Parameter.empty
    )
    for name, ctor in CONSTRUCTORS.items()
}


def from_dict(d: Mapping[str, Any]) -> Schedule:
    """Rebuild a schedule from :meth:`Schedule.to_dict` output (also after a JSON round trip).

    Raises:
        SpecError: unknown ``type``, unknown or missing keys; ValueError for bad values.

    >>> s = warmup(cosine(1e-3, 1e-5, steps=900), steps=100)
    >>> from_dict(s.to_dict()) == s
    True
    """
    try:
        return _from_dict(d)
    except RecursionError:
        raise SpecError("from_dict: the dict is too deeply nested") from None


def _from_dict(d: Mapping[str, Any]) -> Schedule:
    if not isinstance(d, Mapping) or "type" not in d:
        raise SpecError(f"from_dict: expected a dict with a 'type' key, got {d!r}")
    name = d["type"]
    classes = registry()
    if not isinstance(name, str) or name not in classes:
        raise SpecError(f"from_dict: unknown schedule type {name!r}{_suggest(name, classes)}")
    # The classes give every field a default (dataclass ordering needs them); a dict must
    # still hold what the public constructor requires, e.g. cosine's steps.
    missing = [k for k in _REQUIRED.get(name, ()) if k not in d]
    if missing:
        raise SpecError(f"from_dict: bad keys for {name!r}: missing required {missing!r}")
    kwargs = {k: _from_plain(v) for k, v in d.items() if k != "type"}
    try:
        return classes[name](**kwargs)
    except TypeError as exc:
        if isinstance(exc, ScheduleTypeError):
            raise
        raise SpecError(f"from_dict: bad keys for {name!r}: {exc}") from None


def _from_plain(value: Any) -> Any:
    if isinstance(value, Mapping) and "type" in value:
        return _from_dict(value)
    if isinstance(value, list):
        return tuple(_from_plain(v) for v in value)
    return value


def parse(text: str) -> Schedule:
    """Parse the one-line text form (what ``str(schedule)`` prints) without eval or exec.

    Raises:
        SpecError: a syntax error, an unknown name, a disallowed construct or a bad argument,
            with the offending part of the text underlined.

    >>> parse("warmup(cosine(1e-3, 1e-5, steps=9000), steps=1000)").duration
    10000
    """
    if not isinstance(text, str):
        raise ScheduleTypeError(f"parse: spec must be a string, got {text!r}")
    text = text.strip()
    evaluator = _Evaluator(text)
    try:
        tree = ast.parse(text, mode="eval")
        value = evaluator.visit(tree.body)
    except SyntaxError as exc:
        col = (exc.offset or 1) - 1
        raise SpecError(_point(text, col, col + 1, f"invalid syntax ({exc.msg})")) from None
    except (RecursionError, MemoryError):  # Python's parser and the walk give up on depth
        raise SpecError(f"parse: the spec is too deeply nested, got {_clip(text)}") from None
    if not isinstance(value, Schedule):
        if isinstance(value, Real) and not isinstance(value, bool):
            return evaluator.build(tree.body, "constant", [value], {})
        raise SpecError(f"parse: the spec must describe a schedule, got {value!r}")
    return value


def as_schedule(spec: Schedule | Mapping[str, Any] | str | float) -> Schedule:
    """Accept a schedule, its dict form, its text form, or a number (a constant schedule)."""
    if isinstance(spec, Schedule):
        return spec
    if isinstance(spec, str):
        return parse(spec)
    if isinstance(spec, Mapping):
        return from_dict(spec)
    if isinstance(spec, Real) and not isinstance(spec, bool):
        return _decay.constant(spec)
    raise ScheduleTypeError(
        f"as_schedule: expected a Schedule, dict, spec string or number, got {spec!r}"
    )


def _suggest(name: object, options: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(str(name), list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else f"; known: {', '.join(sorted(options))}"


def _clip(text: str, limit: int = 80) -> str:
    """``text`` quoted, shortened to about ``limit`` characters for an error message."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text)} characters)"


def _point(text: str, start: int, end: int, message: str) -> str:
    """The message, the spec line and carets under ``text[start:end]``.

    A long spec is cut to a window of about 160 characters around the offending part.
    """
    end = max(end, start + 1)
    lo, hi = 0, len(text)
    if hi > _WINDOW:
        lo = max(0, start - 40)
        hi = min(hi, lo + _WINDOW)
        end = min(end, hi)
    left = "..." if lo > 0 else ""
    right = "..." if hi < len(text) else ""
    line = f"{left}{text[lo:hi]}{right}"
    carets = f"{' ' * (len(left) + start - lo)}{'^' * (end - start)}"
    return f"spec: {message}\n  {line}\n  {carets}"


#: A spec longer than this is shown cut around the offending part in an error.
_WINDOW = 160


class _Evaluator:
    """Walk the expression tree, allowing only literals, constructor calls, lists, >> and *."""

    def __init__(self, text: str) -> None:
        self.text = text

    def fail(self, node: ast.AST, message: str) -> SpecError:
        start = getattr(node, "col_offset", 0)
        end = getattr(node, "end_col_offset", start + 1) or start + 1
        return SpecError(_point(self.text, start, end, message))

    def visit(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, (int, float, str, bool)) or node.value is None:
                return node.value
            raise self.fail(node, f"unsupported literal {node.value!r}")
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self.visit(e) for e in node.elts]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = self.visit(node.operand)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise self.fail(node, "a sign applies to numbers only")
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp):
            return self.binop(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Name):
            if node.id in CONSTRUCTORS:
                raise self.fail(node, f"{node.id!r} must be called, e.g. {node.id}(...)")
            raise self.fail(node, f"unknown name {node.id!r}{_suggest(node.id, CONSTRUCTORS)}")
        raise self.fail(node, f"not allowed in a spec: {type(node).__name__}")

    def binop(self, node: ast.BinOp) -> Any:
        # ``a >> b >> c ...`` nests to the left, one level per operator: walk the chain in a
        # loop, not by recursion, so that a long sequence or product parses.
        chain = [node]
        while isinstance(chain[-1].left, ast.BinOp) and type(chain[-1].left.op) is type(node.op):
            chain.append(chain[-1].left)
        chain.reverse()
        left = self.visit(chain[0].left)
        rights = [self.visit(n.right) for n in chain]
        if isinstance(node.op, ast.RShift):
            operands = [left, *rights]
            for k, operand in enumerate(operands):
                if not isinstance(operand, Schedule):  # the first '>>' that it is an end of
                    raise self.fail(chain[max(k - 1, 0)], "'>>' joins two schedules")
            return self.build(node, "sequence", [operands], {})
        for n, right in zip(chain, rights, strict=True):
            left = self.apply(n, left, right)
        return left

    def apply(self, node: ast.BinOp, left: Any, right: Any) -> Any:
        try:
            if isinstance(node.op, ast.Mult):
                if isinstance(left, Schedule) or isinstance(right, Schedule):
                    out = left * right
                    if out is NotImplemented:
                        raise self.fail(node, "'*' needs schedules or numbers")
                    return out
                if isinstance(left, (int, float)) and isinstance(right, (int, float)):
                    return float(left) * float(right)  # (big ints would multiply slowly)
                raise self.fail(node, "'*' needs schedules or numbers")
            if isinstance(node.op, ast.Div):
                if all(isinstance(v, (int, float)) for v in (left, right)) and right != 0:
                    return left / right
                raise self.fail(node, "'/' divides two numbers")
        except SpecError:
            raise
        except (ValueError, TypeError) as exc:
            raise self.fail(node, str(exc)) from None
        except OverflowError:
            raise self.fail(node, "numbers must be finite") from None
        raise self.fail(node, f"operator {type(node.op).__name__} is not allowed in a spec")

    def call(self, node: ast.Call) -> Schedule:
        if not isinstance(node.func, ast.Name):
            raise self.fail(node.func, "only calls of schedule names are allowed")
        name = node.func.id
        if name not in CONSTRUCTORS:
            raise self.fail(node.func, f"unknown schedule {name!r}{_suggest(name, CONSTRUCTORS)}")
        args = [self.visit(a) for a in node.args]
        kwargs = {}
        for kw in node.keywords:
            if kw.arg is None:
                raise self.fail(kw, "'**' is not allowed in a spec")
            kwargs[kw.arg] = self.visit(kw.value)
        return self.build(node, name, args, kwargs)

    def build(self, node: ast.AST, name: str, args: list[Any], kwargs: dict[str, Any]) -> Schedule:
        """Call the constructor ``name``; its errors point at ``node``."""
        try:
            return CONSTRUCTORS[name](*args, **kwargs)
        except (ValueError, TypeError) as exc:
            raise self.fail(node, str(exc)) from None
