"""A non-default configuration flows through to names, settings and regions."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.synth


def test_names_carry_the_prefix(alt_stack):
    for kind in (
        "google_pubsub_topic",
        "google_pubsub_subscription",
        "google_cloudfunctions2_function",
    ):
        for body in alt_stack.all(kind):
            assert body["name"].startswith("thumbs-"), body["name"]
    for sa in alt_stack.all("google_service_account"):
        assert sa["account_id"].startswith("thumbs-")
    for bucket in alt_stack.all("google_storage_bucket"):
        assert bucket["name"].startswith("other-project-42-thumbs-")


def test_settings_reach_the_function_environment(alt_stack):
    thumbnail = alt_stack.one("google_cloudfunctions2_function", name="thumbs-make-thumbnail")
    env = thumbnail["service_config"]["environment_variables"]
    assert env["THUMBNAIL_SIZES"] == "64x64,2048x1536"
    assert env["THUMBNAIL_FORMATS"] == "jpeg,webp"
    assert env["UPLOADS_BUCKET"] == "other-project-42-thumbs-uploads"
    assert env["IMAGE_EVENTS_TOPIC"] == "thumbs-image-events"
    assert thumbnail["service_config"]["available_memory"] == "2Gi"
    assert thumbnail["service_config"]["timeout_seconds"] == 300
    assert thumbnail["service_config"]["max_instance_count"] == 3
    writer = alt_stack.one("google_cloudfunctions2_function", name="thumbs-write-metadata")
    assert writer["service_config"]["available_memory"] == "512Mi"
    assert writer["location"] == "europe-west4"


def test_subscription_settings_follow_the_config(alt_stack):
    sub = alt_stack.one("google_pubsub_subscription", name="thumbs-metadata-writer")
    assert sub["dead_letter_policy"]["max_delivery_attempts"] == 7
    assert sub["retry_policy"] == {"minimum_backoff": "5s", "maximum_backoff": "300s"}
    assert sub["message_retention_duration"] == "86400s"
    assert sub["ack_deadline_seconds"] == 150  # the push target's timeout + a cold start


def test_stacks_do_not_share_resources(stack, alt_stack):
    names = {b["name"] for b in stack.all("google_storage_bucket")}
    assert not names & {b["name"] for b in alt_stack.all("google_storage_bucket")}
