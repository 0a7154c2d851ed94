"""What the local stack creates in the emulators, exactly as the topology declares it:
topics, subscriptions (filters and dead-letter policies stored as in GCP) and buckets, and
the buckets' notification configs, which the GCS front publishes by."""

from __future__ import annotations

import contextlib
from collections.abc import Collection
from typing import Any

from google.api_core import exceptions as api_exceptions
from google.protobuf import duration_pb2

from image_pipeline import deadlines
from infra.common.emulator_clients import Clients
from infra.local.fidelity.gcs_front import NotificationConfig
from infra.local.router import harness_paths
from infra.model.topology import Topology


def create_resources(clients: Clients, t: Topology, undead: Collection[str] = ()) -> None:
    """Topics, subscriptions and buckets exactly as declared (plus the router's own); those
    in `undead` without their dead-letter policy (Pub/Sub could not apply it: IAM)."""
    raw_topic, trigger_subscription = harness_paths(t)
    for path in [t.topic_path(k) for k in t.topics] + [raw_topic]:
        with contextlib.suppress(api_exceptions.AlreadyExists):
            clients.publisher.create_topic(name=path, **deadlines.grpc_call())
    requests: list[dict[str, Any]] = [
        {
            "name": t.subscription_path(sub.key),
            "topic": t.topic_path(sub.topic),
            "filter": sub.filter,
            "ack_deadline_seconds": sub.ack_deadline_seconds,
            "message_retention_duration": duration_pb2.Duration(seconds=sub.retention_seconds),
            "dead_letter_policy": None
            if sub.key in undead
            else {
                "dead_letter_topic": t.topic_path(sub.dead_letter_topic),
                "max_delivery_attempts": sub.max_delivery_attempts,
            },
            # No retry_policy: the emulator (0.8.20) does apply one, but not Pub/Sub's
            # curve (measured: 1st redelivery immediate, then ~min+attempt s) and not
            # scaled for tests. The router applies the declared policy itself.
        }
        for sub in t.subscriptions.values()
    ]
    ack = min(600, max(10, t.functions[t.trigger.function].timeout_seconds))
    requests.append({"name": trigger_subscription, "topic": raw_topic, "ack_deadline_seconds": ack})
    for request in requests:
        with contextlib.suppress(api_exceptions.AlreadyExists):
            clients.subscriber.create_subscription(request=request, **deadlines.grpc_call())
    for bucket in t.buckets.values():
        with contextlib.suppress(api_exceptions.Conflict):
            clients.storage.create_bucket(bucket.name, **deadlines.storage_call())


def notification_configs(t: Topology) -> list[NotificationConfig]:
    """The uploads bucket's notification as declared, and the one Eventarc makes for the
    trigger (every event of its bucket, onto the feed the router's trigger route reads)."""
    spec, raw = t.notification, harness_paths(t)[0]
    return [
        NotificationConfig(
            "1", t.buckets[spec.bucket].name, t.topic_path(spec.topic),
            frozenset(spec.event_types), dict(spec.custom_attributes),
        ),
        NotificationConfig("eventarc", t.buckets[t.trigger.bucket].name, raw),
    ]  # fmt: skip
