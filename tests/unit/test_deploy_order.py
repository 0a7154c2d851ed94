"""Reading a synthesized stack's order (tests/infra/deploy_order.py) on small hand-made graphs.

The rules themselves are exercised on the real synthesized graph in
tests/infra/test_stack_deploy_order.py; here, the graph reading they rely on."""

from __future__ import annotations

import pytest

from tests.infra.deploy_order import Graph, problems

PUBSUB = "google_project_service_identity.pubsub"
STORAGE = "data.google_storage_project_service_account.gcs"


def _tf(**extra_resources):
    return {
        "resource": {
            "google_project_service": {"api": {"service": "pubsub.googleapis.com"}},
            "google_project_service_identity": {
                "pubsub": {
                    "service": "pubsub.googleapis.com",
                    "depends_on": ["google_project_service.api"],
                }
            },
            "google_pubsub_topic": {"dlq": {"name": "dlq"}},
            "time_sleep": {"wait": {"create_duration": "60s", "depends_on": []}},
            **extra_resources,
        },
        "data": {"google_storage_project_service_account": {"gcs": {"project": "p"}}},
    }


def test_references_are_found_inside_expressions_and_comments_are_not():
    graph = Graph(_tf())
    body = {
        "a": "${google_pubsub_topic.dlq.id}",
        "b": ["x-${data.google_storage_project_service_account.gcs.member}"],
        "c": {"d": '${replace(google_project_service_identity.pubsub.email, "a", "b")}'},
        "//": {"why": "${google_project_service.api.id}"},
        "e": "google_pubsub_topic.dlq (not an expression), ${google_pubsub_topic.gone.id}",
    }
    assert graph.refs(body) == {"google_pubsub_topic.dlq", STORAGE, PUBSUB}


def test_upstream_follows_references_and_depends_on_transitively():
    tf = _tf(
        google_pubsub_topic_iam_member={
            "pub": {
                "topic": "${google_pubsub_topic.dlq.name}",
                "member": "${" + PUBSUB + ".member}",
            }
        }
    )
    tf["resource"]["time_sleep"]["wait"]["depends_on"] = ["google_pubsub_topic_iam_member.pub"]
    graph = Graph(tf)
    assert graph.upstream("time_sleep.wait") == {
        "google_pubsub_topic_iam_member.pub",
        "google_pubsub_topic.dlq",
        PUBSUB,
        "google_project_service.api",
    }
    assert graph.settled("google_pubsub_topic_iam_member.pub", "time_sleep.wait") is False
    # settled(): a time_sleep after the grant is upstream of the user.
    tf["resource"]["google_pubsub_topic"]["user"] = {"depends_on": ["time_sleep.wait"]}
    assert Graph(tf).settled("google_pubsub_topic_iam_member.pub", "google_pubsub_topic.user")


def test_service_agents_are_recognised_by_reference_or_by_their_email():
    graph = Graph(_tf())
    assert graph.agent_of("${" + PUBSUB + ".member}") == "pubsub"
    assert graph.agent_of("serviceAccount:${" + STORAGE + ".email_address}") == "storage"
    assert graph.agent_of("serviceAccount:service-1@gcp-sa-eventarc.iam.gserviceaccount.com") == (
        "eventarc"
    )
    assert graph.agent_of(
        "serviceAccount:service-1@gs-project-accounts.iam.gserviceaccount.com"
    ) == ("storage")
    assert graph.agent_of("serviceAccount:someone@p.iam.gserviceaccount.com") is None
    assert graph.identities("pubsub") == [PUBSUB]
    assert graph.identities("storage") == [STORAGE]
    assert graph.identities("eventarc") == []


def test_a_dead_letter_policy_written_as_a_list_block_is_read_too():
    sub = {
        "topic": "${google_pubsub_topic.dlq.id}",
        "dead_letter_policy": [{"dead_letter_topic": "${google_pubsub_topic.dlq.id}"}],
    }
    found = problems(_tf(google_pubsub_subscription={"s": sub}))
    assert any(
        "google_pubsub_subscription.s" in p and "google_pubsub_topic.dlq" in p for p in found
    )
    assert any("roles/pubsub.subscriber" in p and PUBSUB in p for p in found)


def test_a_graph_without_the_resources_a_rule_is_about_has_no_problems():
    assert problems(_tf()) == []
    assert problems({}) == []


def test_another_stacks_output_stands_for_what_it_holds_and_that_stack_comes_first():
    producer = {
        "resource": {
            "google_project_service_identity": {"agent": {"service": "pubsub.googleapis.com"}},
            "google_project_service": {"api": {"service": "pubsub.googleapis.com"}},
        },
        "output": {"agent-member": {"value": "${google_project_service_identity.agent.member}"}},
    }
    state = "data.terraform_remote_state.cross-stack-reference-input-project"
    consumer = {
        "data": {"terraform_remote_state": {"cross-stack-reference-input-project": {}}},
        "resource": {
            "google_pubsub_topic": {"t": {"name": "t"}},
            "google_pubsub_topic_iam_member": {
                "b": {
                    "topic": "${google_pubsub_topic.t.name}",
                    "member": f"${{{state}.outputs.agent-member}}",
                }
            },
        },
    }
    graph = Graph(consumer, {"project": producer})
    member = graph.nodes["google_pubsub_topic_iam_member.b"].body["member"]
    assert graph.agent_of(member) == "pubsub"
    # The topic references nothing of the project stack, and still comes after all of it.
    assert {"google_project_service.api", "google_project_service_identity.agent"} <= (
        graph.upstream("google_pubsub_topic.t")
    )
    assert "google_pubsub_topic.t" not in graph.upstream("google_project_service.api")
    with pytest.raises(ValueError, match="'project'"):
        Graph(consumer)


def test_a_grant_on_the_trigger_account_must_settle_before_the_trigger():
    trigger = "google_eventarc_trigger.uploads"
    grant = "google_service_account_iam_member.tokens"
    tf = _tf(
        google_service_account={"trig": {"account_id": "trig"}},
        google_service_account_iam_member={
            "tokens": {
                "service_account_id": "${google_service_account.trig.name}",
                "role": "roles/iam.serviceAccountTokenCreator",
                "member": "${" + PUBSUB + ".member}",
            }
        },
        google_eventarc_trigger={
            "uploads": {"service_account": "${google_service_account.trig.email}"}
        },
    )
    unsettled = [p for p in problems(tf) if p.startswith(f"{trigger} does not wait for {grant}")]
    assert len(unsettled) == 1
    tf["resource"]["time_sleep"]["wait"]["depends_on"] = [grant]
    tf["resource"]["google_eventarc_trigger"]["uploads"]["depends_on"] = ["time_sleep.wait"]
    assert not [p for p in problems(tf) if grant in p]
