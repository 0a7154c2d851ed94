"""Include/exclude globs for object names: ``*`` and ``?`` stay within one path segment,
``**`` spans segments (``a/**/b`` also matches ``a/b``)."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable


@functools.lru_cache(maxsize=256)
def compile_glob(pattern: str) -> re.Pattern[str]:
    """Translate one glob into an anchored regular expression."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out), re.DOTALL)


def matches_any(name: str, patterns: Iterable[str]) -> bool:
    return any(compile_glob(p).fullmatch(name) for p in patterns)


def is_selected(name: str, include: Iterable[str], exclude: Iterable[str]) -> bool:
    """An object is processed when it matches an include (or there are none) and no exclude."""
    include = tuple(include)
    return (not include or matches_any(name, include)) and not matches_any(name, exclude)
