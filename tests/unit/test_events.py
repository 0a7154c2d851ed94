"""Parsing storage events and push messages; building result events."""

from __future__ import annotations

import base64
import json

import pytest
from imagekit import notification, push_body, push_event, resource

from image_pipeline import events
from image_pipeline.errors import MalformedEvent


def test_storage_object_from_a_resource():
    res = resource("b", "a b/ünï #?%.jpg", 17, 1234, metadata={"k": "v"})
    obj = events.storage_object(res)
    assert obj == events.StorageObject(
        bucket="b",
        name="a b/ünï #?%.jpg",
        generation=17,
        metageneration=1,
        content_type="image/jpeg",
        size=1234,
        time_created="2026-01-01T00:00:00.000Z",
        metadata={"k": "v"},
    )
    assert events.storage_object(json.dumps(res).encode()) == obj


@pytest.mark.parametrize(
    "res",
    [
        {"name": "x", "generation": "1"},
        {"bucket": "b", "generation": "1"},
        {"bucket": "b", "name": "x"},
        [],
        "nope",
    ],
)
def test_malformed_resources(res):
    with pytest.raises(MalformedEvent):
        events.storage_object(res)


def test_push_message_raw_and_converted():
    body = push_body(b"hello", {"a": "1"}, message_id="42")
    for data in (body, push_event(body).data, json.dumps(body).encode()):
        message = events.push_message(data)
        assert (message.message_id, message.data(), dict(message.attributes)) == (
            "42",
            b"hello",
            {"a": "1"},
        )
        assert message.publish_time == "2026-01-01T00:00:01Z"


@pytest.mark.parametrize(
    "data", [{}, {"message": {}}, {"message": {"messageId": "1", "attributes": ["x"]}}]
)
def test_malformed_push_bodies(data):
    with pytest.raises(MalformedEvent):
        events.push_message(data)


def test_undecodable_message_data():
    message = events.PushMessage("1", "%%%", {}, None)
    with pytest.raises(MalformedEvent, match="base64"):
        message.data()


def test_object_deletion_from_a_notification():
    message = events.push_message(notification("uploads", "a/b.jpg", 5))
    deletion = events.object_deletion(message)
    assert deletion is not None and deletion.overwritten_by is None
    assert (deletion.object.bucket, deletion.object.name, deletion.object.generation) == (
        "uploads",
        "a/b.jpg",
        5,
    )


def test_overwrite_and_payload_free_notifications():
    body = notification("uploads", "a.jpg", 5, overwrittenByGeneration="6")
    body["message"]["data"] = ""  # payload format NONE: the attributes are enough
    deletion = events.object_deletion(events.push_message(body))
    assert deletion is not None
    assert (deletion.object.generation, deletion.overwritten_by) == (5, 6)


def test_other_notification_types_are_not_deletions():
    message = events.push_message(notification("uploads", "a.jpg", 5, "OBJECT_FINALIZE"))
    assert events.object_deletion(message) is None


def test_parse_time():
    assert events.parse_time(None) is None
    parsed = events.parse_time("2026-01-01T00:00:00.123456789Z")
    assert parsed is not None and parsed.isoformat() == "2026-01-01T00:00:00.123456+00:00"
    with pytest.raises(MalformedEvent):
        events.parse_time("yesterday")


OBJ = events.storage_object(resource("uploads", "dir/a.jpg", 9, 100))
CORRUPT = {"reason": "corrupt", "message": "bad"}


def test_processed_event_matches_the_contract():
    image = {"width": 4, "height": 3, "format": "JPEG", "mode": "RGB", "frames": 1, "exif": {}}
    thumbs = [
        {
            "bucket": "t",
            "name": "n",
            "width": 4,
            "height": 3,
            "contentType": "image/webp",
            "size": 9,
        }
    ]
    result = events.result_event(
        "processed", OBJ, "evt", image=image, thumbnails=thumbs, timings={"core_ms": 1.5}
    )
    assert result.attributes == {
        "eventType": "image.processed",
        "bucket": "uploads",
        "objectId": "dir/a.jpg",
        "generation": "9",
        "contentType": "image/jpeg",
    }
    data = json.loads(result.encoded())
    assert data == {
        "schema": 1,
        "status": "processed",
        "bucket": "uploads",
        "name": "dir/a.jpg",
        "generation": 9,
        "metageneration": 1,
        "contentType": "image/jpeg",
        "size": 100,
        "timeCreated": "2026-01-01T00:00:00.000Z",
        "sourceEventId": "evt",
        "image": image,
        "thumbnails": thumbs,
        "timings": {"core_ms": 1.5},
    }


def test_failed_event_carries_the_reason():
    result = events.result_event("failed", OBJ, "evt", error=CORRUPT, timings={})
    assert result.attributes["eventType"] == "image.failed"
    assert result.attributes["reason"] == "corrupt"
    data = json.loads(result.encoded())
    assert data["error"] == {"reason": "corrupt", "message": "bad"}
    assert "image" not in data and "thumbnails" not in data


PROCESSED = {"schema": 1, "status": "processed", "bucket": "b", "name": "n", "generation": 1}


def test_result_round_trip_through_a_message():
    result = events.result_event("deleted", OBJ, "evt", timings={"delete_ms": 1.0})
    message = events.PushMessage(
        "1", base64.b64encode(result.encoded()).decode(), result.attributes, None
    )
    assert events.result_from_message(message) == result.data


@pytest.mark.parametrize(
    "data",
    [
        {"schema": 2, "status": "processed", "bucket": "b", "name": "n", "generation": 1},
        {"schema": 1, "status": "weird", "bucket": "b", "name": "n", "generation": 1},
        {"schema": 1, "status": "processed", "bucket": "", "name": "n", "generation": 1},
        {"schema": 1, "status": "processed", "bucket": "b", "name": "n", "generation": "x"},
        {"schema": 1, "status": "failed", "bucket": "b", "name": "n", "generation": 1},
        [],
        {**PROCESSED, "outputFingerprint": 7},
        {**PROCESSED, "madeAt": "yesterday"},
        {**PROCESSED, "rule": ["a"]},
        {**PROCESSED, "metadata": {"owner": 1}},
        {**PROCESSED, "metadata": "owner=me"},
    ],
)
def test_malformed_results(data):
    encoded = base64.b64encode(json.dumps(data).encode()).decode()
    with pytest.raises(MalformedEvent):
        events.result_from_message(events.PushMessage("1", encoded, {}, None))


def test_a_processed_result_round_trips_with_how_its_outputs_were_made():
    made = {"rule": "avatars", "outputFingerprint": "ab12", "madeAt": "2026-01-01T00:00:05Z"}
    result = events.result_event(
        "processed", OBJ, "evt", image={}, thumbnails=[], **made, metadata={"o": "u"}
    )
    message = events.PushMessage(
        "1", base64.b64encode(result.encoded()).decode(), result.attributes, None
    )
    assert events.result_from_message(message) == result.data
    assert result.data["rule"] == "avatars" and result.data["metadata"] == {"o": "u"}


@pytest.mark.parametrize(
    ("event_time", "days", "overwritten", "expired"),
    [
        ("2026-01-31T00:00:00Z", 30, None, True),  # created 2026-01-01: exactly 30 days old
        ("2026-01-30T23:59:59Z", 30, None, False),  # younger: a person's delete
        ("2026-03-01T00:00:00Z", 0, None, False),  # no lifecycle rule: always a delete
        ("2026-03-01T00:00:00Z", 30, "7", False),  # an overwrite is never an expiry
    ],
)
def test_a_delete_old_enough_for_the_lifecycle_rule_is_its_expiry(
    event_time, days, overwritten, expired
):
    attrs = {"eventTime": event_time}
    if overwritten:
        attrs["overwrittenByGeneration"] = overwritten
    deletion = events.object_deletion(events.push_message(notification("u", "a.jpg", 5, **attrs)))
    assert deletion is not None
    assert events.expired_by_lifecycle(deletion, days) is expired


def test_without_both_times_a_delete_stays_a_delete():
    body = notification("u", "a.jpg", 5, eventTime="2027-01-01T00:00:00Z")
    body["message"]["data"] = ""  # payload format NONE: no timeCreated
    deletion = events.object_deletion(events.push_message(body))
    assert deletion is not None and not events.expired_by_lifecycle(deletion, 1)
