"""The CloudEvent Eventarc POSTs for a Cloud Storage event, shared by the local router and
the backfill tool so both send exactly what the platform does."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any


def rfc3339(moment: datetime) -> str:
    """RFC 3339 in UTC with milliseconds and `Z`, as Pub/Sub and Eventarc write times."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def eventarc_storage_event(
    resource: Mapping[str, Any], event_id: str, event_type: str, time: str
) -> tuple[dict[str, str], bytes]:
    """Headers and body of the binary-mode CloudEvent Eventarc POSTs for a storage event.

    The body is the object resource (the JSON_API_V1 payload); the `ce-*` headers are the
    ones Eventarc sends. Shared by the router and the backfill tool, so both send exactly
    what the platform does.
    """
    bucket, name = resource["bucket"], resource["name"]
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "ce-specversion": "1.0",
        "ce-id": event_id,
        "ce-source": f"//storage.googleapis.com/projects/_/buckets/{bucket}",
        "ce-type": event_type,
        "ce-subject": f"objects/{name}",
        "ce-time": time,
        "ce-bucket": bucket,
    }
    return headers, json.dumps(dict(resource)).encode()
