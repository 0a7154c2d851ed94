"""A non-default configuration flows through to names, settings and regions."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest

from image_pipeline.settings import Settings, Tunables
from infra.common.paths import ROOT
from infra.model.checks import MAX_FUNCTION_ENV_BYTES

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
    assert env["THUMBNAIL_SIZES"] == "64x64,2048x1536,256x256:cover"
    assert env["THUMBNAIL_FORMATS"] == "jpeg,webp"
    assert env["UPLOADS_BUCKET"] == "other-project-42-thumbs-uploads"
    assert env["IMAGE_EVENTS_TOPIC"] == "thumbs-image-events"
    assert thumbnail["service_config"]["available_memory"] == "2Gi"
    assert thumbnail["service_config"]["timeout_seconds"] == 300
    assert thumbnail["service_config"]["max_instance_count"] == 4  # its own setting
    assert thumbnail["service_config"]["available_cpu"] == "2"
    writer = alt_stack.one("google_cloudfunctions2_function", name="thumbs-write-metadata")
    assert writer["service_config"]["available_memory"] == "512Mi"
    assert writer["service_config"]["max_instance_count"] == 3  # function_max_instances
    assert writer["service_config"]["max_instance_request_concurrency"] == 40
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


def test_output_rules_reach_make_thumbnail_resolved_with_every_setting_of_the_config(
    alt_stack,
):
    thumbnail = alt_stack.one("google_cloudfunctions2_function", name="thumbs-make-thumbnail")
    env = thumbnail["service_config"]["environment_variables"]
    rules = json.loads(env["OUTPUT_RULES"])
    assert [r["name"] for r in rules] == ["avatars", "rule-1"]
    assert rules[0]["sizes"] == ["64x64:cover"] and rules[0]["formats"] == ["jpeg", "webp"]
    assert rules[1]["exclude"] == ["products/raw/**"] and rules[1]["formats"] == ["png"]
    assert (env["COVER_FOCUS"], env["METADATA_KEYS"]) == ("detail", "owner,album")
    # The function parses what the stack wrote into the settings the deployment declared.
    deployed = Settings.from_env(env)
    for field in dataclasses.fields(Tunables):
        assert getattr(deployed, field.name) == getattr(alt_stack.config, field.name), field.name


def test_every_function_environment_fits_cloud_runs_limit(stack, alt_stack):
    for synth in (stack, alt_stack):
        for fn in synth.all("google_cloudfunctions2_function"):
            env = fn["service_config"]["environment_variables"]
            size = sum(len(k.encode()) + len(v.encode()) for k, v in env.items())
            assert size <= MAX_FUNCTION_ENV_BYTES, (fn["name"], size)


def test_an_environment_over_cloud_runs_32_kib_stops_the_synth_naming_the_setting():
    patterns = ",".join(f"uploads/{n:05d}/**" for n in range(2500))  # about 40 KB
    env = {
        **os.environ,
        "PIPELINE_PROJECT": "my-gcp-project",
        "PIPELINE_INCLUDE_PATTERNS": patterns,
    }
    done = subprocess.run(
        [sys.executable, "main.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert "over Cloud Run's 32768" in done.stderr
    assert "the largest settings: include_patterns (" in done.stderr


@pytest.mark.parametrize(
    ("rules", "problem"),
    [
        ('[{"include": ["a/**"], "sizes": ["64x64:fill"]}]', "rule 0: '64x64:fill': unknown fit"),
        ('[{"name": "a"}, {"name": "b"}]', "rule 1: is never used"),
    ],
)
def test_an_invalid_rule_stops_the_synth_with_its_index(rules, problem):
    env = {**os.environ, "PIPELINE_PROJECT": "my-gcp-project", "PIPELINE_OUTPUT_RULES": rules}
    done = subprocess.run(
        [sys.executable, "main.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: pipeline.output_rules: ") and problem in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr


def test_state_is_a_relative_local_file_or_the_state_bucket(stack, alt_stack):
    from infra.deploy.state_backend import STACK_DIR_TO_ROOT

    # Local: relative to the stack's folder, so another checkout finds the same state.
    for tf, stack_id in ((stack.tf, "image-pipeline"), (stack.project, stack.project_id)):
        path = tf["terraform"]["backend"]["local"]["path"]
        assert path == f"{STACK_DIR_TO_ROOT}/terraform.{stack_id}.tfstate"
        assert not path.startswith("/")
    [state] = stack.tf["data"]["terraform_remote_state"].values()
    assert state["config"]["path"] == f"{STACK_DIR_TO_ROOT}/terraform.{stack.project_id}.tfstate"
    # PIPELINE_STATE_BUCKET: the gcs backend, one prefix per stack.
    assert alt_stack.tf["terraform"]["backend"] == {
        "gcs": {"bucket": "team-tfstate", "prefix": "terraform/alt-pipeline"}
    }
    assert alt_stack.project["terraform"]["backend"] == {
        "gcs": {"bucket": "team-tfstate", "prefix": f"terraform/{alt_stack.project_id}"}
    }
    [state] = alt_stack.tf["data"]["terraform_remote_state"].values()
    assert state["backend"] == "gcs"
    assert state["config"]["prefix"] == f"terraform/{alt_stack.project_id}"
