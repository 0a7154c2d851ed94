"""Include/exclude globs for object names: ``*`` and ``?`` stay within one path segment,
``**`` spans segments (``a/**/b`` also matches ``a/b``)."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

# A glob's tokens, longest first, and what each becomes; any other run of text is literal.
_TOKENS = re.compile(r"\*\*/|\*\*|\*|\?|[^*?]+")
_MEANINGS = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}


@functools.lru_cache(maxsize=256)
def compile_glob(pattern: str) -> re.Pattern[str]:
    """Translate one glob into an anchored regular expression."""
    parts = (_MEANINGS.get(token) or re.escape(token) for token in _TOKENS.findall(pattern))
    return re.compile("".join(parts), re.DOTALL)


def matches_any(name: str, patterns: Iterable[str]) -> bool:
    return any(compile_glob(p).fullmatch(name) for p in patterns)


def is_selected(name: str, include: Iterable[str], exclude: Iterable[str]) -> bool:
    """An object is processed when it matches an include (or there are none) and no exclude."""
    include = tuple(include)
    return (not include or matches_any(name, include)) and not matches_any(name, exclude)
