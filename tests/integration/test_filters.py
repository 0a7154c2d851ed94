"""Subscription filters, enforced by the harness: a non-matching message is never delivered."""

from __future__ import annotations

import pytest

from infra.local import sample_images

pytestmark = pytest.mark.integration


def test_filters_hold_for_every_subscription(harness, prefix):
    subs = harness.stack.topology.subscriptions
    assert subs["dead_letter_recorder"].filter == subs["dead_letters_unrecorded"].filter == ""

    # image-events: eventType values no filter accepts, and a missing eventType.
    odd = prefix + "odd.jpg"
    harness.publish("image_events", b"{}", eventType="image.bogus", objectId=odd, bucket="b")
    harness.publish("image_events", b"{}", objectId=odd, bucket="b")
    # A processed image: its image.processed event must not reach the failures feed. The
    # bucket's notification sends deletes only; a FINALIZE on upload-events (a notification
    # configured with more event types) must still not reach cleanup.
    good = prefix + "good.jpg"
    harness.upload(good, sample_images.jpeg(320, 240))
    harness.wait_doc(good, lambda d: d.get("status") == "processed")
    cleanup_filtered = harness.router.stats()["filtered"].get("cleanup", 0)
    harness.publish(
        "upload_events", b"{}", eventType="OBJECT_FINALIZE", objectId=good, bucketId="b"
    )

    harness.wait_until(
        lambda: harness.router.stats()["filtered"].get("metadata_writer", 0) >= 2,
        10,
        "the metadata writer to filter out the odd events",
    )
    harness.wait_until(
        lambda: harness.router.stats()["filtered"].get("cleanup", 0) > cleanup_filtered,
        10,
        "cleanup to filter out the FINALIZE",
    )
    assert harness.calls("write_metadata", odd) == []
    assert harness.pulled("failures", odd) == []
    assert harness.pulled("failures", good) == []
    assert harness.calls("cleanup", good) == []

    # The processed event did reach the writer, exactly once.
    written = harness.settled_calls("write_metadata", good)
    assert [d.event_type for d in written] == ["image.processed"]
