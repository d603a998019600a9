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
import math
from collections.abc import Callable, Mapping
from numbers import Real
from typing import Any

from lrkit.schedules import _anneal, _combinators, _cyclic, _decay, _one_cycle, _time, _wsd
from lrkit.schedules._base import Schedule, registry
from lrkit.schedules._errors import ScheduleTypeError, SpecError
from lrkit.schedules._spec_text import SpecSyntaxError, parse_expression

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
    text = _text(text).strip()
    evaluator = _Evaluator(text)
    try:
        body = parse_expression(text)
        value = evaluator.visit(body)
    except SpecSyntaxError as exc:
        raise SpecError(_point(text, exc.start, exc.end, exc.message)) from None
    except (RecursionError, MemoryError):  # (the grammar bounds the depth; a safety net)
        raise SpecError(f"parse: the spec is too deeply nested, got {_clip(text)}") from None
    if not isinstance(value, Schedule):
        if isinstance(value, Real) and not isinstance(value, bool):
            return evaluator.build(body, "constant", [value], {})
        raise SpecError(f"parse: the spec must describe a schedule, got {value!r}")
    return value


def _text(text: object) -> str:
    """The spec as a ``str`` of valid Unicode: bytes are decoded as UTF-8; a byte that is not
    UTF-8 (as bytes, or smuggled into a ``str`` as a lone surrogate by ``sys.argv``) is a
    SpecError saying where."""
    if isinstance(text, (bytes, bytearray)):
        try:
            return bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SpecError(
                f"parse: a spec must be UTF-8 text, got byte {bytes(text)[exc.start]:#04x} at "
                f"position {exc.start} of {_clip(repr(bytes(text)))}"
            ) from None
    if not isinstance(text, str):
        raise ScheduleTypeError(f"parse: spec must be a string, got {text!r}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise SpecError(
            f"parse: a spec must be UTF-8 text, got {text[exc.start]!r} (not a character) at "
            f"position {exc.start} of {_clip(text.encode('utf-8', 'backslashreplace').decode())}"
        ) from None
    return text


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


def _factors(s: Schedule) -> list[Schedule]:
    """The factors ``s`` brings to a product (a product's own factors: products flatten)."""
    return list(s.schedules) if isinstance(s, _combinators.Product) else [s]


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

#: Names a user may write for a non-finite number (refused: a schedule's numbers are finite).
_NOT_FINITE = frozenset({"nan", "inf", "infinity"})

#: Operators of one precedence, chained left to right in one loop.
_SAME_LEVEL = ((ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.MatMult), (ast.RShift, ast.LShift))


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
            if isinstance(node.value, float) and not math.isfinite(node.value):
                raise self.fail(
                    node,
                    f"numbers must be finite, got {_clip(self.text[node.col_offset : node.end_col_offset], 40)}",
                )
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
            if node.id.lower() in _NOT_FINITE:
                raise self.fail(
                    node, f"numbers must be finite; {node.id!r} is not a number a spec accepts"
                )
            if node.id in CONSTRUCTORS:
                raise self.fail(node, f"{node.id!r} must be called, e.g. {node.id}(...)")
            raise self.fail(node, f"unknown name {node.id!r}{_suggest(node.id, CONSTRUCTORS)}")
        raise self.fail(node, f"not allowed in a spec: {type(node).__name__}")

    def binop(self, node: ast.BinOp) -> Any:
        # ``a >> b >> c ...`` nests to the left, one level per operator: walk the chain in a
        # loop, not by recursion, so that a long sequence or product parses.
        level = next((ops for ops in _SAME_LEVEL if isinstance(node.op, ops)), (type(node.op),))
        chain = [node]
        while isinstance(chain[-1].left, ast.BinOp) and isinstance(chain[-1].left.op, level):
            chain.append(chain[-1].left)
        chain.reverse()
        left = self.visit(chain[0].left)
        rights = [self.visit(n.right) for n in chain]
        if all(isinstance(n.op, ast.RShift) for n in chain):
            operands = [left, *rights]
            for k, operand in enumerate(operands):
                if not isinstance(operand, Schedule):  # the first '>>' that it is an end of
                    raise self.fail(chain[max(k - 1, 0)], "'>>' joins two schedules")
            return self.build(node, "sequence", [operands], {})
        # A run of schedule * schedule is one product, built once at its end (building it
        # factor by factor copies the factors each time: quadratic in the chain's length).
        factors: list[Schedule] = []
        last = node
        for n, right in zip(chain, rights, strict=True):
            if (
                isinstance(n.op, ast.Mult)
                and isinstance(right, Schedule)
                and (factors or isinstance(left, Schedule))
            ):
                if not factors:
                    factors = _factors(left)
                factors.extend(_factors(right))
                last = n
                continue
            if factors:
                left = self.build(last, "product", [factors], {})
                factors = []
            left = self.apply(n, left, right)
        if factors:
            left = self.build(last, "product", [factors], {})
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
