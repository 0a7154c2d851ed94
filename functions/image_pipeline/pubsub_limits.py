"""Pub/Sub's message limits, and the rule that keeps the attributes we publish within them.

Pub/Sub refuses a publish whose message has more than 100 attributes, an attribute key over
256 bytes, an attribute value over 1024 bytes, or more than 10 MB in all
(https://cloud.google.com/pubsub/quotas#resource_limits); the emulator accepts them all, so
the local stack's router refuses what ``violations`` finds. What the functions publish is
fitted by ``fit_attributes`` (the rule: docs/architecture.md, "Result events"); our own keys
are never cut, so a key or count over the limit is a bug the stage refuses to publish.
"""

from __future__ import annotations

from collections.abc import Mapping

MAX_ATTRIBUTES = 100
MAX_KEY_BYTES = 256
MAX_VALUE_BYTES = 1024
MAX_MESSAGE_BYTES = 10_000_000  # "10 MB": data plus attribute keys and values
TRUNCATED_ATTRIBUTES = "truncatedAttributes"


def violations(data: bytes, attributes: Mapping[str, str]) -> list[str]:
    """What Pub/Sub would refuse about this message; empty when it would accept it."""
    problems = []
    if len(attributes) > MAX_ATTRIBUTES:
        problems.append(f"{len(attributes)} attributes, more than {MAX_ATTRIBUTES}")
    size = len(data)  # what the 10 MB counts: the data, the attributes' keys and values
    for key, value in attributes.items():
        key_bytes, value_bytes = len(key.encode()), len(value.encode())
        size += key_bytes + value_bytes
        if key_bytes > MAX_KEY_BYTES:
            problems.append(
                f"attribute key {key[:40]!r}... is {key_bytes} bytes, more than {MAX_KEY_BYTES}"
            )
        if value_bytes > MAX_VALUE_BYTES:
            problems.append(
                f"attribute {key[:40]!r} is {value_bytes} bytes, more than {MAX_VALUE_BYTES}"
            )
    if size > MAX_MESSAGE_BYTES:
        problems.append(f"the message is {size} bytes, more than {MAX_MESSAGE_BYTES}")
    return problems


def truncate_utf8(text: str, max_bytes: int) -> str:
    """The longest prefix of ``text`` whose UTF-8 encoding fits ``max_bytes``."""
    encoded = text.encode()
    if len(encoded) <= max_bytes:
        return text
    # Cutting bytes can split a character at the end only; "ignore" drops that part.
    return encoded[:max_bytes].decode("utf-8", "ignore")


def fit_attributes(attributes: Mapping[str, str]) -> dict[str, str]:
    """``attributes`` with every value over 1024 bytes cut to its longest prefix of whole
    UTF-8 characters within them, and its key listed in ``truncatedAttributes``."""
    fitted = {key: truncate_utf8(value, MAX_VALUE_BYTES) for key, value in attributes.items()}
    truncated = [key for key, value in attributes.items() if fitted[key] != value]
    if truncated:
        fitted[TRUNCATED_ATTRIBUTES] = truncate_utf8(",".join(truncated), MAX_VALUE_BYTES)
    return fitted
