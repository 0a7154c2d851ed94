"""Backfill: send objects uploaded before the pipeline existed through the real pipeline.

Each object in the uploads bucket that has no `processed` doc for its current generation
(with `--stale`, also each whose doc was made under other output rules than the deployed
ones: docs/outputs.md, "Regenerating") gets the exact event Eventarc would have sent: a binary-mode
`google.cloud.storage.object.v1.finalized` CloudEvent POSTed to `make_thumbnail`. Nothing
here thumbnails anything, so a backfilled object is processed exactly like a fresh upload.

Bounded on purpose (the Firebase resize extension dropped its backfill after a runaway bill,
firebase/extensions#3189): dry run by default, a hard cap per run, a rate limit, and a
checkpoint so the next run continues after the last object examined instead of starting over.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from image_pipeline.events import OUTPUT_MARKER
from image_pipeline.records import image_doc_id
from infra.common import arguments
from infra.common.paths import ROOT
from infra.common.storage_events import eventarc_storage_event, rfc3339
from infra.common.terminal import printable
from infra.model.topology import FINALIZED
from infra.ops import target as targets

DEFAULT_LIMIT = 1000
_ATTEMPTS = 4  # per object, for 429/5xx answers (the platform would retry those too)


class CheckpointError(ValueError):
    """The --checkpoint path cannot be read or written as a checkpoint; the message says why."""


def _check_writable(path: Path) -> None:
    """Refuses, before anything is done, a checkpoint that could never be saved."""
    if path.exists() and not path.is_file():
        raise CheckpointError(f"--checkpoint {path} is not a file")
    folder = path.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise CheckpointError(f"--checkpoint {path} cannot be created ({folder} is not writable)")


def _checkpoint_fields(path: Path) -> dict[str, Any]:
    """The saved fields, each of its declared type, or CheckpointError saying what is wrong."""
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"--checkpoint {path} is not a checkpoint: {exc}") from None
    types = {f.name: str(f.type) for f in fields(Checkpoint)}  # postponed: "str", "int"
    if not isinstance(saved, dict):
        raise CheckpointError(f"--checkpoint {path} holds a {type(saved).__name__}, not an object")
    for key, value in saved.items():
        kind = {"str": str, "int": int, "bool": bool}.get(types.get(key, ""))
        if kind is None or type(value) is not kind:
            raise CheckpointError(f"--checkpoint {path}: field {key!r} is unknown or mistyped")
    if not {"bucket", "prefix"} <= saved.keys():
        raise CheckpointError(f"--checkpoint {path} names no bucket and prefix")
    return saved


@dataclass
class Checkpoint:
    """Where the last run stopped and what it counted; cumulative over resumed runs."""

    bucket: str
    prefix: str
    fingerprint: str = ""  # --stale: the output rules' fingerprint the run brings docs to
    last_name: str = ""
    listed: int = 0
    up_to_date: int = 0
    outputs: int = 0
    sent: int = 0
    failed: int = 0
    complete: bool = False

    @classmethod
    def load(cls, path: Path, bucket: str, prefix: str, fingerprint: str = "") -> Checkpoint:
        """The saved position for this bucket, prefix and mode; a fresh one after a full
        pass. A file that is not a checkpoint raises CheckpointError (it is never replaced)."""
        _check_writable(path)
        if not path.exists():
            return cls(bucket, prefix, fingerprint)
        saved = cls(**_checkpoint_fields(path))
        if (saved.bucket, saved.prefix, saved.fingerprint) != (bucket, prefix, fingerprint):
            mode = f" --stale to {saved.fingerprint}" if saved.fingerprint else ""
            raise CheckpointError(
                f"{path} belongs to gs://{saved.bucket}/{saved.prefix}{mode}; "
                "pass another --checkpoint"
            )
        return cls(bucket, prefix, fingerprint) if saved.complete else saved

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        tmp.replace(path)  # atomic: an interrupted run never leaves half a checkpoint


@dataclass
class Outcome:
    """What one run did (the checkpoint holds the totals)."""

    selected: int = 0
    failed: int = 0


def default_checkpoint(project: str, bucket: str, prefix: str, fingerprint: str = "") -> Path:
    """Per bucket, prefix and mode (a --stale run keeps its own position)."""
    key = f"{prefix}\0{fingerprint}" if fingerprint else prefix
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    return ROOT / ".local" / "backfill" / f"{project}-{bucket}-{digest}.json"


def is_output(metadata: Mapping[str, str] | None) -> bool:
    """Thumbnails carry the loop marker; processing one would feed the pipeline itself."""
    return OUTPUT_MARKER in (metadata or {})


def reason_to_process(
    generation: int, doc: Mapping[str, Any] | None, fingerprint: str = ""
) -> str | None:
    """Why this generation still needs processing, or None when its doc says it is done.

    With a ``fingerprint`` (``--stale``), a processed doc made under other output rules is
    not done either.
    """
    if doc is None:
        return "no metadata doc"
    stored = int(doc.get("generation") or 0)
    if stored > generation:
        return None  # a newer upload replaced it while we listed; its own event handles it
    if stored == generation and doc.get("status") == "processed":
        made_under = doc.get("outputFingerprint")
        if fingerprint and made_under != fingerprint:
            return f"made under output rules {made_under or 'without a fingerprint'}"
        return None
    if stored < generation:
        return f"doc is for older generation {stored}"
    return f"status {doc.get('status')!r}"


def object_resource(blob: Any) -> dict[str, Any]:
    """The JSON API object resource: what Eventarc puts in a storage event's data."""
    resource = {
        "kind": "storage#object",
        "id": f"{blob.bucket.name}/{blob.name}/{blob.generation}",
        "name": blob.name,
        "bucket": blob.bucket.name,
        "generation": str(blob.generation),
        "metageneration": str(blob.metageneration),
        "contentType": blob.content_type,
        "size": str(blob.size),
        "storageClass": blob.storage_class,
        "md5Hash": blob.md5_hash,
        "crc32c": blob.crc32c,
        "etag": blob.etag,
        "timeCreated": blob.time_created and rfc3339(blob.time_created),
        "updated": blob.updated and rfc3339(blob.updated),
        "metadata": blob.metadata,
    }
    return {key: value for key, value in resource.items() if value is not None}


def finalized_event(resource: Mapping[str, Any], now: datetime) -> tuple[dict[str, str], bytes]:
    """Headers and body of the binary-mode CloudEvent Eventarc sends for a new object.

    `time` is now, not the upload time: a delivery that fails gets the whole retry window
    before the function's event-age guard records it as `retry_window_exceeded`.
    """
    bucket, name = resource["bucket"], resource["name"]
    event_id = f"backfill-{image_doc_id(bucket, name)[:16]}-{resource['generation']}"
    return eventarc_storage_event(resource, event_id, FINALIZED, rfc3339(now))


class Pacer:
    """Spaces calls at least 1/rate seconds apart (the rate limit)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next_at = 0.0

    def wait(self) -> None:
        delay = self.next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        self.next_at = max(self.next_at, time.monotonic()) + self.interval


class Progress:
    """A one-line progress bar on stderr, redrawn in place on a terminal."""

    def __init__(self, stream: TextIO, total: int, verb: str) -> None:
        self.stream, self.total, self.verb = stream, total, verb
        self.tty = stream.isatty()
        self.drawn_at = 0.0

    def update(self, done: int, checkpoint: Checkpoint, final: bool = False) -> None:
        if not final and (not self.tty or time.monotonic() - self.drawn_at < 0.1):
            return
        self.drawn_at = time.monotonic()
        width = 30
        filled = width * min(done, self.total) // max(self.total, 1)
        line = (
            f"backfill [{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} "
            f"{self.verb} | {checkpoint.listed} listed, {checkpoint.up_to_date} up to date, "
            f"{checkpoint.outputs} outputs skipped, {checkpoint.failed} failed"
        )
        self.stream.write(("\r" if self.tty else "") + line + ("\n" if final else ""))
        self.stream.flush()


def _listing(
    target: targets.Target, prefix: str, after: str
) -> Iterator[tuple[Any, dict[str, Any] | None]]:
    """Objects after `after` in name order, each with its metadata doc (one read per page)."""
    listing = target.storage.list_blobs(
        target.uploads_bucket,
        prefix=prefix or None,
        start_offset=after or None,
        **target.storage_call(),
    )
    pages = iter(listing.pages)
    while True:
        with target.answering("Cloud Storage"):
            page = next(pages, None)
        if page is None:
            return
        blobs = [blob for blob in page if blob.name != after]  # start_offset is inclusive
        ids = [image_doc_id(b.bucket.name, b.name) for b in blobs]
        docs = target.documents.get_many(target.images_collection, ids)
        for blob, doc_id in zip(blobs, ids, strict=True):
            yield blob, docs.get(doc_id)


def _send(target: targets.Target, blob: Any) -> str | None:
    """Delivers one event; returns an error text when every attempt failed.

    Only a TargetError (no access to the function at all) stops the run: anything else
    fails this object, and the checkpoint moves past it.
    """
    try:
        headers, body = finalized_event(object_resource(blob), datetime.now(UTC))
    except Exception as exc:
        return f"cannot build its event: {type(exc).__name__}: {exc}"
    error = ""
    for attempt in range(_ATTEMPTS):
        try:
            response = target.invoke("make_thumbnail", headers, body)
        except targets.TargetError:
            raise
        except OSError as exc:  # requests' connection errors are OSErrors: retried
            error = str(exc)
        except Exception as exc:  # not a transport failure: another try cannot help
            return f"{type(exc).__name__}: {exc}"
        else:
            if response.ok:
                return None
            error = f"HTTP {response.status_code}: {response.text[:200]}"
            if response.status_code != 429 and response.status_code < 500:
                return error
        time.sleep(0.5 * 2**attempt)
    return error


def run(
    target: targets.Target,
    *,
    prefix: str = "",
    limit: int = DEFAULT_LIMIT,
    rate: float = 10.0,
    execute: bool = False,
    fingerprint: str = "",
    checkpoint_path: Path,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> Outcome:
    """One bounded pass. Dry runs never save the checkpoint: they only show the next run.

    ``fingerprint``: the deployed output rules' (``--stale``); docs made under others are
    selected too.
    """
    checkpoint = Checkpoint.load(checkpoint_path, target.uploads_bucket, prefix, fingerprint)
    if checkpoint.last_name:
        shown = printable(checkpoint.last_name)
        print(f"resuming after '{shown}' ({printable(checkpoint_path)})", file=err)
    pacer, progress = Pacer(rate), Progress(err, limit, "sent" if execute else "to send")
    outcome = Outcome()
    for blob, doc in _listing(target, prefix, checkpoint.last_name):
        if outcome.selected >= limit:
            break
        checkpoint.listed += 1
        uri = printable(f"gs://{blob.bucket.name}/{blob.name}#{blob.generation}")
        output = is_output(blob.metadata)
        reason = None if output else reason_to_process(blob.generation, doc, fingerprint)
        if output:
            checkpoint.outputs += 1
        elif reason is None:
            checkpoint.up_to_date += 1
        elif not execute:
            outcome.selected += 1
            print(f"would process {uri} ({reason})", file=out)
        else:
            outcome.selected += 1
            pacer.wait()
            error = _send(target, blob)
            outcome.failed += bool(error)
            checkpoint.failed += bool(error)
            checkpoint.sent += not error
            line = f"FAILED {uri}: {printable(error)}" if error else f"sent {uri} ({reason})"
            print(line, file=out)
        checkpoint.last_name = blob.name
        if execute:
            checkpoint.save(checkpoint_path)
        progress.update(outcome.selected, checkpoint)
    else:
        checkpoint.complete = True
    progress.update(outcome.selected, checkpoint, final=True)
    if execute:
        checkpoint.save(checkpoint_path)
    if execute:
        print(f"sent {outcome.selected - outcome.failed}, failed {outcome.failed}", file=out)
    else:
        print(f"dry run: {outcome.selected} objects would be processed; add --execute", file=out)
    if not checkpoint.complete:
        where = printable(checkpoint.last_name)
        print(f"stopped at --limit {limit}; the next run continues after '{where}'", file=out)
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = arguments.Parser(
        prog="scripts/backfill",
        description="Process objects uploaded before the pipeline existed (dry run by default).",
    )
    parser.add_argument("--prefix", default="", help="only objects whose name starts with this")
    parser.add_argument(
        "--limit",
        type=arguments.number(low=1, integer=True),
        default=DEFAULT_LIMIT,
        help=f"hard cap on objects processed by one run (default {DEFAULT_LIMIT})",
    )
    parser.add_argument(
        "--rate", type=arguments.number(above=0), default=10.0, help="objects per second (10)"
    )
    parser.add_argument("--execute", action="store_true", help="send events (default: dry run)")
    parser.add_argument(
        "--stale",
        action="store_true",
        help="also re-process objects whose doc was made under other output rules than the "
        "deployed ones (their fingerprint differs); their new thumbnails are written before "
        "the old rules' are removed",
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        help="resume file (default: .local/backfill/<project>-<bucket>-<prefix hash>.json)",
    )
    targets.add_arguments(parser)
    args = parser.parse_args(argv)
    target = targets.from_arguments(args)
    fingerprint = target.output_fingerprint() if args.stale else ""
    if fingerprint:
        print(f"--stale: bringing docs to output rules {fingerprint}", file=sys.stderr)
    path = args.checkpoint or default_checkpoint(
        target.project, target.uploads_bucket, args.prefix, fingerprint
    )
    try:
        Checkpoint.load(path, target.uploads_bucket, args.prefix, fingerprint)
    except CheckpointError as exc:
        arguments.refuse(str(exc))
    return targets.failing_fast(
        lambda: (
            1
            if run(
                target,
                prefix=args.prefix,
                limit=args.limit,
                rate=args.rate,
                execute=args.execute,
                fingerprint=fingerprint,
                checkpoint_path=path,
            ).failed
            else 0
        )
    )


if __name__ == "__main__":
    sys.exit(main())
