"""Firestore documents as plain dicts: ids, generation ordering, dead-letter records.

Ordering (docs/architecture.md, "Firestore"): a result is written only when it ranks above
the stored doc by (generation, status), ``failed < processed < expired < deleted`` within a
generation, then by the rank of the run that made it (image_pipeline.thumbnails), else by
``madeAt``; equal is a duplicate, lower is stale.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
from collections.abc import Mapping
from typing import Any

from image_pipeline.events import PushMessage, diagnosis, parse_time
from image_pipeline.result_schema import FACTS, IMAGE_FIELDS, is_int


class _ServerTime:
    """Placeholder the store replaces with its own clock (Firestore: SERVER_TIMESTAMP)."""

    def __repr__(self) -> str:
        return "SERVER_TIME"


SERVER_TIME: Any = _ServerTime()
_STATUS_RANK = {"failed": 0, "processed": 1, "expired": 2, "deleted": 3}
# Results that describe an original that is gone: the doc keeps what its generation had.
_GONE = ("expired", "deleted")
DEAD_LETTER_PREFIX = "CloudPubSubDeadLetter"


class Decision(enum.Enum):
    WRITE = "write"
    DUPLICATE = "duplicate"
    STALE = "stale"


def image_doc_id(bucket: str, name: str) -> str:
    """A valid Firestore id for any object name: no '/', bounded length, deterministic."""
    return hashlib.sha256(f"{bucket}/{name}".encode()).hexdigest()


def dead_letter_id(message_id: str) -> str:
    """``dead_letters/{id}`` of a dead letter: the same for every redelivery of one message
    (recording is idempotent), any message id path-safe (no '/'), and spread evenly over the
    key space instead of following Pub/Sub's increasing ids, which Firestore serves best
    (https://cloud.google.com/firestore/docs/best-practices#hotspots)."""
    return hashlib.sha256(message_id.encode()).hexdigest()[:32]


def decide(stored: Mapping[str, Any] | None, result: Mapping[str, Any]) -> Decision:
    """Whether ``result`` (a result event's data) replaces the ``stored`` doc."""
    if stored is None:
        return Decision.WRITE
    ours = (result["generation"], _STATUS_RANK[result["status"]])
    theirs = (int(stored.get("generation", 0)), _STATUS_RANK.get(stored.get("status", ""), -1))
    if ours != theirs:
        return _order(ours, theirs)
    fingerprint, run = result.get("outputFingerprint"), result.get("outputsGeneration")
    stored_run = stored.get("outputsGeneration")
    if result["status"] == "processed" and (run is not None or is_int(stored_run)):
        # Two processed results by the rank of their runs, (outputsGeneration, fingerprint),
        # the order make_thumbnail removes by; a result or doc without a rank (from before
        # runs were ranked) ranks below any with one.
        return _order(
            (-1 if run is None else run, fingerprint or ""),
            (stored_run if is_int(stored_run) else -1, str(stored.get("outputFingerprint") or "")),
        )
    if fingerprint and stored.get("outputFingerprint") != fingerprint:
        later = _later(result.get("madeAt"), stored.get("madeAt"))
        return Decision.WRITE if later else Decision.STALE
    return Decision.DUPLICATE


def _order(ours: tuple[Any, ...], theirs: tuple[Any, ...]) -> Decision:
    if ours == theirs:
        return Decision.DUPLICATE
    return Decision.WRITE if ours > theirs else Decision.STALE


def _later(made_at: str | None, stored_at: object) -> bool:
    """A doc from before ``madeAt`` existed is older than any result that has one."""
    ours = parse_time(made_at)
    if ours is None:
        return False
    theirs = parse_time(stored_at) if isinstance(stored_at, str) else None
    return theirs is None or ours > theirs


def image_doc(
    stored: Mapping[str, Any] | None,
    result: Mapping[str, Any],
    now: dt.datetime,
    metadata_ms: float,
) -> dict[str, Any]:
    """The ``images/{id}`` document after ``result`` (a result event's data) is applied:
    what each status keeps of the stored doc, docs/architecture.md ("Firestore")."""
    status = result["status"]
    image = result.get("image") or {}
    timings = {**(result.get("timings") or {}), "metadata_ms": round(metadata_ms, 3)}
    created = parse_time(result.get("timeCreated"))
    if created is not None and status not in _GONE:
        timings["total_ms"] = round((now - created).total_seconds() * 1000, 3)
    fields: dict[str, Any] = {
        "bucket": result["bucket"],
        "name": result["name"],
        "generation": result["generation"],
        "status": status,
        "thumbnails": list(result.get("thumbnails") or []),
        "error": result.get("error") if status == "failed" else None,
        "sourceEventId": result.get("sourceEventId"),
        "updatedAt": SERVER_TIME,
        "timings": timings,
    }
    same_generation = stored is not None and stored.get("generation") == result["generation"]
    held = stored if stored is not None and same_generation else {}
    for key in (*FACTS, "madeAt", "outputsGeneration"):
        value = result.get(key)
        if value is None and key in FACTS:
            value = held.get(key)
        if value is not None:
            fields[key] = value
    if status not in _GONE:  # what the image was, and how its outputs were made
        fields |= {key: image.get(key) for key in IMAGE_FIELDS}
        fields |= {key: result.get(key) for key in ("rule", "outputFingerprint")}
        fields["metadata"] = result.get("metadata") or {}
    kept = held if status in _GONE else {}
    if status == "expired":
        fields["originalExpiredAt"] = result.get("expiredAt")
        for key in ("thumbnails", "error", "timings"):
            if key in kept:
                fields[key] = kept[key]
    return {**kept, **fields}


def dead_letter_record(message: PushMessage) -> dict[str, Any]:
    """``dead_letters/{dead_letter_id}``: the original message, split from Pub/Sub's own notes."""
    original = {k: v for k, v in message.attributes.items() if not k.startswith(DEAD_LETTER_PREFIX)}
    notes = {k: v for k, v in message.attributes.items() if k.startswith(DEAD_LETTER_PREFIX)}
    subscription = notes.get(f"{DEAD_LETTER_PREFIX}SourceSubscription", "")
    attempts = notes.get(f"{DEAD_LETTER_PREFIX}SourceDeliveryCount", "")
    return {
        "messageId": message.message_id,
        "data": message.data_b64,
        "attributes": original,
        "deadLetterAttributes": notes,
        "sourceSubscription": subscription.rsplit("/", 1)[-1],
        "deliveryAttempt": int(attempts) if attempts.isdigit() else None,
        "publishTime": message.publish_time,
        "malformed": diagnosis(PushMessage(message.message_id, message.data_b64, original, None)),
        "recordedAt": SERVER_TIME,
        "status": "recorded",
        "replayCount": 0,
    }
