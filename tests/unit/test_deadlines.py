"""Deadlines: a call that gets no answer ends in seconds as `Unavailable`, naming who."""

from __future__ import annotations

import time

import pytest
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore

from image_pipeline import deadlines, errors
from image_pipeline.firestore_docs import FirestoreStore

DEAD = "127.0.0.1:9"  # the discard port: nothing listens there


def test_a_retry_that_ran_out_names_the_service_where_and_how_long() -> None:
    last = exceptions.ServiceUnavailable("failed to connect to all addresses")
    with (
        pytest.raises(deadlines.Unavailable) as raised,
        deadlines.answering("Firestore", DEAD, 10),
    ):
        raise exceptions.RetryError("Timeout of 10.0s exceeded", last)
    assert str(raised.value).startswith(f"Firestore at {DEAD} did not answer within 10 s")
    assert errors.is_transient(raised.value)  # a function's delivery is retried


def test_a_rollback_error_after_an_unanswered_begin_is_about_the_begin() -> None:
    with pytest.raises(deadlines.Unavailable), deadlines.answering("Firestore", DEAD, 10):
        try:
            raise exceptions.DeadlineExceeded("begin_transaction")
        except exceptions.DeadlineExceeded:
            raise ValueError("no transaction ID, so it cannot be rolled back") from None


@pytest.mark.parametrize("error", [ValueError("bad"), KeyError("x"), exceptions.NotFound("x")])
def test_other_errors_pass_unchanged(error: Exception) -> None:
    with pytest.raises(type(error)), deadlines.answering("Firestore", DEAD, 10):
        raise error


def test_a_transaction_against_a_dead_firestore_ends_within_its_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", DEAD)
    client = firestore.Client(project="deadline-test", credentials=AnonymousCredentials())
    store = FirestoreStore("deadline-test", "(default)", client, seconds=0.3)
    started = time.monotonic()
    with pytest.raises(deadlines.Unavailable, match=f"^Firestore at {DEAD} did not answer"):
        store.update("images", "a", lambda doc: {"x": 1})  # begin/commit take no deadline
    assert time.monotonic() - started < 5  # the library's default would be 60 s
