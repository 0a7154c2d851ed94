"""Topics, subscriptions, the bucket notification and their Pub/Sub IAM."""

from __future__ import annotations

import pytest

from infra.model.capacity import QUEUE_FLOOR_SECONDS

pytestmark = pytest.mark.synth


def _topic_name(synth, expr):
    kind, topic, attr = synth.ref(expr)
    assert kind == "google_pubsub_topic", expr
    assert attr in ("id", "name"), expr
    return topic["name"]


def test_one_topic_per_spec(stack):
    names = {t["name"] for t in stack.all("google_pubsub_topic")}
    assert names == {spec.name for spec in stack.topology.topics.values()}


@pytest.mark.parametrize("synth_name", ["stack", "alt_stack"])
def test_subscriptions_match_the_topology(synth_name, request):
    synth = request.getfixturevalue(synth_name)
    t = synth.topology
    assert len(synth.all("google_pubsub_subscription")) == len(t.subscriptions)
    for spec in t.subscriptions.values():
        sub = synth.one("google_pubsub_subscription", name=spec.name)
        assert _topic_name(synth, sub["topic"]) == t.topics[spec.topic].name
        assert sub.get("filter", "") == spec.filter
        assert sub["ack_deadline_seconds"] == spec.ack_deadline_seconds
        assert sub["message_retention_duration"] == f"{spec.retention_seconds}s"
        assert sub["expiration_policy"] == {"ttl": ""}
        assert sub["retry_policy"] == {
            "minimum_backoff": f"{spec.retry.minimum_backoff_seconds}s",
            "maximum_backoff": f"{spec.retry.maximum_backoff_seconds}s",
        }
        policy = sub["dead_letter_policy"]
        assert policy["max_delivery_attempts"] == spec.max_delivery_attempts
        assert (
            _topic_name(synth, policy["dead_letter_topic"]) == t.topics[spec.dead_letter_topic].name
        )


def test_push_subscriptions_use_oidc_and_the_wrapped_format(stack):
    t = stack.topology
    for spec in t.subscriptions.values():
        sub = stack.one("google_pubsub_subscription", name=spec.name)
        if spec.push_function is None:
            assert "push_config" not in sub, spec.name
            continue
        push = sub["push_config"]
        assert "no_wrapper" not in push
        kind, fn, attr = stack.ref(push["push_endpoint"])
        assert kind == "google_cloudfunctions2_function"
        assert fn["name"] == t.functions[spec.push_function].name
        assert attr == "service_config[0].uri"
        oidc = push["oidc_token"]
        assert stack.account_of(oidc["service_account_email"]) == t.push_invoker_account_id


def test_filters_in_the_stack(stack):
    def sub(key):
        return stack.one("google_pubsub_subscription", name=stack.topology.subscriptions[key].name)

    assert sub("cleanup")["filter"] == 'attributes.eventType = "OBJECT_DELETE"'
    assert sub("failures")["filter"] == 'attributes.eventType = "image.failed"'
    assert "image.processed" in sub("metadata_writer")["filter"]


def test_every_dead_letter_topic_has_a_subscription(stack):
    consumed = {_topic_name(stack, s["topic"]) for s in stack.all("google_pubsub_subscription")}
    for spec in stack.topology.topics.values():
        if spec.is_dead_letter:
            assert spec.name in consumed


def test_pubsub_agent_publishes_to_every_dead_letter_topic(stack):
    granted = {
        _topic_name(stack, b["topic"])
        for b in stack.all("google_pubsub_topic_iam_member")
        if b["role"] == "roles/pubsub.publisher" and stack.graph.agent_of(b["member"]) == "pubsub"
    }
    expected = {s.name for s in stack.topology.topics.values() if s.is_dead_letter}
    assert granted == expected


def test_pubsub_agent_subscribes_to_every_subscription_with_a_dead_letter_policy(stack):
    granted = set()
    for b in stack.all("google_pubsub_subscription_iam_member"):
        assert b["role"] == "roles/pubsub.subscriber"
        assert stack.graph.agent_of(b["member"]) == "pubsub"
        kind, sub, _ = stack.ref(b["subscription"])
        assert kind == "google_pubsub_subscription"
        granted.add(sub["name"])
    with_dlq = {
        s["name"] for s in stack.all("google_pubsub_subscription") if "dead_letter_policy" in s
    }
    assert granted == with_dlq == {s.name for s in stack.topology.subscriptions.values()}


def test_function_topic_grants_match_the_topology(stack):
    t = stack.topology
    expected = {
        (f.service_account_id, t.topics[g.target].name, g.role)
        for f in t.functions.values()
        for g in f.grants
        if g.kind == "topic"
    }
    actual = {
        (stack.account_of(b["member"]), _topic_name(stack, b["topic"]), b["role"])
        for b in stack.all("google_pubsub_topic_iam_member")
        if b["member"].startswith("${google_service_account.")
    }
    assert actual == expected


def test_uploads_notification_publishes_to_upload_events(stack):
    t = stack.topology
    note = stack.one("google_storage_notification")
    _, bucket, _ = stack.ref(note["bucket"])
    assert bucket["name"] == t.buckets[t.notification.bucket].name
    assert _topic_name(stack, note["topic"]) == t.topics[t.notification.topic].name
    assert note["payload_format"] == "JSON_API_V1"
    assert note["event_types"] == list(t.notification.event_types) == ["OBJECT_DELETE"]
    assert note["custom_attributes"] == dict(t.notification.custom_attributes)
    # Only after the storage agent may publish to the topic.
    [dep] = note["depends_on"]
    binding = stack.resources("google_pubsub_topic_iam_member")[dep.split(".")[1]]
    assert binding["role"] == "roles/pubsub.publisher"
    assert stack.graph.agent_of(binding["member"]) == "storage"
    assert (
        "data.google_storage_project_service_account"
        in stack.project["output"][binding["member"].split(".outputs.")[1].rstrip("}")]["value"]
    )
    assert _topic_name(stack, binding["topic"]) == t.topics[t.notification.topic].name


def test_a_push_message_outlasts_90_minutes_of_throttling(stack):
    """No push message is dead-lettered by throttling alone: each refused attempt is held
    10 s by Cloud Run and then nacked, and the backoff between attempts doubles from the
    minimum to the maximum; the default policy outlasts 93 minutes of that."""
    for sub in stack.all("google_pubsub_subscription"):
        if "push_config" not in sub:
            continue
        attempts = sub["dead_letter_policy"]["max_delivery_attempts"]
        low, high = (
            int(sub["retry_policy"][k].rstrip("s")) for k in ("minimum_backoff", "maximum_backoff")
        )
        waits = sum(min(low * 2 ** (n - 1), high) for n in range(1, attempts))
        assert (attempts, low, high) == (15, 10, 600)
        assert waits + attempts * QUEUE_FLOOR_SECONDS == 5580  # 93 minutes, docs/capacity.md
