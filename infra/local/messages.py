"""Pure translations the router makes: what Eventarc and Pub/Sub push would send.

No clients and no I/O here, so every format is unit-tested against the documented shapes.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from infra.common.storage_events import eventarc_storage_event, rfc3339
from infra.model.capacity import backoff_seconds
from infra.model.topology import FINALIZED, RetryPolicy

# GCS notification eventType -> the Eventarc CloudEvent type it corresponds to.
STORAGE_EVENT_TYPES = {
    "OBJECT_FINALIZE": FINALIZED,
    "OBJECT_DELETE": "google.cloud.storage.object.v1.deleted",
    "OBJECT_ARCHIVE": "google.cloud.storage.object.v1.archived",
    "OBJECT_METADATA_UPDATE": "google.cloud.storage.object.v1.metadataUpdated",
}


@dataclass(frozen=True)
class Message:
    """The parts of a pulled Pub/Sub message the router and `pull` use."""

    message_id: str
    data: bytes
    attributes: Mapping[str, str]
    publish_time: datetime
    delivery_attempt: int  # 0 when the subscription has no dead-letter policy

    @classmethod
    def from_received(cls, item: Any) -> Message:
        """From a pulled `ReceivedMessage` (the pull API's shape)."""
        return cls(
            message_id=item.message.message_id,
            data=item.message.data,
            attributes=dict(item.message.attributes),
            publish_time=item.message.publish_time,
            delivery_attempt=item.delivery_attempt,
        )


def trigger_fires(message: Message, trigger_event_type: str, trigger_bucket: str) -> bool:
    """Whether a trigger on this bucket and event type fires for a GCS notification."""
    attrs = message.attributes
    return (
        STORAGE_EVENT_TYPES.get(attrs.get("eventType", "")) == trigger_event_type
        and attrs.get("bucketId", "") == trigger_bucket
    )


def storage_cloudevent(message: Message, event_type: str) -> tuple[dict[str, str], bytes]:
    """A GCS notification the trigger fires for, as the binary-mode CloudEvent Eventarc POSTs."""
    attrs = message.attributes
    resource = json.loads(message.data or b"{}")
    resource.setdefault("bucket", attrs.get("bucketId", ""))
    resource.setdefault("name", attrs.get("objectId", ""))
    time = resource.get("updated") or rfc3339(message.publish_time)
    return eventarc_storage_event(resource, message.message_id, event_type, time)


def message_json(message: Message) -> dict[str, object]:
    """A PubsubMessage as push sends it: both spellings of id and time, base64 data."""
    published = rfc3339(message.publish_time)
    return {
        "data": base64.b64encode(message.data).decode(),
        "attributes": dict(message.attributes),
        "messageId": message.message_id,
        "message_id": message.message_id,
        "publishTime": published,
        "publish_time": published,
    }


def push_request(message: Message, subscription_path: str) -> tuple[dict[str, str], bytes]:
    """A push request's headers and JSON body (the wrapped format; deliveryAttempt with a DLQ)."""
    body: dict[str, object] = {"message": message_json(message), "subscription": subscription_path}
    if message.delivery_attempt:
        body["deliveryAttempt"] = message.delivery_attempt
    return {"Content-Type": "application/json"}, json.dumps(body).encode()


def retry_delay(policy: RetryPolicy, attempt: int, factor: float) -> float:
    """Seconds before redelivery after the `attempt`-th failure, scaled by `factor`: Pub/Sub's
    backoff, which the emulator does not apply (`capacity.backoff_seconds`)."""
    return backoff_seconds(policy, attempt) * factor


def object_key(message: Message) -> tuple[str, str]:
    """(object name, generation) a message is about, for delivery counters."""
    attrs = message.attributes
    return attrs.get("objectId", ""), attrs.get("objectGeneration") or attrs.get("generation", "")
