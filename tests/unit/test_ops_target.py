"""Where an operator tool works: the local stack (stack.json) or a project, one topology."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.ops import target as targets

STACK = {
    "project": "demo-imgpipe",
    "env": {
        "STORAGE_EMULATOR_HOST": "http://127.0.0.1:1",
        "PUBSUB_EMULATOR_HOST": "127.0.0.1:2",
        "FIRESTORE_EMULATOR_HOST": "127.0.0.1:3",
    },
    "buckets": {"uploads": "local-uploads", "thumbnails": "local-thumbnails"},
    "collections": {"images": "images", "dead_letters": "dead_letters"},
    "functions": {
        "imgpipe-make-thumbnail": {"url": "http://127.0.0.1:4", "target": "make_thumbnail"}
    },
}


def test_the_local_stack_and_a_project_resolve_names_through_one_topology() -> None:
    local = targets.from_stack(STACK)
    cloud = targets.for_project("my-real-project", "europe-west1")
    assert local.is_local and not cloud.is_local
    assert local.uploads_bucket == "local-uploads"
    assert cloud.uploads_bucket == "my-real-project-imgpipe-uploads"
    assert local.function_url("make_thumbnail") == "http://127.0.0.1:4"
    assert local.source_topic("projects/demo-imgpipe/subscriptions/imgpipe-cleanup") == (
        "projects/demo-imgpipe/topics/imgpipe-upload-events"
    )
    assert cloud.source_topic("imgpipe-metadata-writer") == (
        "projects/my-real-project/topics/imgpipe-image-events"
    )


def test_a_missing_stack_file_says_how_to_start_one(tmp_path: Path) -> None:
    with pytest.raises(targets.TargetError, match="scripts/local up"):
        targets.from_stack_file(tmp_path / "stack.json")


def test_an_unknown_subscription_is_an_error() -> None:
    with pytest.raises(KeyError, match="no subscription"):
        targets.from_stack(STACK).source_topic("someone-elses-subscription")
