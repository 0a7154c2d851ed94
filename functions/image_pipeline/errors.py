"""Which failures are recorded and acknowledged (``PermanentError``: the same on every
attempt, an ``image.failed`` event) and which are raised for the platform to redeliver: the
transient ones, and anything else (docs/architecture.md, "Entry points").
"""

from __future__ import annotations

REASONS = frozenset(
    {
        "empty",
        "too_many_bytes",
        "not_an_image",
        "unsupported_format",
        "corrupt",
        "truncated",
        "too_many_pixels",
        "too_many_frames",
        "too_many_decoded_bytes",
        "retry_window_exceeded",
    }
)


class PermanentError(Exception):
    """A failure that retrying cannot fix; ``reason`` is one of ``REASONS``."""

    def __init__(self, reason: str, message: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown failure reason {reason!r}")
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


class GenerationMismatch(Exception):
    """A conditional write or delete lost a race: the object changed since it was read.
    Transient: the redelivery reads the new state and decides again."""


class MalformedEvent(ValueError):
    """An event or message that does not have the shape this pipeline expects."""


# Transient by their class, looked up by name along the exception's class hierarchy: a
# class from a module never imported cannot be raised, so nothing is imported here to
# check it (google.api_core alone costs ~200 ms of a cold start).
_TRANSIENT_CLASSES = frozenset(
    {
        "google.api_core.exceptions.TooManyRequests",
        "google.api_core.exceptions.InternalServerError",
        "google.api_core.exceptions.BadGateway",
        "google.api_core.exceptions.ServiceUnavailable",
        "google.api_core.exceptions.GatewayTimeout",
        "google.api_core.exceptions.DeadlineExceeded",
        "google.api_core.exceptions.Aborted",
        "google.api_core.exceptions.RetryError",
        "google.auth.exceptions.TransportError",
        "image_pipeline.deadlines.Unavailable",
        "requests.exceptions.ConnectionError",
        "requests.exceptions.Timeout",
    }
)


def is_transient(exc: BaseException) -> bool:
    """True when retrying later can succeed: 429, 5xx, deadline, contention, network."""
    if isinstance(exc, ConnectionError | TimeoutError | GenerationMismatch):
        return True
    return any(f"{c.__module__}.{c.__qualname__}" in _TRANSIENT_CLASSES for c in type(exc).__mro__)
