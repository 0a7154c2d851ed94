"""Output rules: which thumbnails an object gets, chosen by its name (docs/outputs.md). Pure
values, parsed by the same code from ``cdktf.json`` at synth and from the function's
environment (``OUTPUT_RULES``, compact JSON) at start-up."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from image_pipeline import formats, patterns
from image_pipeline.formats import Box

MAX_RULES = 64
# The rules travel in one environment variable; all of a function's variables together must
# stay within 32 KiB (Cloud Run functions), so the rules get half of it.
MAX_RULES_BYTES = 16 * 1024
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_KEYS = ("name", "include", "exclude", "sizes", "formats")


class RuleError(ValueError):
    """A rule that cannot be used; the message starts with its index in the list."""

    def __init__(self, index: int, problem: str) -> None:
        super().__init__(f"rule {index}: {problem}")


@dataclasses.dataclass(frozen=True)
class Rule:
    """One entry of the list; empty ``sizes``/``formats`` take the deployment's."""

    name: str
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    sizes: tuple[Box, ...] = ()
    formats: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "include": list(self.include),
            "exclude": list(self.exclude),
            "sizes": [str(box) for box in self.sizes],
            "formats": list(self.formats),
        }


@dataclasses.dataclass(frozen=True)
class Rules:
    """The list as a settings value: its text form is the compact JSON the function reads."""

    rules: tuple[Rule, ...] = ()

    def __str__(self) -> str:
        return to_json(self.rules) if self.rules else ""

    def __bool__(self) -> bool:
        return bool(self.rules)

    def resolved(self, sizes: tuple[Box, ...], fmts: tuple[str, ...]) -> Rules:
        """Every rule with its sizes and formats stated (omitted ones: the defaults)."""
        return Rules(
            tuple(
                dataclasses.replace(r, sizes=r.sizes or sizes, formats=r.formats or fmts)
                for r in self.rules
            )
        )


@dataclasses.dataclass(frozen=True)
class Outputs:
    """What one object gets: the rule that chose it (None: no rule, the defaults)."""

    rule: str | None
    sizes: tuple[Box, ...]
    formats: tuple[str, ...]


def outputs_for(
    object_name: str, rules: Rules, sizes: tuple[Box, ...], fmts: tuple[str, ...]
) -> Outputs:
    """The first rule selecting the name, else the defaults."""
    for rule in rules.rules:
        if patterns.is_selected(object_name, rule.include, rule.exclude):
            return Outputs(rule.name, rule.sizes or sizes, rule.formats or fmts)
    return Outputs(None, sizes, fmts)


def to_json(rules: Sequence[Rule]) -> str:
    return json.dumps([r.as_json() for r in rules], separators=(",", ":"), ensure_ascii=False)


def parse_rules(raw: object) -> Rules:
    """Rules from JSON text (the environment) or a list (``cdktf.json``); ``RuleError``
    names the index of the first bad rule, ``ValueError`` a list that is not one."""
    if isinstance(raw, Rules):
        return raw
    if isinstance(raw, str):
        if not raw.strip():
            return Rules()
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise ValueError(f"not a JSON list of rules: {exc}") from None
    if not isinstance(raw, list | tuple):
        raise ValueError(f"{raw!r} is not a list of rules")
    if len(raw) > MAX_RULES:
        raise ValueError(f"{len(raw)} rules; at most {MAX_RULES}")
    rules = tuple(_rule(index, item) for index, item in enumerate(raw))
    seen: dict[str, int] = {}
    for index, rule in enumerate(rules):
        if rule.name in seen:
            raise RuleError(index, f"name {rule.name!r} is already rule {seen[rule.name]}'s")
        seen[rule.name] = index
        if not rule.include and not rule.exclude and index < len(rules) - 1:
            raise RuleError(
                index + 1, f"is never used: rule {index} before it selects every object"
            )
    text = to_json(rules)
    if len(text.encode()) > MAX_RULES_BYTES:
        raise ValueError(
            f"the rules take {len(text.encode())} bytes as JSON, over the {MAX_RULES_BYTES} "
            "bytes allowed (they travel in one environment variable)"
        )
    return Rules(rules)


def _rule(index: int, item: object) -> Rule:
    if not isinstance(item, Mapping):
        raise RuleError(index, f"{item!r} is not an object with include/exclude/sizes/formats")
    unknown = sorted(set(item) - set(_KEYS))
    if unknown:
        raise RuleError(index, f"unknown key {unknown[0]!r} (known: {', '.join(_KEYS)})")
    name = str(item.get("name", f"rule-{index}"))
    if not _NAME.fullmatch(name):
        raise RuleError(index, f"name {name!r}: 1-63 of a-z, 0-9, '-', '_'")
    try:
        globs = {key: _globs(item.get(key, ())) for key in ("include", "exclude")}
        sizes = formats.parse_sizes(item.get("sizes", ()))
        fmts = formats.parse_formats(item.get("formats", ()))
    except ValueError as exc:
        raise RuleError(index, str(exc)) from None
    if "sizes" in item and not sizes:
        raise RuleError(index, "sizes: empty (leave the key out to use thumbnail_sizes)")
    if "formats" in item and not fmts:
        raise RuleError(index, "formats: empty (leave the key out to use thumbnail_formats)")
    return Rule(name, globs["include"], globs["exclude"], sizes, fmts)


def _globs(raw: object) -> tuple[str, ...]:
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list | tuple) or not all(isinstance(g, str) and g for g in items):
        raise ValueError(f"include/exclude: {raw!r} is not a list of globs")
    return tuple(items)
