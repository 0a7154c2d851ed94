"""The CloudEvent Eventarc POSTs for a Cloud Storage event, shared by the local router and
the backfill tool so both send exactly what the platform does."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent

# CloudEvents HTTP binding 1.0.2, 3.1.3.2: space, '"', '%' and everything outside printable
# ASCII (U+0021..U+007E) is percent-encoded (as UTF-8). `quote` never encodes letters,
# digits and "_.-~"; these are the rest of the printable range left as they are.
# https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/bindings/http-protocol-binding.md#3132-http-header-values
_HEADER_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"%')


def rfc3339(moment: datetime) -> str:
    """RFC 3339 in UTC with milliseconds and `Z`, as Pub/Sub and Eventarc write times."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def header_value(value: str) -> str:
    """A CloudEvent attribute as an HTTP header value, percent-encoded per the binding.

    Object names may hold any Unicode (CJK, emoji, RTL marks) and control characters; raw,
    they are not valid header bytes (`requests` refuses non-Latin-1, gunicorn answers 400 to
    control characters).
    """
    return quote(value, safe=_HEADER_SAFE)


def eventarc_storage_event(
    resource: Mapping[str, Any], event_id: str, event_type: str, time: str
) -> tuple[dict[str, str], bytes]:
    """Headers and body of the binary-mode CloudEvent Eventarc POSTs for a storage event.

    The body is the object resource (the JSON_API_V1 payload), the `ce-*` headers the ones
    Eventarc sends. The `cloudevents` SDK (1.12) builds them but does not percent-encode
    (nor decode, so functions-framework hands the function the encoded `subject`): the
    functions read the object name from the body only.
    """
    bucket, name = resource["bucket"], resource["name"]
    event = CloudEvent(
        {
            "specversion": "1.0",
            "id": event_id,
            "source": f"//storage.googleapis.com/projects/_/buckets/{bucket}",
            "type": event_type,
            "subject": f"objects/{name}",
            "time": time,
            "bucket": bucket,
            "datacontenttype": "application/json; charset=utf-8",
        },
        dict(resource),
    )
    raw_headers, body = to_binary(event, data_marshaller=json.dumps)
    headers = {"Content-Type": raw_headers.pop("content-type")}
    headers.update({key: header_value(str(value)) for key, value in raw_headers.items()})
    return headers, body
