"""Deleting an original cleans up; thumbnails and marked objects never trigger processing."""

from __future__ import annotations

import datetime as dt

import pytest

from infra.local import sample_images

pytestmark = pytest.mark.integration


def test_delete_removes_thumbnails_and_marks_doc(harness, prefix):
    name = prefix + "gone.jpg"
    generation = harness.upload(name, sample_images.jpeg(300, 200))
    processed = harness.wait_doc(name, lambda d: d.get("status") == "processed")
    assert len(harness.thumbnail_blobs(name)) == 3
    blob = harness.uploads.get_blob(name)
    facts = {"size": blob.size, "md5Hash": blob.md5_hash, "metageneration": blob.metageneration}
    assert {key: processed.get(key) for key in facts} == facts

    harness.uploads.blob(name).delete()

    doc = harness.wait_doc(name, lambda d: d.get("status") == "deleted")
    assert doc["generation"] == generation
    # The delete keeps the facts of the generation it deleted.
    assert {key: doc.get(key) for key in facts} == facts
    harness.wait_until(lambda: harness.thumbnail_blobs(name) == [], 20, "thumbnails deleted")
    assert len(harness.settled_calls("cleanup", name)) == 1


def test_a_lifecycle_expiry_keeps_the_thumbnails_and_records_it(harness, prefix):
    # The uploads bucket's lifecycle rule removes an original (emulated: the relay sends the
    # delete as the rule would, `uploads_lifecycle_days` after the upload); a person's
    # delete of another upload, just as real, still cleans up (the test above).
    name = prefix + "kept.jpg"
    generation = harness.upload(name, sample_images.jpeg(300, 200))
    harness.wait_doc(name, lambda d: d.get("status") == "processed")
    thumbnails = sorted(b.name for b in harness.thumbnail_blobs(name))
    assert len(thumbnails) == 3
    harness.stack.expire_next_delete(name, generation)

    harness.uploads.blob(name).delete()

    doc = harness.wait_doc(name, lambda d: d.get("status") == "expired")
    assert doc["generation"] == generation
    # When the rule ran: the upload's creation plus uploads_lifecycle_days (1 in the tests).
    expired_at = dt.datetime.fromisoformat(doc["originalExpiredAt"])
    assert expired_at - dt.datetime.fromisoformat(doc["timeCreated"]) == dt.timedelta(days=1)
    assert [t["name"] for t in doc["thumbnails"]] and doc["width"] == 300
    harness.settled_calls("cleanup", name)
    assert sorted(b.name for b in harness.thumbnail_blobs(name)) == thumbnails
    assert harness.uploads.get_blob(name) is None


def test_no_loop(harness, prefix):
    names = [prefix + "a.jpg", prefix + "b.png"]
    harness.upload(names[0], sample_images.jpeg(300, 200))
    harness.upload(names[1], sample_images.png_with_alpha(), "image/png")
    marked = prefix + "already-a-thumbnail.webp"
    harness.upload(
        marked, sample_images.jpeg(64, 64), metadata={"image-pipeline-output": "thumbnail"}
    )
    for name in names:
        harness.wait_doc(name, lambda d: d.get("status") == "processed")
    harness.wait_until(
        lambda: len(harness.calls("make_thumbnail", marked)) == 1, 20, "the marked object's call"
    )
    # Thumbnails were written (to the other bucket) and triggered nothing.
    calls = harness.router.log.deliveries("make_thumbnail")
    assert not [c for c in calls if c.object.startswith("thumbnails/")]
    for name in names:
        assert len(harness.calls("make_thumbnail", name)) == 1
    # The object carrying the output marker was acknowledged and not processed.
    assert harness.thumbnail_blobs(marked) == []
    assert harness.doc(marked) is None
