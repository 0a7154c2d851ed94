"""The Eventarc storage CloudEvent: built with the cloudevents SDK, header values
percent-encoded as the CloudEvents HTTP binding (1.0.2, 3.1.3.2) requires."""

from __future__ import annotations

import json
from urllib.parse import unquote

import pytest
import requests
from cloudevents.http import from_http

from infra.common.storage_events import eventarc_storage_event, header_value
from infra.model.topology import FINALIZED
from tests.hostile_names import HOSTILE_NAMES


def event(name: str):
    resource = {"bucket": "up", "name": name, "generation": "7"}
    return eventarc_storage_event(resource, "id-1", FINALIZED, "2026-01-01T00:00:00.000Z")


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("plain/name.jpg", "plain/name.jpg"),
        ("a b", "a%20b"),
        ('say "hi"', "say%20%22hi%22"),
        ("100%", "100%25"),
        ("#?+&=~'!*()[]{}<>|\\^`", "#?+&=~'!*()[]{}<>|\\^`"),  # printable ASCII stays
        ("\x01\x1b\x7f", "%01%1B%7F"),
        ("写", "%E5%86%99"),
        ("📷", "%F0%9F%93%B7"),
        ("\u200f", "%E2%80%8F"),
    ],
)
def test_header_values_are_percent_encoded_per_the_binding(value, encoded):
    assert header_value(value) == encoded
    assert unquote(encoded) == value


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_every_header_is_sendable_and_the_body_carries_the_name(name):
    headers, body = event(name)
    for key, value in headers.items():
        assert all(0x21 <= ord(c) <= 0x7E or key == "Content-Type" for c in value), (key, value)
    assert unquote(headers["ce-subject"]) == f"objects/{name}"
    assert json.loads(body)["name"] == name
    # What made requests raise UnicodeEncodeError before: headers must be Latin-1 safe.
    prepared = requests.Request("POST", "http://127.0.0.1/", headers=headers, data=body).prepare()
    assert prepared.headers["ce-id"] == "id-1"


def test_the_sdk_reads_it_back_as_the_same_event():
    headers, body = event("写真 100%.jpg")
    parsed = from_http(headers, body)
    assert (parsed["id"], parsed["type"], parsed["bucket"]) == ("id-1", FINALIZED, "up")
    assert parsed["source"] == "//storage.googleapis.com/projects/_/buckets/up"
    assert parsed.data["name"] == "写真 100%.jpg"
    # The SDK (1.12) does not percent-decode: the subject arrives encoded, which is why
    # the functions read the object name from the body.
    assert parsed["subject"] == "objects/%E5%86%99%E7%9C%9F%20100%25.jpg"
