"""Reading the IAM of the synthesized stacks: references, conditions, roles, refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.model.config import from_mapping
from infra.model.iam_policy import (
    ROLES,
    Binding,
    PolicyError,
    condition_holds,
    load_policy,
    service_resource,
)
from infra.model.topology import Topology, build_topology

PROJECT = "proj-one"
SA = "${google_service_account.%s.%s}"
AGENT = (
    "${data.terraform_remote_state.cross-stack-reference-input-proj.outputs."
    "cross-stack-output-pubsub-agent-member}"
)
DATABASE = f"projects/{PROJECT}/databases/(default)"


@pytest.fixture
def topology() -> Topology:
    return build_topology(from_mapping({"project": PROJECT}))


def _stacks(topology: Topology) -> dict[str, dict[str, Any]]:
    """A pipeline stack and its project stack, shaped as `cdktf synth` writes them."""
    t = topology
    accounts = {
        key: {"account_id": spec.service_account_id, "project": PROJECT}
        for key, spec in t.functions.items()
    }
    accounts["push"] = {"account_id": t.push_invoker_account_id, "project": PROJECT}
    accounts["trigger"] = {"account_id": t.trigger.service_account_id, "project": PROJECT}
    functions = {
        key: {
            "name": spec.name,
            "project": PROJECT,
            "location": t.region,
            "service_config": {"service_account_email": SA % (key, "email")},
        }
        for key, spec in t.functions.items()
    }
    functions["make_thumbnail"]["event_trigger"] = {
        "service_account_email": SA % ("trigger", "email")
    }
    subscriptions = {
        key: {"name": sub.name, "project": PROJECT}
        | (
            {"push_config": {"oidc_token": {"service_account_email": SA % ("push", "email")}}}
            if sub.push_function
            else {}
        )
        for key, sub in t.subscriptions.items()
    }
    uploads, thumbnails = t.buckets["uploads"].name, t.buckets["thumbnails"].name
    pipeline = {
        "data": {"terraform_remote_state": {"cross-stack-reference-input-proj": {}}},
        "resource": {
            "google_service_account": accounts,
            "google_cloudfunctions2_function": functions,
            "google_pubsub_subscription": subscriptions,
            "google_storage_bucket": {"uploads": {"name": uploads}},
            "google_pubsub_topic": {
                "events": {"name": t.topics["image_events"].name, "project": PROJECT}
            },
            "google_storage_bucket_iam_member": {
                "read": {
                    "bucket": "${google_storage_bucket.uploads.name}",
                    "member": SA % ("make_thumbnail", "member"),
                    "role": "roles/storage.objectViewer",
                },
                "thumbs": {
                    "bucket": thumbnails,
                    "member": SA % ("cleanup", "member"),
                    "role": "roles/storage.objectUser",
                    "//": {"kept": "a reason"},
                },
                "deployer": {
                    "bucket": uploads,
                    "member": "group:ops@example.com",
                    "role": "roles/owner",
                },
            },
            "google_pubsub_topic_iam_member": {
                "publish": {
                    "project": PROJECT,
                    "topic": "${google_pubsub_topic.events.id}",
                    "member": SA % ("make_thumbnail", "member"),
                    "role": "roles/pubsub.publisher",
                }
            },
            "google_pubsub_subscription_iam_member": {
                "agent": {
                    "project": PROJECT,
                    "subscription": t.subscriptions["cleanup"].name,
                    "member": AGENT,
                    "role": "roles/pubsub.subscriber",
                }
            },
            "google_project_iam_member": {
                "firestore": {
                    "project": PROJECT,
                    "member": SA % ("write_metadata", "member"),
                    "role": "roles/datastore.user",
                    "condition": {"expression": f'resource.name == "{DATABASE}"'},
                }
            },
            "google_cloud_run_service_iam_member": {
                "invoker": {
                    "project": PROJECT,
                    "location": t.region,
                    "service": "${google_cloudfunctions2_function.write_metadata.name}",
                    "member": SA % ("push", "member"),
                    "role": "roles/run.invoker",
                }
            },
        },
    }
    project = {
        "resource": {
            "google_project_service_identity": {
                "pubsub": {"project": PROJECT, "service": "pubsub.googleapis.com"}
            }
        },
        "output": {
            "cross-stack-output-pubsub-agent-member": {
                "value": "${google_project_service_identity.pubsub.member}"
            }
        },
    }
    return {"pipe": pipeline, "proj": project}


def _write(tmp_path: Path, stacks: dict[str, dict[str, Any]]) -> Path:
    manifest = {"stacks": {}}
    for stack_id, tf in stacks.items():
        path = tmp_path / "stacks" / stack_id / "cdk.tf.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(tf))
        manifest["stacks"][stack_id] = {"synthesizedStackPath": f"stacks/{stack_id}/cdk.tf.json"}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return tmp_path


def _member(account_id: str) -> str:
    return f"{account_id}@{PROJECT}.iam.gserviceaccount.com"


def test_identities_and_bindings_resolve_through_references(tmp_path, topology):
    policy = load_policy(_write(tmp_path, _stacks(topology)), topology)
    thumbnailer = _member(topology.functions["make_thumbnail"].service_account_id)
    assert policy.runtime["make_thumbnail"] == thumbnailer
    assert set(policy.invokers) == {"metadata_writer", "cleanup", "dead_letter_recorder", "trigger"}
    assert policy.invokers["trigger"] == _member(topology.trigger.service_account_id)
    assert policy.pubsub_agent == "service-PROJECT_NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com"
    uploads = f"projects/_/buckets/{topology.buckets['uploads'].name}"
    assert policy.grant(thumbnailer, "storage.objects.get", f"{uploads}/objects/a/b.jpg")
    assert policy.grant(thumbnailer, "storage.objects.list", uploads)
    assert not policy.grant(thumbnailer, "storage.objects.delete", f"{uploads}/objects/a")
    events = topology.topic_path("image_events")
    assert policy.grant(thumbnailer, "pubsub.topics.publish", events)
    agent_sub = policy.grant(
        policy.pubsub_agent, "pubsub.subscriptions.consume", topology.subscription_path("cleanup")
    )
    assert agent_sub is not None and agent_sub.address.startswith("google_pubsub_subscription_iam")
    invoke = policy.grant(
        policy.invokers["metadata_writer"],
        "run.routes.invoke",
        service_resource(topology, "write_metadata"),
    )
    assert invoke is not None
    assert not policy.grant(
        policy.invokers["cleanup"], "run.routes.invoke", service_resource(topology, "cleanup")
    )
    # A deployer's or group's binding is not one of the local stack's identities.
    assert all("group:" not in b.member for b in policy.bindings)
    kept = [b for b in policy.bindings if b.kept]
    assert [b.address for b in kept] == ["google_storage_bucket_iam_member.thumbs"]


def test_a_conditional_grant_reaches_only_its_resource(tmp_path, topology):
    policy = load_policy(_write(tmp_path, _stacks(topology)), topology)
    writer = policy.runtime["write_metadata"]
    assert policy.grant(writer, "datastore.entities.update", DATABASE)
    assert not policy.grant(writer, "datastore.entities.update", f"projects/{PROJECT}/databases/x")
    assert not policy.grant(writer, "datastore.databases.delete", DATABASE)  # not in the role


@pytest.mark.parametrize(
    ("expression", "resource", "holds"),
    [
        ('resource.name == "a/b"', "a/b", True),
        ('resource.name == "a/b"', "a/bc", False),
        ('resource.name.startsWith("a/")', "a/b", True),
        ('resource.name.startsWith("x/") || resource.name.startsWith("a/")', "a/b", True),
        ('resource.name.startsWith("a/") && resource.name == "a/c"', "a/b", False),
    ],
)
def test_conditions_of_the_forms_the_stacks_write(expression, resource, holds):
    assert condition_holds(expression, resource) is holds


@pytest.mark.parametrize(
    "expression",
    ['resource.type == "storage.googleapis.com/Bucket"', '(resource.name == "a")', "true"],
)
def test_other_conditions_are_refused_when_read(tmp_path, topology, expression):
    stacks = _stacks(topology)
    firestore = stacks["pipe"]["resource"]["google_project_iam_member"]["firestore"]
    firestore["condition"]["expression"] = expression
    with pytest.raises(PolicyError, match="IAM condition"):
        load_policy(_write(tmp_path, stacks), topology)


def test_a_role_missing_from_the_table_is_refused(tmp_path, topology):
    stacks = _stacks(topology)
    stacks["pipe"]["resource"]["google_storage_bucket_iam_member"]["read"]["role"] = (
        "roles/storage.objectAdmin"
    )
    with pytest.raises(PolicyError, match=r"does not know roles/storage\.objectAdmin"):
        load_policy(_write(tmp_path, stacks), topology)


def test_an_unknown_binding_kind_of_a_local_identity_is_refused(tmp_path, topology):
    stacks = _stacks(topology)
    stacks["pipe"]["resource"]["google_bigquery_dataset_iam_member"] = {
        "x": {"member": SA % ("cleanup", "member"), "role": "roles/pubsub.publisher"}
    }
    with pytest.raises(PolicyError, match="does not know google_bigquery_dataset_iam_member"):
        load_policy(_write(tmp_path, stacks), topology)


def test_authoritative_bindings_are_refused(tmp_path, topology):
    stacks = _stacks(topology)
    stacks["pipe"]["resource"]["google_pubsub_topic_iam_binding"] = {"b": {"members": []}}
    with pytest.raises(PolicyError, match="reads \\*_iam_member bindings only"):
        load_policy(_write(tmp_path, stacks), topology)


def test_the_stack_is_the_one_deploying_these_functions_in_this_project(tmp_path, topology):
    stacks = _stacks(topology)
    stacks["copy"] = json.loads(json.dumps(stacks["pipe"]))
    with pytest.raises(PolicyError, match="2 stacks deploy the functions"):
        load_policy(_write(tmp_path, stacks), topology)
    other = build_topology(from_mapping({"project": "elsewhere"}))
    with pytest.raises(PolicyError, match="0 stacks deploy"):
        load_policy(tmp_path, other)


def test_a_reference_to_nothing_is_an_error(tmp_path, topology):
    stacks = _stacks(topology)
    read = stacks["pipe"]["resource"]["google_storage_bucket_iam_member"]["read"]
    read["bucket"] = "${google_storage_bucket.gone.name}"
    with pytest.raises(PolicyError, match="names no resource"):
        load_policy(_write(tmp_path, stacks), topology)


def test_a_project_binding_reaches_every_resource_of_the_project():
    binding = Binding("a", "m", "roles/pubsub.publisher", "projects/p")
    assert binding.allows("pubsub.topics.publish", "projects/p/topics/t")
    bucket = Binding("b", "m", "roles/storage.objectViewer", "projects/_/buckets/b")
    assert bucket.allows("storage.objects.get", "projects/_/buckets/b/objects/x")
    assert not bucket.allows("storage.objects.get", "projects/_/buckets/bb/objects/x")


def test_roles_expand_to_the_permissions_google_lists():
    assert ROLES["roles/storage.objectViewer"] == {
        "resourcemanager.projects.get",
        "resourcemanager.projects.list",
        "storage.folders.get",
        "storage.folders.list",
        "storage.managedFolders.get",
        "storage.managedFolders.list",
        "storage.objects.get",
        "storage.objects.list",
    }
    assert all(p.count(".") == 2 and "{" not in p for perms in ROLES.values() for p in perms)
