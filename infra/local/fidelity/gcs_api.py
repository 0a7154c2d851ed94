"""Pure: what a Cloud Storage JSON API request does, and how Cloud Storage answers it.

The GCS front (`gcs_front`) reads each request with `parse`, refuses what Cloud Storage
would refuse (`refusal`, `precondition_failure`) and answers in its words (`error`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from infra.common.object_names import name_error

# https://cloud.google.com/storage/docs/request-preconditions: the target's, and on copy
# and rewrite the source's (`ifSource...`).
CONDITIONS = (
    "ifGenerationMatch",
    "ifGenerationNotMatch",
    "ifMetagenerationMatch",
    "ifMetagenerationNotMatch",
)
# Custom metadata is at most 8 KiB per object, keys and values together
# (https://cloud.google.com/storage/quotas#objects), and each key and value is sent as an
# HTTP header value by the XML API and on downloads (`x-goog-meta-*`), where NUL, CR and LF
# cannot appear (RFC 9110, section 5.5).
MAX_METADATA_BYTES = 8 * 1024
_NOT_IN_HEADERS = re.compile(r"[\x00\r\n]")
_BUCKET = r"storage/v1/b/([^/]+)"
_OBJECT = rf"{_BUCKET}/o/([^/]+)"
_ROUTES: tuple[tuple[str, str, str], ...] = (
    # (verbs, path pattern, JSON API method); the groups are bucket, object, bucket, object.
    ("GET", r"/storage/v1/b", "buckets.list"),
    ("POST", r"/storage/v1/b", "buckets.insert"),
    ("GET", rf"/{_BUCKET}", "buckets.get"),
    ("DELETE", rf"/{_BUCKET}", "buckets.delete"),
    ("GET", rf"/{_BUCKET}/storageLayout", "buckets.getStorageLayout"),
    ("GET", rf"/{_BUCKET}/o", "objects.list"),
    ("GET HEAD", rf"/(?:download/)?{_OBJECT}", "objects.get"),
    ("PATCH", rf"/{_OBJECT}", "objects.patch"),
    ("PUT", rf"/{_OBJECT}", "objects.update"),
    ("DELETE", rf"/{_OBJECT}", "objects.delete"),
    ("POST", rf"/{_OBJECT}/compose", "objects.compose"),
    ("POST PUT DELETE", rf"/(?:resumable/)?upload/{_BUCKET}/o", "objects.insert"),
    ("POST", rf"/{_OBJECT}/copyTo/b/([^/]+)/o/([^/]+)", "objects.copy"),
    ("POST", rf"/{_OBJECT}/rewriteTo/b/([^/]+)/o/([^/]+)", "objects.rewrite"),
)
CREATES = frozenset({"objects.insert", "objects.copy", "objects.rewrite", "objects.compose"})
WRITES = CREATES | {"objects.patch", "objects.update", "objects.delete"}


class Refused(Exception):
    """A request Cloud Storage answers with an error: status, reason and message."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


@dataclass
class StorageRequest:
    """One request to the front, as far as Cloud Storage's rules need to know it."""

    identity: str  # the listener it came in on ("" the stack's own; else a service account)
    verb: str
    target: str  # path and query, as sent
    method: str  # the JSON API method, e.g. "objects.insert"
    bucket: str = ""
    object: str = ""  # the object read or written (a write's destination)
    # Copy, rewrite and compose: the objects read, each with its preconditions.
    sources: tuple[tuple[str, str, dict[str, str]], ...] = ()
    conditions: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    resource: dict[str, Any] = field(default_factory=dict)  # the object resource sent
    replaces: bool = False  # a write that replaces a live generation (set by the front)

    @property
    def writes(self) -> bool:
        return self.method in WRITES


def error(status: int, reason: str, message: str) -> bytes:
    """A JSON API error body (https://cloud.google.com/storage/docs/json_api/v1/status-codes)."""
    detail = {"domain": "global", "reason": reason, "message": message}
    return json.dumps({"error": {"code": status, "message": message, "errors": [detail]}}).encode()


def parse(identity: str, verb: str, target: str, content_type: str, body: bytes) -> StorageRequest:
    """What the request does; raises Refused for one that is not the JSON API."""
    url = urlsplit(target)
    params = {key: values[-1] for key, values in parse_qs(url.query).items()}
    for verbs, pattern, method in _ROUTES:  # noqa: B007 (the one found is used below)
        found = re.fullmatch(pattern, url.path)
        if verb in verbs.split() and found:
            break
    else:
        # The XML API, batches and the fake's own endpoints would bypass the front's rules.
        raise Refused(404, "notFound", f"{verb} {url.path} is not served by the local stack")
    names = [unquote(part) for part in found.groups()]
    request = StorageRequest(identity, verb, target, method, params=params)
    request.conditions = {c: params[c] for c in CONDITIONS if c in params}
    request.resource = _resource(params, content_type, body) if verb != "GET" else {}
    if method in ("objects.copy", "objects.rewrite"):
        conditions = {
            c: params["ifSource" + c[2:]] for c in CONDITIONS if "ifSource" + c[2:] in params
        }
        request.sources = ((names[0], names[1], conditions),)
        names = names[2:]
    if method == "objects.compose":
        request.sources = tuple(
            (names[0], str(source.get("name", "")), _strings(source.get("objectPreconditions")))
            for source in request.resource.get("sourceObjects") or []
            if isinstance(source, dict)
        )
        request.resource = _strings(request.resource.get("destination"), keep=True)
    request.bucket = names[0] if names else ""
    request.object = names[1] if len(names) > 1 else str(request.resource.get("name") or "")
    if method == "objects.insert":
        request.object = params.get("name") or request.object
    return request


def _strings(value: Any, keep: bool = False) -> dict[str, Any]:
    """A JSON object's entries (as text, unless `keep`), or {} for anything else."""
    if not isinstance(value, dict):
        return {}
    return dict(value) if keep else {str(k): str(v) for k, v in value.items()}


def _resource(params: Mapping[str, str], content_type: str, body: bytes) -> dict[str, Any]:
    """The object resource a write sends: its JSON body, or a multipart upload's first part."""
    if params.get("uploadType") == "media" or "upload_id" in params or not body:
        return {}  # the bytes of an object, not its resource
    if params.get("uploadType") == "multipart":
        boundary = re.search(r"""boundary=["']?([^"';]+)""", content_type)
        if boundary is None:
            raise Refused(400, "invalid", "multipart upload without a boundary")
        parts = body.split(b"--" + boundary.group(1).encode(), 2)
        # The first part's headers end at a blank line (CRLF, or LF as some clients write).
        body = re.split(rb"\r?\n\r?\n", parts[1], maxsplit=1)[-1] if len(parts) > 2 else b""
    try:
        resource = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Refused(400, "parseError", "the request body is not JSON") from None
    return resource if isinstance(resource, dict) else {}


def refusal(request: StorageRequest) -> Refused | None:
    """What Cloud Storage refuses about a write before looking at any object: a name it
    does not allow, custom metadata it does not take."""
    creates = request.method in CREATES and request.verb == "POST"
    if creates and (problem := name_error(request.object)):
        return Refused(400, "invalid", problem)
    metadata = request.resource.get("metadata") or {}
    if not isinstance(metadata, dict):
        return Refused(400, "invalid", "metadata must be an object of strings")
    size = 0
    for key, value in metadata.items():
        if value is None:  # a patch removes the key
            continue
        if not isinstance(value, str) or not key or _NOT_IN_HEADERS.search(key + value):
            return Refused(400, "invalid", f"Invalid metadata key or value: {key!r}")
        size += len(key.encode()) + len(value.encode())
    if size > MAX_METADATA_BYTES:
        message = f"Metadata is {size} bytes; the maximum is {MAX_METADATA_BYTES} bytes"
        return Refused(400, "invalid", message)
    return None


def precondition_failure(
    conditions: Mapping[str, str], live: Mapping[str, Any] | None
) -> Refused | None:
    """412 when a condition does not hold for the `live` object (None: no live generation,
    whose generation is 0: `ifGenerationMatch=0` asks for that), else None."""
    for name, expected in conditions.items():
        field = "metageneration" if "Metageneration" in name else "generation"
        actual = str(live.get(field)) if live else ("0" if field == "generation" else None)
        if actual is None or (actual == expected) == name.endswith("NotMatch"):
            return Refused(412, "conditionNotMet", CONDITION_NOT_MET)
    return None


CONDITION_NOT_MET = "At least one of the pre-conditions you specified did not hold."


def storage_layout(bucket: Mapping[str, Any]) -> dict[str, Any]:
    """`buckets.getStorageLayout` of a bucket resource: a flat namespace, where it is
    (https://cloud.google.com/storage/docs/json_api/v1/buckets/getStorageLayout)."""
    return {
        "kind": "storage#storageLayout",
        "bucket": bucket.get("name"),
        "location": bucket.get("location"),
        "locationType": bucket.get("locationType", "region"),
        "hierarchicalNamespace": {"enabled": False},
    }


def notifications(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, now: str
) -> list[tuple[bytes, dict[str, str]]]:
    """The Pub/Sub notifications (data, attributes) of a write that took an object from
    `before` to `after` (None: no live generation). The data is the object's whole resource,
    the deleted generation's as it was; an overwrite is a finalize of the new generation and
    a delete of the old (https://cloud.google.com/storage/docs/pubsub-notifications)."""
    old, new = (str(r["generation"]) if r else None for r in (before, after))
    events = []
    if after is not None:
        kind = "OBJECT_METADATA_UPDATE" if old == new else "OBJECT_FINALIZE"
        extra = {"overwroteGeneration": old} if old and kind == "OBJECT_FINALIZE" else {}
        events.append((after, kind, str(after.get("updated") or now), extra))
    if before is not None and old != new:
        extra = {"overwrittenByGeneration": new} if new else {}
        events.append((before, "OBJECT_DELETE", now, extra))
    return [
        (
            json.dumps(resource).encode(),
            {
                "bucketId": str(resource["bucket"]),
                "objectId": str(resource["name"]),
                "objectGeneration": str(resource["generation"]),
                "eventType": kind,
                "eventTime": time,
                "payloadFormat": "JSON_API_V1",
                **extra,
            },
        )
        for resource, kind, time, extra in events
    ]
