"""The four stages behind the entry points, in the order an upload meets them:
make_thumbnail, write_metadata, cleanup, handle_dead_letter. Each takes a ``Pipeline``
(settings + adapters), the CloudEvent and the request headers (docs/architecture.md, "Entry
points"); how a run writes and removes thumbnails: ``image_pipeline.thumbnails``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Iterator, Mapping
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
    thumbnails,
)
from image_pipeline.errors import MalformedEvent, PermanentError, is_transient
from image_pipeline.events import OUTPUT_MARKER, ResultEvent, StorageObject
from image_pipeline.firestore_docs import FirestoreStore, Store
from image_pipeline.gcs import GcsStorage, Storage
from image_pipeline.logs import Logger, trace_fields
from image_pipeline.output_rules import Outputs
from image_pipeline.publisher import Publisher, PubSubPublisher
from image_pipeline.settings import Settings


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


# --- make_thumbnail -------------------------------------------------------------------


def make_thumbnail(p: Pipeline, event: CloudEvent, headers: Mapping[str, str]) -> None:
    """Eventarc ``object.v1.finalized`` -> thumbnails -> one ``image.*`` result event."""
    log = _logger(p, event, headers, "make_thumbnail")
    try:  # everything read from the event is checked here, before any retryable work
        obj = events.storage_object(event.data)
        event_time = events.parse_time(event.get("time"))
    except MalformedEvent as exc:
        log.error("malformed storage event; acknowledged", error=str(exc))
        return
    log = log.bind(bucket=obj.bucket, object=obj.name, generation=obj.generation)
    reason = skip_reason(p.settings, obj)
    if reason:
        log.info("skipped", reason=reason)
        return
    with _retried_on_error(log):
        timings: dict[str, float] = {}
        outputs = p.settings.outputs.outputs_for(obj.name)
        provenance, metadata = _provenance(p, obj, outputs, log)
        try:
            with _given_up_past_the_window(p, event_time):
                result = _thumbnails_event(
                    p, event, obj, outputs, metadata, provenance, timings, log
                )
        except PermanentError as exc:
            log.warning("image rejected", reason=exc.reason, error=exc.message)
            error = {"reason": exc.reason, "message": exc.message}
            result = events.result_event(
                "failed", obj, event["id"], error=error, timings=dict(timings), **provenance
            )
        if result is not None:
            _publish(p, result, log, dict(timings))


def _provenance(
    p: Pipeline, obj: StorageObject, outputs: Outputs, log: Logger
) -> tuple[dict[str, Any], dict[str, str]]:
    """How this object's outputs are made, as its result event and doc record it (rule,
    fingerprint, when, metadata copied), and each thumbnail's custom metadata (ours + copied)."""
    settings = p.settings.outputs
    own = thumbnails.own_metadata(obj, settings.fingerprint)
    copied, omitted, refused = passthrough.copied(obj.metadata, settings.metadata_keys, own)
    if omitted:
        log.warning(
            "custom metadata left out: over Cloud Storage's 8 KiB per object", omitted=omitted
        )
    if refused:
        log.warning("custom metadata left out: control characters or not UTF-8", omitted=refused)
    provenance = {
        "rule": outputs.rule,
        "outputFingerprint": settings.fingerprint,
        "madeAt": p.clock().isoformat().replace("+00:00", "Z"),
        "metadata": copied,
    }
    return provenance, {**own, **copied}


def _thumbnails_event(
    p: Pipeline,
    event: CloudEvent,
    obj: StorageObject,
    outputs: Outputs,
    metadata: Mapping[str, str],
    provenance: Mapping[str, Any],
    timings: dict[str, float],
    log: Logger,
) -> ResultEvent | None:
    """Download, make the thumbnails, write them: the ``image.processed`` event, or None
    when the generation is gone or a later run took over (logged as skipped)."""
    imaging.check_size(obj.size or 0, p.settings.max_input_bytes)
    folder = thumbnails.Folder(p.storage, p.settings.outputs, obj)
    with _timed(timings, "download_ms"):
        data = p.storage.download(obj.bucket, obj.name, obj.generation)
    if data is None:
        # A redelivery may find what an earlier attempt wrote: nobody else removes it.
        log.info(
            "skipped",
            reason="this generation no longer exists (overwritten or deleted)",
            deleted=folder.delete_older(),
        )
        return None
    with _timed(timings, "core_ms"):
        options = imaging.Options.from_tunables(p.settings, outputs, p.settings.outputs)
        made = imaging.make_thumbnails(data, options)
    with _timed(timings, "upload_ms"):
        run = folder.write(made.thumbnails, metadata)
    if run.replaced or run.superseded:
        log.info(
            "skipped",
            reason="no longer the live generation (overwritten or deleted meanwhile)"
            if run.replaced
            else "a later run of this generation under other output rules wrote after this one",
            liveGeneration=run.live_generation,
            outputsGeneration=run.mark,
            deleted=run.removed,
        )
        return None
    if run.removed:
        log.info("outputs of earlier output rules removed", deleted=run.removed)
    image = dataclasses.asdict(made.facts) | {"placeholder": dataclasses.asdict(made.placeholder)}
    return events.result_event(
        "processed",
        obj,
        event["id"],
        image=image,
        thumbnails=run.entries,
        timings=dict(timings),
        **provenance,
        outputsGeneration=run.mark,
    )


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
            decision = records.decide(stored, result)
            if decision is not records.Decision.WRITE:
                return None
            metadata_ms = (time.perf_counter() - started) * 1000
            return records.image_doc(stored, result, p.clock(), metadata_ms)

        p.store.update(p.settings.images_collection, doc_id, change)
        log.info(f"metadata {decision.value}", decision=decision.value)


# --- cleanup --------------------------------------------------------------------------


def cleanup(p: Pipeline, event: CloudEvent, headers: Mapping[str, str]) -> None:
    """GCS ``OBJECT_DELETE`` notification -> delete its thumbnails -> ``image.deleted``; an
    overwrite publishes only when no newer generation will be processed, an expiry by the
    lifecycle rule keeps the thumbnails (``image.expired``): docs/architecture.md."""
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
            expired = events.result_event(
                "expired", obj, message.message_id, expiredAt=deletion.event_time
            )
            _publish(p, expired, log, timings)
            return
        with _timed(timings, "delete_ms"):
            deleted = thumbnails.Folder(p.storage, p.settings.outputs, obj).delete_older()
        if deletion.overwritten_by is not None and _will_be_processed(p, obj):
            log.info(
                "overwritten: older thumbnails deleted",
                overwrittenByGeneration=deletion.overwritten_by,
                deleted=deleted,
                timings=timings,
            )
            return
        deleted_event = events.result_event(
            "deleted", obj, message.message_id, timings=dict(timings)
        )
        _publish(p, deleted_event, log, timings)


def _will_be_processed(p: Pipeline, obj: StorageObject) -> bool:
    """After an overwrite, will a newer generation's result replace this one's doc? Not when
    the source is gone or its live generation is skipped (else the doc would go on listing
    the thumbnails just deleted)."""
    live = p.storage.stat(obj.bucket, obj.name)
    if live is None or live.generation <= obj.generation:
        return False
    current = dataclasses.replace(obj, generation=live.generation, metadata=live.metadata)
    return skip_reason(p.settings, current) is None


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


# --- what the stages share ------------------------------------------------------------


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


@contextlib.contextmanager
def _given_up_past_the_window(p: Pipeline, event_time: dt.datetime | None) -> Iterator[None]:
    """Turns a failure that would be retried into ``retry_window_exceeded`` (permanent) once
    its event is older than the retry window: Google's "avoid infinite retries"
    (https://cloud.google.com/functions/docs/bestpractices/retries), for failures only, as
    Eventarc keeps retrying a throttled event for 24 h
    (https://cloud.google.com/eventarc/docs/retry-events): docs/architecture.md, "The
    event-age guard fails failures, not waits"."""
    try:
        yield
    except PermanentError:
        raise
    except Exception as exc:
        window = p.settings.retry_window_seconds
        age = (p.clock() - event_time).total_seconds() if event_time else 0.0
        if age < window:
            raise
        raise PermanentError(
            "retry_window_exceeded",
            f"still failing {age:.0f} s after the event, past the {window} s retry window "
            f"(Eventarc drops an event after 24 h): {exc!r}",
        ) from exc


def _logger(p: Pipeline, event: CloudEvent, headers: Mapping[str, str], stage: str) -> Logger:
    trace = trace_fields(p.settings.project, headers, event.get("traceparent"))
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
    """Log any exception for what it is, then let it through: the platform will redeliver
    (a malformed push message: 400, into the dead-letter topic; docs/architecture.md)."""
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
