"""The shape of a result event's data (docs/architecture.md, "Result events"): one definition,
checked by the stages before publishing and by ``write_metadata`` before storing. Pure:
plain values in, the first problem found (a path and what is wrong) out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

SCHEMA = 1
STATUSES = ("processed", "failed", "expired", "deleted")
MAX_INT64 = 2**63 - 1

Check = Callable[[Any], str | None]  # what is wrong with a value, or None


def _at(path: str, problem: str) -> str:
    """``.thumbnails`` + ``[0].width is missing``: a nested problem continues the path."""
    return f"{path}{problem}" if problem[:1] in ".[" else f"{path} {problem}"


def is_int(value: Any, low: int = 0) -> bool:
    """An int64 of JSON at least ``low`` (``True`` is no integer here)."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= MAX_INT64


def integer(low: int = 0) -> Check:
    return lambda v: None if is_int(v, low) else f"is not an integer >= {low}"


def text(non_empty: bool = False) -> Check:
    def check(value: Any) -> str | None:
        if not isinstance(value, str):
            return "is not a string"
        return "is empty" if non_empty and not value else None

    return check


def number(value: Any) -> str | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return None if ok else "is not a number"


def rfc3339(value: Any) -> str | None:
    if not isinstance(value, str):
        return "is not a string"
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        return "is not an RFC 3339 time"
    return None


def one_of(*allowed: str) -> Check:
    return lambda v: None if v in allowed else f"is not one of {', '.join(allowed)}"


def optional(check: Check) -> Check:
    return lambda v: None if v is None else check(v)


def record(required: Mapping[str, Check], optional_: Mapping[str, Check] | None = None) -> Check:
    """An object with these fields (others are allowed and ignored)."""

    def of(value: Any) -> str | None:
        if not isinstance(value, Mapping):
            return "is not an object"
        for key in required:
            if key not in value:
                return f".{key} is missing"
        for key, check in (*required.items(), *(optional_ or {}).items()):
            if key in value and (problem := check(value[key])) is not None:
                return _at(f".{key}", problem)
        return None

    return of


def each(kind: type[list[Any]] | type[Mapping[str, Any]], check: Check) -> Check:
    """A list (or an object) whose every item passes ``check``."""

    def of(value: Any) -> str | None:
        if not isinstance(value, kind):
            return "is not a list" if kind is list else "is not an object"
        items = value.items() if isinstance(value, Mapping) else enumerate(value)
        for key, item in items:
            if (problem := check(item)) is not None:
                return _at(f"[{key!r}]", problem)
        return None

    return of


THUMBNAIL = record(
    {
        "bucket": text(non_empty=True),
        "name": text(non_empty=True),
        "width": integer(1),
        "height": integer(1),
        "contentType": text(),
        "size": integer(),
    },
    {"frames": integer(1), "box": text(), "uri": text(), "url": text()},
)
PLACEHOLDER = record(
    {"blurhash": text(), "width": integer(1), "height": integer(1), "color": text()}
)
# What a processed result says of the image (the doc's fields of it; null when failed).
IMAGE_FIELDS = {
    "width": optional(integer()),
    "height": optional(integer()),
    "format": optional(text()),
    "mode": optional(text()),
    "frames": optional(integer()),
    "exif": optional(each(Mapping, lambda v: None)),
    "placeholder": optional(PLACEHOLDER),
}
IMAGE = record({}, IMAGE_FIELDS)
ERROR = record({"reason": text(non_empty=True), "message": text()})

COMMON = {
    "schema": lambda v: None if is_int(v) and v == SCHEMA else f"is not {SCHEMA}",
    "status": one_of(*STATUSES),
    "bucket": text(non_empty=True),
    "name": text(non_empty=True),
    "generation": integer(1),
}
# The facts of a generation (JSON API names): a result has those its event had, and a doc
# keeps its value of one that a result of the same generation lacks (records.image_doc).
FACTS = {
    "metageneration": optional(integer(1)),
    "contentType": optional(text()),
    "size": optional(integer()),
    "md5Hash": optional(text()),
    "crc32c": optional(text()),
    "timeCreated": optional(rfc3339),
}
OPTIONAL = {
    **FACTS,
    "sourceEventId": optional(text()),
    "timings": optional(each(Mapping, number)),
    "rule": optional(text()),
    "outputFingerprint": optional(text()),
    "madeAt": optional(rfc3339),
    "outputsGeneration": optional(integer(1)),
    "metadata": optional(each(Mapping, text())),
    "expiredAt": optional(rfc3339),
    "thumbnails": each(list, THUMBNAIL),
    "image": IMAGE,
    "error": ERROR,
}
# What a status must carry on top of the common fields (the others: nothing more).
REQUIRED_BY_STATUS = {"processed": ("image", "thumbnails"), "failed": ("error",)}


def problem(data: Any) -> str | None:
    """The first way ``data`` is off the schema ("result.thumbnails[0].width is missing"),
    or None when it is a well-formed result event."""
    found = record(COMMON, OPTIONAL)(data)
    if found is None:
        missing = [k for k in REQUIRED_BY_STATUS.get(data["status"], ()) if k not in data]
        if missing:
            found = f".{missing[0]} is missing (status {data['status']})"
    return None if found is None else _at("result", found)
