"""Transient failures are retried; a function failing every time ends in dead letters."""

from __future__ import annotations

import pytest
from google.cloud.firestore_v1.base_query import FieldFilter

from infra.local import sample_images
from infra.ops import dead_letters, target

pytestmark = pytest.mark.integration


def test_transient_failures_are_retried_until_processed(harness, prefix):
    with harness.faults(transient_rate=0.5, seed=11):
        names = [f"{prefix}{i}.jpg" for i in range(6)]
        for name in names:
            harness.upload(name, sample_images.jpeg(200, 150))
        for name in names:
            harness.wait_doc(name, lambda d: d.get("status") == "processed")
    injected = [
        d for d in harness.router.log.deliveries(object_prefix=prefix) if d.by == "injected"
    ]
    assert injected and all(d.status == 503 for d in injected)


def test_trigger_retries_until_the_function_recovers(harness, prefix):
    name = prefix + "later.jpg"
    with harness.faults(failing=["make_thumbnail"]):
        harness.upload(name, sample_images.jpeg(200, 150))
        harness.wait_until(
            lambda: len(harness.calls("make_thumbnail", name, injected=True)) >= 3,
            20,
            "Eventarc-style retries",
        )
    doc = harness.wait_doc(name, lambda d: d.get("status") == "processed")
    assert doc["thumbnails"]


def test_failing_function_dead_letters_then_replay_processes(harness, prefix):
    name = prefix + "dlq.jpg"
    sub = harness.stack.topology.subscriptions["metadata_writer"]
    with harness.faults(failing=["write_metadata"]):
        harness.upload(name, sample_images.jpeg(200, 150))

        def recorded():
            return [
                s
                for s in harness.dead_letters.where(
                    filter=FieldFilter("attributes.objectId", "==", name)
                ).stream()
            ]

        harness.wait_until(lambda: bool(recorded()), 60, "a dead_letters doc")
        attempts = harness.calls("write_metadata", name, injected=True)
        assert [d.attempt for d in attempts] == list(range(1, sub.max_delivery_attempts + 1))
        assert harness.calls("write_metadata", name) == []
        assert harness.doc(name) is None
        (snap,) = recorded()
        dead = snap.to_dict()
        assert dead["sourceSubscription"] == sub.name
        assert dead["status"] == "recorded"
        assert dead["attributes"]["eventType"] == "image.processed"
        assert int(dead["deliveryAttempt"]) >= 1

    # The fix is in (the fault is healed): replay re-drives it to the source topic.
    assert dead_letters.replay_one(target.from_stack(harness.info), snap.id)
    doc = harness.wait_doc(name, lambda d: d.get("status") == "processed")
    assert doc["thumbnails"]
    after = harness.dead_letters.document(snap.id).get().to_dict()
    assert after["status"] == "replayed" and after["replayCount"] == 1
