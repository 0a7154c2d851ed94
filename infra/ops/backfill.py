"""Backfill: send objects uploaded before the pipeline existed through the real pipeline
(docs/deploy-and-operate.md, "Backfill"). Each object without a `processed` doc for its current
generation (with `--stale`, also each made under other output rules) gets the event Eventarc
would have sent, POSTed to `make_thumbnail`: nothing here thumbnails anything. One bounded
pass (`infra.ops.bulk`).
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from image_pipeline.events import OUTPUT_MARKER
from image_pipeline.records import image_doc_id
from infra.common import arguments
from infra.common.storage_events import eventarc_storage_event, rfc3339
from infra.model.topology import FINALIZED
from infra.ops import bulk
from infra.ops import target as targets

TOOL = bulk.Tool("backfill", ("process", "sent"), "objects")
_BATCH = 100  # objects whose docs are read at once


def is_output(metadata: Mapping[str, str] | None) -> bool:
    """Thumbnails carry the loop marker; processing one would feed the pipeline itself."""
    return OUTPUT_MARKER in (metadata or {})


def reason_to_process(
    generation: int, doc: Mapping[str, Any] | None, fingerprint: str = ""
) -> str | None:
    """Why this generation still needs processing, or None when its doc says it is done
    (with a ``fingerprint``, ``--stale``: and was made under those output rules)."""
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
    """Headers and body of the binary-mode CloudEvent Eventarc sends for a new object; `time`
    is now, so a failing delivery gets the whole retry window of the event-age guard."""
    bucket, name = resource["bucket"], resource["name"]
    event_id = f"backfill-{image_doc_id(bucket, name)[:16]}-{resource['generation']}"
    return eventarc_storage_event(resource, event_id, FINALIZED, rfc3339(now))


def _listing(
    target: targets.Target, prefix: str, after: str
) -> Iterator[tuple[Any, dict[str, Any] | None]]:
    """Objects after `after` in name order, each with its metadata doc (one read per batch)."""
    objects = target.blobs(target.uploads_bucket, prefix, after)
    for blobs in itertools.batched(objects, _BATCH, strict=False):
        ids = [image_doc_id(b.bucket.name, b.name) for b in blobs]
        docs = target.documents.get_many(target.images_collection, ids)
        for blob, doc_id in zip(blobs, ids, strict=True):
            yield blob, docs.get(doc_id)


def _send(target: targets.Target, blob: Any) -> str | None:
    """Delivers one event (`Target.invoke` retries what the platform would); an error text
    when it failed. Only a TargetError (no access to the function at all) stops the run:
    anything else fails this object alone, and the checkpoint moves past it."""
    try:
        headers, body = finalized_event(object_resource(blob), datetime.now(UTC))
        response = target.invoke(headers, body)
    except targets.TargetError:
        raise
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if response.ok else f"HTTP {response.status_code}: {response.text[:200]}"


def selection(bucket: str, prefix: str, fingerprint: str = "") -> str:
    """What a pass goes through (its checkpoint's key): a --stale run keeps its own."""
    return f"gs://{bucket}/{prefix}" + (f" --stale to {fingerprint}" if fingerprint else "")


def run(
    target: targets.Target, *, prefix: str = "", fingerprint: str = "", **bounds: Any
) -> bulk.Pass:
    """One bounded pass (`bulk.start`'s `bounds`). Dry runs never save the checkpoint: they
    only show the next run. ``fingerprint``: the deployed output rules' (``--stale``); docs
    made under others are selected too."""
    run = bulk.start(TOOL, selection(target.uploads_bucket, prefix, fingerprint), **bounds)
    listing = _listing(target, prefix, run.checkpoint.last_name)
    for blob, doc in run.each(listing, lambda item: str(item[0].name)):
        if is_output(blob.metadata):
            run.count("outputs")
            continue
        reason = reason_to_process(blob.generation, doc, fingerprint)
        if reason is None:
            run.count("up to date")
            continue
        uri = f"gs://{blob.bucket.name}/{blob.name}#{blob.generation}"
        run.act(f"{uri} ({reason})", (), lambda: _send(target, blob))  # noqa: B023
    return run


def main(argv: list[str] | None = None) -> int:
    parser = arguments.Parser(
        prog="scripts/backfill",
        description="Send objects uploaded before the pipeline existed through make_thumbnail "
        "(dry run by default).",
    )
    parser.add_argument("--prefix", default="", help="only objects whose name starts with this")
    parser.add_argument(
        "--stale",
        action="store_true",
        help="also re-process objects whose doc was made under other output rules than the "
        "deployed ones (their fingerprint differs); their new thumbnails are written before "
        "the old rules' are removed",
    )
    bulk.add_arguments(parser, TOOL, "send events")
    targets.add_arguments(parser)
    args = parser.parse_args(argv)

    def command(target: targets.Target) -> int:
        fingerprint = target.settings.outputs.fingerprint if args.stale else ""
        if fingerprint:
            print(f"--stale: bringing docs to output rules {fingerprint}", file=sys.stderr)
        key = selection(target.uploads_bucket, args.prefix, fingerprint)
        bounds = bulk.options(args, TOOL, target.project, target.uploads_bucket, key)
        done = run(target, prefix=args.prefix, fingerprint=fingerprint, **bounds)
        return 1 if done.failed else 0

    return targets.run_tool(args, command)


if __name__ == "__main__":
    sys.exit(main())
