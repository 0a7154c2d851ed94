"""Dead letters: list what the recorder stored, show one, replay to the original topic.

A replay publishes the recorded data and original attributes to the topic of the record's
source subscription (resolved through the topology), so every subscription of that topic
sees the message again, as after a normal publish; the functions are idempotent, which is
what makes that safe. The record is claimed in a Firestore transaction before publishing, so
two operators replaying the same record publish it once, and a second replay is a no-op
unless forced.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from infra.ops import target as targets

RECORDED, REPLAYED = "recorded", "replayed"
_PUBLISH_TIMEOUT = 60


def decoded_data(record: Mapping[str, Any]) -> Any:
    """The message payload: parsed JSON when it is JSON, else text, else base64 as stored."""
    try:
        raw = base64.b64decode(record.get("data") or "", validate=True)
        text = raw.decode()
    except (binascii.Error, UnicodeDecodeError):
        return record.get("data")
    try:
        return json.loads(text)
    except ValueError:
        return text


def event_of(record: Mapping[str, Any]) -> str:
    """What the message was about: its event type and object, from the routing attributes."""
    attrs = record.get("attributes") or {}
    kind = attrs.get("eventType", "?")
    bucket = attrs.get("bucket") or attrs.get("bucketId") or ""
    name = attrs.get("objectId", "")
    return f"{kind} gs://{bucket}/{name}" if name else kind


def reason_of(record: Mapping[str, Any]) -> str:
    """Why it was dead-lettered, as far as the message itself tells.

    A failure reason when the event carries one (attribute `reason`, or `error.reason` in
    the data); otherwise the message was fine and its consumer kept failing on it.
    """
    attrs = record.get("attributes") or {}
    if attrs.get("reason"):
        return attrs["reason"]
    data = decoded_data(record)
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and error.get("reason"):
        return str(error["reason"])
    return f"consumer failed {record.get('deliveryAttempt', '?')} deliveries"


def summary(record: Mapping[str, Any]) -> dict[str, Any]:
    """One row of `list` (and of the gallery's dead-letter table)."""
    return {
        "id": record.get("messageId"),
        "status": record.get("status", RECORDED),
        "subscription": record.get("sourceSubscription"),
        "attempts": record.get("deliveryAttempt"),
        "replays": record.get("replayCount", 0),
        "event": event_of(record),
        "reason": reason_of(record),
        "recordedAt": record.get("recordedAt"),
    }


def load_all(target: targets.Target) -> list[dict[str, Any]]:
    """Every record, oldest first (dead letters are few; sorting here avoids an index)."""
    docs = target.firestore.collection(target.dead_letters_collection).stream()
    records = [{"messageId": doc.id, **doc.to_dict()} for doc in docs]
    return sorted(records, key=lambda r: (str(r.get("recordedAt") or ""), r["messageId"]))


def print_table(rows: list[dict[str, Any]], out: TextIO) -> None:
    columns = ("id", "status", "subscription", "attempts", "replays", "event", "reason")
    cells = [[str(row.get(c, "")) for c in columns] for row in rows]
    widths = [max([len(c), *(len(line[i]) for line in cells)]) for i, c in enumerate(columns)]
    for line in [[c.upper() for c in columns], *cells]:
        print("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip(), file=out)


def replay_one(target: targets.Target, message_id: str, force: bool = False) -> str | None:
    """Re-publishes one record; returns the new message id, or None if already replayed."""
    from google.cloud import firestore

    db = target.firestore
    ref = db.collection(target.dead_letters_collection).document(message_id)

    @firestore.transactional
    def claim(transaction: Any) -> tuple[dict[str, Any], str] | None:
        snap = ref.get(transaction=transaction)
        if not snap.exists:
            raise KeyError(f"no dead letter {message_id!r}")
        record = snap.to_dict()
        if record.get("status") == REPLAYED and not force:
            return None
        topic = target.source_topic(record["sourceSubscription"])  # fails before the claim
        transaction.update(
            ref,
            {
                "status": REPLAYED,
                "replayCount": firestore.Increment(1),
                "replayedAt": firestore.SERVER_TIMESTAMP,
            },
        )
        return record, topic

    claimed = claim(db.transaction())
    if claimed is None:
        return None
    record, topic = claimed
    try:
        data = base64.b64decode(record.get("data") or "")
        attributes = {str(k): str(v) for k, v in (record.get("attributes") or {}).items()}
        return target.publisher.publish(topic, data, **attributes).result(_PUBLISH_TIMEOUT)
    except Exception:
        # Not published: give the claim back so the record can be replayed again.
        ref.update(
            {
                "status": record.get("status", RECORDED),
                "replayCount": firestore.Increment(-1),
                "replayedAt": record.get("replayedAt", firestore.DELETE_FIELD),
            }
        )
        raise


def replay(target: targets.Target, ids: list[str], force: bool, out: TextIO, err: TextIO) -> int:
    """Replays the given records; returns how many could not be found."""
    missing = 0
    for message_id in ids:
        try:
            new_id = replay_one(target, message_id, force)
        except KeyError as exc:
            missing += 1
            print(f"error: {exc.args[0]}", file=err)
            continue
        if new_id is None:
            print(f"{message_id}: already replayed, skipped (--force replays again)", file=out)
        else:
            print(f"{message_id}: replayed as message {new_id}", file=out)
    return missing


def main(argv: list[str] | None = None, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/dead-letters",
        description="List, show and replay the dead letters recorded in Firestore.",
    )
    common = argparse.ArgumentParser(add_help=False)
    targets.add_arguments(common)
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", parents=[common], help="one line per dead letter")
    listing.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    show = commands.add_parser("show", parents=[common], help="one record in full, data decoded")
    show.add_argument("id")
    again = commands.add_parser("replay", parents=[common], help="re-publish to the original topic")
    which = again.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every record not yet replayed")
    which.add_argument("ids", nargs="*", default=[], metavar="ID")
    again.add_argument("--force", action="store_true", help="replay already replayed records")
    args = parser.parse_args(argv)
    target = targets.from_arguments(args)

    if args.command == "list":
        rows = [summary(r) for r in load_all(target)]
        if args.json:
            for row in rows:
                print(json.dumps(row, default=str), file=out)
        else:
            print_table(rows, out)
        return 0
    if args.command == "show":
        doc = target.firestore.collection(target.dead_letters_collection).document(args.id).get()
        if not doc.exists:
            print(f"error: no dead letter {args.id!r}", file=err)
            return 1
        record = {"messageId": doc.id, **doc.to_dict()}
        record["decodedData"] = decoded_data(record)
        print(json.dumps(record, indent=2, default=str), file=out)
        return 0
    ids = args.ids
    if args.all:
        records = load_all(target)
        ids = [r["messageId"] for r in records if args.force or r.get("status") != REPLAYED]
        if not ids:
            print("nothing to replay", file=out)
    return 1 if replay(target, ids, args.force, out, err) else 0


if __name__ == "__main__":
    sys.exit(main())
