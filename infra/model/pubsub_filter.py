"""Google Cloud Pub/Sub subscription filters: parse, validate, evaluate.

The Pub/Sub emulator stores subscription filters but does not apply them, so the local
harness applies them itself, and synth-time checks reject filters that Pub/Sub would
reject. Both use this module, so a filter behaves the same locally and in the cloud.

Source: "Filter messages from a subscription" (Pub/Sub documentation,
https://cloud.google.com/pubsub/docs/filtering), sections "Syntax to create a filter",
"Comparison operators / Boolean operators / Functions for the filter expression".
Documented rules implemented here:

- ``attributes:KEY`` (key exists), ``attributes.KEY = "v"``, ``attributes.KEY != "v"``
  and ``hasPrefix(attributes.KEY, "p")``; hasPrefix is the only function and takes no
  wildcards or regular expressions.
- A comparison starts with a key and compares it with a string literal: not
  ``"v" = attributes.KEY``, not ``attributes.A = attributes.B``, not unquoted values.
- Keys and values are case-sensitive. Keys with characters other than hyphens,
  underscores or alphanumerics are written as string literals: ``attributes."a.b/c"``.
- String literals may use escapes, including Unicode, hexadecimal and octal ones;
  backslashes, quotation marks and non-printing characters must be escaped.
- ``AND``, ``OR``, ``NOT`` must be uppercase; unary ``-`` is the same as ``NOT``;
  ``NOT`` has the highest precedence; ``AND`` and ``OR`` are only combined with
  parentheses around complete expressions.
- ``!=`` is true when the attribute is missing (the doc describes it as the negation of
  ``=``), ``=`` and ``hasPrefix`` are false when it is missing.
- The maximum length of a filter is 256 bytes (UTF-8). An empty filter matches every
  message (``Subscription.filter`` in the API reference).

Lexical details the page does not spell out follow AIP-160 (the filtering language
Google APIs share) and the CEL escape set; see ``parse`` for the exact choices.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "MAX_FILTER_BYTES",
    "And",
    "Equals",
    "Exists",
    "Filter",
    "FilterLimitError",
    "FilterSyntaxError",
    "HasPrefix",
    "Node",
    "Not",
    "NotEquals",
    "Or",
    "matches",
    "parse",
    "validate",
]

MAX_FILTER_BYTES = 256
"""Documented maximum length of a filter, in bytes of its UTF-8 encoding."""

Predicate = Callable[[Mapping[str, str]], bool]

_WORD_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_WHITESPACE = frozenset(" \t\r\n")
_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
    "'": "'",
    "`": "`",
    "?": "?",
}
_RENDER_ESCAPES = {"\a": "a", "\b": "b", "\f": "f", "\n": "n", "\r": "r", "\t": "t", "\v": "v"}
_HEX_ESCAPE_DIGITS = {"x": 2, "u": 4, "U": 8}
_OCTAL = frozenset("01234567")
_HEX = frozenset("0123456789abcdefABCDEF")


class FilterSyntaxError(ValueError):
    """A filter Pub/Sub would reject; says where (0-based character index) and why."""

    def __init__(self, text: str, position: int, reason: str) -> None:
        self.text = text
        self.position = position
        self.reason = reason
        super().__init__(f"invalid Pub/Sub filter: {reason} at position {position}")


class FilterLimitError(FilterSyntaxError):
    """A filter over a documented limit (length); a syntax error for callers' purposes."""


def _is_non_printing(char: str) -> bool:
    """Control characters (Unicode category Cc), which a literal must escape."""
    code = ord(char)
    return code < 0x20 or 0x7F <= code <= 0x9F


def _quote(value: str) -> str:
    """Render ``value`` as a string literal that parses back to the same value."""
    out = ['"']
    for char in value:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char in _RENDER_ESCAPES:
            out.append("\\" + _RENDER_ESCAPES[char])
        elif _is_non_printing(char):
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _render_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _quote(key)


# --- syntax tree -------------------------------------------------------------------------
# Nodes are immutable and comparable, so tests and synth-time checks can inspect a filter
# (for example, which attribute keys it reads) without re-parsing the text.


@dataclass(frozen=True, slots=True)
class Exists:
    """``attributes:KEY``."""

    key: str

    def __str__(self) -> str:
        return f"attributes:{_render_key(self.key)}"

    def compile(self) -> Predicate:
        key = self.key
        return lambda attributes: key in attributes


@dataclass(frozen=True, slots=True)
class Equals:
    """``attributes.KEY = "VALUE"``; false when the key is missing."""

    key: str
    value: str

    def __str__(self) -> str:
        return f"attributes.{_render_key(self.key)} = {_quote(self.value)}"

    def compile(self) -> Predicate:
        key, value = self.key, self.value
        return lambda attributes: attributes.get(key) == value


@dataclass(frozen=True, slots=True)
class NotEquals:
    """``attributes.KEY != "VALUE"``; true when the key is missing (documented)."""

    key: str
    value: str

    def __str__(self) -> str:
        return f"attributes.{_render_key(self.key)} != {_quote(self.value)}"

    def compile(self) -> Predicate:
        key, value = self.key, self.value
        return lambda attributes: attributes.get(key) != value


@dataclass(frozen=True, slots=True)
class HasPrefix:
    """``hasPrefix(attributes.KEY, "PREFIX")``; false when the key is missing."""

    key: str
    prefix: str

    def __str__(self) -> str:
        return f"hasPrefix(attributes.{_render_key(self.key)}, {_quote(self.prefix)})"

    def compile(self) -> Predicate:
        key, prefix = self.key, self.prefix

        def has_prefix(attributes: Mapping[str, str]) -> bool:
            value = attributes.get(key)
            return value is not None and value.startswith(prefix)

        return has_prefix


@dataclass(frozen=True, slots=True)
class Not:
    """``NOT x`` or ``-x``."""

    operand: Node

    def __str__(self) -> str:
        # Negation does not repeat without parentheses: NOT (NOT x).
        operand = self.operand
        return f"NOT ({operand})" if isinstance(operand, Not | And | Or) else f"NOT {operand}"

    def compile(self) -> Predicate:
        inner = self.operand.compile()
        return lambda attributes: not inner(attributes)


@dataclass(frozen=True, slots=True)
class And:
    """``a AND b AND ...`` (two or more operands)."""

    operands: tuple[Node, ...]

    def __str__(self) -> str:
        return " AND ".join(_render_operand(op) for op in self.operands)

    def compile(self) -> Predicate:
        parts = tuple(op.compile() for op in self.operands)
        if len(parts) == 2:
            first, second = parts
            return lambda attributes: first(attributes) and second(attributes)
        return lambda attributes: all(part(attributes) for part in parts)


@dataclass(frozen=True, slots=True)
class Or:
    """``a OR b OR ...`` (two or more operands)."""

    operands: tuple[Node, ...]

    def __str__(self) -> str:
        return " OR ".join(_render_operand(op) for op in self.operands)

    def compile(self) -> Predicate:
        parts = tuple(op.compile() for op in self.operands)
        if len(parts) == 2:
            first, second = parts
            return lambda attributes: first(attributes) or second(attributes)
        return lambda attributes: any(part(attributes) for part in parts)


Node = Exists | Equals | NotEquals | HasPrefix | Not | And | Or


def _render_operand(node: Node) -> str:
    """Parenthesize compound operands: AND/OR never mix bare, NOT takes one term."""
    return f"({node})" if isinstance(node, And | Or) else str(node)


def _keys(node: Node) -> frozenset[str]:
    if isinstance(node, Not):
        return _keys(node.operand)
    if isinstance(node, And | Or):
        return frozenset().union(*(_keys(op) for op in node.operands))
    return frozenset((node.key,))


def _match_all(attributes: Mapping[str, str]) -> bool:
    return True


@dataclass(frozen=True)
class Filter:
    """A parsed filter: parse once, then call ``matches`` for every message."""

    text: str
    expression: Node | None
    _predicate: Predicate = field(repr=False, compare=False)

    def matches(self, attributes: Mapping[str, str]) -> bool:
        """Whether Pub/Sub would deliver a message with these attributes."""
        return self._predicate(attributes)

    @property
    def keys(self) -> frozenset[str]:
        """Attribute keys the filter reads (for checks that publishers set them)."""
        return frozenset() if self.expression is None else _keys(self.expression)

    def __str__(self) -> str:
        """Canonical text: normalized spacing, keys quoted only when needed."""
        return "" if self.expression is None else str(self.expression)


# --- parser ------------------------------------------------------------------------------


class _Parser:
    """Recursive descent over the raw text (no separate lexer: ``-`` and key characters
    mean different things depending on where they appear)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    # Low-level helpers.

    def error(self, reason: str, position: int | None = None) -> FilterSyntaxError:
        return FilterSyntaxError(self.text, self.pos if position is None else position, reason)

    def found(self, position: int | None = None) -> str:
        """A short description of what is at ``position``, for error messages."""
        pos = self.pos if position is None else position
        if pos >= len(self.text):
            return "end of filter"
        word = self.word_at(pos)
        return repr(word) if word else repr(self.text[pos])

    def skip_ws(self) -> bool:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in _WHITESPACE:
            self.pos += 1
        return self.pos > start

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def word_at(self, pos: int) -> str:
        end = pos
        while end < len(self.text) and self.text[end] in _WORD_CHARS:
            end += 1
        return self.text[pos:end]

    def expect_char(self, char: str, what: str) -> None:
        if self.peek() != char:
            raise self.error(f"expected {what}, found {self.found()}")
        self.pos += 1

    # Grammar.

    def parse(self) -> Node:
        self.skip_ws()
        node = self.expression()
        self.skip_ws()
        if self.pos < len(self.text):
            if self.peek() == ")":
                raise self.error("unbalanced ')': no matching '('")
            raise self.error(f"expected AND, OR or end of filter, found {self.found()}")
        return node

    def expression(self) -> Node:
        """term (AND term)* | term (OR term)*: one operator per parenthesis level."""
        operands = [self.term()]
        operator = ""
        while True:
            save = self.pos
            self.skip_ws()
            word = self.word_at(self.pos)
            if word not in ("AND", "OR"):
                if word in ("and", "or", "And", "Or"):
                    raise self.error(f"boolean operators must be uppercase, found {word!r}")
                self.pos = save
                break
            if operator and word != operator:
                raise self.error(
                    f"AND and OR cannot be combined without parentheses; found {word} "
                    f"after {operator} (write e.g. 'a {operator} (b {word} c)')"
                )
            operator = word
            self.pos += len(word)
            self.skip_ws()
            operands.append(self.term())
        if len(operands) == 1:
            return operands[0]
        return And(tuple(operands)) if operator == "AND" else Or(tuple(operands))

    def term(self) -> Node:
        """[NOT | -] simple. Negation is not repeatable without parentheses (AIP-160)."""
        start = self.pos
        if self.peek() == "-":
            self.pos += 1
            if self.peek() in _WHITESPACE or self.peek() in ("-", ""):
                raise self.error(
                    f"expected a condition or '(' right after '-', found {self.found()}"
                )
            return Not(self.simple(negated=True))
        word = self.word_at(self.pos)
        if word == "NOT":
            self.pos += len(word)
            if not self.skip_ws() and self.peek() != "(":
                raise self.error(f"expected whitespace or '(' after NOT, found {self.found()}")
            return Not(self.simple(negated=True))
        if word in ("not", "Not"):
            raise self.error(f"boolean operators must be uppercase, found {word!r}", start)
        return self.simple(negated=False)

    def simple(self, *, negated: bool) -> Node:
        """'(' expression ')' | a comparison or hasPrefix call."""
        char = self.peek()
        if char == "(":
            open_pos = self.pos
            self.pos += 1
            self.skip_ws()
            if self.peek() == ")":
                raise self.error("empty parentheses")
            node = self.expression()
            self.skip_ws()
            if self.peek() != ")":
                if self.pos >= len(self.text):
                    raise self.error(f"expected ')' to close the '(' at position {open_pos}")
                raise self.error(f"expected AND, OR or ')', found {self.found()}")
            self.pos += 1
            return node
        if char == '"':
            raise self.error(
                "a condition must start with attributes.KEY, attributes:KEY or hasPrefix(); "
                "string literals are only allowed as values and quoted keys"
            )
        if char == "'":
            raise self.error("string literals use double quotes")
        word = self.word_at(self.pos)
        if word == "attributes":
            return self.attribute_condition()
        if word == "hasPrefix":
            return self.has_prefix()
        if word in ("AND", "OR", "NOT"):
            what = "after NOT or '-'" if negated else "here"
            raise self.error(f"{word} is not allowed {what}; expected a condition or '('")
        if word and self.text[self.pos + len(word) :].lstrip(" \t\r\n").startswith("("):
            raise self.error(f"unknown function {word!r}; hasPrefix is the only function")
        if char == "-" and negated:
            raise self.error("negation cannot be repeated without parentheses; write NOT (-x)")
        if not char:
            raise self.error("expected a condition, found end of filter")
        if char == ")":
            raise self.error("expected a condition before ')'")
        raise self.error(
            f"expected attributes.KEY, attributes:KEY, hasPrefix(), NOT, '-' or '(', "
            f"found {self.found()}"
        )

    def key(self) -> str:
        """A bare key ([A-Za-z0-9_-]+) or a string literal; keys are never empty."""
        start = self.pos
        if self.peek() == '"':
            key = self.string_literal()
            if not key:
                raise self.error("attribute key must not be empty", start)
            return key
        match = _BARE_KEY.match(self.text, self.pos)
        if match is None:
            raise self.error(f"expected an attribute key, found {self.found()}")
        self.pos = match.end()
        following = self.peek()
        if following and following not in _WHITESPACE and following not in "=!:),<>":
            raise self.error(
                f"attribute key {match.group()!r} is followed by {following!r}; keys with "
                "characters other than letters, digits, '-' and '_' must be quoted, "
                'e.g. attributes."iana.org/language_tag"'
            )
        return match.group()

    def attribute_condition(self) -> Node:
        self.pos += len("attributes")
        if self.peek() == ".":
            self.pos += 1
            key = self.key()
            self.skip_ws()
            if self.text.startswith("!=", self.pos):
                self.pos += 2
                self.skip_ws()
                return NotEquals(key, self.value())
            if self.peek() == "=":
                self.pos += 1
                self.skip_ws()
                return Equals(key, self.value())
            raise self.error(f"expected '=' or '!=' after attributes.KEY, found {self.found()}")
        self.skip_ws()
        if self.peek() == ":":
            self.pos += 1
            self.skip_ws()
            return Exists(self.key())
        if self.peek() == ".":
            raise self.error("whitespace is not allowed before '.' in attributes.KEY")
        raise self.error(
            f"expected '.' (attributes.KEY) or ':' (attributes:KEY), found {self.found()}"
        )

    def value(self) -> str:
        if self.peek() == '"':
            return self.string_literal()
        if self.word_at(self.pos) == "attributes":
            raise self.error("a key can only be compared with a string literal, not another key")
        raise self.error(f"expected a double-quoted string literal, found {self.found()}")

    def has_prefix(self) -> Node:
        self.pos += len("hasPrefix")
        self.skip_ws()
        self.expect_char("(", "'(' after hasPrefix")
        self.skip_ws()
        if not self.text.startswith("attributes.", self.pos):
            raise self.error(
                f"expected attributes.KEY as the first argument of hasPrefix, found {self.found()}"
            )
        self.pos += len("attributes.")
        key = self.key()
        self.skip_ws()
        self.expect_char(",", "',' between the arguments of hasPrefix")
        self.skip_ws()
        if self.peek() != '"':
            raise self.error(
                "expected a double-quoted string literal as the second argument of hasPrefix, "
                f"found {self.found()}"
            )
        prefix = self.string_literal()
        self.skip_ws()
        self.expect_char(")", "')': hasPrefix takes exactly two arguments")
        return HasPrefix(key, prefix)

    def string_literal(self) -> str:
        """A double-quoted literal with C/CEL escapes; raw control characters rejected."""
        start = self.pos
        text = self.text
        self.pos += 1
        out: list[str] = []
        while True:
            if self.pos >= len(text):
                raise self.error("unterminated string literal", start)
            char = text[self.pos]
            if char == '"':
                self.pos += 1
                return "".join(out)
            if char == "\\":
                out.append(self.escape())
                continue
            if _is_non_printing(char):
                raise self.error(
                    f"non-printing character {char!r} in a string literal must be escaped"
                )
            out.append(char)
            self.pos += 1

    def escape(self) -> str:
        start = self.pos
        text = self.text
        kind = text[self.pos + 1 : self.pos + 2]
        if kind in _SIMPLE_ESCAPES:
            self.pos += 2
            return _SIMPLE_ESCAPES[kind]
        if kind in _HEX_ESCAPE_DIGITS:
            count = _HEX_ESCAPE_DIGITS[kind]
            digits = text[self.pos + 2 : self.pos + 2 + count]
            if len(digits) != count or not set(digits) <= _HEX:
                raise self.error(f"\\{kind} escape needs exactly {count} hex digits", start)
            code = int(digits, 16)
            if 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
                raise self.error(f"\\{kind}{digits} is not a Unicode scalar value", start)
            self.pos += 2 + count
            return chr(code)
        if kind in _OCTAL:
            digits = text[self.pos + 1 : self.pos + 4]
            if len(digits) != 3 or not set(digits) <= _OCTAL or digits[0] > "3":
                raise self.error("octal escape needs exactly 3 digits, at most \\377", start)
            self.pos += 4
            return chr(int(digits, 8))
        if not kind:
            raise self.error("unterminated string literal", start)
        raise self.error(f"unknown escape sequence \\{kind}", start)


def _check_length(text: str) -> None:
    try:
        encoded = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise FilterSyntaxError(text, exc.start, "filter is not valid Unicode text") from None
    if len(encoded) > MAX_FILTER_BYTES:
        # Report the character that crosses the limit.
        position = len(encoded[:MAX_FILTER_BYTES].decode("utf-8", errors="ignore"))
        raise FilterLimitError(
            text,
            position,
            f"filter is {len(encoded)} bytes; the maximum length is {MAX_FILTER_BYTES} bytes",
        )


def parse(text: str) -> Filter:
    """Parse and compile a filter, raising ``FilterSyntaxError`` where Pub/Sub would refuse it.

    Where Pub/Sub's grammar is undocumented we refuse (docs/architecture.md, "Pub/Sub
    filters"): a refusal fails at synth, a wrong acceptance only at deploy.
    """
    if not isinstance(text, str):
        raise TypeError(f"filter must be a str, not {type(text).__name__}")
    _check_length(text)
    if text == "":
        return Filter(text, None, _match_all)
    expression = _Parser(text).parse()
    return Filter(text, expression, expression.compile())


@functools.lru_cache(maxsize=256)
def _cached_parse(text: str) -> Filter:
    return parse(text)


def validate(text: str) -> None:
    """Raise ``FilterSyntaxError`` if Pub/Sub would refuse ``text`` as a subscription filter."""
    _cached_parse(text)


def matches(text: str, attributes: Mapping[str, str]) -> bool:
    """One-off evaluation; parses are cached, so repeated filters are parsed once."""
    return _cached_parse(text).matches(attributes)
