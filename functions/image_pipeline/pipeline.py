"""The four stages behind the entry points, over injectable storage, publisher and store.

Each stage takes a ``Pipeline`` (settings + adapters), the CloudEvent and the request
headers. Permanent failures are recorded and acknowledged; anything else is logged and
raised so the platform redelivers (docs/architecture.md, "Entry points").
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from cloudevents.http import CloudEvent

from image_pipeline import (
    events,
    imaging,
    passthrough,
    patterns,
    pubsub_limits,
    records,
    result_schema,
)
from image_pipeline.errors import GenerationMismatch, MalformedEvent, PermanentError, is_transient
from image_pipeline.events import OUTPUT_MARKER, ResultEvent, StorageObject
from image_pipeline.firestore_docs import FirestoreStore, Store
from image_pipeline.formats import FORMATS, MAX_BOX_SIDE, MAX_COVER_SIDE, Box
from image_pipeline.gcs import GcsStorage, Storage, StoredObject, Upload
from image_pipeline.logs import Logger, trace_fields
from image_pipeline.passthrough import FINGERPRINT_KEY, RUN_KEY, RUN_VALUE_WIDTH
from image_pipeline.publisher import Publisher, PubSubPublisher
from image_pipeline.settings import MAX_OBJECT_NAME_BYTES, Settings


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclasses.dataclass
class Pipeline:
    """Settings and the adapters the stages use; tests pass in-memory ones."""

    settings: Settings
    storage: Storage
    publisher: Publisher
    store: Store
    clock: Callable[[], dt.datetime] = _utc_now

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Pipeline:
        """Validate the settings now; the cloud clients are created on first use."""
        settings = Settings.from_env(environ)
        return cls(
            settings=settings,
            storage=GcsStorage(settings.project),
            publisher=PubSubPublisher(settings.project),
            store=FirestoreStore(settings.project, settings.firestore_database),
        )


# The longest leaf any settings can give a thumbnail ("99999x99999.webp", "9999x9999-c.webp").
_HASHED_DIR = "_long/"
_MAX_LEAF_BYTES = len(f"{MAX_BOX_SIDE}x{MAX_BOX_SIDE}.") + max(map(len, FORMATS))
assert len(Box(MAX_COVER_SIDE, MAX_COVER_SIDE, "cover").leaf) + 1 <= len(
    f"{MAX_BOX_SIDE}x{MAX_BOX_SIDE}."
), "a cover leaf must not be longer than the longest inside leaf"


def thumbnail_folder(prefix: str, bucket: str, name: str) -> str:
    """Where an object's thumbnails live; make_thumbnail and cleanup both ask here.

    ``{prefix}{name}/``, or a hashed folder when that could exceed GCS's name limit or the
    name starts with ``_long/`` (docs/architecture.md, "Thumbnails").
    """
    folder = f"{prefix}{name}/"
    fits = len(folder.encode()) + _MAX_LEAF_BYTES <= MAX_OBJECT_NAME_BYTES
    if fits and not name.startswith(_HASHED_DIR):
        return folder
    return f"{prefix}{_HASHED_DIR}{records.image_doc_id(bucket, name)}/"


def thumbnail_name(prefix: str, bucket: str, name: str, box: Box, fmt: str) -> str:
    """Deterministic per source object, box, fit mode and format (docs/architecture.md,
    "Thumbnails"): ``WxH.ext`` fits inside the box, ``WxH-c.ext`` covers it."""
    return f"{thumbnail_folder(prefix, bucket, name)}{box.leaf}.{fmt}"


def object_urls(bucket: str, name: str) -> dict[str, str]:
    """An object's ``gs://`` URI and its URL on the Cloud Storage XML API endpoint, where
    the name is percent-encoded except for ``/`` (https://cloud.google.com/storage/docs/request-endpoints)."""
    return {
        "uri": f"gs://{bucket}/{name}",
        "url": f"https://storage.googleapis.com/{bucket}/{urllib.parse.quote(name, safe='/')}",
    }


def skip_reason(settings: Settings, obj: StorageObject) -> str | None:
    """Why an object is not the pipeline's business, or None when it is."""
    if obj.bucket != settings.uploads_bucket:
        return "not in the uploads bucket"
    if OUTPUT_MARKER in obj.metadata:
        return "carries the output marker"
    if obj.name.endswith("/"):
        return "a folder placeholder"
    if not patterns.is_selected(obj.name, settings.include_patterns, settings.exclude_patterns):
        return "outside the include/exclude patterns"
    return None


def given_up(
    event_time: dt.datetime | None, now: dt.datetime, window_seconds: int, error: Exception
) -> PermanentError | None:
    """The permanent failure a retried `error` becomes once its event is too old, else None.

    Google's "avoid infinite retries" pattern compares an event's age with a window
    (https://cloud.google.com/functions/docs/bestpractices/retries). Applied to every
    delivery, it would fail uploads that merely waited in a backlog: Eventarc retries a
    throttled delivery (429) with backoff and keeps the event 24 h
    (https://cloud.google.com/eventarc/docs/retry-events). So it applies to failures only:
    an old event that succeeds is processed; one that still fails past the window is
    recorded as failed while Eventarc still delivers it, instead of being dropped silently.
    """
    if event_time is None:
        return None
    age = (now - event_time).total_seconds()
    if age < window_seconds:
        return None
    return PermanentError(
        "retry_window_exceeded",
        f"still failing {age:.0f} s after the event, past the {window_seconds} s retry window "
        f"(Eventarc drops an event after 24 h): {error!r}",
    )


@contextlib.contextmanager
def _given_up_when_too_old(p: Pipeline, event_time: dt.datetime | None) -> Iterator[None]:
    """Turns a failure that would be retried into `retry_window_exceeded` past the window."""
    try:
        yield
    except PermanentError:
        raise
    except Exception as exc:
        permanent = given_up(event_time, p.clock(), p.settings.retry_window_seconds, exc)
        if permanent is None:
            raise
        raise permanent from exc


def _logger(p: Pipeline, event: CloudEvent, headers: Mapping[str, str], stage: str) -> Logger:
    trace = trace_fields(p.settings.project, headers, {"traceparent": event.get("traceparent")})
    return Logger(stage=stage, eventId=event["id"], **trace)


@contextlib.contextmanager
def _timed(timings: dict[str, float], key: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[key] = round((time.perf_counter() - start) * 1000, 3)


@contextlib.contextmanager
def _retried_on_error(log: Logger) -> Iterator[None]:
    """Log any exception for what it is, then let it through: the platform will redeliver.

    A malformed push message is let through too, as ``MalformedEvent``: the entry point
    answers it 400, a nack Pub/Sub retries into the dead-letter topic, where the recorder
    notes why (docs/architecture.md, "Entry points").
    """
    try:
        yield
    except MalformedEvent as exc:
        log.error("malformed message; refused, to be dead-lettered", error=str(exc))
        raise
    except Exception as exc:
        if is_transient(exc):
            log.warning("transient failure; the delivery will be retried", error=repr(exc))
        else:
            log.exception("failure; the delivery will be retried")
        raise


def _publish(p: Pipeline, result: ResultEvent, log: Logger, timings: dict[str, float]) -> None:
    off_schema = result_schema.problem(result.data)
    if off_schema:  # write_metadata would refuse it: fail here, visibly, instead (a bug)
        raise ValueError(f"result event off its schema: {off_schema}")
    data = result.encoded()
    refused = pubsub_limits.violations(data, result.attributes)
    if refused:  # Pub/Sub would refuse it: fail here, visibly, instead (a bug, retried)
        raise ValueError(f"message over Pub/Sub's limits: {'; '.join(refused)}")
    with _timed(timings, "publish_ms"):
        message_id = p.publisher.publish(p.settings.image_events_topic, data, result.attributes)
    log.info(
        f"published {result.attributes['eventType']}",
        publishedMessageId=message_id,
        reason=result.attributes.get("reason"),
        timings=timings,
    )


# --- make_thumbnail -------------------------------------------------------------------


def make_thumbnail(p: Pipeline, event: CloudEvent, headers: Mapping[str, str]) -> None:
    """Eventarc ``object.v1.finalized`` -> thumbnails -> one ``image.*`` result event."""
    log = _logger(p, event, headers, "make_thumbnail")
    try:  # everything read from the event is checked here, before any retryable work
        obj = events.storage_object(event.data)
        event_time = events.parse_time(event.get("time"))
    except MalformedEvent as exc:
        # Eventarc would redeliver it for a day and no retry can fix it.
        log.error("malformed storage event; acknowledged", error=str(exc))
        return
    log = log.bind(bucket=obj.bucket, object=obj.name, generation=obj.generation)
    reason = skip_reason(p.settings, obj)
    if reason:
        log.info("skipped", reason=reason)
        return
    with _retried_on_error(log):
        timings: dict[str, float] = {}
        made = _made(p, obj, log)
        try:
            with _given_up_when_too_old(p, event_time):
                result = _thumbnails_event(p, event, obj, timings, log, made)
        except PermanentError as exc:
            log.warning("image rejected", reason=exc.reason, error=exc.message)
            result = events.failed_event(obj, event["id"], exc, timings, made)
        if result is not None:
            _publish(p, result, log, dict(timings))


def _made(p: Pipeline, obj: StorageObject, log: Logger) -> dict[str, Any]:
    """How this object's outputs are chosen: the rule, the rules' fingerprint, when, and the
    custom metadata copied to them (what the result event and the doc record)."""
    ours = {**_thumbnail_metadata(p, obj), RUN_KEY: "9" * RUN_VALUE_WIDTH}
    copied, omitted = passthrough.copied(obj.metadata, p.settings.metadata_keys, ours)
    if omitted:
        log.warning(
            "custom metadata left out: over Cloud Storage's 8 KiB per object", omitted=omitted
        )
    return {
        "rule": p.settings.outputs_for(obj.name).rule,
        "outputFingerprint": p.settings.output_fingerprint,
        "madeAt": p.clock().isoformat().replace("+00:00", "Z"),
        "metadata": copied,
    }


def _thumbnails_event(
    p: Pipeline,
    event: CloudEvent,
    obj: StorageObject,
    timings: dict[str, float],
    log: Logger,
    made: Mapping[str, Any],
) -> ResultEvent | None:
    imaging.check_size(obj.size, p.settings.max_input_bytes)
    with _timed(timings, "download_ms"):
        data = p.storage.download(obj.bucket, obj.name, obj.generation)
    if data is None:
        # A redelivery may find what an earlier attempt wrote: nobody else removes it.
        removed = _delete_thumbnails(p, obj)
        log.info(
            "skipped",
            reason="this generation no longer exists (overwritten or deleted)",
            deleted=removed,
        )
        return None
    options = imaging.Options.from_tunables(p.settings, p.settings.outputs_for(obj.name))
    with _timed(timings, "core_ms"):
        result = imaging.make_thumbnails(data, options)
    run = _Run(p.settings.output_fingerprint)
    with _timed(timings, "upload_ms"):
        replaced = _replaced_meanwhile(p, obj)
        if replaced is None:
            thumbnails = _put_thumbnails(p, obj, result.thumbnails, made["metadata"], run)
            replaced = _replaced_meanwhile(p, obj)
        if replaced is None:
            # Only now, with the new outputs in place: what earlier runs made and this did not.
            outdated = _settle(p, obj, run)
    if replaced is not None:
        live, removed = replaced
        log.info(
            "skipped",
            reason="no longer the live generation (overwritten or deleted meanwhile)",
            liveGeneration=live,
            deleted=removed,
        )
        return None
    if run.superseded:
        log.info(
            "skipped",
            reason="a later run of this generation under other output rules wrote after this one",
            outputsGeneration=run.mark,
            deleted=outdated,
        )
        return None
    if outdated:
        log.info("outputs of earlier output rules removed", deleted=outdated)
    image = dataclasses.asdict(result.facts) | {
        "placeholder": dataclasses.asdict(result.placeholder)
    }
    made = {**made, "outputsGeneration": run.mark}
    return events.processed_event(obj, event["id"], image, thumbnails, timings, made)


def _replaced_meanwhile(p: Pipeline, obj: StorageObject) -> tuple[int | None, list[str]] | None:
    """Is ``obj`` still the live generation of its source? Asked before our outputs are
    written and again before the result is published. None when it is; else the live
    generation (None: deleted) and the names of the outputs removed: ours and any older,
    by cleanup's rule, while a newer generation's stay (its processing owns the names).
    Why a stat after the writes closes the race: docs/architecture.md, "Thumbnails".
    """
    live = p.storage.stat(obj.bucket, obj.name)
    if live is not None and live.generation == obj.generation:
        return None
    return (live.generation if live else None), _delete_thumbnails(p, obj)


def _replace(
    p: Pipeline, obj: StorageObject, name: str, upload: Upload, live: StoredObject | None, run: _Run
) -> StoredObject | None:
    """Overwrite ``live`` (under a precondition on its generation) when it holds an older
    source generation, or this one's from a lower-ranked run (or any run, when this run has
    not written yet: its write will rank above). None when it is left alone: a newer source
    generation's, or this run's own."""
    held = _source_generation(live)
    if live is not None and held is not None and held > obj.generation:
        return None
    if live is not None and held == obj.generation:
        if run.owns(live):
            return None
        if run.mark is not None and _rank(live) > run.rank():
            raise _Superseded(name)
    match = live.generation if live else 0
    return p.storage.upload(p.settings.thumbnails_bucket, name, upload, if_generation_match=match)


def _source_generation(stored: StoredObject | None) -> int | None:
    value = stored.metadata.get("source-generation") if stored else None
    return int(value) if value and value.isdigit() else None


def _thumbnail_metadata(p: Pipeline, obj: StorageObject) -> dict[str, str]:
    """The custom metadata the pipeline itself puts on every thumbnail."""
    return {
        OUTPUT_MARKER: "thumbnail",
        "source-bucket": obj.bucket,
        "source-name": obj.name,
        "source-generation": str(obj.generation),
        FINGERPRINT_KEY: p.settings.output_fingerprint,
    }


# --- runs of one generation under different output rules --------------------------------
#
# During a rollout (or a redelivery, or `backfill --stale` started before the rollout ended)
# two runs of the same generation under different output rules can process one object at
# once. Each removes what the other wrote, unless they agree on which of them is the later
# one. They agree on an order the server assigns: a run's place is the generation number of
# its first thumbnail write, read from that write's response (no extra request), written
# into every later thumbnail of the run as RUN_KEY, and read back from the folder listing
# the removal step already does. Cloud Storage assigns generation numbers itself, per write
# (https://cloud.google.com/storage/docs/metadata#generation-number); they are the write's
# time in microseconds, so they order writes across objects, with no tie at the
# millisecond resolution of `timeCreated`. The functions' clocks play no part. Runs rank by
# (that generation, fingerprint); the doc ranks results the same way (records.decide).
#
# The rule (docs/outputs.md, "Two runs at once"): a run deletes this generation's outputs of
# lower-ranked runs only; one that meets a higher-ranked run's output (at a write, or in
# the listing) stops writing, deletes its own outputs and publishes nothing. So of two
# concurrent runs the later one removes the other's set, and the earlier removes nothing
# of the later's: the later run's listing comes after its writes, hence after the earlier
# run's first write, so whatever of the earlier run it cannot see is written after the
# later run's first write, and the earlier run sees that at its own listing.


class _Superseded(Exception):
    """A higher-ranked run of this generation holds a name this run was to write."""


@dataclasses.dataclass
class _Run:
    """This run's rules and its place in the server's order (None until its first write)."""

    fingerprint: str
    mark: int | None = None
    superseded: bool = False

    def rank(self) -> tuple[int, str]:
        assert self.mark is not None, "ranked before its first write"
        return (self.mark, self.fingerprint)

    def owns(self, stored: StoredObject) -> bool:
        return stored.metadata.get(FINGERPRINT_KEY) == self.fingerprint and (
            self.mark is None or _run_mark(stored) == self.mark
        )


def _run_mark(stored: StoredObject) -> int:
    """The run a thumbnail belongs to: its RUN_KEY, or (a run's first write, or a thumbnail
    from before runs were recorded) its own generation."""
    value = stored.metadata.get(RUN_KEY, "")
    return int(value) if value.isdigit() else stored.generation


def _rank(stored: StoredObject) -> tuple[int, str]:
    return (_run_mark(stored), stored.metadata.get(FINGERPRINT_KEY, ""))


def _put_thumbnails(
    p: Pipeline,
    obj: StorageObject,
    thumbs: Sequence[imaging.Thumbnail],
    copied: Mapping[str, str],
    run: _Run,
) -> list[dict]:
    """Write them in order; stop when a higher-ranked run holds one (``run.superseded``)."""
    entries = []
    for thumb in thumbs:
        try:
            entry = _put_thumbnail(p, obj, thumb, copied, run)
        except _Superseded:
            run.superseded = True
            break
        if entry is not None:
            entries.append(entry)
    return entries


def _put_thumbnail(
    p: Pipeline,
    obj: StorageObject,
    thumb: imaging.Thumbnail,
    copied: Mapping[str, str],
    run: _Run,
) -> dict | None:
    """Write a thumbnail unless one of a newer source generation is there, or this
    generation's made by this run (a redelivery), or by a higher-ranked run (raises
    ``_Superseded``). The first write sets ``run.mark``; a first name found already
    written by this run's rules adopts that run's mark (a redelivery is the same run).

    A create-only write first (``if_generation_match=0``): one request when the name is
    free, the usual case. Only when it is refused is the existing object read, and replaced
    under a precondition on the generation read. Returns its entry for the result event
    when it holds this generation's output, None when a newer one won. A replace that loses
    a race (GenerationMismatch) is raised: the redelivery reads the new state and decides
    again.
    """
    bucket = p.settings.thumbnails_bucket
    name = thumbnail_name(
        p.settings.thumbnail_prefix, obj.bucket, obj.name, thumb.box, thumb.format
    )
    mark = {} if run.mark is None else {RUN_KEY: str(run.mark)}
    upload = Upload(
        data=thumb.data,
        content_type=thumb.content_type,
        cache_control=p.settings.cache_control,
        metadata={**_thumbnail_metadata(p, obj), **mark, **copied},
    )
    try:
        written: StoredObject | None = p.storage.upload(bucket, name, upload, if_generation_match=0)
    except GenerationMismatch:
        live = p.storage.stat(bucket, name)
        written = _replace(p, obj, name, upload, live, run)
        if written is None and live is not None and _source_generation(live) == obj.generation:
            run.mark = _run_mark(live)  # this run's already: adopted, or unchanged
        elif written is None:
            return None  # a newer source generation holds the name
    if run.mark is None and written is not None:
        run.mark = written.generation
    return {
        "bucket": bucket,
        "name": name,
        **object_urls(bucket, name),
        "box": str(thumb.box),
        "width": thumb.width,
        "height": thumb.height,
        "contentType": thumb.content_type,
        "size": len(thumb.data),
        "frames": thumb.frames,
    }


# --- cleanup --------------------------------------------------------------------------


def cleanup(p: Pipeline, event: CloudEvent, headers: Mapping[str, str]) -> None:
    """GCS ``OBJECT_DELETE`` notification -> delete its thumbnails -> ``image.deleted``.

    When the delete comes from an overwrite (``overwrittenByGeneration``), the name lives
    on: older thumbnails go, and the doc is marked deleted only when no newer generation
    will be processed to replace it. When it comes from the uploads
    bucket's lifecycle rule (``events.expired_by_lifecycle``), the user meant to keep the
    thumbnails: they stay, and ``image.expired`` records that the original expired.
    """
    log = _logger(p, event, headers, "cleanup")
    with _retried_on_error(log):
        message = events.push_message(event.data)
        log = log.bind(messageId=message.message_id)
        deletion = events.object_deletion(message)
        if deletion is None:
            log.info("skipped", reason=f"event type {message.attributes.get('eventType')!r}")
            return
        obj = deletion.object
        log = log.bind(bucket=obj.bucket, object=obj.name, generation=obj.generation)
        reason = skip_reason(p.settings, obj)
        if reason:
            log.info("skipped", reason=reason)
            return
        timings: dict[str, float] = {}
        if events.expired_by_lifecycle(deletion, p.settings.uploads_lifecycle_days):
            expired = events.expired_event(obj, message.message_id, deletion.event_time)
            _publish(p, expired, log, timings)
            return
        with _timed(timings, "delete_ms"):
            deleted = _delete_thumbnails(p, obj)
        if deletion.overwritten_by is not None and _will_be_processed(p, obj):
            log.info(
                "overwritten: older thumbnails deleted",
                overwrittenByGeneration=deletion.overwritten_by,
                deleted=deleted,
                timings=timings,
            )
            return
        _publish(p, events.deleted_event(obj, message.message_id, timings), log, timings)


def _will_be_processed(p: Pipeline, obj: StorageObject) -> bool:
    """After an overwrite, will a newer generation's result replace this one's doc? Not when
    the source is gone or its live generation is skipped (it carries the output marker,
    say): then the doc would go on listing the thumbnails just deleted, so the overwritten
    generation is marked deleted (a newer generation's result still ranks above it)."""
    live = p.storage.stat(obj.bucket, obj.name)
    if live is None or live.generation <= obj.generation:
        return False
    current = dataclasses.replace(obj, generation=live.generation, metadata=live.metadata)
    return skip_reason(p.settings, current) is None


def _settle(p: Pipeline, obj: StorageObject, run: _Run) -> list[str]:
    """The removal step after this run's writes, over one listing of the folder: older
    generations' thumbnails and lower-ranked runs' of this one go; when a higher-ranked
    run's thumbnail is there (or was met while writing), this run's own go instead and
    ``run.superseded`` is set (see "runs of one generation" above)."""
    listed = _listed_thumbnails(p, obj)
    if run.mark is None:  # every name held a newer source generation's output
        return []
    same = [t for t in listed if _source_generation(t) == obj.generation]
    run.superseded = run.superseded or any(_rank(t) > run.rank() for t in same)
    doomed = [
        t
        for t in listed
        if _source_generation(t) != obj.generation
        or (_rank(t) < run.rank() if not run.owns(t) else run.superseded)
    ]
    return _delete_listed(p, doomed)


def _listed_thumbnails(p: Pipeline, obj: StorageObject) -> list[StoredObject]:
    """This object's thumbnails of its generation or older, from one listing of its folder
    (a newer generation's are its own run's business)."""
    bucket = p.settings.thumbnails_bucket
    folder = thumbnail_folder(p.settings.thumbnail_prefix, obj.bucket, obj.name)
    found = []
    for thumb in p.storage.list(bucket, folder):
        meta = thumb.metadata
        if meta.get("source-bucket") != obj.bucket or meta.get("source-name") != obj.name:
            continue
        held = _source_generation(thumb)
        if held is not None and held <= obj.generation:
            found.append(thumb)
    return found


def _delete_thumbnails(p: Pipeline, obj: StorageObject) -> list[str]:
    """Delete this object's thumbnails of its generation or older; keep newer ones."""
    return _delete_listed(p, _listed_thumbnails(p, obj))


def _delete_listed(p: Pipeline, listed: list[StoredObject]) -> list[str]:
    """Each delete is conditional on the generation listed, so a thumbnail rewritten
    meanwhile (by a generation at least as new, or a higher-ranked run) is left to its
    writer."""
    bucket = p.settings.thumbnails_bucket
    deleted = []
    for thumb in listed:
        try:
            p.storage.delete(bucket, thumb.name, if_generation_match=thumb.generation)
        except GenerationMismatch:
            continue  # rewritten since listed: a generation at least as new owns it now
        deleted.append(thumb.name)
    return deleted


# --- write_metadata -------------------------------------------------------------------


def write_metadata(p: Pipeline, event: CloudEvent, headers: Mapping[str, str]) -> None:
    """A pushed result event -> ``images/{id}``, refusing older generations."""
    started = time.perf_counter()
    log = _logger(p, event, headers, "write_metadata")
    with _retried_on_error(log):
        message = events.push_message(event.data)
        result = events.result_from_message(message)
        doc_id = records.image_doc_id(result["bucket"], result["name"])
        log = log.bind(
            messageId=message.message_id,
            bucket=result["bucket"],
            object=result["name"],
            generation=result["generation"],
            status=result["status"],
            docId=doc_id,
        )
        decision = records.Decision.WRITE

        def change(stored: dict[str, Any] | None) -> dict[str, Any] | None:
            nonlocal decision
            decision = records.decide(
                stored,
                result["generation"],
                result["status"],
                result.get("outputFingerprint"),
                result.get("madeAt"),
                result.get("outputsGeneration"),
            )
            if decision is not records.Decision.WRITE:
                return None
            metadata_ms = (time.perf_counter() - started) * 1000
            return records.image_doc(stored, result, p.clock(), metadata_ms)

        p.store.update(p.settings.images_collection, doc_id, change)
        log.info(f"metadata {decision.value}", decision=decision.value)


# --- handle_dead_letter ---------------------------------------------------------------


def handle_dead_letter(p: Pipeline, event: CloudEvent, headers: Mapping[str, str]) -> None:
    """A message pushed from a dead-letter topic -> ``dead_letters/{id}``, once per message."""
    log = _logger(p, event, headers, "handle_dead_letter")
    with _retried_on_error(log):
        message = events.push_message(event.data)
        record = records.dead_letter_record(message)
        log = log.bind(
            messageId=message.message_id,
            sourceSubscription=record["sourceSubscription"],
            deliveryAttempt=record["deliveryAttempt"],
        )
        record_id = records.dead_letter_id(message.message_id)
        created = p.store.create(p.settings.dead_letters_collection, record_id, record)
        log = log.bind(recordId=record_id)
        log.info("dead letter recorded" if created else "dead letter already recorded")
