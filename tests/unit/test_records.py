"""Document ids, generation ordering and the documents themselves."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from image_pipeline import records
from image_pipeline.events import PushMessage
from image_pipeline.records import SERVER_TIME, Decision

NOW = dt.datetime(2026, 1, 1, 0, 0, 2, tzinfo=dt.UTC)


@pytest.mark.parametrize("name", ["a.jpg", "a/b/c.jpg", "..", "__x__", "ü #?%/", "x" * 1024])
def test_doc_id_is_a_valid_firestore_id_for_any_name(name):
    doc_id = records.image_doc_id("bucket", name)
    assert doc_id == hashlib.sha256(f"bucket/{name}".encode()).hexdigest()
    assert len(doc_id) == 64 and "/" not in doc_id


@pytest.mark.parametrize(
    ("stored", "generation", "status", "expected"),
    [
        (None, 1, "processed", Decision.WRITE),
        ({"generation": 1, "status": "processed"}, 2, "processed", Decision.WRITE),
        ({"generation": 2, "status": "processed"}, 1, "processed", Decision.STALE),
        ({"generation": 2, "status": "processed"}, 1, "deleted", Decision.STALE),
        ({"generation": 1, "status": "processed"}, 1, "processed", Decision.DUPLICATE),
        ({"generation": 1, "status": "failed"}, 1, "processed", Decision.WRITE),
        ({"generation": 1, "status": "processed"}, 1, "failed", Decision.STALE),
        ({"generation": 1, "status": "processed"}, 1, "deleted", Decision.WRITE),
        ({"generation": 1, "status": "deleted"}, 1, "processed", Decision.STALE),
        ({"generation": 1, "status": "deleted"}, 2, "processed", Decision.WRITE),
    ],
)
def test_ordering(stored, generation, status, expected):
    assert decide(stored, generation, status) is expected


def decide(stored, generation, status, fingerprint=None, made_at=None, run=None):
    result = {"generation": generation, "status": status, "outputFingerprint": fingerprint}
    return records.decide(stored, result | {"madeAt": made_at, "outputsGeneration": run})


PROCESSED = {
    "schema": 1,
    "status": "processed",
    "bucket": "b",
    "name": "n.jpg",
    "generation": 3,
    "metageneration": 1,
    "contentType": "image/jpeg",
    "size": 10,
    "timeCreated": "2026-01-01T00:00:00Z",
    "sourceEventId": "e",
    "image": {
        "width": 4,
        "height": 3,
        "format": "JPEG",
        "mode": "RGB",
        "frames": 1,
        "exif": {},
        "placeholder": {"blurhash": "LEHV6nWB2yk8", "width": 4, "height": 3, "color": "#102030"},
    },
    "thumbnails": [{"name": "t"}],
    "timings": {"core_ms": 1.0},
}


def test_processed_doc():
    doc = records.image_doc(None, PROCESSED, NOW, metadata_ms=0.5)
    assert doc["status"] == "processed" and doc["error"] is None
    assert (doc["width"], doc["height"], doc["format"], doc["frames"]) == (4, 3, "JPEG", 1)
    assert doc["thumbnails"] == [{"name": "t"}]
    assert doc["placeholder"] == PROCESSED["image"]["placeholder"]
    assert doc["updatedAt"] is SERVER_TIME
    assert doc["timings"] == {"core_ms": 1.0, "metadata_ms": 0.5, "total_ms": 2000.0}


def test_failed_doc_clears_image_fields():
    failed = {k: v for k, v in PROCESSED.items() if k not in ("image", "thumbnails")}
    failed |= {"status": "failed", "error": {"reason": "corrupt", "message": "x"}}
    doc = records.image_doc({"width": 9, "generation": 3}, failed, NOW, 0)
    assert doc["error"] == {"reason": "corrupt", "message": "x"}
    assert doc["width"] is None and doc["thumbnails"] == []
    assert doc["placeholder"] is None


def test_deleted_doc_keeps_the_facts_of_its_generation_only():
    stored = records.image_doc(None, PROCESSED, NOW, 0)
    deleted = {k: PROCESSED[k] for k in ("schema", "bucket", "name", "generation", "sourceEventId")}
    deleted |= {"status": "deleted", "timings": {"delete_ms": 1.0}}
    doc = records.image_doc(stored, deleted, NOW, 0)
    assert doc["status"] == "deleted" and doc["thumbnails"] == [] and doc["width"] == 4
    assert "total_ms" not in doc["timings"]
    newer = records.image_doc(stored, deleted | {"generation": 4}, NOW, 0)
    assert "width" not in newer and newer["generation"] == 4


def test_a_result_without_a_fact_keeps_the_one_the_doc_holds_for_its_generation():
    full = PROCESSED | {"md5Hash": "abc==", "crc32c": "xyz==", "metageneration": 2}
    stored = records.image_doc(None, full, NOW, 0)
    thin = {k: v for k, v in full.items() if k not in records.FACTS}
    again = records.image_doc(stored, thin, NOW, 0)  # a re-processing from a thin event
    assert {k: again[k] for k in records.FACTS} == {k: full[k] for k in records.FACTS}
    later = records.image_doc(stored, full | {"metageneration": 3, "size": None}, NOW, 0)
    assert (later["metageneration"], later["size"]) == (3, 10)  # a fact given wins
    other = records.image_doc(stored, thin | {"generation": 4}, NOW, 0)
    assert not set(records.FACTS) & set(other), "another generation's facts are not its own"


def test_dead_letter_record():
    message = PushMessage(
        message_id="99",
        data_b64="eyJhIjoxfQ==",
        attributes={
            "eventType": "image.processed",
            "CloudPubSubDeadLetterSourceDeliveryCount": "5",
            "CloudPubSubDeadLetterSourceSubscription": "imgpipe-metadata-writer",
            "CloudPubSubDeadLetterSourceSubscriptionProject": "p",
            "CloudPubSubDeadLetterSourceTopicPublishTime": "2026-01-01T00:00:00Z",
        },
        publish_time="2026-01-01T00:10:00Z",
    )
    record = records.dead_letter_record(message)
    assert record == {
        "messageId": "99",
        "data": "eyJhIjoxfQ==",
        "attributes": {"eventType": "image.processed"},
        "deadLetterAttributes": {
            "CloudPubSubDeadLetterSourceDeliveryCount": "5",
            "CloudPubSubDeadLetterSourceSubscription": "imgpipe-metadata-writer",
            "CloudPubSubDeadLetterSourceSubscriptionProject": "p",
            "CloudPubSubDeadLetterSourceTopicPublishTime": "2026-01-01T00:00:00Z",
        },
        "sourceSubscription": "imgpipe-metadata-writer",
        "deliveryAttempt": 5,
        "publishTime": "2026-01-01T00:10:00Z",
        "malformed": "message 99: result.schema is missing",
        "recordedAt": SERVER_TIME,
        "status": "recorded",
        "replayCount": 0,
    }


def test_dead_letter_record_accepts_a_full_subscription_path_and_no_count():
    message = PushMessage(
        "1", "", {"CloudPubSubDeadLetterSourceSubscription": "projects/p/subscriptions/s"}, None
    )
    record = records.dead_letter_record(message)
    assert (record["sourceSubscription"], record["deliveryAttempt"]) == ("s", None)


def test_a_result_under_new_output_rules_replaces_the_doc_of_the_same_generation():
    stored = {
        "generation": 7,
        "status": "processed",
        "outputFingerprint": "old",
        "madeAt": "2026-01-01T00:00:00Z",
    }
    later, earlier = "2026-01-01T01:00:00Z", "2025-12-31T23:00:00Z"
    assert decide(stored, 7, "processed", "new", later) is records.Decision.WRITE
    assert decide(stored, 7, "processed", "new", earlier) is records.Decision.STALE
    assert decide(stored, 7, "processed", "old", later) is records.Decision.DUPLICATE
    assert decide(stored, 7, "failed", "new", later) is records.Decision.STALE
    legacy = {"generation": 7, "status": "processed"}  # from before fingerprints
    assert decide(legacy, 7, "processed", "new", later) is records.Decision.WRITE
    assert decide(legacy, 7, "processed", "new", None) is records.Decision.STALE


def test_results_of_one_generation_rank_by_their_runs_server_order_not_their_clocks():
    stored = {
        "generation": 7,
        "status": "processed",
        "outputFingerprint": "bbb",
        "outputsGeneration": 200,
        "madeAt": "2026-01-01T00:00:00Z",
    }
    later_clock = "2026-01-01T01:00:00Z"

    def by_run(fingerprint: str, run: int | None, status: str = "processed"):
        return decide(stored, 7, status, fingerprint, later_clock, run)

    assert by_run("aaa", 199) is records.Decision.STALE  # an earlier run, whatever its clock
    assert by_run("aaa", 201) is records.Decision.WRITE
    assert by_run("aaa", 200) is records.Decision.STALE  # a tie goes to the fingerprint
    assert by_run("ccc", 200) is records.Decision.WRITE
    assert by_run("bbb", 200) is records.Decision.DUPLICATE
    assert by_run("bbb", 201) is records.Decision.WRITE  # the same rules, a later run
    assert by_run("aaa", None) is records.Decision.STALE  # from before runs were ranked
    assert by_run("aaa", 1, "failed") is records.Decision.STALE
    unranked = {k: v for k, v in stored.items() if k != "outputsGeneration"}
    assert decide(unranked, 7, "processed", "aaa", None, 1) is records.Decision.WRITE
    result = {"bucket": "b", "name": "n", "generation": 7, "status": "processed"}
    doc = records.image_doc(
        stored, {**result, "outputsGeneration": 201}, dt.datetime.now(dt.UTC), 1
    )
    assert doc["outputsGeneration"] == 201


def test_an_expired_original_keeps_its_thumbnails_and_facts():
    now = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    stored = {
        "generation": 5,
        "status": "processed",
        "thumbnails": [{"name": "t/a.jpg/128x128.webp"}],
        "width": 40,
        "timings": {"core_ms": 3.0},
    }
    expired = {
        "bucket": "u",
        "name": "a.jpg",
        "generation": 5,
        "status": "expired",
        "expiredAt": "2026-02-01T00:00:00Z",
    }
    assert decide(stored, 5, "expired") is Decision.WRITE
    doc = records.image_doc(stored, expired, now, 1.0)
    assert doc["status"] == "expired" and doc["originalExpiredAt"] == "2026-02-01T00:00:00Z"
    assert doc["thumbnails"] == stored["thumbnails"] and doc["width"] == 40
    # A late processed result cannot undo it; a delete of the same generation still can.
    assert decide(doc, 5, "processed") is Decision.STALE
    assert decide(doc, 5, "deleted") is Decision.WRITE


def test_dead_letter_ids_are_flat_stable_and_not_sequential():
    ids = [records.dead_letter_id(str(n)) for n in range(10_000, 10_100)]
    assert len(set(ids)) == 100 and ids != sorted(ids)
    assert records.dead_letter_id("10000") == ids[0]  # a redelivery finds its record
    assert "/" not in records.dead_letter_id("a/b/c") and len(ids[0]) == 32
