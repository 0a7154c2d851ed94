"""Just enough of Cloud Logging's query language to run our log-metric filters offline.

Grammar (what `infra.model.monitoring` writes; anything else is refused, not guessed):
    query  := term ("AND" term)*
    term   := "(" compare ("OR" compare)* ")" | compare
    compare:= PATH "=" STRING
and a log entry as Cloud Run makes one from a JSON line a function prints: `severity` and
`logging.googleapis.com/trace` become the entry's own fields, everything else (including
`message`) lands in `jsonPayload` (Cloud Logging, "Structured logging" special fields).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_TOKEN = re.compile(r'\s*(?:(\()|(\))|(AND|OR)\b|(=)|("(?:[^"\\]|\\.)*")|([A-Za-z_][\w.]*))')
_SPECIAL = {"severity": "severity", "logging.googleapis.com/trace": "trace"}


def log_entry(line: str, resource: Mapping[str, Any]) -> dict[str, Any]:
    """The LogEntry Cloud Run writes for one stdout line of a function."""
    payload = json.loads(line)
    entry: dict[str, Any] = {"resource": dict(resource)}
    for key, field in _SPECIAL.items():
        if key in payload:
            entry[field] = payload.pop(key)
    entry["jsonPayload"] = payload
    return entry


def _tokens(query: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(query.rstrip()):
        m = _TOKEN.match(query, pos)
        if not m:
            raise ValueError(f"cannot parse {query[pos:]!r}")
        kinds = ("(", ")", "op", "=", "str", "path")
        kind = next(k for k, g in zip(kinds, m.groups(), strict=True) if g is not None)
        out.append((kind, m.group(m.lastindex)))
        pos = m.end()
    return out


def _lookup(entry: Mapping[str, Any], path: str) -> Any:
    value: Any = entry
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def matches(query: str, entry: Mapping[str, Any]) -> bool:
    tokens = _tokens(query)
    pos = 0

    def take(kind: str) -> str:
        nonlocal pos
        if pos >= len(tokens) or tokens[pos][0] != kind:
            raise ValueError(f"expected {kind} at token {pos} of {query!r}")
        pos += 1
        return tokens[pos - 1][1]

    def compare() -> bool:
        path = take("path")
        take("=")
        value = json.loads(take("str"))
        return str(_lookup(entry, path)) == value if _lookup(entry, path) is not None else False

    def term() -> bool:
        nonlocal pos
        if tokens[pos][0] != "(":
            return compare()
        take("(")
        result = compare()
        while tokens[pos] == ("op", "OR"):
            pos += 1
            result = compare() or result
        take(")")
        return result

    result = term()
    while pos < len(tokens):
        if tokens[pos] != ("op", "AND"):
            raise ValueError(f"unexpected {tokens[pos][1]!r} in {query!r}")
        pos += 1
        result = term() and result
    return result
