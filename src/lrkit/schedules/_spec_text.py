"""The text form's grammar: a small, linear-time parser from spec text to :mod:`ast` nodes.

Python's own ``ast.parse`` nests a chain ``a * b * c ...`` one level per operator and gives up
(RecursionError) after a few thousand, so a long but flat spec could not be read. This parser
reads the subset of Python's expression syntax that a spec may use, with Python's precedence
(``>>`` below ``+ -`` below ``* / // % @`` below unary signs below ``**``), in one pass over
the tokens: binary chains are loops, only parentheses, brackets and calls nest, at most
:data:`MAX_DEPTH` deep. It returns ordinary :mod:`ast` nodes whose ``col_offset`` /
``end_col_offset`` are offsets in the whole text, so the evaluator in
:mod:`lrkit.schedules._spec` points at the offending part. Constructs a spec does not allow
(attributes, subscripts, other operators) are still parsed into nodes so that the evaluator can
name them; anything else is a syntax error at its column.
"""

from __future__ import annotations

import ast
import re
import tokenize
from typing import Any

#: Parentheses, brackets, calls and signs nested deeper than this are refused.
MAX_DEPTH = 100

_TOKEN = re.compile(
    rf"(?P<ws>\s+)|(?P<number>{tokenize.Number})|(?P<string>{tokenize.String})"
    r"|(?P<name>[^\W\d]\w*)"
    r"|(?P<op>\*\*|>>|<<|//|[-+*/%@~()\[\]{},=.:])|(?P<bad>.)",
    re.DOTALL,
)

_BINARY: dict[str, tuple[int, type[ast.operator]]] = {
    ">>": (1, ast.RShift),
    "<<": (1, ast.LShift),
    "+": (2, ast.Add),
    "-": (2, ast.Sub),
    "*": (3, ast.Mult),
    "/": (3, ast.Div),
    "//": (3, ast.FloorDiv),
    "%": (3, ast.Mod),
    "@": (3, ast.MatMult),
}
_UNARY: dict[str, type[ast.unaryop]] = {"-": ast.USub, "+": ast.UAdd, "~": ast.Invert}


class SpecSyntaxError(Exception):
    """A spec that is not in the grammar: ``message`` about the text from ``start`` to ``end``."""

    def __init__(self, message: str, start: int, end: int) -> None:
        super().__init__(message)
        self.message, self.start, self.end = message, start, end


class _Token:
    __slots__ = ("end", "kind", "start", "text")

    def __init__(self, kind: str, text: str, start: int, end: int) -> None:
        self.kind, self.text, self.start, self.end = kind, text, start, end


def tokens(text: str) -> list[_Token]:
    """The tokens of ``text`` (whitespace dropped), ending with an ``end`` token."""
    out = [
        _Token(m.lastgroup, m.group(), m.start(), m.end())  # type: ignore[arg-type]
        for m in _TOKEN.finditer(text)
        if m.lastgroup != "ws"
    ]
    for tok in out:
        if tok.kind == "bad":
            raise SpecSyntaxError(f"invalid syntax (unexpected {tok.text!r})", tok.start, tok.end)
    out.append(_Token("end", "", len(text), len(text)))
    return out


def parse_expression(text: str) -> ast.expr:
    """The expression ``text`` as :mod:`ast` nodes; :class:`SpecSyntaxError` if it is not one."""
    parser = _Parser(tokens(text))
    node = parser.expr()
    tok = parser.peek()
    if tok.kind != "end":
        raise SpecSyntaxError("invalid syntax", tok.start, tok.end)
    return node


def _at(node: Any, start: int, end: int | None) -> Any:
    node.col_offset, node.end_col_offset = start, end
    return node


class _Parser:
    def __init__(self, toks: list[_Token]) -> None:
        self.toks = toks
        self.i = 0
        self.depth = 0

    def peek(self) -> _Token:
        return self.toks[self.i]

    def take(self) -> _Token:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def is_op(self, text: str) -> bool:
        tok = self.toks[self.i]
        return tok.kind == "op" and tok.text == text

    def expect(self, text: str) -> _Token:
        if not self.is_op(text):
            tok = self.peek()
            found = "the end" if tok.kind == "end" else repr(tok.text)
            raise SpecSyntaxError(
                f"invalid syntax (expected {text!r}, found {found})", tok.start, tok.end
            )
        return self.take()

    def nest(self, start: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise SpecSyntaxError(
                f"too deeply nested (more than {MAX_DEPTH} levels)", start, start + 1
            )

    # ----------------------------------------------------------------- binary operators
    def expr(self, level: int = 1) -> ast.expr:
        """Operators of precedence ``level`` and above, left-associative, in a loop."""
        left = self.unary() if level >= 3 else self.expr(level + 1)
        while True:
            tok = self.peek()
            entry = _BINARY.get(tok.text) if tok.kind == "op" else None
            if entry is None or entry[0] != level:
                return left
            self.take()
            right = self.unary() if level >= 3 else self.expr(level + 1)
            left = _at(ast.BinOp(left, entry[1](), right), left.col_offset, right.end_col_offset)

    def unary(self) -> ast.expr:
        tok = self.toks[self.i]
        if tok.kind != "op" or tok.text not in _UNARY:  # the common case: no sign
            return self.power()
        signs: list[_Token] = []
        while self.peek().kind == "op" and self.peek().text in _UNARY:
            signs.append(self.take())
            if len(signs) > MAX_DEPTH:
                raise SpecSyntaxError(
                    f"too deeply nested ({len(signs)} signs in a row)",
                    signs[0].start,
                    signs[-1].end,
                )
        node = self.power()
        for sign in reversed(signs):
            node = _at(ast.UnaryOp(_UNARY[sign.text](), node), sign.start, node.end_col_offset)
        return node

    def power(self) -> ast.expr:
        base = self.postfix()
        tok = self.toks[self.i]
        if tok.kind != "op" or tok.text != "**":
            return base
        self.take()
        self.nest(base.col_offset)
        exponent = self.unary()
        self.depth -= 1
        return _at(ast.BinOp(base, ast.Pow(), exponent), base.col_offset, exponent.end_col_offset)

    # ----------------------------------------------------------------- atoms and calls
    def postfix(self) -> ast.expr:
        node = self.atom()
        while True:
            if self.is_op("("):
                node = self.call(node)
            elif self.is_op("["):
                self.take()
                self.nest(node.col_offset)
                index = self.expr()
                self.depth -= 1
                close = self.expect("]")
                node = _at(ast.Subscript(node, index, ast.Load()), node.col_offset, close.end)
            elif self.is_op("."):
                self.take()
                name = self.take()
                if name.kind != "name":
                    raise SpecSyntaxError("invalid syntax", name.start, name.end)
                node = _at(ast.Attribute(node, name.text, ast.Load()), node.col_offset, name.end)
            else:
                return node

    def call(self, func: ast.expr) -> ast.expr:
        self.take()  # (
        self.nest(func.col_offset)
        args: list[ast.expr] = []
        keywords: list[ast.keyword] = []
        while not self.is_op(")"):
            tok = self.peek()
            if tok.kind == "op" and tok.text in ("*", "**"):
                self.take()
                value = self.expr()
                if tok.text == "**":
                    keywords.append(_at(ast.keyword(None, value), tok.start, value.end_col_offset))
                else:
                    args.append(
                        _at(ast.Starred(value, ast.Load()), tok.start, value.end_col_offset)
                    )
            elif tok.kind == "name" and self.toks[self.i + 1].text == "=":
                self.i += 2
                value = self.expr()
                keywords.append(_at(ast.keyword(tok.text, value), tok.start, value.end_col_offset))
            else:
                args.append(self.expr())
            if not self.is_op(","):
                break
            self.take()
        close = self.expect(")")
        self.depth -= 1
        return _at(ast.Call(func, args, keywords), func.col_offset, close.end)

    def atom(self) -> ast.expr:
        tok = self.take()
        if tok.kind == "number":
            return _at(ast.Constant(_number(tok)), tok.start, tok.end)  # type: ignore[arg-type]
        if tok.kind == "string":
            try:
                value = ast.literal_eval(tok.text)
            except (ValueError, SyntaxError):
                raise SpecSyntaxError("unsupported string literal", tok.start, tok.end) from None
            return _at(ast.Constant(value), tok.start, tok.end)
        if tok.kind == "name":
            if tok.text in ("True", "False", "None"):
                return _at(
                    ast.Constant({"True": True, "False": False}.get(tok.text)), tok.start, tok.end
                )
            return _at(ast.Name(tok.text, ast.Load()), tok.start, tok.end)
        if tok.kind == "op" and tok.text in ("(", "["):
            close_text = ")" if tok.text == "(" else "]"
            self.nest(tok.start)
            items: list[ast.expr] = []
            comma = False
            while not self.is_op(close_text):
                items.append(self.expr())
                if not self.is_op(","):
                    break
                self.take()
                comma = True
            close = self.expect(close_text)
            self.depth -= 1
            if tok.text == "[":
                return _at(ast.List(items, ast.Load()), tok.start, close.end)
            if len(items) == 1 and not comma:
                return items[0]  # parentheses group; the node keeps its own span
            return _at(ast.Tuple(items, ast.Load()), tok.start, close.end)
        if tok.kind == "op" and tok.text == "{":
            return self.dict(tok)
        found = "the end of the spec" if tok.kind == "end" else repr(tok.text)
        raise SpecSyntaxError(
            f"invalid syntax (unexpected {found})", tok.start, max(tok.end, tok.start + 1)
        )

    def dict(self, open_: _Token) -> ast.expr:
        """``{key: value, ...}``: parsed only so that the evaluator can refuse it by name."""
        self.nest(open_.start)
        keys: list[ast.expr | None] = []
        values: list[ast.expr] = []
        while not self.is_op("}"):
            keys.append(self.expr())
            self.expect(":")
            values.append(self.expr())
            if not self.is_op(","):
                break
            self.take()
        close = self.expect("}")
        self.depth -= 1
        return _at(ast.Dict(keys, values), open_.start, close.end)


def _number(tok: _Token) -> object:
    """The value of a numeric literal: int, float or complex, as Python reads it."""
    text = tok.text
    try:
        if text[:2].lower() in ("0x", "0o", "0b"):
            return int(text, 0)
        if text[-1] in "jJ":
            return complex(text)
        if any(c in text for c in ".eE"):
            return float(text)
        return int(text)
    except ValueError:  # e.g. more digits than int() converts
        raise SpecSyntaxError(f"invalid number {text[:40]!r}", tok.start, tok.end) from None
