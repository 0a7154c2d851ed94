"""A first `cdktf deploy` into a new project: the nine findings of the pre-deploy review
(docs/architecture.md, "First deploy"), each asserted on the synthesized JSON."""

from __future__ import annotations

import re

import pytest

from infra.common.paths import ROOT
from infra.model.apply_permissions import required_permissions
from infra.model.topology import OPERATOR_MAX_DELIVERY_ATTEMPTS, push_ack_deadline

pytestmark = pytest.mark.synth

FUNCTION = "google_cloudfunctions2_function"


def _addresses(synth, kind, **match):
    return [
        synth.address(kind, body)
        for body in synth.all(kind)
        if all(body.get(k) == v for k, v in match.items())
    ]


@pytest.mark.parametrize("synth_name", ["stack", "alt_stack"])
def test_1_every_build_waits_until_the_builder_grants_settled(synth_name, request):
    synth = request.getfixturevalue(synth_name)
    graph = synth.graph
    builder = next(
        synth.address("google_service_account", sa)
        for sa in synth.all("google_service_account")
        if sa["account_id"] == synth.topology.build_account_id
    )
    grants = [node.address for node, member in graph.bindings() if builder in graph.refs(member)]
    # What roles/run.builder holds, each on the narrowest resource: logs on the project,
    # images on our repository, the source on our bucket, and reading the Cloud Functions
    # build buckets only (an IAM condition; no object admin).
    where = {
        (graph.nodes[g].type, graph.nodes[g].body["role"]): graph.nodes[g].body for g in grants
    }
    assert set(where) == {
        ("google_project_iam_member", "roles/logging.logWriter"),
        ("google_artifact_registry_repository_iam_member", "roles/artifactregistry.writer"),
        ("google_storage_bucket_iam_member", "roles/storage.objectViewer"),
        ("google_project_iam_member", "roles/storage.objectViewer"),
    }
    condition = where["google_project_iam_member", "roles/storage.objectViewer"]["condition"]
    assert condition["expression"] == (
        'resource.name.startsWith("projects/_/buckets/gcf-v2-sources-") || '
        'resource.name.startsWith("projects/_/buckets/gcf-v2-uploads-")'
    )
    assert "condition" not in where["google_project_iam_member", "roles/logging.logWriter"]
    for fn in _addresses(synth, FUNCTION):
        assert builder in graph.refs(graph.nodes[fn].body["build_config"])
        for grant in grants:
            assert graph.settled(grant, fn), (fn, grant)
    # The waits after grants are the setting, sized from Google's documented propagation
    # time; the only other wait is the alert policies' for their log metrics.
    from infra.deploy.constructs.alerts import LOG_METRIC_SETTLE_SECONDS

    waits = {s["create_duration"] for s in synth.all("time_sleep")}
    assert waits == {f"{synth.config.iam_settle_seconds}s", f"{LOG_METRIC_SETTLE_SECONDS}s"}


def test_2_the_trigger_waits_for_the_eventarc_agent_its_role_and_their_settling(stack):
    graph = stack.graph
    [agent] = _addresses(
        stack, "google_project_service_identity", service="eventarc.googleapis.com"
    )
    [role] = [
        stack.address("google_project_iam_member", b)
        for b in stack.all("google_project_iam_member")
        if b["role"] == "roles/eventarc.serviceAgent"
    ]
    assert agent in graph.refs(graph.nodes[role].body["member"])
    [trigger] = [a for a in _addresses(stack, FUNCTION) if graph.nodes[a].body.get("event_trigger")]
    assert agent in graph.upstream(trigger)
    assert graph.settled(role, trigger)


def test_3_service_agents_are_created_and_bound_by_reference(stack):
    graph = stack.graph
    [pubsub] = _addresses(stack, "google_project_service_identity", service="pubsub.googleapis.com")
    bound = [
        stack.address(kind, body)
        for kind, body in stack.iam_members()
        if graph.agent_of(body["member"]) == "pubsub"
    ]
    # Publisher on every dead-letter topic, subscriber on every subscription that dead-letters,
    # token creator on the two accounts whose tokens it mints (the push invoker, the trigger).
    topology = stack.topology
    dead_lettering = [s for s in topology.subscriptions.values() if s.dead_letter_topic]
    dead_letter_topics = {s.dead_letter_topic for s in dead_lettering}
    minted_for = {topology.push_invoker_account_id, topology.trigger.service_account_id}
    assert len(bound) == len(dead_letter_topics) + len(dead_lettering) + len(minted_for)
    for binding in bound:
        assert pubsub in graph.refs(graph.nodes[binding].body["member"]), binding
    # No agent email is spelled out from the project number anywhere.
    assert "gcp-sa-" not in stack.path.read_text()
    assert "google_project" not in stack.tf.get("data", {})
    assert "google_project" not in stack.project.get("data", {})


def test_4_firestore_database_is_created_by_default_and_can_be_left_alone(stack, alt_stack):
    [db] = stack.all("google_firestore_database")
    assert db["name"] == "(default)"
    assert db["type"] == "FIRESTORE_NATIVE"
    assert db["location_id"] == "us-central1"
    assert db["deletion_policy"] == "ABANDON"
    # The database is the project stack's, applied before any function.
    database = stack.address("google_firestore_database", db)
    assert db in stack.project_resources("google_firestore_database").values()
    for key, fn in stack.topology.functions.items():
        [address] = _addresses(stack, FUNCTION, name=fn.name)
        assert database in stack.graph.upstream(address), key
    # create_firestore_database=false: a project that has its database keeps it untouched.
    assert alt_stack.all("google_firestore_database") == []


@pytest.mark.parametrize("synth_name", ["stack", "alt_stack"])
def test_5_no_data_source_waits_on_a_resource(synth_name, request):
    synth = request.getfixturevalue(synth_name)
    data = synth.tf.get("data", {})
    assert data, "the storage agent's data source is expected"
    for kind, bodies in data.items():
        for name, body in bodies.items():
            assert "depends_on" not in body, f"data.{kind}.{name}"


@pytest.mark.parametrize("synth_name", ["stack", "alt_stack"])
def test_6_push_ack_deadline_leaves_room_for_a_cold_start(synth_name, request):
    synth = request.getfixturevalue(synth_name)
    t = synth.topology
    for spec in t.subscriptions.values():
        if spec.push_function is None:
            continue
        timeout = t.functions[spec.push_function].timeout_seconds
        sub = synth.one("google_pubsub_subscription", name=spec.name)
        assert sub["ack_deadline_seconds"] == push_ack_deadline(timeout) > timeout
        assert sub["ack_deadline_seconds"] <= 600


def test_7_subscriptions_people_read_survive_being_looked_at(stack):
    read_by_people = [s for s in stack.topology.subscriptions.values() if not s.push_function]
    assert {s.key for s in read_by_people} == {"failures", "dead_letters_unrecorded"}
    for spec in read_by_people:
        sub = stack.one("google_pubsub_subscription", name=spec.name)
        policy = sub["dead_letter_policy"]
        assert policy["max_delivery_attempts"] == OPERATOR_MAX_DELIVERY_ATTEMPTS == 100
        assert sub["ack_deadline_seconds"] == 600


def test_8_nothing_keeps_costing_after_it_is_replaced(stack):
    config = stack.config
    soft_delete = {
        b["name"]: b.get("soft_delete_policy") for b in stack.all("google_storage_bucket")
    }
    # Outputs and archives can be made again: no 7-day soft-delete copies of each one.
    assert soft_delete[config.thumbnails_bucket] == {"retention_duration_seconds": 0}
    assert soft_delete[config.source_bucket] == {"retention_duration_seconds": 0}
    # Originals cannot: the uploads bucket keeps Cloud Storage's default protection.
    assert soft_delete[config.uploads_bucket] is None
    # The function images go to a declared repository that cleans up and is destroyed.
    [repo] = stack.all("google_artifact_registry_repository")
    assert repo["format"] == "DOCKER"
    assert repo["cleanup_policy_dry_run"] is False
    actions = {p["action"]: p for p in repo["cleanup_policies"]}
    assert actions["KEEP"]["most_recent_versions"]["keep_count"] >= 1
    assert actions["DELETE"]["condition"]["older_than"].endswith("s")
    repo_ref = stack.ref_id("google_artifact_registry_repository", repo)
    for fn in stack.all(FUNCTION):
        assert fn["build_config"]["docker_repository"] == f"{repo_ref}id}}"


def test_9_docs_name_deployer_roles_that_cover_every_resource(stack, alt_stack):
    # The roles holding every permission the apply needs, derived from the resource types
    # of the synthesized stacks (a new type without a mapping raises).
    needed = {
        r.role
        for synth in (stack, alt_stack)
        for tf in (synth.project, synth.tf)
        for r in required_permissions(tf)
    }
    doc = (ROOT / "docs" / "deploy-and-operate.md").read_text()
    prerequisites = doc[doc.index("## Prerequisites") : doc.index("## Settings")]
    named = set(re.findall(r"`(roles/[A-Za-z.]+)`", prerequisites))
    assert needed <= named, (
        f"docs/deploy-and-operate.md prerequisites miss {sorted(needed - named)}"
    )
    assert "Owner" in prerequisites
    # Editor cannot set IAM policy on buckets, topics, subscriptions or services.
    assert "Owner, or Editor" not in prerequisites
    assert "Editor + Project IAM Admin is **not** enough" in prerequisites
