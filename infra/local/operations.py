"""What operators do with a running stack: point clients at it, read a pull subscription
(dead letters: infra.ops).

Both read `.local/stack.json` (or the same dict from `LocalStack.info()`), so they work from
any process, and the integration tests use exactly what `scripts/local` uses.
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


def find_subscription(info: Mapping[str, Any], name_or_key: str) -> tuple[str, dict[str, Any]]:
    """A subscription of stack.json by name (`imgpipe-failures`) or topology key (`failures`)."""
    subs: dict[str, dict[str, Any]] = info["subscriptions"]
    for name, sub in subs.items():
        if name_or_key in (
            name,
            sub.get("key"),
            f"projects/{info['project']}/subscriptions/{name}",
        ):
            return name, sub
    raise KeyError(f"no subscription {name_or_key!r}; known: {', '.join(sorted(subs))}")


class PushSubscription(ValueError):
    """Pulling from a push subscription would ack messages its function never sees."""


def pull_subscription(info: Mapping[str, Any], name_or_key: str) -> tuple[str, dict[str, Any]]:
    """`find_subscription`, refusing a push subscription: the router delivers those to a
    function, and a pull there would take (and ack) messages from under it."""
    name, spec = find_subscription(info, name_or_key)
    if spec.get("push_function"):
        pulls = sorted(n for n, s in info["subscriptions"].items() if not s.get("push_function"))
        raise PushSubscription(
            f"{name} is a push subscription (delivered to {spec['push_function']}); pulling it "
            f"would take its messages from the function; pull one of: {', '.join(pulls)}"
        )
    return name, spec


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
            max_messages=min(100, max_messages),
            return_immediately=True,
            **deadlines.grpc_call(),
        )
        if not response.received_messages:
            time.sleep(0.1)
            continue
        quiet_since = time.monotonic()
        ack_ids = []
        for item in response.received_messages:
            message = Message.from_received(item)
            if not takes(spec["event_types"], message.attributes):
                ack_ids.append(item.ack_id)  # filtered out: acked, never delivered
            elif delivered >= max_messages:
                subscriber.modify_ack_deadline(
                    subscription=path,
                    ack_ids=[item.ack_id],
                    ack_deadline_seconds=0,
                    **deadlines.grpc_call(),
                )
            else:
                ack_ids.append(item.ack_id)
                delivered += 1
                yield {
                    "subscription": name,
                    "deliveryAttempt": message.delivery_attempt,
                    "message": message_json(message),
                    "json": _decoded(message.data),
                }
        if ack_ids:
            subscriber.acknowledge(subscription=path, ack_ids=ack_ids, **deadlines.grpc_call())


def client_exports(info: Mapping[str, Any]) -> dict[str, str]:
    """The variables that point client libraries and the gcloud CLI at the stack.

    The libraries read the `*_EMULATOR_HOST` variables. gcloud ignores those for storage
    and pubsub commands but takes per-API endpoint overrides (the `api_endpoint_overrides`
    properties), and with credentials disabled it sends no token, which the emulators
    do not ask for (measured with gcloud 528: `gcloud storage cp/ls`, `gcloud pubsub`).
    """
    env = dict(info["env"])
    storage = env["STORAGE_EMULATOR_HOST"].rstrip("/")
    pubsub = env["PUBSUB_EMULATOR_HOST"]
    return {
        **env,
        "CLOUDSDK_CORE_PROJECT": info["project"],
        "CLOUDSDK_AUTH_DISABLE_CREDENTIALS": "true",
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE": f"{storage}/",
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_PUBSUB": f"http://{pubsub}/",
    }
