"""`scripts/dead-letters`: list, show, replay and discard the dead letters the recorder stored
(docs/deploy-and-operate.md, "Dead letters"). A replay claims its record in a Firestore
transaction before it publishes, so it publishes once however many operators run it, and
gives the claim back when the publish fails. A discarded record is kept and marked.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import getpass
import json
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from image_pipeline.records import SERVER_TIME
from infra.common import arguments
from infra.common.terminal import printable, table
from infra.ops import target as targets

RECORDED, REPLAYED, DISCARDED = "recorded", "replayed", "discarded"


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


def subject_of(record: Mapping[str, Any]) -> tuple[str, str, Mapping[str, Any]]:
    """The object a message was about (bucket, name) and the custom metadata it carries: from
    the routing attributes, else from the data (a notification's object resource, a result
    event's body)."""
    attrs = record.get("attributes") or {}
    data = decoded_data(record)
    data = data if isinstance(data, dict) else {}
    bucket = attrs.get("bucket") or attrs.get("bucketId") or str(data.get("bucket") or "")
    name = attrs.get("objectId") or str(data.get("name") or "")
    metadata = data.get("metadata")
    return bucket, name, metadata if isinstance(metadata, dict) else {}


def event_of(record: Mapping[str, Any]) -> str:
    """What the message was about: its event type and object, from the routing attributes."""
    kind = (record.get("attributes") or {}).get("eventType", "?")
    bucket, name, _ = subject_of(record)
    return f"{kind} gs://{bucket}/{name}" if name else kind


def reason_of(record: Mapping[str, Any]) -> str:
    """Why it was dead-lettered, as far as the message itself tells (else its consumer kept
    failing on a sound message)."""
    if record.get("malformed"):  # set by the recorder: the stage refused it as malformed
        return f"malformed: {record['malformed']}"
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
        "id": record.get("id"),
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
    docs = target.documents.stream(target.dead_letters_collection)
    records = [{"id": doc_id, **doc} for doc_id, doc in docs]
    return sorted(records, key=lambda r: (str(r.get("recordedAt") or ""), r["id"]))


def about_uploads(target: targets.Target) -> dict[str, list[tuple[str, Mapping[str, Any]]]]:
    """The records about each upload by its name: their ids and the metadata each carries."""
    found: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
    for record in load_all(target):
        bucket, name, metadata = subject_of(record)
        if bucket == target.uploads_bucket and name:
            found.setdefault(name, []).append((record["id"], metadata))
    return found


def print_table(rows: list[dict[str, Any]], out: TextIO) -> None:
    """Aligned columns; every cell escaped (names and reasons come from the messages)."""
    columns = ("id", "status", "subscription", "attempts", "replays", "event", "reason")
    cells = [[row.get(c, "") for c in columns] for row in rows]
    print(table([c.upper() for c in columns], cells), file=out)


class NotReplayable(Exception):
    """A record replay cannot publish; the message says why."""


@dataclass(frozen=True)
class Skipped:
    """A record replay left alone on purpose (`--force` replays it anyway)."""

    why: str


def _topic_of(target: targets.Target, record: Mapping[str, Any]) -> str:
    subscription = record.get("sourceSubscription")
    if not subscription:
        raise NotReplayable("the record names no source subscription")
    try:
        return target.source_topic(subscription)
    except KeyError:
        raise NotReplayable(
            f"source subscription {printable(subscription)} is not in this pipeline's topology"
        ) from None


def _skip(record: Mapping[str, Any], force: bool) -> str:
    """Why a replay leaves the record alone ("" when it replays it)."""
    status = record.get("status")
    return f"already {status}" if status in (REPLAYED, DISCARDED) and not force else ""


def replay_one(target: targets.Target, key: str, force: bool = False) -> str | Skipped:
    """Re-publishes one record: the new message id, or why it was skipped. NotReplayable,
    before anything changes, for a missing record or one whose topic cannot be found."""
    collection = target.dead_letters_collection
    claimed: tuple[dict[str, Any], str] | Skipped | None = None

    def claim(record: dict[str, Any] | None) -> dict[str, Any] | None:
        nonlocal claimed  # the transaction may run this more than once: the last run counts
        if record is None:
            raise NotReplayable("no such dead letter")
        if skip := _skip(record, force):
            claimed = Skipped(skip)
            return None
        claimed = record, _topic_of(target, record)  # fails before the claim
        replays = record.get("replayCount", 0) + 1
        return {**record, "status": REPLAYED, "replayCount": replays, "replayedAt": SERVER_TIME}

    target.documents.update(collection, key, claim)
    assert claimed is not None  # claim ran, or raised
    if isinstance(claimed, Skipped):
        return claimed
    record, topic = claimed

    def give_back(doc: dict[str, Any] | None) -> dict[str, Any] | None:
        if doc is None:
            return None
        restored = {**doc, "status": record.get("status", RECORDED)}
        restored["replayCount"] = doc.get("replayCount", 1) - 1
        restored.pop("replayedAt", None)
        if "replayedAt" in record:
            restored["replayedAt"] = record["replayedAt"]
        return restored

    try:
        data = base64.b64decode(record.get("data") or "")
        attributes = {str(k): str(v) for k, v in (record.get("attributes") or {}).items()}
        return target.publish(topic, data, attributes)
    except Exception:
        # Not published: give the claim back so the record can be replayed again.
        target.documents.update(collection, key, give_back)
        raise


def replay(target: targets.Target, ids: list[str], force: bool, out: TextIO, err: TextIO) -> int:
    """Replays each record on its own (one that fails is reported and the rest go on);
    returns how many could not be replayed."""
    failed: list[str] = []
    for given_id in ids:
        shown = printable(given_id)
        try:
            result = replay_one(target, given_id, force)
        except NotReplayable as exc:
            failed.append(given_id)
            print(
                f"{shown}: cannot replay: {exc}; `scripts/dead-letters discard {shown}` "
                "sets it aside",
                file=err,
            )
            continue
        except Exception as exc:  # a publish that failed: the claim was given back
            failed.append(given_id)
            print(f"{shown}: not replayed: {type(exc).__name__}: {printable(exc)}", file=err)
            continue
        if isinstance(result, Skipped):
            print(f"{shown}: {result.why}, skipped (--force replays it)", file=out)
        else:
            print(f"{shown}: replayed as message {result}", file=out)
    if failed:
        listed = ", ".join(printable(i) for i in failed)
        print(f"{len(failed)} of {len(ids)} not replayed: {listed}", file=err)
    return len(failed)


def dry_run(target: targets.Target, ids: list[str], force: bool, out: TextIO) -> int:
    """What `replay` would do with these ids, said per id; publishes and changes nothing."""
    for given_id in ids:
        record = target.documents.get(target.dead_letters_collection, given_id)
        if record is None:
            what = "no such dead letter"
        else:
            skip = _skip(record, force)
            what = f"{skip}, would be skipped (--force replays it)" if skip else "would be replayed"
        print(f"{printable(given_id)}: {what} (dry run)", file=out)
    return 0


def operator() -> str:
    """Who is running the tool, for `discardedBy`: user@host."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name in some containers
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def discard_one(target: targets.Target, key: str, by: str, note: str | None) -> bool:
    """Marks one record discarded (kept, with who, when and why); False if it already was,
    KeyError if there is none."""

    def mark(record: dict[str, Any] | None) -> dict[str, Any] | None:
        if record is None:
            raise KeyError(key)
        if record.get("status") == DISCARDED:
            return None
        change = {"status": DISCARDED, "discardedAt": SERVER_TIME, "discardedBy": by}
        return {**record, **change, **({"discardNote": note} if note else {})}

    return target.documents.update(target.dead_letters_collection, key, mark) is not None


def discard(
    target: targets.Target, ids: list[str], by: str, note: str | None, out: TextIO, err: TextIO
) -> int:
    """Discards the given records; returns how many could not be found."""
    missing = 0
    for given_id in ids:
        shown = printable(given_id)
        try:
            changed = discard_one(target, given_id, by, note)
        except KeyError:
            missing += 1
            print(f"error: no dead letter {shown}", file=err)
            continue
        print(f"{shown}: {'discarded' if changed else 'already discarded'}", file=out)
    return missing


def main(
    argv: list[str] | None = None, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    parser = arguments.Parser(
        prog="scripts/dead-letters",
        description="List, show, replay and discard the dead letters recorded in Firestore.",
    )
    common = arguments.Parser(add_help=False)
    targets.add_arguments(common)
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", parents=[common], help="one line per dead letter")
    listing.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    show = commands.add_parser("show", parents=[common], help="one record in full, data decoded")
    show.add_argument("id", type=arguments.doc_id)
    again = commands.add_parser("replay", parents=[common], help="re-publish to the original topic")
    which = again.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--all", action="store_true", help="every record not yet replayed (never discarded ones)"
    )
    which.add_argument("ids", nargs="*", default=[], metavar="ID", type=arguments.doc_id)
    again.add_argument(
        "--force", action="store_true", help="replay replayed records (and, by ID, discarded ones)"
    )
    again.add_argument(
        "--dry-run", action="store_true", help="list what would be replayed; publish nothing"
    )
    drop = commands.add_parser(
        "discard", parents=[common], help="set records aside for good (kept, never replayed)"
    )
    drop.add_argument("ids", nargs="+", metavar="ID", type=arguments.doc_id)
    drop.add_argument("--by", default=None, help="who discards (default: user@host)")
    drop.add_argument("--note", default=None, help="why, stored with the record")
    args = parser.parse_args(argv)
    out, err = out or sys.stdout, err or sys.stderr
    return targets.run_tool(args, lambda target: _command(args, target, out, err), err)


def _command(args: argparse.Namespace, target: targets.Target, out: TextIO, err: TextIO) -> int:
    if args.command == "list":
        rows = [summary(r) for r in load_all(target)]
        if args.json:
            for row in rows:
                print(json.dumps(row, default=str), file=out)
        else:
            print_table(rows, out)
        return 0
    if args.command == "show":
        doc = target.documents.get(target.dead_letters_collection, args.id)
        if doc is None:
            print(f"error: no dead letter {printable(args.id)}", file=err)
            return 1
        record = {"id": args.id, **doc}
        record["decodedData"] = decoded_data(record)
        print(json.dumps(record, indent=2, default=str), file=out)
        return 0
    if args.command == "discard":
        return 1 if discard(target, args.ids, args.by or operator(), args.note, out, err) else 0
    ids = args.ids
    if args.all:
        records = [r for r in load_all(target) if r.get("status") != DISCARDED]
        ids = [r["id"] for r in records if args.force or r.get("status") != REPLAYED]
        if not ids:
            print("nothing to replay", file=out)
    if args.dry_run:
        return dry_run(target, ids, args.force, out)
    return 1 if replay(target, ids, args.force, out, err) else 0


if __name__ == "__main__":
    sys.exit(main())
