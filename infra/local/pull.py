"""`scripts/local pull`: read a pull subscription of a running stack, through its filter,
from `.local/stack.json` (or `LocalStack.info()`: the integration tests read the same).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from typing import Any

import google.cloud.pubsub_v1 as pubsub_v1

from image_pipeline import deadlines
from infra.local.messages import Message, message_json
from infra.model.topology import takes


class UnknownSubscription(ValueError):
    """No subscription by that name; the message lists the ones there are."""


class PushSubscription(ValueError):
    """Pulling from a push subscription would ack messages its function never sees."""


def pull_subscription(info: Mapping[str, Any], wanted: str) -> tuple[str, dict[str, Any]]:
    """A subscription of stack.json by its key (`dead_letters_unrecorded`), its name without
    the stack's prefix (`dead-letters-unrecorded`), its name, or its full path; a push one
    is refused: the router delivers it to a function, and a pull would take (and ack)
    messages from under it."""
    subs: dict[str, dict[str, Any]] = info["subscriptions"]
    prefix, project = info.get("prefix", ""), info["project"]
    for name, spec in subs.items():
        spellings = {name, spec.get("key"), name.removeprefix(f"{prefix}-")}
        if wanted not in spellings | {f"projects/{project}/subscriptions/{name}"}:
            continue
        if spec.get("push_function"):
            pulls = sorted(n for n, s in subs.items() if not s.get("push_function"))
            raise PushSubscription(
                f"{name} is a push subscription (delivered to {spec['push_function']}); pulling "
                f"it would take its messages from the function; pull one of: {', '.join(pulls)}"
            )
        return name, spec
    choices = ", ".join(f"{sub.get('key')} ({name})" for name, sub in sorted(subs.items()))
    raise UnknownSubscription(f"no subscription {wanted!r}; choose one of: {choices}")


def _decoded(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None


def pull_filtered(
    subscriber: pubsub_v1.SubscriberClient,
    info: Mapping[str, Any],
    subscription: str,
    max_messages: int = 100,
    wait_seconds: float = 2.0,
) -> Iterator[dict[str, Any]]:
    """Pulls, applies the subscription's filter, acks, and yields what GCP would deliver.

    Non-matching messages are acked without being yielded, as Pub/Sub never delivers them.
    Stops after `max_messages` or when nothing arrived for `wait_seconds`.
    """
    name, spec = pull_subscription(info, subscription)
    path = f"projects/{info['project']}/subscriptions/{name}"
    delivered = 0
    quiet_since = time.monotonic()
    while delivered < max_messages and time.monotonic() - quiet_since < wait_seconds:
        response = subscriber.pull(
            subscription=path,
            max_messages=min(100, max_messages - delivered),
            return_immediately=True,
            **deadlines.grpc_call(),
        )
        if not response.received_messages:
            time.sleep(0.1)
            continue
        quiet_since = time.monotonic()
        ack_ids = [item.ack_id for item in response.received_messages]
        for item in response.received_messages:
            message = Message.from_received(item)
            if takes(spec["event_types"], message.attributes):
                delivered += 1
                yield {
                    "subscription": name,
                    "deliveryAttempt": message.delivery_attempt,
                    "message": message_json(message),
                    "json": _decoded(message.data),
                }
        subscriber.acknowledge(subscription=path, ack_ids=ack_ids, **deadlines.grpc_call())
