"""Permanent failures: recorded as failed with a reason, on the failures feed, never retried."""

from __future__ import annotations

import pytest

from infra.local import sample_images
from tests import hostile_images

pytestmark = pytest.mark.integration

CASES = {
    "corrupt.jpg": (sample_images.corrupt_jpeg, "image/jpeg", "corrupt"),
    "truncated.jpg": (hostile_images.truncated_jpeg, "image/jpeg", "truncated"),
    "empty.png": (lambda: b"", "image/png", "empty"),
    "text.jpg": (hostile_images.text_named_jpg, "image/jpeg", "not_an_image"),
    "bomb.png": (hostile_images.decompression_bomb, "image/png", "too_many_pixels"),
    "huge.jpg": (lambda: hostile_images.oversized(3_000_001), "image/jpeg", "too_many_bytes"),
    "pages.tif": (lambda: hostile_images.many_page_tiff(10_001), "image/tiff", "too_many_frames"),
}


def test_bad_inputs_fail_once_with_reason(harness, prefix):
    for sample, (make, content_type, _) in CASES.items():
        harness.upload(prefix + sample, make(), content_type)

    for sample, (_, _, reason) in CASES.items():
        name = prefix + sample
        doc = harness.wait_doc(name, lambda d: d.get("status") == "failed")
        assert doc["error"]["reason"] == reason, (sample, doc["error"])
        assert doc["thumbnails"] in ([], None)
        assert harness.thumbnail_blobs(name) == []

    def feed():
        return {
            m["message"]["attributes"]["objectId"]: m for m in harness.pulled("failures", prefix)
        }

    harness.wait_until(lambda: len(feed()) == len(CASES), 20, "every failure on the feed")
    found = feed()
    for sample, (_, _, reason) in CASES.items():
        attributes = found[prefix + sample]["message"]["attributes"]
        assert attributes["eventType"] == "image.failed"
        assert attributes["reason"] == reason

    # Permanent errors are acknowledged: exactly one call per object, each answered 2xx.
    for sample in CASES:
        calls = harness.settled_calls("make_thumbnail", prefix + sample)
        assert [200 <= c.status < 300 for c in calls] == [True], (sample, calls)
        assert len(harness.settled_calls("write_metadata", prefix + sample)) == 1
