"""Duplicates and reordering: every doc right, one per object, newer generations win."""

from __future__ import annotations

import pytest
from google.cloud.firestore_v1.base_query import FieldFilter

from infra.local import sample_images

pytestmark = pytest.mark.integration

UPLOADS = 50


def test_fifty_uploads_with_duplicates_and_reordering(harness, prefix):
    data = sample_images.jpeg(160, 120)
    with harness.faults(duplicate_rate=0.5, reorder_window=8, seed=4):
        generations = {
            f"{prefix}img-{i:02d}.jpg": harness.upload(f"{prefix}img-{i:02d}.jpg", data)
            for i in range(UPLOADS)
        }
        for name, generation in generations.items():
            doc = harness.wait_doc(name, lambda d: d.get("status") == "processed", timeout=120)
            assert doc["generation"] == generation
            assert len(doc["thumbnails"]) == 3
        duplicates = [d for d in harness.router.log.deliveries(object_prefix=prefix) if d.duplicate]
    assert duplicates, "the fault injector should have sent duplicates"
    same_bucket = FieldFilter("bucket", "==", harness.uploads.name)
    names = [s.to_dict()["name"] for s in harness.images.where(filter=same_bucket).stream()]
    docs = [n for n in names if n.startswith(prefix)]
    assert len(docs) == UPLOADS


def test_older_generation_never_replaces_newer(harness, prefix):
    name = prefix + "same.jpg"
    with harness.faults(duplicate_rate=0.5, reorder_window=4, seed=7):
        first = harness.upload(name, sample_images.jpeg(400, 300, sample_images.RED))
        second = harness.upload(name, sample_images.jpeg(300, 400, sample_images.BLUE))
        doc = harness.wait_doc(
            name, lambda d: d.get("status") == "processed" and d["generation"] == second
        )
        # Let every (duplicated, reordered) event of both generations play out.
        harness.wait_until(
            lambda: len(harness.calls("make_thumbnail", name)) >= 2, 30, "both finalize events"
        )
        harness.wait_until(
            lambda: (
                sum(
                    1
                    for d in harness.router.log.deliveries("write_metadata", name)
                    if d.status < 300
                )
                >= 1
            ),
            30,
            "metadata writes",
        )
    assert first < second
    doc = harness.wait_doc(name)
    assert doc["generation"] == second and (doc["width"], doc["height"]) == (300, 400)
    for blob in harness.thumbnail_blobs(name):
        blob.reload()
        assert blob.metadata["source-generation"] == str(second), blob.name
    assert harness.thumbnail_image(f"thumbnails/{name}/512x512.webp").size == (300, 400)
