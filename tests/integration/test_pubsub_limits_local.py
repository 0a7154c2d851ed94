"""Pub/Sub's message limits, end to end: the functions stay within them, the stack enforces them.

The emulator accepts attribute values over 1024 bytes that Pub/Sub refuses; the router
refuses them as Pub/Sub would (infra/local/fidelity/refusals.py), and the suite's autouse fixture
fails any test during which that happened.
"""

from __future__ import annotations

import json

import pytest
import requests

from infra.local import sample_images

pytestmark = pytest.mark.integration


def test_a_5_kb_content_type_is_processed_and_nothing_is_refused(harness, prefix):
    name = prefix + "long-content-type.jpg"
    content_type = "image/jpeg; comment=" + "x" * 5000
    refused_before = harness.fidelity.refusals.count()
    harness.upload(name, sample_images.jpeg(320, 240), content_type)
    doc = harness.wait_doc(name, lambda d: d.get("status") == "processed")
    assert doc["contentType"] == content_type  # whole in the doc, from the event's data
    assert len(doc["thumbnails"]) == len(harness.thumbnail_blobs(name)) > 0
    assert harness.fidelity.refusals.count() == refused_before


@pytest.mark.refused_publishes
def test_a_publish_over_the_limits_is_refused_by_the_stack(harness, prefix):
    name = prefix + "refused.jpg"
    data = {
        "schema": 1,
        "status": "processed",
        "bucket": harness.uploads.name,
        "name": name,
        "generation": 1,
        "contentType": "image/jpeg",
    }
    attributes = {"eventType": "image.processed", "objectId": name, "contentType": "x" * 1025}
    message_id = harness.publish("image_events", json.dumps(data).encode(), **attributes)

    def refused() -> list[dict]:
        return [r for r in harness.fidelity.refusals.records() if r["message_id"] == message_id]

    harness.wait_until(lambda: bool(refused()), 30, "the router to refuse the message")
    (record,) = refused()
    assert any("1025 bytes, more than 1024" in p for p in record["problems"])
    stats = requests.get(f"{harness.info['router']['url']}/stats", timeout=5).json()
    assert message_id in {m["message_id"] for m in stats["refused"]["messages"]}
    assert stats["refused"]["count"] >= 1
    # Never delivered, as a refused publish never exists.
    assert harness.calls("write_metadata", name) == []
    assert harness.doc(name) is None
