"""Changes that lose nothing, and a tear-down that says what it takes: a synth that would
replace what holds data is refused unless the project is named, and `scripts/cdktf destroy`
without that confirmation stops with one line before anything starts."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys

import pytest

from infra.common.paths import ROOT
from infra.deploy.replacements import FORCE_NEW, replacements, report

pytestmark = pytest.mark.synth


# Every attribute the google provider marks ForceNew in these schemas, read at tag v6.50.0
# (commit 956f510990a78614a06730c34e93779171c5e8f7) of hashicorp/terraform-provider-google:
# google/services/storage/resource_storage_bucket.go, .../firestore/resource_firestore_database.go,
# .../pubsub/resource_pubsub_topic.go and .../pubsub/resource_pubsub_subscription.go. A block
# stands for its ForceNew fields (custom_placement_config.data_locations,
# hierarchical_namespace.enabled, cmek_config.kms_key_name), and retention_policy for
# is_locked, which its CustomizeDiff makes ForceNew from true to false. Later versions add more
# (`tags` on topics and subscriptions, the database's data access modes): re-read on an upgrade.
PROVIDER_FORCE_NEW = {
    "google_storage_bucket": {
        "name",
        "location",
        "project",
        "enable_object_retention",
        "custom_placement_config",
        "hierarchical_namespace",
        "retention_policy",
    },
    "google_firestore_database": {
        "name",
        "location_id",
        "project",
        "cmek_config",
        "database_edition",
        "tags",
    },
    "google_pubsub_topic": {"name", "project"},
    "google_pubsub_subscription": {"name", "topic", "filter", "enable_message_ordering", "project"},
}


def test_the_table_is_the_force_new_attributes_the_stacks_set(synthesized):
    """`replacements` compares every ForceNew attribute a stack sets, and no other: one the
    stacks leave unset would, once set to the value the resource already has (an explicit
    default), be named a replacement although the provider plans none."""
    stacks_set = {kind: set() for kind in PROVIDER_FORCE_NEW}
    for synth in synthesized.values():
        for tf in (synth.project, synth.tf):
            for kind, force_new in PROVIDER_FORCE_NEW.items():
                for body in tf.get("resource", {}).get(kind, {}).values():
                    stacks_set[kind] |= force_new & body.keys()
    assert {kind: set(attributes) for kind, attributes in FORCE_NEW.items()} == stacks_set


def test_a_filter_change_is_refused_before_the_plan(stack):
    """A subscription's filter is ForceNew: recreating it loses its backlog and whatever is
    published meanwhile, so it is named, and refused without the confirmation (prevent_destroy
    then refuses the plan too)."""
    changed = copy.deepcopy(dict(stack.tf))
    subs = changed["resource"]["google_pubsub_subscription"]
    [cleanup] = [s for s in subs.values() if s["name"] == "imgpipe-cleanup"]
    assert cleanup["lifecycle"] == {"prevent_destroy": True}
    cleanup["filter"] = 'attributes.eventType = "OBJECT_FINALIZE"'
    [line] = replacements([stack.tf], [changed])
    assert "google_pubsub_subscription" in line and "filter" in line and "OBJECT_FINALIZE" in line
    refused = report([line], confirmed=False)
    assert refused.startswith("error: ") and "Changes that lose nothing" in refused
    assert "PIPELINE_CONFIRM_DESTROY_DATA=<project>" in refused
    assert report([line], confirmed=True).startswith("warning: the plan will destroy")


def test_python_main_refuses_a_synth_that_replaces_data_and_keeps_the_last_one(stack, tmp_path):
    # The last synth of the default settings, alone in its cdktf.out.
    outdir = tmp_path / "cdktf.out"
    for stack_id, path in ((stack.project_id, stack.project_path), ("image-pipeline", stack.path)):
        (outdir / "stacks" / stack_id).mkdir(parents=True)
        shutil.copy(path, outdir / "stacks" / stack_id / "cdk.tf.json")
    entries = {
        s: {"synthesizedStackPath": f"stacks/{s}/cdk.tf.json"}
        for s in os.listdir(outdir / "stacks")
    }
    (outdir / "manifest.json").write_text(json.dumps({"stacks": entries}))
    last = {p: json.loads(p.read_text()) for p in outdir.glob("stacks/*/cdk.tf.json")}
    # A new prefix renames every topic and subscription: each is destroyed, then created.
    env = {**os.environ, "CDKTF_OUTDIR": str(outdir), "PIPELINE_PREFIX": "imgnew"}
    env.pop("PIPELINE_CONFIRM_DESTROY_DATA", None)
    done = subprocess.run(
        [sys.executable, "main.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 2, done.stderr
    assert "error: this synth (not written) would destroy" in done.stderr
    assert (
        "google_pubsub_subscription" in done.stderr
        and "'imgpipe-cleanup' -> 'imgnew-cleanup'" in done.stderr
    )
    # The next synth is compared with the last accepted one, not with the refused one.
    assert {p: json.loads(p.read_text()) for p in outdir.glob("stacks/*/cdk.tf.json")} == last


def _cdktf(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_")}
    environ.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    return subprocess.run(
        [str(ROOT / "scripts" / "cdktf"), *args],
        cwd=ROOT,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_destroy_without_the_confirmation_stops_with_one_line_naming_it():
    done = _cdktf("destroy", "image-pipeline")
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if not line.startswith("bootstrap:")]
    assert lines == [
        "error: destroy deletes the buckets with their objects, the topics and subscriptions "
        "with their messages (and a named environment's database): confirm with "
        "PIPELINE_CONFIRM_DESTROY_DATA=my-gcp-project"
    ]
    wrong = _cdktf("destroy", "image-pipeline", PIPELINE_CONFIRM_DESTROY_DATA="other-project")
    assert wrong.returncode == 2
    assert "'other-project' is not this deployment's project 'my-gcp-project'" in wrong.stderr
