"""What make_thumbnail ranks concurrent runs by, on fake-gcs-server: the generation number a
write's response carries (read by the adapter with no extra request) is the stored one, and
writes to different names get increasing generation numbers, in the order they were made.
The interleavings themselves are tested in tests/unit/test_concurrent_runs.py."""

from __future__ import annotations

import pytest

from image_pipeline import gcs
from image_pipeline.gcs import GcsStorage, Upload
from tests.integration.conftest import Harness

pytestmark = pytest.mark.integration


def test_written_generations_come_from_the_response_and_order_writes_across_names(
    harness: Harness, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gcs.clients, "storage_client", lambda project: harness.clients.storage)
    storage, bucket = GcsStorage("local"), harness.thumbnails.name
    upload = Upload(data=b"x", content_type="image/webp", cache_control="no-store", metadata={})
    names = [f"thumbnails/{prefix}{i}.webp" for i in range(5)]
    written = [storage.upload(bucket, n, upload, if_generation_match=0) for n in names]
    for name, stored in zip(names, written, strict=True):
        live = storage.stat(bucket, name)
        assert live is not None and live.generation == stored.generation, (name, live, stored)
    generations = [w.generation for w in written]
    assert generations == sorted(generations) and len(set(generations)) == len(names)
    listed = {s.name: s.generation for s in storage.list(bucket, f"thumbnails/{prefix}")}
    assert listed == dict(zip(names, generations, strict=True))
