"""A deadline on every call to Firestore, Cloud Storage and Pub/Sub, retries included.

The client libraries retry an unreachable service for 60 to 300 s by default; here each call
gives up after a few seconds and raises ``Unavailable``, which names the service and where it
was looked for ("Firestore at 127.0.0.1:8080 did not answer within 10 s"). For a function
it is a transient error (the platform redelivers the event).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

SECONDS = 10.0  # a call, its retries included


class Unavailable(RuntimeError):
    """A dependency did not answer within its deadline."""

    def __init__(self, service: str, where: str, seconds: float, cause: BaseException) -> None:
        last = str(cause).splitlines()[0][:200] if str(cause) else type(cause).__name__
        super().__init__(f"{service} at {where} did not answer within {seconds:g} s ({last})")


def _no_answer() -> tuple[type[BaseException], ...]:
    import requests
    from google.api_core import exceptions

    return (
        exceptions.RetryError,  # a retry loop ran out of time
        exceptions.DeadlineExceeded,
        exceptions.ServiceUnavailable,  # gRPC: cannot connect
        requests.ConnectionError,
        requests.Timeout,
        TimeoutError,  # a publish future's result(timeout=...)
    )


@contextlib.contextmanager
def answering(service: str, where: str, seconds: float) -> Iterator[None]:
    """Turns a call's running out of time inside the block into ``Unavailable``."""
    try:
        yield
    except Exception as exc:
        no_answer = _no_answer()
        cause: BaseException | None = exc if isinstance(exc, no_answer) else None
        if isinstance(exc, ValueError):
            cause = exc.__context__
        if not isinstance(cause, no_answer):
            raise
        # A transaction whose begin got no answer fails its rollback with a ValueError
        # ("no transaction ID"); the call that went unanswered is what it is about.
        raise Unavailable(service, where, seconds, cause) from exc


def bound_firestore(client: Any, seconds: float = SECONDS) -> Any:
    """``client`` with every RPC bounded to ``seconds`` (each attempt and the retries).

    A transaction's begin, commit and rollback take no ``timeout`` or ``retry`` argument
    (https://github.com/googleapis/python-firestore/issues/221), so the defaults of the
    client's wrapped methods are bounded instead of passing both on each call: one place,
    and no call can be missed. The library's own unit tests read the same attributes.
    """
    for method in client._firestore_api._transport._wrapped_methods.values():
        method._timeout = seconds
        if method._retry is not None:
            method._retry = method._retry.with_timeout(seconds)
    return client


def grpc_call(seconds: float = SECONDS) -> dict[str, Any]:
    """The ``retry`` and ``timeout`` arguments of a gRPC (Pub/Sub) call bounded to
    ``seconds``: transient errors retried, and nothing after the deadline."""
    from google.api_core import retry

    return {
        "retry": retry.Retry(predicate=retry.if_transient_error, timeout=seconds),
        "timeout": seconds,
    }


def storage_call(seconds: float = SECONDS, *, write: bool = False) -> dict[str, Any]:
    """The ``timeout`` and ``retry`` arguments of a Cloud Storage call bounded to ``seconds``
    (the library retries for 120 s by default). A ``write`` is retried only when
    generation-conditioned, so that repeating it is safe."""
    from google.cloud.storage.retry import (
        DEFAULT_RETRY,
        ConditionalRetryPolicy,
        is_generation_specified,
    )

    retry = DEFAULT_RETRY.with_timeout(seconds)
    if write:
        retry = ConditionalRetryPolicy(retry, is_generation_specified, ["query_params"])
    return {"timeout": seconds, "retry": retry}
