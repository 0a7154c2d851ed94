"""Tests of infra.model.pubsub_filter against the documented Pub/Sub filter language.

Unless noted, examples come from the Pub/Sub documentation page "Filter messages from a
subscription" (https://cloud.google.com/pubsub/docs/filtering), section "Syntax to create
a filter" and its "Comparison operators", "Boolean operators" and "Functions" parts.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

import pytest

from infra.model.pubsub_filter import (
    MAX_FILTER_BYTES,
    And,
    Equals,
    Exists,
    FilterLimitError,
    FilterSyntaxError,
    HasPrefix,
    Not,
    NotEquals,
    Or,
    matches,
    parse,
    validate,
)

NONE: dict[str, str] = {}
COM = {"name": "com"}
CO = {"name": "co"}
NET = {"name": "net"}
OTHER = {"website": "com"}

# --- documented examples -----------------------------------------------------------------

# "Filter messages from a subscription": the table of filters that select the name
# attribute, with its descriptions turned into expected results.
DOC_TABLE = [
    ("attributes:name", {"none": False, "com": True, "co": True, "net": True, "other": False}),
    ("NOT attributes:name", {"none": True, "com": False, "co": False, "net": False, "other": True}),
    (
        'attributes.name = "com"',
        {"none": False, "com": True, "co": False, "net": False, "other": False},
    ),
    (
        'attributes.name != "com"',
        {"none": True, "com": False, "co": True, "net": True, "other": True},
    ),
    (
        'hasPrefix(attributes.name, "co")',
        {"none": False, "com": True, "co": True, "net": False, "other": False},
    ),
    (
        'NOT hasPrefix(attributes.name, "co")',
        {"none": True, "com": False, "co": False, "net": True, "other": True},
    ),
]
MESSAGES = {"none": NONE, "com": COM, "co": CO, "net": NET, "other": OTHER}


@pytest.mark.parametrize(("text", "expected"), DOC_TABLE)
def test_doc_table_of_name_filters(text: str, expected: dict[str, bool]) -> None:
    compiled = parse(text)
    assert {label: compiled.matches(attrs) for label, attrs in MESSAGES.items()} == expected


LANG = "iana.org/language_tag"
DOC_AND_OR = (
    'attributes:"iana.org/language_tag" AND (attributes.name = "net" OR attributes.name = "org")'
)

# (filter, attributes, expected) for every valid example on the page.
DOC_VALID = [
    # Comparison operators: "Valid: Filter compares a key and a value".
    ('attributes.name = "com"', COM, True),
    ('attributes.name = "com"', {"name": "Com"}, False),  # values are case-sensitive
    ('attributes.name = "com"', {"Name": "com"}, False),  # keys are case-sensitive
    # Keys with other characters use a string literal.
    ('attributes."iana.org/language_tag" = "en"', {LANG: "en"}, True),
    ('attributes."iana.org/language_tag" = "en"', {LANG: "en-US"}, False),
    # "Valid: Filter escapes characters within a string literal".
    ('attributes:"\\u307F\\u3093\\u306A"', {"みんな": ""}, True),
    ('attributes:"\\u307F\\u3093\\u306A"', {"name": "みんな"}, False),
    # Boolean operators: "... with the iana.org/language_tag attribute, but without the
    # name attribute and the com value".
    ('attributes:"iana.org/language_tag" AND NOT attributes.name = "com"', {LANG: "en"}, True),
    (
        'attributes:"iana.org/language_tag" AND NOT attributes.name = "com"',
        {LANG: "en", "name": "com"},
        False,
    ),
    (
        'attributes:"iana.org/language_tag" AND NOT attributes.name = "com"',
        {LANG: "en", "name": "net"},
        True,
    ),
    ('attributes:"iana.org/language_tag" AND NOT attributes.name = "com"', COM, False),
    # "Valid: AND and OR operators with parentheses".
    (
        DOC_AND_OR,
        {LANG: "en", "name": "org"},
        True,
    ),
    (
        DOC_AND_OR,
        {LANG: "en", "name": "com"},
        False,
    ),
    (
        DOC_AND_OR,
        NET,
        False,
    ),
    # "You can also use the unary minus operator instead of the NOT operator."
    ('attributes.name = "com" AND -attributes:"iana.org/language_tag"', COM, True),
    ('attributes.name = "com" AND -attributes:"iana.org/language_tag"', {**COM, LANG: "x"}, False),
    # Functions: hasPrefix(attributes.KEY, "SUBSTRING").
    ('hasPrefix(attributes.name, "co")', {"name": "cobalt"}, True),
    ('hasPrefix(attributes.name, "co")', {"name": "Co"}, False),
    # The code samples on the same page: no spaces around '=', hyphenated key.
    ('attributes.author="unknown"', {"author": "unknown"}, True),
    ('attributes.author="unknown"', {"author": "known"}, False),
    ('attributes.is-even = "false"', {"is-even": "false"}, True),
    ('attributes.is-even = "false"', {"is-even": "true"}, False),
]


@pytest.mark.parametrize(("text", "attributes", "expected"), DOC_VALID)
def test_doc_valid_examples(text: str, attributes: Mapping[str, str], expected: bool) -> None:
    assert parse(text).matches(attributes) is expected


DOC_INVALID = [
    # "Invalid: The left-hand side of the filter is a value".
    ('"com" = attributes.name', 0, "must start with attributes"),
    # "Invalid: Filter compares two keys".
    ("attributes.name = attributes.website", 18, "string literal, not another key"),
    # "Invalid: Filter escapes characters without a string literal".
    ("attributes:\\u307F\\u3093\\u306A", 11, "expected an attribute key"),
    # "Invalid: AND and OR operators without parentheses".
    (
        'attributes:"iana.org/language_tag" AND attributes.name = "net" OR attributes.name = "org"',
        63,
        "AND and OR cannot be combined without parentheses",
    ),
    # "Invalid: AND and OR operators combine incomplete expressions".
    ('attributes.name = "com" AND ("net" OR "org")', 29, "must start with attributes"),
]


@pytest.mark.parametrize(("text", "position", "reason"), DOC_INVALID)
def test_doc_invalid_examples(text: str, position: int, reason: str) -> None:
    with pytest.raises(FilterSyntaxError, match=reason) as caught:
        parse(text)
    assert caught.value.position == position
    assert f"at position {position}" in str(caught.value)


def test_doc_hasprefix_is_not_a_pattern() -> None:
    # "general regular expressions are not supported": "c*" is a literal prefix.
    compiled = parse('hasPrefix(attributes.name, "c*")')
    assert not compiled.matches(COM)
    assert compiled.matches({"name": "c*m"})
    assert not parse('hasPrefix(attributes.name, "c.m")').matches(COM)


def test_doc_empty_filter_matches_everything() -> None:
    # Subscription.filter (API reference): "If empty, then no messages are filtered out."
    compiled = parse("")
    assert compiled.expression is None
    assert compiled.matches(NONE)
    assert compiled.matches(COM)
    assert str(compiled) == ""
    assert compiled.keys == frozenset()


# --- comparison edge cases ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "attributes", "expected"),
    [
        # != on a missing attribute is true; = on a missing attribute is false.
        ('attributes.name != "com"', NONE, True),
        ('attributes.name = "com"', NONE, False),
        ('attributes.name != ""', NONE, True),
        ('attributes.name = ""', NONE, False),
        ('attributes.name = ""', {"name": ""}, True),
        ('attributes.name != ""', {"name": ""}, False),
        # hasPrefix with an empty prefix tests existence; false when missing.
        ('hasPrefix(attributes.name, "")', {"name": ""}, True),
        ('hasPrefix(attributes.name, "")', COM, True),
        ('hasPrefix(attributes.name, "")', NONE, False),
        ('hasPrefix(attributes.name, "com")', CO, False),  # prefix longer than value
        ('hasPrefix(attributes.name, "com")', COM, True),  # prefix equals the value
        # ':' tests the key only, whatever the value.
        ("attributes:name", {"name": ""}, True),
        ("attributes:com", COM, False),
        # Unicode keys and values compare exactly (no normalization, no case folding).
        ('attributes.city = "Zürich"', {"city": "Zürich"}, True),
        ('attributes.city = "Zürich"', {"city": "Zu\u0308rich"}, False),
        ('attributes.city = "ZÜRICH"', {"city": "Zürich"}, False),
        ('attributes.emoji = "👍🏽"', {"emoji": "👍🏽"}, True),
        ('hasPrefix(attributes.path, "写真/")', {"path": "写真/猫.png"}, True),
        ('attributes."ключ" = "значение"', {"ключ": "значение"}, True),
        # Bare keys: letters, digits, hyphens, underscores, any order.
        ('attributes.ce-type = "x"', {"ce-type": "x"}, True),
        ('attributes._a-1 = "x"', {"_a-1": "x"}, True),
        ('attributes.123 = "x"', {"123": "x"}, True),
        ("attributes:-", {"-": ""}, True),
        # Quoting a key that needs no quotes is allowed.
        ('attributes."name" = "com"', COM, True),
        ('hasPrefix(attributes."iana.org/language_tag", "en")', {LANG: "en-GB"}, True),
        ('attributes:"key with space"', {"key with space": "1"}, True),
        ('attributes."key with space" != "1"', {"key with space": "1"}, False),
    ],
)
def test_comparisons(text: str, attributes: Mapping[str, str], expected: bool) -> None:
    assert parse(text).matches(attributes) is expected


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        (r"\"", '"'),
        (r"\\", "\\"),
        (r"a\"b\\c", 'a"b\\c'),
        (r"\n\t\r", "\n\t\r"),
        (r"\a\b\f\v", "\a\b\f\v"),
        (r"\'\`\?", "'`?"),
        (r"\x41\x7e", "A~"),
        (r"\u00e9\u307F", "é\u307f"),
        (r"\U0001F600", "😀"),
        (r"\101\060\377", "A0\u00ff"),
        (r"\000", "\0"),
        ("it's", "it's"),
        ("a/b.c:d(e)f,g AND h", "a/b.c:d(e)f,g AND h"),  # operators inside a literal
    ],
)
def test_string_escapes(literal: str, value: str) -> None:
    compiled = parse(f'attributes.k = "{literal}"')
    assert compiled.expression == Equals("k", value)
    assert compiled.matches({"k": value})
    # Escapes work the same in quoted keys.
    assert parse(f'attributes:"{literal}"').expression == Exists(value)


# --- boolean operators and structure -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("NOT attributes:a", Not(Exists("a"))),
        ("-attributes:a", Not(Exists("a"))),
        ("NOT(attributes:a)", Not(Exists("a"))),
        ("-(attributes:a)", Not(Exists("a"))),
        ('-attributes.a = "x"', Not(Equals("a", "x"))),
        ('-hasPrefix(attributes.a, "x")', Not(HasPrefix("a", "x"))),
        ("NOT (NOT attributes:a)", Not(Not(Exists("a")))),
        ("-(-attributes:a)", Not(Not(Exists("a")))),
        # NOT has the highest precedence: it binds to one term.
        ("NOT attributes:a AND attributes:b", And((Not(Exists("a")), Exists("b")))),
        ("attributes:a OR -attributes:b", Or((Exists("a"), Not(Exists("b"))))),
        ("NOT (attributes:a OR attributes:b)", Not(Or((Exists("a"), Exists("b"))))),
        # Chains of one operator need no parentheses.
        ("attributes:a AND attributes:b AND attributes:c", And(tuple(map(Exists, "abc")))),
        ("attributes:a OR attributes:b OR attributes:c", Or(tuple(map(Exists, "abc")))),
        # Parentheses group, and may be redundant.
        (
            "(attributes:a OR attributes:b) AND attributes:c",
            And((Or((Exists("a"), Exists("b"))), Exists("c"))),
        ),
        (
            "attributes:a OR (attributes:b AND attributes:c)",
            Or((Exists("a"), And((Exists("b"), Exists("c"))))),
        ),
        ("((attributes:a))", Exists("a")),
        (
            "(attributes:a AND attributes:b) AND attributes:c",
            And((And((Exists("a"), Exists("b"))), Exists("c"))),
        ),
        # Whitespace: surrounding, around operators, commas and parentheses, newlines.
        ("  attributes:a  ", Exists("a")),
        ("attributes : a", Exists("a")),
        ('attributes.a  !=  "x"', NotEquals("a", "x")),
        ('hasPrefix( attributes.a ,"x" )', HasPrefix("a", "x")),
        ("( attributes:a )", Exists("a")),
        ("attributes:a\n\tAND\r\nattributes:b", And((Exists("a"), Exists("b")))),
        ('attributes.a="x"AND(attributes:b)', And((Equals("a", "x"), Exists("b")))),
    ],
)
def test_structure(text: str, tree: object) -> None:
    assert parse(text).expression == tree


@pytest.mark.parametrize(
    ("text", "attributes", "expected"),
    [
        ("NOT attributes:a AND attributes:b", {"b": "1"}, True),
        ("NOT attributes:a AND attributes:b", {"a": "1", "b": "1"}, False),
        ("NOT (attributes:a AND attributes:b)", {"a": "1", "b": "1"}, False),
        ("NOT (attributes:a AND attributes:b)", {"a": "1"}, True),
        ("-(-attributes:a)", {"a": "1"}, True),
        ("attributes:a OR attributes:b OR attributes:c", {"c": ""}, True),
        ("attributes:a OR attributes:b OR attributes:c", NONE, False),
        ("attributes:a AND attributes:b AND attributes:c", {"a": "", "b": ""}, False),
        ("attributes:a AND attributes:b AND attributes:c", dict.fromkeys("abc", ""), True),
        ("(attributes:a OR attributes:b) AND attributes:c", {"b": "", "c": ""}, True),
        ("attributes:a OR (attributes:b AND attributes:c)", {"b": ""}, False),
    ],
)
def test_boolean_evaluation(text: str, attributes: Mapping[str, str], expected: bool) -> None:
    assert parse(text).matches(attributes) is expected


# --- syntax errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "position", "reason"),
    [
        # Unbalanced parentheses.
        ("(attributes:a", 13, r"expected '\)' to close the '\(' at position 0"),
        ("((attributes:a)", 15, r"expected '\)' to close the '\(' at position 0"),
        ("attributes:a)", 12, r"unbalanced '\)'"),
        ("(attributes:a))", 14, r"unbalanced '\)'"),
        ("()", 1, "empty parentheses"),
        ("(attributes:a attributes:b)", 14, r"expected AND, OR or '\)'"),
        # AND and OR mixed without parentheses, in either order, at any depth.
        ("attributes:a OR attributes:b AND attributes:c", 29, "cannot be combined"),
        ("(attributes:a AND attributes:b OR attributes:c)", 31, "cannot be combined"),
        # Operators are uppercase only.
        ("attributes:a and attributes:b", 13, "must be uppercase, found 'and'"),
        ("attributes:a Or attributes:b", 13, "must be uppercase, found 'Or'"),
        ("not attributes:a", 0, "must be uppercase, found 'not'"),
        # Missing or stray operands.
        ("attributes:a AND", 16, "found end of filter"),
        ("AND attributes:a", 0, "AND is not allowed here"),
        ("attributes:a AND OR attributes:b", 17, "OR is not allowed here"),
        ("NOT", 3, "after NOT"),
        ("-", 1, r"right after '-'"),
        ("   ", 3, "found end of filter"),
        # No implicit AND (juxtaposition), no trailing garbage.
        ("attributes:a attributes:b", 13, "expected AND, OR or end of filter"),
        ('attributes.a = "x" "y"', 19, "expected AND, OR or end of filter"),
        ("attributes:a ANDattributes:b", 13, "found 'ANDattributes'"),
        ("attributes:a;", 12, "must be quoted"),
        # Negation is one per term without parentheses; '-' sticks to its term.
        ("NOT NOT attributes:a", 4, "NOT is not allowed after NOT"),
        ("NOT -attributes:a", 4, "cannot be repeated"),
        ("--attributes:a", 1, r"right after '-'"),
        ("- attributes:a", 1, r"right after '-'"),
        ("NOTattributes:a", 0, "found 'NOTattributes'"),
        # Unknown functions, wrong case, wrong arguments.
        ('hasprefix(attributes.a, "x")', 0, "unknown function 'hasprefix'"),
        ('hasSuffix(attributes.a, "x")', 0, "unknown function 'hasSuffix'"),
        ('startsWith (attributes.a, "x")', 0, "unknown function 'startsWith'"),
        ('hasPrefix(attributes:a, "x")', 10, "first argument of hasPrefix"),
        ('hasPrefix("x", attributes.a)', 10, "first argument of hasPrefix"),
        ("hasPrefix(attributes.a, x)", 24, "second argument of hasPrefix"),
        ("hasPrefix(attributes.a)", 22, "',' between the arguments"),
        ('hasPrefix(attributes.a, "x", "y")', 27, "exactly two arguments"),
        ('hasPrefix attributes.a, "x"', 10, r"'\(' after hasPrefix"),
        ('hasPrefix(attributes.a, "x") = "y"', 29, "expected AND, OR or end of filter"),
        # Values must be double-quoted string literals.
        ("attributes.a = com", 15, "double-quoted string literal, found 'com'"),
        ("attributes.a = 1", 15, "double-quoted string literal, found '1'"),
        ("attributes.a = 'com'", 15, "double-quoted string literal"),
        ("attributes.a =", 14, "found end of filter"),
        ("attributes.a", 12, "expected '=' or '!='"),
        ('attributes.a == "x"', 14, "double-quoted string literal, found '='"),
        ('attributes.a : "x"', 13, "expected '=' or '!='"),
        ('attributes.a > "x"', 13, "expected '=' or '!=' after attributes.KEY, found '>'"),
        ('attributes.a>="x"', 12, "expected '=' or '!=' after attributes.KEY, found '>'"),
        ('attributes.a<"x"', 12, "expected '=' or '!=' after attributes.KEY, found '<'"),
        ('attributes:a = "x"', 13, "expected AND, OR or end of filter"),
        # Keys: quoting rules, emptiness, where whitespace is not allowed.
        ('attributes.iana.org/language_tag = "en"', 15, "must be quoted"),
        ('attributes.ключ = "x"', 11, "expected an attribute key"),
        ("attributes:a.b", 12, "must be quoted"),
        ('attributes."" = "x"', 11, "must not be empty"),
        ("attributes:", 11, "expected an attribute key, found end"),
        ('attributes . a = "x"', 11, r"whitespace is not allowed before '\.'"),
        ('attributes. a = "x"', 11, "expected an attribute key, found ' '"),
        ("attribute:a", 0, "found 'attribute'"),
        ("Attributes:a", 0, "found 'Attributes'"),
        ("attributes", 10, r"expected '\.' \(attributes.KEY\) or ':'"),
        ("name", 0, "found 'name'"),
        # String literals.
        ('attributes.a = "x', 15, "unterminated string literal"),
        ('attributes.a = "x\\"', 15, "unterminated string literal"),
        ('attributes.a = "x\\', 17, "unterminated string literal"),
        ('attributes:"a', 11, "unterminated string literal"),
        ('attributes.a = "\\q"', 16, r"unknown escape sequence \\q"),
        ('attributes.a = "\\x4"', 16, "exactly 2 hex digits"),
        ('attributes.a = "\\u12G4"', 16, "exactly 4 hex digits"),
        ('attributes.a = "\\U0011FFFF"', 16, "not a Unicode scalar value"),
        ('attributes.a = "\\uD800"', 16, "not a Unicode scalar value"),
        ('attributes.a = "\\400"', 16, "octal escape"),
        ('attributes.a = "\\12"', 16, "octal escape"),
        ('attributes.a = "a\tb"', 17, "non-printing character"),
        ('attributes.a = "a\nb"', 17, "non-printing character"),
        ('attributes.a = "\x7f"', 16, "non-printing character"),
        ('attributes:"\x00"', 12, "non-printing character"),
    ],
)
def test_syntax_errors(text: str, position: int, reason: str) -> None:
    with pytest.raises(FilterSyntaxError, match=reason) as caught:
        parse(text)
    error = caught.value
    assert isinstance(error, ValueError)
    assert (error.position, error.text) == (position, text)
    assert str(error).startswith("invalid Pub/Sub filter: ")
    assert str(error).endswith(f" at position {position}")


def test_errors_say_what_was_expected() -> None:
    with pytest.raises(FilterSyntaxError) as caught:
        parse("attributes:a = ")
    assert "expected AND, OR or end of filter, found '='" in str(caught.value)


def test_non_string_filter_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        parse(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        parse(b"attributes:a")  # type: ignore[arg-type]


# --- limits ------------------------------------------------------------------------------


def _equality_filter(value: str) -> str:
    return f'attributes.k = "{value}"'


OVERHEAD = len(_equality_filter(""))


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("a" * (MAX_FILTER_BYTES - OVERHEAD), True),  # exactly 256 bytes
        ("a" * (MAX_FILTER_BYTES - OVERHEAD + 1), False),  # 257 bytes
        # The limit is in bytes: 'é' is 2 bytes in UTF-8, '😀' is 4.
        ("é" * ((MAX_FILTER_BYTES - OVERHEAD) // 2) + "a", True),  # 256 bytes
        ("é" * ((MAX_FILTER_BYTES - OVERHEAD) // 2 + 1), False),  # 257 bytes, 137 chars
        ("😀" * 59 + "a" * 3, True),  # 59 * 4 + 3 = 239 -> 256 bytes, 79 chars
        ("😀" * 60, False),  # 240 value bytes -> 257 bytes, 77 characters
    ],
)
def test_length_limit_in_bytes(value: str, ok: bool) -> None:
    text = _equality_filter(value)
    assert len(text.encode()) == (MAX_FILTER_BYTES if ok else MAX_FILTER_BYTES + 1)
    if ok:
        assert parse(text).matches({"k": value})
        validate(text)
    else:
        with pytest.raises(FilterLimitError, match="257 bytes; the maximum length is 256"):
            parse(text)
        with pytest.raises(FilterSyntaxError):  # a limit error is a syntax error too
            validate(text)


def test_length_limit_counts_whitespace_and_reports_the_crossing_character() -> None:
    text = "attributes:a" + " " * (MAX_FILTER_BYTES - len("attributes:a"))
    parse(text)
    with pytest.raises(FilterLimitError) as caught:
        parse(text + " ")
    assert caught.value.position == MAX_FILTER_BYTES
    multibyte = 'attributes.k = "' + "é" * 200 + '"'
    with pytest.raises(FilterLimitError) as caught:
        parse(multibyte)
    # 16 ASCII bytes, then 'é' number 120 would take bytes 256-257.
    assert caught.value.position == 16 + 120


def test_lone_surrogate_is_rejected() -> None:
    with pytest.raises(FilterSyntaxError, match="not valid Unicode"):
        parse('attributes.k = "\ud800"')


def test_deep_nesting_within_the_limit() -> None:
    depth = (MAX_FILTER_BYTES - len("attributes:a")) // 2
    text = "(" * depth + "attributes:a" + ")" * depth
    assert parse(text).matches({"a": ""})
    negated = "-(" * (depth // 2 - 1) + "attributes:a" + ")" * (depth // 2 - 1)
    assert parse(negated).matches({"a": ""}) is ((depth // 2 - 1) % 2 == 0)


# --- API ---------------------------------------------------------------------------------


def test_module_functions() -> None:
    assert matches('attributes.name = "com"', COM)
    assert not matches('attributes.name = "com"', NET)
    assert matches("", NET)
    validate('hasPrefix(attributes.name, "co")')
    with pytest.raises(FilterSyntaxError):
        validate("attributes.name = com")
    with pytest.raises(FilterSyntaxError):
        matches("attributes.name = com", COM)


def test_filter_object() -> None:
    text = (
        'attributes:"iana.org/language_tag" AND '
        '(attributes.domain = "net" OR NOT hasPrefix(attributes.x, "co"))'
    )
    compiled = parse(text)
    assert compiled.text == text
    assert compiled.keys == {LANG, "domain", "x"}
    assert compiled == parse(text)
    assert hash(compiled) == hash(parse(text))
    # str() is canonical text that parses back to the same tree.
    assert parse(str(compiled)).expression == compiled.expression
    assert str(parse("-attributes:a")) == "NOT attributes:a"
    assert str(parse("-(-attributes:a)")) == "NOT (NOT attributes:a)"
    assert str(parse("NOT (attributes:a OR attributes:b)")) == (
        "NOT (attributes:a OR attributes:b)"
    )
    assert str(parse('attributes."a b" = "q\\"\\n"')) == 'attributes."a b" = "q\\"\\n"'
    assert str(parse('attributes."ab" != "\\x01"')) == 'attributes.ab != "\\x01"'


def test_matches_accepts_any_mapping() -> None:
    from types import MappingProxyType

    compiled = parse('attributes.a = "1" AND attributes:b')
    assert compiled.matches(MappingProxyType({"a": "1", "b": ""}))


# --- property test: random filters against a reference evaluator --------------------------

KEYS = ["a", "b-c", "d_e", "x.y", "sp ace", "ü", "Q"]
VALUES = ["", "v", "vw", "vwx", "V", "é", 'q"', "\\", "\n", "😀"]


def _random_tree(rng: random.Random, depth: int) -> tuple:
    if depth <= 0 or rng.random() < 0.35:
        kind = rng.choice(["exists", "eq", "ne", "prefix"])
        key = rng.choice(KEYS)
        return (kind, key) if kind == "exists" else (kind, key, rng.choice(VALUES))
    kind = rng.choice(["not", "and", "or"])
    if kind == "not":
        return ("not", _random_tree(rng, depth - 1))
    return (kind, [_random_tree(rng, depth - 1) for _ in range(rng.randint(2, 3))])


def _reference(tree: tuple, attributes: Mapping[str, str]) -> bool:
    """The documented semantics, written as directly as possible."""
    kind = tree[0]
    if kind == "exists":
        return tree[1] in attributes
    if kind == "eq":
        return tree[1] in attributes and attributes[tree[1]] == tree[2]
    if kind == "ne":
        return not (tree[1] in attributes and attributes[tree[1]] == tree[2])
    if kind == "prefix":
        return tree[1] in attributes and attributes[tree[1]][: len(tree[2])] == tree[2]
    if kind == "not":
        return not _reference(tree[1], attributes)
    results = [_reference(child, attributes) for child in tree[1]]
    return all(results) if kind == "and" else any(results)


def _literal(rng: random.Random, value: str) -> str:
    """A string literal spelling ``value`` with randomly chosen escapes."""
    out = []
    for char in value:
        code = ord(char)
        choice = rng.random()
        if char == '"' or char == "\\":
            out.append("\\" + char)
        elif char == "\n":
            out.append(rng.choice(["\\n", "\\x0a", "\\012", "\\u000A"]))
        elif choice < 0.2 and code < 0x100:
            out.append(f"\\x{code:02x}")
        elif choice < 0.3 and code < 0x100:
            out.append(f"\\{code:03o}")
        elif choice < 0.4 and code < 0x10000:
            out.append(f"\\u{code:04X}")
        elif choice < 0.5:
            out.append(f"\\U{code:08x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _key(rng: random.Random, key: str) -> str:
    bare = all(c.isascii() and (c.isalnum() or c in "-_") for c in key)
    return key if bare and rng.random() < 0.7 else _literal(rng, key)


def _ws(rng: random.Random, required: bool = False) -> str:
    spaces = rng.choice(["", "", " ", " ", "  ", "\t", "\n"])
    return spaces or (" " if required else "")


def _render(rng: random.Random, tree: tuple) -> str:
    kind = tree[0]
    if kind == "exists":
        return f"attributes{_ws(rng)}:{_ws(rng)}{_key(rng, tree[1])}"
    if kind in ("eq", "ne"):
        op = "=" if kind == "eq" else "!="
        return f"attributes.{_key(rng, tree[1])}{_ws(rng)}{op}{_ws(rng)}{_literal(rng, tree[2])}"
    if kind == "prefix":
        args = f"{_ws(rng)}attributes.{_key(rng, tree[1])}{_ws(rng)},{_ws(rng)}"
        return f"hasPrefix({args}{_literal(rng, tree[2])}{_ws(rng)})"
    if kind == "not":
        child = tree[1]
        inner = _render(rng, child)
        if child[0] in ("and", "or", "not") or rng.random() < 0.2:
            inner = f"({_ws(rng)}{inner}{_ws(rng)})"
            return rng.choice(["-", "NOT", f"NOT{_ws(rng, required=True)}"]) + inner
        return rng.choice(["-", f"NOT{_ws(rng, required=True)}"]) + inner
    parts = []
    for child in tree[1]:
        inner = _render(rng, child)
        if child[0] in ("and", "or") or rng.random() < 0.1:
            inner = f"({_ws(rng)}{inner}{_ws(rng)})"
        parts.append(inner)
    joiner = "AND" if kind == "and" else "OR"
    return f"{_ws(rng, True)}{joiner}{_ws(rng, True)}".join(parts)


def _random_attributes(rng: random.Random) -> dict[str, str]:
    return {key: rng.choice(VALUES) for key in KEYS if rng.random() < 0.5}


def test_random_filters_agree_with_reference() -> None:
    rng = random.Random(20240611)
    checked = 0
    while checked < 400:
        tree = _random_tree(rng, depth=3)
        text = _ws(rng) + _render(rng, tree) + _ws(rng)
        if len(text.encode()) > MAX_FILTER_BYTES:
            continue
        compiled = parse(text)
        assert parse(str(compiled)).expression == compiled.expression, text
        for _ in range(10):
            attributes = _random_attributes(rng)
            assert compiled.matches(attributes) == _reference(tree, attributes), (
                text,
                attributes,
            )
        checked += 1
