"""Permanent vs transient classification."""

from __future__ import annotations

import pytest
import requests
from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc

from image_pipeline.errors import REASONS, GenerationMismatch, PermanentError, is_transient


@pytest.mark.parametrize(
    "exc",
    [
        gexc.TooManyRequests("quota"),
        gexc.InternalServerError("500"),
        gexc.BadGateway("502"),
        gexc.ServiceUnavailable("503"),
        gexc.GatewayTimeout("504"),
        gexc.DeadlineExceeded("deadline"),
        gexc.Aborted("transaction contention"),
        gexc.RetryError("retries exhausted", cause=None),
        auth_exc.TransportError("metadata server unreachable"),
        requests.ConnectionError("reset"),
        requests.Timeout("slow"),
        ConnectionResetError(),
        TimeoutError(),
        GenerationMismatch("raced"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_transient(exc):
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        gexc.NotFound("missing"),
        gexc.Forbidden("iam"),
        gexc.BadRequest("bad"),
        gexc.PreconditionFailed("412"),
        gexc.AlreadyExists("409"),
        PermanentError("corrupt", "bad bytes"),
        ValueError("bug"),
        KeyError("bug"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_not_transient(exc):
    assert not is_transient(exc)


def test_permanent_error_reasons_are_the_contract_list():
    assert sorted(REASONS) == [
        "corrupt",
        "empty",
        "not_an_image",
        "retry_window_exceeded",
        "too_many_bytes",
        "too_many_decoded_bytes",
        "too_many_frames",
        "too_many_pixels",
        "truncated",
        "unsupported_format",
    ]
    error = PermanentError("empty", "no bytes")
    assert (error.reason, error.message, str(error)) == ("empty", "no bytes", "empty: no bytes")
    with pytest.raises(ValueError, match="unknown failure reason"):
        PermanentError("oops", "")
