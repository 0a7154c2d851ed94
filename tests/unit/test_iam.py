"""Identities: the decision, the record and its report, dead lettering's two grants, and the
run.invoker gate at delivery."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from infra.local.fidelity.iam import FORBIDDEN, Identities, synthesized_policy
from infra.local.hooks import Call
from infra.local.messages import Message
from infra.model.config import from_mapping
from infra.model.iam_policy import Binding, Policy, service_resource
from infra.model.topology import Topology, build_topology

ME = "me@proj-one.iam.gserviceaccount.com"
PUSHER = "push@proj-one.iam.gserviceaccount.com"
AGENT = "service-PROJECT_NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com"
BUCKET = "projects/_/buckets/b"


@pytest.fixture(scope="module")
def topology() -> Topology:
    return build_topology(from_mapping({"project": "proj-one"}))


def _agent_grants(t: Topology) -> list[Binding]:
    """What lets Pub/Sub dead-letter every subscription of `t`."""
    topics = [Binding("pub", AGENT, "roles/pubsub.publisher", f"projects/{t.project}/topics")]
    subs = [Binding("sub", AGENT, "roles/pubsub.subscriber", f"projects/{t.project}/subscriptions")]
    return topics + subs


@pytest.fixture
def identities(topology: Topology) -> Iterator[Identities]:
    started: list[Identities] = []

    def make(*bindings: Binding, mode: str = "on", agent: bool = True) -> Identities:
        grants = (*bindings, *(_agent_grants(topology) if agent else ()))
        policy = Policy("cdktf.out", grants, {}, {"cleanup": PUSHER, "trigger": PUSHER}, AGENT)
        started.append(Identities(topology, policy, mode, {}))
        return started[-1]

    yield make  # type: ignore[misc]
    for each in started:
        each.stop()


def test_the_report_counts_uses_lists_denials_and_grants_never_used(identities):
    read = Binding("viewer", ME, "roles/storage.objectViewer", BUCKET)
    spare = Binding("spare", ME, "roles/pubsub.publisher", "projects/proj-one/topics/t", kept="why")
    iam = identities(read, spare)
    assert iam.check(ME, "storage.objects.get", f"{BUCKET}/objects/x", "GET x")
    assert iam.check(ME, "storage.objects.get", f"{BUCKET}/objects/y", "GET y")
    assert not iam.check(ME, "storage.objects.delete", f"{BUCKET}/objects/x", "DELETE x")
    assert not iam.check(ME, "storage.objects.delete", f"{BUCKET}/objects/x", "DELETE x")
    report = iam.report()
    me = report["identities"][ME]
    assert me["used"] == {"storage.objects.get": 2}
    assert me["denied"] == [
        {
            "permission": "storage.objects.delete",
            "resource": f"{BUCKET}/objects/x",
            "call": "DELETE x",
            "count": 2,
        }
    ]
    assert [(g["address"], g["kept"]) for g in me["unused_grants"]] == [("spare", "why")]
    assert "storage.objects.list" in me["unused_permissions"]
    assert "storage.objects.get" not in me["unused_permissions"]
    assert iam.denials() == 2
    # Every identity the stack plays is in it, used or not.
    assert set(report["identities"]) == {ME, PUSHER, AGENT}


def test_soft_mode_lets_a_denied_call_through_and_still_records_it(identities):
    iam = identities(mode="soft")
    assert iam.check(ME, "storage.objects.get", f"{BUCKET}/objects/x", "GET x")
    assert iam.denials() == 1


def test_without_the_agents_grants_subscriptions_are_made_without_dead_lettering(
    identities, topology
):
    assert identities().undead == set()
    publish_only = identities(_agent_grants(topology)[0], agent=False)
    assert publish_only.undead == set(topology.subscriptions)
    agent = publish_only.report()["identities"][AGENT]
    assert {d["permission"] for d in agent["denied"]} == {"pubsub.subscriptions.consume"}
    assert publish_only.stats()["iam"]["without_dead_lettering"] == sorted(topology.subscriptions)


def test_a_delivery_needs_run_invoker_and_the_trigger_also_event_receiver(identities, topology):
    service = service_resource(topology, "cleanup")
    invoker = Binding("inv", PUSHER, "roles/run.invoker", service)
    message = Message("m1", b"{}", {}, datetime.now(UTC), 1)

    def status(iam: Identities, route: str) -> int | None:
        with iam.gate(Call(route, "cleanup", 60, message, 1, lambda: ({}, b""))) as answer:
            return answer

    assert status(identities(invoker), "cleanup") is None
    assert status(identities(), "cleanup") == FORBIDDEN
    assert status(identities(invoker), "trigger") == FORBIDDEN  # no eventarc.eventReceiver
    receiver = Binding("rcv", PUSHER, "roles/eventarc.eventReceiver", "projects/proj-one")
    assert status(identities(invoker, receiver), "trigger") is None


def test_a_failed_synth_says_how_to_do_without(monkeypatch, tmp_path):
    monkeypatch.setattr("infra.common.paths.LOCAL_DIR", tmp_path)
    monkeypatch.setattr("infra.local.fidelity.iam._SYNTH", "raise SystemExit('no node')")
    with pytest.raises(RuntimeError, match=r"Node 22\+; or pass --policy DIR, or --iam off"):
        synthesized_policy({"project": "proj-one"})
    assert not any((tmp_path / "policy").iterdir())  # nothing half-written is kept
