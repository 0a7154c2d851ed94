"""An object overwritten (or deleted) while its old generation is being processed ends
with exactly the live generation's outputs, and a doc listing only objects that exist.

Each case uploads a large photo (processing takes a few hundred ms) and replaces it after a
different delay, so the replacement lands before, during and after the old generation's
download, resize and writes; the cases run side by side, which widens the windows. The
old generations' `skipped` lines, printed by reason, count the races hit.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from infra.local import sample_images

pytestmark = pytest.mark.integration

DELAYS = [0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8]
KINDS = ("corrupt", "delete", "valid")


def race(harness: Any, name: str, delay: float, kind: str, done: dict[str, Any]) -> None:
    old = harness.upload(name, sample_images.jpeg(2400, 1800))
    time.sleep(delay)
    if kind == "delete":
        harness.uploads.blob(name).delete(if_generation_match=old)
        done[name] = (old, None)
    else:
        data = sample_images.jpeg(300, 200, (0, 200, 0)) if kind == "valid" else b"\xff\xd8\xff"
        done[name] = (old, harness.upload(name, data))


def settled(harness: Any, name: str, old: int, new: int | None) -> bool:
    """Every function that will touch this name has answered 2xx for it."""
    answered = {
        (d.function, d.generation)
        for d in harness.router.log.deliveries(object_prefix=name)
        if 200 <= d.status < 300 and d.object == name
    }
    wanted = {("make_thumbnail", str(old)), ("cleanup", str(old))}
    if new is not None:
        wanted.add(("make_thumbnail", str(new)))
    return wanted <= answered


def skips(harness: Any, prefix: str) -> dict[str, int]:
    """How the old generations stopped: make_thumbnail's `skipped` lines, by reason."""
    (log,) = [
        f["log"] for f in harness.info["functions"].values() if f["target"] == "make_thumbnail"
    ]
    counts: dict[str, int] = {}
    for line in Path(log).read_text(errors="replace").splitlines():
        if prefix in line and '"skipped"' in line:
            reason = json.loads(line).get("reason", "")
            counts[reason] = counts.get(reason, 0) + 1
    return counts


def check(harness: Any, name: str, old: int, new: int | None, expected: str) -> tuple:
    """What is wrong with this name once settled (an empty tuple when nothing)."""
    harness.wait_until(lambda: settled(harness, name, old, new), 60, f"{name} settled")
    generation = new or old
    doc = harness.wait_doc(name, lambda d: (d["status"], d["generation"]) == (expected, generation))
    blobs = harness.thumbnail_blobs(name)
    held = {b.metadata.get("source-generation") for b in blobs}
    listed = sorted(t["name"] for t in doc.get("thumbnails") or [])
    if expected == "processed":
        if held != {str(new)} or listed != sorted(b.name for b in blobs):
            return (name, "outputs", held, listed, [b.name for b in blobs])
    elif blobs or listed:
        return (name, "left behind", held, listed)
    return ()


@pytest.fixture(scope="module")
def warm(harness: Any) -> None:
    """One large upload processed first: a cold function (imports, first client) takes
    long enough for every replacement to land before the old generation is downloaded."""
    name = "warm-up/overwrite-races.jpg"
    harness.upload(name, sample_images.jpeg(2400, 1800))
    harness.wait_doc(name, lambda d: d["status"] == "processed")


@pytest.mark.parametrize("kind", KINDS)
def test_overwrite_or_delete_during_processing_leaves_only_the_live_generation(
    harness, prefix, kind, warm
):
    done: dict[str, Any] = {}
    threads = [
        threading.Thread(target=race, args=(harness, f"{prefix}{i}.jpg", d, kind, done))
        for i, d in enumerate(DELAYS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    expected = {"valid": "processed", "corrupt": "failed", "delete": "deleted"}[kind]
    problems = [
        p
        for name, (old, new) in sorted(done.items())
        if (p := check(harness, name, old, new, expected))
    ]
    print(f"\n{kind}: {len(done)} cases; old generations stopped: {skips(harness, prefix)}")
    assert problems == []


def test_an_overwrite_storm_ends_with_the_last_generation(harness, prefix):
    """Eight uploads of one name as fast as they go: the doc and the thumbnails follow the
    last generation whatever order the deliveries ran in."""
    name = prefix + "storm.jpg"
    generations = [
        harness.upload(name, sample_images.jpeg(400 + 40 * i, 300, (30 * i, 90, 160)))
        for i in range(8)
    ]
    last = generations[-1]
    doc = harness.wait_doc(name, lambda d: (d["status"], d["generation"]) == ("processed", last))
    harness.wait_until(
        lambda: settled(harness, name, generations[-2], last), 60, "the last two generations"
    )
    blobs = harness.thumbnail_blobs(name)
    assert {b.metadata.get("source-generation") for b in blobs} == {str(last)}
    assert sorted(t["name"] for t in doc["thumbnails"]) == sorted(b.name for b in blobs)
    assert (doc["width"], doc["height"]) == (400 + 40 * 7, 300)


def test_an_overwrite_the_pipeline_skips_leaves_no_doc_listing_deleted_thumbnails(harness, prefix):
    """The new generation carries the output marker, so make_thumbnail skips it and no
    newer result will come: the overwrite's cleanup marks the old generation deleted."""
    name = prefix + "marked.jpg"
    old = harness.upload(name, sample_images.jpeg(200, 150))
    harness.wait_doc(name, lambda d: d["status"] == "processed")
    harness.upload(name, sample_images.jpeg(100, 80), metadata={"image-pipeline-output": "x"})
    doc = harness.wait_doc(name, lambda d: d["status"] == "deleted")
    assert doc["generation"] == old and doc["thumbnails"] == []
    assert harness.thumbnail_blobs(name) == []
