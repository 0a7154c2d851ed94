"""Buckets and the function source archive in the synthesized stack."""

from __future__ import annotations

import zipfile

import pytest

from infra.deploy.function_source import build_archive

pytestmark = pytest.mark.synth


def test_pipeline_buckets_are_private_uniform_and_unversioned(stack):
    for spec in stack.topology.buckets.values():
        bucket = stack.one("google_storage_bucket", name=spec.name)
        assert bucket["uniform_bucket_level_access"] is True
        assert bucket["public_access_prevention"] == "enforced"
        assert bucket["versioning"] == {"enabled": False}
        assert bucket["location"] == "US-CENTRAL1"
        assert bucket["labels"]["pipeline"] == "imgpipe"
        assert "lifecycle_rule" not in bucket  # uploads_lifecycle_days defaults to 0


def test_source_bucket_is_private_and_destroyable(stack):
    bucket = stack.one("google_storage_bucket", name="my-gcp-project-imgpipe-source")
    assert bucket["uniform_bucket_level_access"] is True
    assert bucket["public_access_prevention"] == "enforced"
    assert bucket["force_destroy"] is True
    # The topology's buckets and this one, which holds the functions' source.
    assert len(stack.all("google_storage_bucket")) == len(stack.topology.buckets) + 1


def test_lifecycle_and_labels_follow_the_config(alt_stack):
    uploads = alt_stack.one("google_storage_bucket", name="other-project-42-thumbs-uploads")
    assert uploads["lifecycle_rule"] == [
        {"action": {"type": "Delete"}, "condition": {"age": 30}},
        {
            "action": {"type": "SetStorageClass", "storage_class": "NEARLINE"},
            "condition": {"age": 10, "matches_storage_class": ["STANDARD"]},
        },
        {
            "action": {"type": "SetStorageClass", "storage_class": "COLDLINE"},
            "condition": {"age": 20, "matches_storage_class": ["STANDARD", "NEARLINE"]},
        },
    ]
    assert uploads["location"] == "EUROPE-WEST4"
    assert uploads["labels"] == {"pipeline": "thumbs", "env": "test", "bucket": "uploads"}
    thumbs = alt_stack.one("google_storage_bucket", name="other-project-42-thumbs-thumbnails")
    assert "lifecycle_rule" not in thumbs


def test_source_object_is_named_by_the_archive_hash(stack):
    archive = build_archive()
    obj = stack.one("google_storage_bucket_object", name=archive.object_name)
    kind, bucket, _ = stack.ref(obj["bucket"])
    assert kind == "google_storage_bucket"
    assert bucket["name"] == stack.config.source_bucket
    # The asset cdktf copied next to cdk.tf.json is exactly the archive.
    asset = stack.path.parent / obj["source"]
    assert asset.read_bytes() == archive.data
    names = zipfile.ZipFile(asset).namelist()
    assert "main.py" in names and "requirements.txt" in names
    assert all(n in ("main.py", "requirements.txt") or n.endswith(".py") for n in names)


def test_every_function_builds_from_the_archive_object(stack):
    obj_ref = stack.ref_id(
        "google_storage_bucket_object", stack.all("google_storage_bucket_object")[0]
    )
    for fn in stack.all("google_cloudfunctions2_function"):
        source = fn["build_config"]["source"]["storage_source"]
        assert source["object"].startswith(obj_ref)


def test_what_holds_data_refuses_destruction_unless_confirmed(stack, alt_stack):
    # Default: prevent_destroy on the uploads and thumbnails buckets, every topic and
    # subscription, and the database; the buckets keep their objects on a destroy.
    def protected(synth, kind):
        return {
            b["name"]
            for b in synth.all(kind)
            if b.get("lifecycle", {}).get("prevent_destroy") is True
        }

    t = stack.topology
    assert protected(stack, "google_storage_bucket") == {
        stack.config.uploads_bucket,
        stack.config.thumbnails_bucket,
    }
    assert protected(stack, "google_pubsub_topic") == {s.name for s in t.topics.values()}
    assert protected(stack, "google_pubsub_subscription") == {
        s.name for s in t.subscriptions.values()
    }
    assert protected(stack, "google_firestore_database") == {"(default)"}
    for name in (stack.config.uploads_bucket, stack.config.thumbnails_bucket):
        assert stack.one("google_storage_bucket", name=name)["force_destroy"] is False
    # confirm_destroy_data (the project's id) lifts all of it, and a destroy then deletes the
    # buckets with their objects (the source bucket never had it: git remakes it).
    assert alt_stack.config.confirm_destroy_data == alt_stack.config.project
    for kind in ("google_storage_bucket", "google_pubsub_topic", "google_pubsub_subscription"):
        assert all("lifecycle" not in body for body in alt_stack.all(kind)), kind
    assert all(b["force_destroy"] is True for b in alt_stack.all("google_storage_bucket"))


def test_settings_that_replace_what_holds_data_are_named_fixed(stack, alt_stack):
    # Going from the default settings to ALT_SETTINGS replaces protected resources; every
    # ForceNew attribute that changes comes from a setting the docs name fixed, and those
    # are the settings that differ.
    from infra.deploy.replacements import replacements
    from infra.model.config import FIXED_AFTER_FIRST_DEPLOY

    lines = list(replacements([stack.project, stack.tf], [alt_stack.project, alt_stack.tf]))
    assert any("location 'US-CENTRAL1' -> 'EUROPE-WEST4'" in line for line in lines), lines
    assert any("name 'my-gcp-project-imgpipe-uploads'" in line for line in lines), lines
    assert any("google_firestore_database" in line and "no longer" in line for line in lines)
    changed = {
        name
        for name in FIXED_AFTER_FIRST_DEPLOY
        if getattr(stack.config, name) != getattr(alt_stack.config, name)
    }
    # ALT_SETTINGS moves every one of them but the environment (tests/infra/test_environments.py)
    assert changed == set(FIXED_AFTER_FIRST_DEPLOY) - {"environment"}
    # The same settings again: nothing is replaced.
    assert list(replacements([stack.project, stack.tf], [stack.project, stack.tf])) == []
