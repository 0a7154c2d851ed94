"""Identities, project-level roles, APIs and outputs in the synthesized stack."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.synth


def test_required_apis_are_enabled_and_never_disabled(stack):
    from infra.deploy.constructs.apis import SERVICES  # imports cdktf: not at collection time

    services = {s["service"]: s for s in stack.all("google_project_service")}
    assert set(services) == set(SERVICES.values())
    for name in (
        "cloudfunctions.googleapis.com",
        "run.googleapis.com",
        "eventarc.googleapis.com",
        "pubsub.googleapis.com",
        "storage.googleapis.com",
        "firestore.googleapis.com",
        "cloudbuild.googleapis.com",
        "artifactregistry.googleapis.com",
        "iam.googleapis.com",
        "logging.googleapis.com",
    ):
        assert services[name]["disable_on_destroy"] is False


def test_resources_wait_for_their_apis(stack):
    # The APIs are the project stack's, applied before every resource of the pipeline's.
    apis = {stack.address("google_project_service", s) for s in stack.all("google_project_service")}
    assert apis and all(a.startswith("google_project_service.") for a in apis)
    assert not stack.pipeline_resources("google_project_service")
    for kind in ("google_storage_bucket", "google_pubsub_topic", "google_service_account"):
        for body in stack.pipeline_resources(kind).values():
            assert apis <= stack.graph.upstream(stack.address(kind, body)), kind


def test_service_accounts(stack):
    t = stack.topology
    expected = {f.service_account_id for f in t.functions.values()}
    expected |= {t.trigger.service_account_id, t.push_invoker_account_id, t.build_account_id}
    assert {sa["account_id"] for sa in stack.all("google_service_account")} == expected


def test_runtime_accounts_hold_exactly_the_topology_grants(stack):
    t = stack.topology
    by_account = {f.service_account_id: f for f in t.functions.values()}
    expected = {
        (f.service_account_id, g.kind, g.target, g.role)
        for f in by_account.values()
        for g in f.grants
    }
    actual = set()
    for kind, binding in stack.iam_members():
        member = binding.get("member", "")
        if not member.startswith("${google_service_account."):
            continue
        account = stack.account_of(member)
        if account not in by_account:
            continue
        if kind == "google_storage_bucket_iam_member":
            _, bucket, _ = stack.ref(binding["bucket"])
            target = next(k for k, b in t.buckets.items() if b.name == bucket["name"])
            actual.add((account, "bucket", target, binding["role"]))
        elif kind == "google_pubsub_topic_iam_member":
            _, topic, _ = stack.ref(binding["topic"])
            target = next(k for k, x in t.topics.items() if x.name == topic["name"])
            actual.add((account, "topic", target, binding["role"]))
        elif kind == "google_project_iam_member":
            actual.add((account, "project", "", binding["role"]))
        else:
            pytest.fail(f"unexpected {kind} for runtime account {account}")
    assert actual == expected


def test_thumbnailer_cannot_use_firestore_and_metadata_writer_cannot_read_images(stack):
    roles = {}
    for _, binding in stack.iam_members():
        member = binding.get("member", "")
        if member.startswith("${google_service_account."):
            roles.setdefault(stack.account_of(member), set()).add(binding["role"])
    fns = stack.topology.functions
    assert "roles/datastore.user" not in roles[fns["make_thumbnail"].service_account_id]
    assert not any("storage" in r for r in roles[fns["write_metadata"].service_account_id])


def test_trigger_account_receives_events(stack):
    [binding] = [
        b
        for b in stack.all("google_project_iam_member")
        if b["role"] == "roles/eventarc.eventReceiver"
    ]
    assert stack.account_of(binding["member"]) == stack.topology.trigger.service_account_id


def test_storage_agent_may_publish_for_eventarc(stack):
    [binding] = [
        b
        for b in stack.all("google_project_iam_member")
        if stack.graph.agent_of(b["member"]) == "storage"
    ]
    assert binding["role"] == "roles/pubsub.publisher"


def test_pubsub_agent_mints_tokens_only_as_the_push_invoker_and_the_trigger(stack):
    bindings = stack.all("google_service_account_iam_member")
    accounts = set()
    for binding in bindings:
        assert binding["role"] == "roles/iam.serviceAccountTokenCreator"
        assert stack.graph.agent_of(binding["member"]) == "pubsub"
        # The agent's identity resource (the project stack's), not an email built from the
        # project number.
        assert "google_project_service_identity" in binding["member"]
        kind, sa, attr = stack.ref(binding["service_account_id"])
        assert (kind, attr) == ("google_service_account", "name")
        accounts.add(sa["account_id"])
    topology = stack.topology
    minted_for = {topology.push_invoker_account_id, topology.trigger.service_account_id}
    assert len(bindings) == len(minted_for)
    assert accounts == minted_for
    # Never project-wide: a project-level token creator could mint as every account.
    for binding in stack.all("google_project_iam_member"):
        assert binding["role"] != "roles/iam.serviceAccountTokenCreator"


def test_trigger_waits_for_the_token_grant_on_its_account(stack):
    [trigger_fn] = [
        a
        for a in stack.graph.of_type("google_cloudfunctions2_function")
        if a.body.get("event_trigger")
    ]
    [grant] = [
        node.address
        for node, _ in stack.graph.bindings()
        if node.type == "google_service_account_iam_member"
        and stack.ref(node.body["service_account_id"])[1]["account_id"]
        == stack.topology.trigger.service_account_id
    ]
    assert stack.graph.settled(grant, trigger_fn.address)
    assert "April 8, 2021" in stack.graph.nodes[grant].body["//"]["why"]


def test_no_basic_roles_anywhere(stack):
    for _, binding in stack.iam_members():
        assert binding["role"] not in ("roles/owner", "roles/editor", "roles/viewer")


def test_every_iam_binding_says_why(stack):
    for kind, binding in stack.iam_members():
        assert binding["//"]["why"].strip(), (kind, binding["role"])


def test_outputs(stack):
    out = stack.tf["output"]
    for key in stack.topology.buckets:
        assert f"bucket_{key}" in out
    for key in stack.topology.topics:
        assert f"topic_{key}" in out
    for key in stack.topology.functions:
        assert out[f"function_{key}_url"]["value"].endswith(".url}")
    assert out["try_it"]["value"].startswith(
        f"gcloud storage cp photo.jpg gs://{stack.config.uploads_bucket}/"
    )


def test_provider_uses_the_configured_project_and_region(alt_stack):
    [provider] = alt_stack.tf["provider"]["google"]
    assert provider["project"] == "other-project-42"
    assert provider["region"] == "europe-west4"


def test_the_pipeline_stack_grants_no_google_agent_a_project_role(stack, alt_stack):
    # Destroying the pipeline must not take from Google's agents the project roles every
    # trigger in the project relies on: those are the project stack's.
    for synth in (stack, alt_stack):
        in_pipeline = synth.pipeline_resources("google_project_iam_member").values()
        assert not [b for b in in_pipeline if synth.graph.agent_of(b["member"])]
        in_project = synth.project_resources("google_project_iam_member").values()
        assert {(synth.graph.agent_of(b["member"]), b["role"]) for b in in_project} == {
            ("eventarc", "roles/eventarc.serviceAgent"),
            ("storage", "roles/pubsub.publisher"),
        }
        # So are the APIs, the agents and the database.
        for kind in (
            "google_project_service",
            "google_project_service_identity",
            "google_firestore_database",
        ):
            assert not synth.pipeline_resources(kind), kind


def test_firestore_users_reach_the_pipeline_database_only(stack):
    users = [
        b for b in stack.all("google_project_iam_member") if b["role"] == "roles/datastore.user"
    ]
    assert len(users) == 2  # the metadata writer and the dead-letter recorder
    for binding in users:
        assert binding["condition"]["expression"] == (
            'resource.name == "projects/my-gcp-project/databases/(default)"'
        )
        assert "database" in binding["//"]["why"]
    # No project-wide storage or registry role is left unconditioned.
    for binding in stack.all("google_project_iam_member"):
        if binding["role"].startswith(("roles/storage.", "roles/artifactregistry.")):
            assert "condition" in binding, binding["role"]
