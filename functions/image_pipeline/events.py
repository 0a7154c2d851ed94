"""Events in and out: storage CloudEvents, Pub/Sub push messages, result events.

Pure functions over plain values; ``docs/architecture.md`` ("Result events") is the
contract for what is built here.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import json
import re
from collections.abc import Mapping
from typing import Any

from image_pipeline import pubsub_limits, result_schema
from image_pipeline.errors import MalformedEvent

OUTPUT_MARKER = "image-pipeline-output"  # custom metadata key on everything we write

# Limits checked on the raw bytes before any JSON parser runs: Python's parser recurses
# per level (a body 100k levels deep raises RecursionError), and nothing we receive needs
# more. The largest body is a push of a 10 MB Pub/Sub message (base64: 4/3 of it, plus the
# envelope): https://cloud.google.com/pubsub/quotas#resource_limits.
MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_JSON_DEPTH = 32
MAX_GENERATION = result_schema.MAX_INT64  # generations and sizes are int64 in the JSON API
MAX_NAME_BYTES = 1024  # https://cloud.google.com/storage/docs/objects#naming


@dataclasses.dataclass(frozen=True)
class StorageObject:
    """The fields of a Cloud Storage object resource that the pipeline uses; a fact the
    resource lacks (a thin notification payload) is None, never a made-up 0 or ""."""

    bucket: str
    name: str
    generation: int
    metageneration: int | None = None
    content_type: str | None = None
    size: int | None = None
    time_created: str | None = None
    metadata: Mapping[str, str] = dataclasses.field(default_factory=dict)
    md5_hash: str | None = None
    crc32c: str | None = None

    def facts(self) -> dict[str, Any]:
        """The facts of this generation that results and docs carry, by their JSON API
        names; only those the resource had."""
        facts = {
            "metageneration": self.metageneration,
            "contentType": self.content_type,
            "size": self.size,
            "md5Hash": self.md5_hash,
            "crc32c": self.crc32c,
            "timeCreated": self.time_created,
        }
        return {key: value for key, value in facts.items() if value is not None}


@dataclasses.dataclass(frozen=True)
class PushMessage:
    """A Pub/Sub message as pushed (functions-framework wraps it in a CloudEvent)."""

    message_id: str
    data_b64: str
    attributes: Mapping[str, str]
    publish_time: str | None

    def data(self) -> bytes:
        try:
            return base64.b64decode(self.data_b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MalformedEvent(f"message {self.message_id}: data is not base64") from exc


@dataclasses.dataclass(frozen=True)
class ObjectDeletion:
    """An ``OBJECT_DELETE`` notification; ``overwritten_by`` is set when a new upload
    replaced the object (the name lives on)."""

    object: StorageObject
    overwritten_by: int | None
    event_time: str | None = None  # the notification's `eventTime`: when it was deleted


@dataclasses.dataclass(frozen=True)
class ResultEvent:
    """A message for the image-events topic: JSON ``data`` plus routing ``attributes``."""

    data: dict[str, Any]
    attributes: dict[str, str]

    def encoded(self) -> bytes:
        return json.dumps(self.data, ensure_ascii=False, separators=(",", ":")).encode()


def parse_time(text: str | None) -> dt.datetime | None:
    """RFC 3339 (with ``Z`` and up to nanoseconds) to an aware datetime; None if absent."""
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text).astimezone(dt.UTC)
    except ValueError as exc:
        raise MalformedEvent(f"{text!r} is not an RFC 3339 time") from exc


# A JSON string, closing quote optional so an unterminated one is consumed once (linear).
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"?', re.DOTALL)
_BRACKETS = bytes.maketrans(b"[]{}", b"()()")
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")


def check_json_limits(raw: bytes) -> None:
    """Refuse a body over ``MAX_BODY_BYTES`` or nested deeper than ``MAX_JSON_DEPTH``
    before it is parsed. Strings are blanked first (a bracket in a name is no nesting);
    then each pass drops the innermost ``()`` pairs, so what is left after
    ``MAX_JSON_DEPTH`` passes is too deep (or never closed). C-speed, no recursion."""
    if len(raw) > MAX_BODY_BYTES:
        raise MalformedEvent(f"body of {len(raw)} bytes is over {MAX_BODY_BYTES}")
    brackets = _JSON_STRING.sub(b"", raw).translate(_BRACKETS, _NOT_BRACKETS)
    for _ in range(MAX_JSON_DEPTH):
        if not brackets:
            return
        brackets = brackets.replace(b"()", b"")
    if b"(" in brackets:
        raise MalformedEvent(f"JSON nested deeper than {MAX_JSON_DEPTH} levels (or unclosed)")


def _json_data(data: object) -> Any:
    if isinstance(data, bytes | str):
        raw = data.encode(errors="surrogatepass") if isinstance(data, str) else data
        check_json_limits(raw)
        try:
            return json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise MalformedEvent("event data is not JSON") from exc
    return data


def _int(value: object, what: str, low: int = 0, high: int = MAX_GENERATION) -> int:
    if isinstance(value, bool | float):  # JSON true/1.5 are not the API's int64 strings
        raise MalformedEvent(f"{what} {value!r} is not an integer")
    try:
        number = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise MalformedEvent(f"{what} {value!r:.80} is not an integer") from None
    if not low <= number <= high:
        raise MalformedEvent(f"{what} {str(number)[:80]} is outside {low}..{high}")
    return number


def _name(value: object, what: str) -> str:
    """A bucket or object name as GCS gives it: a non-empty string, at most 1024 bytes."""
    if not isinstance(value, str) or not value:
        raise MalformedEvent(f"{what} {value!r:.80} is not a non-empty string")
    try:
        size = len(value.encode())
    except UnicodeEncodeError:
        raise MalformedEvent(f"{what} is not valid UTF-8") from None
    if size > MAX_NAME_BYTES:
        raise MalformedEvent(f"{what} of {size} bytes is over {MAX_NAME_BYTES}")
    return value


def storage_object(resource: object) -> StorageObject:
    """Parse an object resource (JSON API v1), as Eventarc and notifications deliver it."""
    resource = _json_data(resource)
    if not isinstance(resource, Mapping):
        raise MalformedEvent("object resource is not a JSON object")
    try:
        bucket, name = resource["bucket"], resource["name"]
    except KeyError as exc:
        raise MalformedEvent(f"object resource has no {exc.args[0]!r}") from None
    metadata = resource.get("metadata") or {}
    texts = {k: str(resource[k]) for k in ("contentType", "md5Hash", "crc32c") if resource.get(k)}
    created = resource.get("timeCreated")
    if created is not None:
        parse_time(str(created))
    metageneration, size = resource.get("metageneration"), resource.get("size")
    return StorageObject(
        bucket=_name(bucket, "bucket"),
        name=_name(name, "object name"),
        generation=_int(resource.get("generation"), "generation", low=1),
        metageneration=None
        if metageneration is None
        else _int(metageneration, "metageneration", 1),
        content_type=texts.get("contentType"),
        size=None if size is None else _int(size, "size"),
        time_created=str(created) if created is not None else None,
        metadata=(
            {str(k): str(v) for k, v in metadata.items()} if isinstance(metadata, Mapping) else {}
        ),
        md5_hash=texts.get("md5Hash"),
        crc32c=texts.get("crc32c"),
    )


def push_message(event_data: object) -> PushMessage:
    """The message inside a push body (raw or as functions-framework converted it)."""
    body = _json_data(event_data)
    message = body.get("message") if isinstance(body, Mapping) else None
    if not isinstance(message, Mapping) or "messageId" not in message:
        raise MalformedEvent("not a Pub/Sub push body: no message.messageId")
    attributes = message.get("attributes") or {}
    if not isinstance(attributes, Mapping):
        raise MalformedEvent("message attributes are not an object")
    return PushMessage(
        message_id=str(message["messageId"]),
        data_b64=str(message.get("data") or ""),
        attributes={str(k): str(v) for k, v in attributes.items()},
        publish_time=message.get("publishTime"),
    )


def diagnosis(message: PushMessage) -> str | None:
    """Why the stage this message was meant for refuses it as malformed, or None: the
    dead-letter recorder stores it, as Pub/Sub passes on no reason of its own."""
    try:
        if message.attributes.get("eventType", "").startswith("OBJECT_"):
            object_deletion(message)
        else:
            result_from_message(message)
    except MalformedEvent as exc:
        return str(exc)
    return None


def object_deletion(message: PushMessage) -> ObjectDeletion | None:
    """The deleted object of a GCS notification, or None for any other event type."""
    attrs = message.attributes
    if attrs.get("eventType") != "OBJECT_DELETE":
        return None
    resource = _json_data(message.data()) if message.data_b64 else {}
    if not isinstance(resource, Mapping):
        raise MalformedEvent("notification payload is not a JSON object")
    try:  # attributes are authoritative; the payload may be absent (payload format NONE)
        merged = {
            **resource,
            "bucket": attrs["bucketId"],
            "name": attrs["objectId"],
            "generation": attrs["objectGeneration"],
        }
    except KeyError as exc:
        raise MalformedEvent(f"notification has no {exc.args[0]} attribute") from None
    overwritten = attrs.get("overwrittenByGeneration")
    return ObjectDeletion(
        object=storage_object(merged),
        overwritten_by=_int(overwritten, "overwrittenByGeneration") if overwritten else None,
        event_time=attrs.get("eventTime"),
    )


def expired_by_lifecycle(deletion: ObjectDeletion, lifecycle_days: int) -> bool:
    """Whether this delete may be the uploads bucket's lifecycle rule (Delete at Age N): it is
    notified as any ``OBJECT_DELETE``
    (https://cloud.google.com/storage/docs/pubsub-notifications), but its Age condition
    holds only from N days after creation (https://cloud.google.com/storage/docs/lifecycle):
    docs/architecture.md, "Expiry or delete"."""
    if not lifecycle_days or deletion.overwritten_by is not None:
        return False
    created = parse_time(deletion.object.time_created)
    deleted = parse_time(deletion.event_time)
    if created is None or deleted is None:  # cannot tell: a delete, as before
        return False
    return deleted - created >= dt.timedelta(days=lifecycle_days)


def result_event(
    status: str, obj: StorageObject, source_event_id: str, **extra: Any
) -> ResultEvent:
    """The result event of ``obj``: its identity and facts, and ``extra``, what its status
    carries (docs/architecture.md, "Result events")."""
    data: dict[str, Any] = {
        "schema": result_schema.SCHEMA,
        "status": status,
        "bucket": obj.bucket,
        "name": obj.name,
        "generation": obj.generation,
        **obj.facts(),
        "sourceEventId": source_event_id,
        **extra,
    }
    attributes = {
        "eventType": f"image.{status}",
        "bucket": obj.bucket,
        "objectId": obj.name,
        "generation": str(obj.generation),
        "contentType": obj.content_type or "",
    }
    if status == "failed":
        attributes["reason"] = extra["error"]["reason"]
    return ResultEvent(data=data, attributes=pubsub_limits.fit_attributes(attributes))


def result_from_message(message: PushMessage) -> dict[str, Any]:
    """The data of a result event, checked against the schema its publishers write
    (``image_pipeline.result_schema``): anything off it is refused, never stored."""
    data = _json_data(message.data())
    found = result_schema.problem(data)
    if found is not None:
        raise MalformedEvent(f"message {message.message_id}: {found}")
    return dict(data)
