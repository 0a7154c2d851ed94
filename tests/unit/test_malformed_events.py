"""Malformed requests to every entry point: a permanent answer, never a 500.

make_thumbnail acknowledges a malformed Eventarc event (200: a retry cannot fix it); the
pushed stages refuse a malformed message with 400, the nack Pub/Sub retries into the
dead-letter topic. Limits on the raw body apply before functions-framework parses it.
"""

from __future__ import annotations

import json
import urllib.parse

import pytest
from imagekit import FINALIZED, notification, push_body, resource

from image_pipeline import events
from image_pipeline.errors import MalformedEvent

PUSHED = ("write_metadata", "cleanup", "handle_dead_letter")
DEEP = b"[" * 100_000 + b"]" * 100_000


def eventarc_headers(res: dict, **extra: str) -> dict[str, str]:
    return {
        "ce-id": "evt-1",
        "ce-source": f"//storage.googleapis.com/projects/_/buckets/{res.get('bucket')}",
        "ce-type": FINALIZED,
        "ce-subject": urllib.parse.quote(f"objects/{res.get('name')}", safe="/"),
        "ce-time": "2026-01-01T00:00:00Z",
        "ce-specversion": "1.0",
        **extra,
    }


def last_log(capsys) -> dict:
    return json.loads(capsys.readouterr().out.splitlines()[-1])


GOOD = resource("uploads", "a.jpg", 5, 10)
MALFORMED_STORAGE_EVENTS = {
    "ce-time not a time": (GOOD, {"ce-time": "not-a-time"}),
    "40-digit generation": (GOOD | {"generation": "1" * 40}, {}),
    "generation 0": (GOOD | {"generation": "0"}, {}),
    "empty object name": (GOOD | {"name": ""}, {}),
    "name over 1024 bytes": (GOOD | {"name": "é" * 513}, {}),
    "name not a string": (GOOD | {"name": ["a"]}, {}),
    "timeCreated not a time": (GOOD | {"timeCreated": "yesterday"}, {}),
    "size negative": (GOOD | {"size": "-1"}, {}),
}


@pytest.mark.parametrize("case", MALFORMED_STORAGE_EVENTS)
def test_malformed_storage_events_are_acknowledged_not_retried(
    function_client, pipeline, capsys, case
):
    res, headers = MALFORMED_STORAGE_EVENTS[case]
    response = function_client("make_thumbnail").post(
        "/",
        data=json.dumps(res),
        headers=eventarc_headers(res, **headers),
        content_type="application/json",
    )
    assert response.status_code == 200, response.data
    line = last_log(capsys)
    assert (line["severity"], line["message"]) == ("ERROR", "malformed storage event; acknowledged")
    assert pipeline.publisher.messages == [] and pipeline.storage.uploads == 0


@pytest.mark.parametrize("body", [DEEP, b'{"a":' * 50 + b"1" + b"}" * 50])
def test_a_deeply_nested_body_is_refused_before_parsing(function_client, capsys, body):
    response = function_client("make_thumbnail").post(
        "/", data=body, headers=eventarc_headers(GOOD), content_type="application/json"
    )
    assert response.status_code == 200
    assert "nested deeper than 32" in last_log(capsys)["error"]
    for target in PUSHED:
        response = function_client(target).post("/", data=body, content_type="application/json")
        assert response.status_code == 400, target
        assert "nested deeper than 32" in last_log(capsys)["error"]


def test_a_body_over_the_limit_is_refused_before_parsing(function_client, capsys):
    body = b'"' + b"a" * events.MAX_BODY_BYTES + b'"'
    response = function_client("write_metadata").post(
        "/", data=body, content_type="application/json"
    )
    assert response.status_code == 400
    assert "over 16777216" in last_log(capsys)["error"]


DELETE = notification("uploads", "a.jpg", 5)["message"]["attributes"]
NOT_A_PUSH = {"hello": "world"}
ATTRIBUTES_NOT_AN_OBJECT = {"message": {"messageId": "1", "attributes": [1]}}
MALFORMED_PUSHES = [
    ("write_metadata", NOT_A_PUSH),
    ("write_metadata", ATTRIBUTES_NOT_AN_OBJECT),
    ("write_metadata", {"message": {"data": "%%%", "messageId": "1"}}),
    ("write_metadata", push_body(DEEP, {})),
    ("cleanup", NOT_A_PUSH),
    ("cleanup", ATTRIBUTES_NOT_AN_OBJECT),
    ("cleanup", {"message": {"data": "%%%", "messageId": "1", "attributes": DELETE}}),
    ("cleanup", push_body(DEEP, DELETE)),
    ("cleanup", push_body(b"{}", DELETE | {"objectGeneration": "x"})),
    ("handle_dead_letter", NOT_A_PUSH),
    ("handle_dead_letter", ATTRIBUTES_NOT_AN_OBJECT),
]


@pytest.mark.parametrize(("target", "body"), MALFORMED_PUSHES)
def test_malformed_pushes_are_refused_with_400(function_client, target, body):
    response = function_client(target).post("/", json=body)
    assert response.status_code == 400, response.data


@pytest.mark.parametrize(
    ("raw", "ok"),
    [
        (b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}', True),  # brackets in a string
        (b'{"a": "\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}', True),  # after an escape
        (b"[" * 32 + b"]" * 32, True),
        (b"[" * 33 + b"]" * 33, False),
        (b"[" * 40, False),  # never closed
        (b'"' + b'\\"' * 100_000, True),  # an unterminated string: linear, no backtracking
    ],
)
def test_json_limits(raw, ok):
    if ok:
        events.check_json_limits(raw)
    else:
        with pytest.raises(MalformedEvent):
            events.check_json_limits(raw)
