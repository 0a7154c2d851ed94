"""The router's translations: Eventarc CloudEvents, push bodies, backoff, filters."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from infra.local.cli import client_exports
from infra.local.messages import (
    Message,
    push_request,
    retry_delay,
    rfc3339,
    storage_cloudevent,
    trigger_fires,
)
from infra.model.topology import FINALIZED, RetryPolicy, takes

WHEN = datetime(2026, 1, 2, 3, 4, 5, 678_901, tzinfo=UTC)
RESOURCE = {
    "name": "a/b c.jpg",
    "bucket": "up",
    "generation": "17",
    "updated": "2026-01-02T03:04:05.1Z",
}


def notification(event_type: str = "OBJECT_FINALIZE", bucket: str = "up", attempt: int = 0):
    return Message(
        message_id="42",
        data=json.dumps(RESOURCE).encode(),
        attributes={"eventType": event_type, "bucketId": bucket, "objectId": "a/b c.jpg",
                    "objectGeneration": "17", "payloadFormat": "JSON_API_V1"},
        publish_time=WHEN,
        delivery_attempt=attempt,
    )  # fmt: skip


def test_finalize_becomes_binary_mode_cloudevent():
    assert trigger_fires(notification(), FINALIZED, "up")
    headers, body = storage_cloudevent(notification(), FINALIZED)
    assert headers["ce-specversion"] == "1.0"
    assert headers["ce-id"] == "42"
    assert headers["ce-type"] == FINALIZED
    assert headers["ce-source"] == "//storage.googleapis.com/projects/_/buckets/up"
    assert headers["ce-subject"] == "objects/a/b%20c.jpg"  # percent-encoded (binding 3.1.3.2)
    assert headers["ce-bucket"] == "up"
    assert headers["ce-time"] == RESOURCE["updated"]
    assert headers["Content-Type"].startswith("application/json")
    assert json.loads(body) == RESOURCE


@pytest.mark.parametrize(
    ("event_type", "bucket"), [("OBJECT_DELETE", "up"), ("OBJECT_FINALIZE", "thumbs")]
)
def test_trigger_ignores_other_events_and_buckets(event_type, bucket):
    assert not trigger_fires(notification(event_type, bucket), FINALIZED, "up")


def test_push_request_is_the_wrapped_format():
    headers, sent = push_request(notification(attempt=3), "projects/p/subscriptions/s")
    assert headers == {"Content-Type": "application/json"}
    body = json.loads(sent)
    message = body["message"]
    assert body["subscription"] == "projects/p/subscriptions/s"
    assert body["deliveryAttempt"] == 3
    assert base64.b64decode(message["data"]) == json.dumps(RESOURCE).encode()
    assert message["messageId"] == message["message_id"] == "42"
    assert message["publishTime"] == message["publish_time"] == "2026-01-02T03:04:05.678Z"
    assert message["attributes"]["eventType"] == "OBJECT_FINALIZE"


def test_push_request_has_no_delivery_attempt_without_dead_letter_policy():
    assert "deliveryAttempt" not in json.loads(push_request(notification(attempt=0), "s")[1])


def test_rfc3339_converts_to_utc():
    assert rfc3339(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00.000Z"


@pytest.mark.parametrize(
    ("attempt", "expected"), [(0, 10), (1, 10), (2, 20), (3, 40), (6, 320), (7, 600), (60, 600)]
)
def test_retry_delay_is_exponential_and_capped(attempt, expected):
    assert retry_delay(RetryPolicy(10, 600), attempt, 1.0) == expected


def test_retry_delay_scales():
    assert retry_delay(RetryPolicy(10, 600), 2, 0.01) == pytest.approx(0.2)


def test_a_subscription_takes_its_event_types_or_every_message():
    failures = ("image.failed",)
    assert takes(failures, {"eventType": "image.failed", "bucket": "b"})
    assert not takes(failures, {"eventType": "image.processed"})
    assert not takes(failures, {})  # no eventType: the filter's equality is false
    assert takes((), {}) and takes((), {"eventType": "anything"})


def test_client_exports_point_libraries_and_gcloud_at_the_stack():
    info = {
        "project": "p",
        "env": {"GOOGLE_CLOUD_PROJECT": "p", "PUBSUB_EMULATOR_HOST": "127.0.0.1:1",
                "FIRESTORE_EMULATOR_HOST": "127.0.0.1:2",
                "STORAGE_EMULATOR_HOST": "http://127.0.0.1:3"},
    }  # fmt: skip
    exports = client_exports(info)
    assert exports["STORAGE_EMULATOR_HOST"] == "http://127.0.0.1:3"
    assert exports["CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE"] == "http://127.0.0.1:3/"
    assert exports["CLOUDSDK_API_ENDPOINT_OVERRIDES_PUBSUB"] == "http://127.0.0.1:1/"
    assert exports["CLOUDSDK_AUTH_DISABLE_CREDENTIALS"] == "true"
    assert exports["CLOUDSDK_CORE_PROJECT"] == "p"
