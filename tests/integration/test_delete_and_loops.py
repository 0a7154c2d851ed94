"""Deleting an original cleans up; thumbnails and marked objects never trigger processing."""

from __future__ import annotations

import pytest

from infra.local import sample_images

pytestmark = pytest.mark.integration


def test_delete_removes_thumbnails_and_marks_doc(harness, prefix):
    name = prefix + "gone.jpg"
    generation = harness.upload(name, sample_images.jpeg(300, 200))
    harness.wait_doc(name, lambda d: d.get("status") == "processed")
    assert len(harness.thumbnail_blobs(name)) == 3

    harness.uploads.blob(name).delete()

    doc = harness.wait_doc(name, lambda d: d.get("status") == "deleted")
    assert doc["generation"] == generation
    harness.wait_until(lambda: harness.thumbnail_blobs(name) == [], 20, "thumbnails deleted")
    assert len(harness.settled_calls("cleanup", name)) == 1


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
    calls = harness.router.deliveries("make_thumbnail")
    assert not [c for c in calls if c.object.startswith("thumbnails/")]
    for name in names:
        assert len(harness.calls("make_thumbnail", name)) == 1
    # The object carrying the output marker was acknowledged and not processed.
    assert harness.thumbnail_blobs(marked) == []
    assert harness.doc(marked) is None
