"""The stages of pipeline.py, called as the handlers call them, over in-memory
GCS/Pub/Sub/Firestore with real preconditions: what is skipped, every failure reason,
idempotency and ordering, long names, cleanup and its races (functions/main.py over HTTP:
test_functions_main.py)."""

from __future__ import annotations

import base64
import dataclasses
import json

import pytest
from google.api_core import exceptions as gexc
from imagekit import (
    notification,
    photo,
    push_body,
    push_event,
    resource,
    storage_event,
)
from pipeline_kit import (
    deliver_results,
    image_doc,
    log_lines,
    process,
    published,
    thumbs_of,
    upload,
)

from image_pipeline import pipeline as stages
from image_pipeline import pubsub_limits
from image_pipeline.errors import GenerationMismatch
from image_pipeline.gcs import Upload
from image_pipeline.records import image_doc_id

# --- make_thumbnail: what is skipped --------------------------------------------------


@pytest.mark.parametrize(
    ("bucket", "name", "metadata", "why"),
    [
        ("thumbs", "thumbnails/a.jpg/64x64.webp", {}, "not in the uploads bucket"),
        ("elsewhere", "a.jpg", {}, "not in the uploads bucket"),
        ("uploads", "a.jpg", {"image-pipeline-output": "thumbnail"}, "carries the output marker"),
        ("uploads", "folder/", {}, "a folder placeholder"),
        ("uploads", "private/a.jpg", {}, "outside the include/exclude patterns"),
        ("uploads", "notes/a.jpg", {}, "outside the include/exclude patterns"),
    ],
)
def test_skipped_objects(pipeline, capsys, bucket, name, metadata, why):
    pipeline.settings = dataclasses.replace(
        pipeline.settings,
        include_patterns=("**/*.jpg",),
        exclude_patterns=("private/**", "notes/*"),
    )
    res = resource(bucket, name, 1, 10, metadata=metadata)
    stages.make_thumbnail(pipeline, storage_event(res), {})
    assert pipeline.publisher.messages == [] and pipeline.storage.uploads == 0
    assert log_lines(capsys)[-1]["reason"] == why


def test_vanished_generation_is_skipped(pipeline):
    res = resource("uploads", "gone.jpg", 5, 10)  # never uploaded: overwritten or deleted
    stages.make_thumbnail(pipeline, storage_event(res), {})
    assert pipeline.publisher.messages == []


# --- make_thumbnail: every failure reason ---------------------------------------------


def test_a_5_kb_content_type_is_processed_and_published_within_pubsub_limits(pipeline):
    content_type = "image/jpeg; comment=" + "x" * 5000
    res = upload(pipeline, "long-type.jpg", photo(), contentType=content_type)
    stages.make_thumbnail(pipeline, storage_event(res), {})
    ((_, data, attrs),) = pipeline.publisher.messages
    assert attrs["eventType"] == "image.processed"
    assert attrs["contentType"] == content_type[:1024]
    assert attrs["truncatedAttributes"] == "contentType"
    assert pubsub_limits.violations(data, attrs) == []
    assert json.loads(data)["contentType"] == content_type


def test_a_message_pubsub_would_refuse_is_never_published(pipeline, monkeypatch):
    """Attributes are fitted by construction; should data outgrow 10 MB, nothing goes out."""
    res = upload(pipeline, "big-event.jpg", photo())
    monkeypatch.setattr(pubsub_limits, "MAX_MESSAGE_BYTES", 100)
    with pytest.raises(ValueError, match="over Pub/Sub's limits"):
        stages.make_thumbnail(pipeline, storage_event(res), {})
    assert pipeline.publisher.messages == []


def test_too_many_bytes_is_rejected_before_download(pipeline, monkeypatch):
    res = upload(pipeline, "huge.jpg", photo())
    res["size"] = str(pipeline.settings.max_input_bytes + 1)
    monkeypatch.setattr(pipeline.storage, "download", pytest.fail)
    stages.make_thumbnail(pipeline, storage_event(res), {})
    ((data, attrs),) = published(pipeline)
    assert attrs["reason"] == "too_many_bytes" and "download_ms" not in data["timings"]


def test_empty_is_rejected_from_the_event_before_download(pipeline, monkeypatch):
    res = upload(pipeline, "empty.jpg", b"")
    monkeypatch.setattr(pipeline.storage, "download", pytest.fail)
    stages.make_thumbnail(pipeline, storage_event(res), {})
    assert published(pipeline)[0][1]["reason"] == "empty"


def test_an_event_hours_old_within_eventarcs_retention_is_processed(pipeline):
    # A backlog (429s retried by Eventarc) delays an upload by hours: still processed.
    res = upload(pipeline, "backlog.jpg", photo())
    stages.make_thumbnail(pipeline, storage_event(res, time="2025-12-31T03:00:00Z"), {})
    ((data, attrs),) = published(pipeline)
    assert (attrs["eventType"], data["status"]) == ("image.processed", "processed")


def test_an_old_event_that_succeeds_is_processed_even_past_the_window(pipeline):
    res = upload(pipeline, "late.jpg", photo())
    stages.make_thumbnail(pipeline, storage_event(res, time="2025-12-31T00:30:00Z"), {})
    ((_, attrs),) = published(pipeline)
    assert attrs["eventType"] == "image.processed"


def test_a_failure_past_the_retry_window_is_recorded_not_retried(pipeline, monkeypatch):
    res = upload(pipeline, "late.jpg", photo())

    def unavailable(*args):
        raise gexc.ServiceUnavailable("storage down")

    monkeypatch.setattr(pipeline.storage, "download", unavailable)
    stages.make_thumbnail(pipeline, storage_event(res, time="2025-12-31T00:30:00Z"), {})
    ((data, attrs),) = published(pipeline)
    assert attrs["reason"] == "retry_window_exceeded"
    assert "still failing 84605 s after the event" in data["error"]["message"]
    assert "storage down" in data["error"]["message"]


def test_a_failure_within_the_retry_window_is_retried(pipeline, monkeypatch):
    res = upload(pipeline, "soon.jpg", photo())

    def bug(*args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(pipeline.storage, "download", bug)
    with pytest.raises(RuntimeError):
        stages.make_thumbnail(pipeline, storage_event(res, time="2025-12-31T03:00:00Z"), {})
    assert published(pipeline) == []


# --- make_thumbnail: transient failures are raised ------------------------------------


def test_a_lost_upload_race_is_retried(pipeline, monkeypatch):
    res = upload(pipeline, "a.jpg", photo(64, 64))
    stages.make_thumbnail(pipeline, storage_event(res), {})
    real_stat = pipeline.storage.stat
    stale = lambda bucket, name: None if bucket == "thumbs" else real_stat(bucket, name)  # noqa: E731
    monkeypatch.setattr(pipeline.storage, "stat", stale)  # a stale read of the thumbnails
    newer = upload(pipeline, "a.jpg", photo(64, 64))
    with pytest.raises(GenerationMismatch):
        stages.make_thumbnail(pipeline, storage_event(newer), {})


# --- idempotency and ordering, end to end through write_metadata ----------------------


def test_the_same_event_twice_changes_nothing(pipeline):
    res = upload(pipeline, "twice.jpg", photo(64, 64))
    event = storage_event(res)
    stages.make_thumbnail(pipeline, event, {})
    uploads, live = pipeline.storage.uploads, dict(pipeline.storage.live)
    stages.make_thumbnail(pipeline, event, {})
    assert pipeline.storage.uploads == uploads and pipeline.storage.live == live
    first, second = published(pipeline)
    assert first[0]["thumbnails"] == second[0]["thumbnails"]
    deliver_results(pipeline, [0, 1, 1])
    assert pipeline.store.writes == 1
    doc = image_doc(pipeline, "twice.jpg")
    assert doc is not None and doc["status"] == "processed"


@pytest.mark.parametrize("order", [[0, 1], [1, 0]], ids=["in order", "newer first"])
def test_generation_n_plus_1_wins_in_any_order(pipeline, order):
    old = upload(pipeline, "o.jpg", photo(64, 32))
    new = upload(pipeline, "o.jpg", photo(32, 64))
    events_ = [storage_event(old, event_id="old"), storage_event(new, event_id="new")]
    for i in order:
        stages.make_thumbnail(pipeline, events_[i], {})
    thumbs = [o for (b, _), o in pipeline.storage.live.items() if b == "thumbs"]
    assert {t.metadata["source-generation"] for t in thumbs} == {new["generation"]}
    # The old generation is no longer live when processed: it writes and publishes nothing.
    assert [attrs["generation"] for _, attrs in published(pipeline)] == [new["generation"]]
    deliver_results(pipeline, [0])
    doc = image_doc(pipeline, "o.jpg")
    assert doc is not None
    assert (doc["generation"], doc["width"], doc["height"]) == (int(new["generation"]), 32, 64)
    assert len(doc["thumbnails"]) == 4


def test_stale_result_events_do_not_replace_newer_docs(pipeline):
    old = process(pipeline, "s.jpg")
    new = process(pipeline, "s.jpg")
    assert [a["generation"] for _, a in published(pipeline)] == [
        old["generation"],
        new["generation"],
    ]
    deliver_results(pipeline, [1, 0])  # the older result arrives last
    assert pipeline.store.writes == 1
    doc = image_doc(pipeline, "s.jpg")
    assert doc is not None and doc["generation"] == int(new["generation"])


def test_late_expired_retry_does_not_hide_a_processed_image(pipeline):
    res = upload(pipeline, "r.jpg", photo(64, 64))
    stages.make_thumbnail(pipeline, storage_event(res), {})
    stages.make_thumbnail(pipeline, storage_event(res, time="2025-12-01T00:00:00Z"), {})
    deliver_results(pipeline, [0, 1])
    doc = image_doc(pipeline, "r.jpg")
    assert doc is not None and doc["status"] == "processed"


# --- long object names ---------------------------------------------------------------

LONG_NAMES = ["a" * 1024, "照" * 341 + "a", "dir/" + "ü" * 510, "x" * 996 + "é"]


@pytest.mark.parametrize("name", LONG_NAMES, ids=["ascii", "cjk", "nested", "edge"])
def test_long_names_get_valid_thumbnails_that_cleanup_finds(pipeline, name):
    assert len(name.encode()) >= 997
    res = process(pipeline, name)
    folder = f"thumbnails/_long/{image_doc_id('uploads', name)}/"
    written = pipeline.storage.names("thumbs")
    assert len(written) == 4
    assert all(n.startswith(folder) and len(n.encode()) <= 1024 for n in written)
    ((data, attrs),) = published(pipeline)
    assert attrs["eventType"] == "image.processed"
    assert sorted(t["name"] for t in data["thumbnails"]) == written
    stages.cleanup(pipeline, push_event(notification("uploads", name, int(res["generation"]))), {})
    assert pipeline.storage.names("thumbs") == []
    assert published(pipeline)[-1][1]["eventType"] == "image.deleted"


# --- write_metadata -------------------------------------------------------------------


def test_failed_result_is_recorded(pipeline):
    res = upload(pipeline, "bad.jpg", b"not an image")
    stages.make_thumbnail(pipeline, storage_event(res), {})
    deliver_results(pipeline, [0])
    doc = image_doc(pipeline, "bad.jpg")
    assert doc is not None and doc["status"] == "failed"
    assert doc["error"]["reason"] == "not_an_image" and doc["thumbnails"] == []


# --- cleanup --------------------------------------------------------------------------


def test_cleanup_keeps_thumbnails_of_a_newer_generation(pipeline):
    old = process(pipeline, "k.jpg")
    new = process(pipeline, "k.jpg")
    body = notification("uploads", "k.jpg", int(old["generation"]))
    stages.cleanup(pipeline, push_event(body), {})
    assert len(thumbs_of(pipeline, "k.jpg")) == 4
    deliver_results(pipeline, [1, 2, 0])  # new processed, old deleted, old processed
    doc = image_doc(pipeline, "k.jpg")
    assert doc is not None
    assert (doc["status"], doc["generation"]) == ("processed", int(new["generation"]))


def overwrite_cleanup(pipeline: stages.Pipeline, old: dict, new: dict) -> None:
    """The OBJECT_DELETE notification GCS sends for ``old`` when ``new`` replaced it."""
    body = notification(
        "uploads", old["name"], int(old["generation"]), overwrittenByGeneration=new["generation"]
    )
    stages.cleanup(pipeline, push_event(body), {})


def test_overwrite_deletes_older_thumbnails_but_marks_nothing_deleted(pipeline, capsys):
    old = process(pipeline, "w.jpg")
    new = upload(pipeline, "w.jpg", photo(32, 32))  # to be processed: its result replaces the doc
    overwrite_cleanup(pipeline, old, new)
    assert thumbs_of(pipeline, "w.jpg") == []
    assert len(pipeline.publisher.messages) == 1  # only the processed event
    assert log_lines(capsys)[-1]["message"] == "overwritten: older thumbnails deleted"


def test_an_overwrite_nobody_will_process_marks_the_old_generation_deleted(pipeline):
    old = process(pipeline, "w.jpg")
    marked = {"image-pipeline-output": "x"}
    stored = pipeline.storage.put(
        "uploads", "w.jpg", photo(32, 32), Upload(b"", "image/jpeg", "", marked)
    )
    new = resource("uploads", "w.jpg", stored.generation, 10, metadata=marked)
    stages.make_thumbnail(pipeline, storage_event(new), {})  # skipped: it carries the marker
    overwrite_cleanup(pipeline, old, new)
    assert thumbs_of(pipeline, "w.jpg") == []
    deliver_results(pipeline, [0, 1])
    doc = image_doc(pipeline, "w.jpg")
    assert doc is not None and (doc["status"], doc["thumbnails"]) == ("deleted", [])
    assert doc["generation"] == int(old["generation"])


FACTS = {
    "size": "1234",
    "md5Hash": "1B2M2Y8AsgTpgAmY7PhCfg==",
    "crc32c": "AAAAAA==",
    "metageneration": "2",
}


@pytest.mark.parametrize("payload", ["none", "thin", "full"])
def test_a_delete_keeps_the_facts_of_its_generation_whatever_its_payload(pipeline, payload):
    """GCS sends the deleted generation's whole resource; a notification without a payload
    (format NONE) or with a thin one (an emulator's) must not erase what the doc knows."""
    res = upload(pipeline, "f.jpg", photo(64, 64)) | FACTS
    stages.make_thumbnail(pipeline, storage_event(res), {})
    body = notification("uploads", "f.jpg", int(res["generation"]))
    identity = {k: res[k] for k in ("bucket", "name", "generation")}
    data = {"none": b"", "thin": json.dumps(identity).encode(), "full": json.dumps(res).encode()}
    body["message"]["data"] = base64.b64encode(data[payload]).decode()
    stages.cleanup(pipeline, push_event(body), {})
    deliver_results(pipeline, [0, 1])
    doc = image_doc(pipeline, "f.jpg")
    assert doc is not None and doc["status"] == "deleted"
    facts = (doc["size"], doc["md5Hash"], doc["crc32c"], doc["metageneration"])
    assert facts == (1234, FACTS["md5Hash"], FACTS["crc32c"], 2)


def test_cleanup_twice_is_harmless(pipeline):
    res = process(pipeline, "d.jpg")
    event = push_event(notification("uploads", "d.jpg", int(res["generation"])))
    stages.cleanup(pipeline, event, {})
    stages.cleanup(pipeline, event, {})
    deliver_results(pipeline, [0, 1, 2])
    assert pipeline.store.writes == 2
    doc = image_doc(pipeline, "d.jpg")
    assert doc is not None and doc["status"] == "deleted"


# --- cleanup racing make_thumbnail ----------------------------------------------------


def delete_source(pipeline: stages.Pipeline, res: dict, *, cleanup: bool) -> None:
    """The source's delete, optionally followed at once by its cleanup."""
    pipeline.storage.delete("uploads", res["name"], if_generation_match=int(res["generation"]))
    if cleanup:
        event = push_event(notification("uploads", res["name"], int(res["generation"])))
        stages.cleanup(pipeline, event, {})


RACE_POINTS = ["after download", "after the first write"]


def stage_race(pipeline: stages.Pipeline, point: str, act) -> None:
    if point == "after download":
        pipeline.storage.after_download = act
    else:
        pipeline.storage.after_upload = act


@pytest.mark.parametrize("point", RACE_POINTS)
@pytest.mark.parametrize("cleanup_first", [True, False], ids=["cleanup first", "cleanup later"])
def test_source_deleted_during_processing_leaves_no_orphan_thumbnails(
    pipeline, capsys, cleanup_first, point
):
    res = upload(pipeline, "race.jpg", photo(64, 64))
    stage_race(pipeline, point, lambda: delete_source(pipeline, res, cleanup=cleanup_first))
    stages.make_thumbnail(pipeline, storage_event(res), {})
    assert pipeline.storage.names("thumbs") == []
    line = log_lines(capsys)[-1]
    assert (line["stage"], line["message"], line["liveGeneration"]) == (
        "make_thumbnail",
        "skipped",
        None,
    )
    # Writes go on until the check after them (the delete's cleanup took the first one).
    written = 0 if point == "after download" else (3 if cleanup_first else 4)
    assert len(line["deleted"]) == written
    if not cleanup_first:
        delete_source(pipeline, res, cleanup=True)
    assert [attrs["eventType"] for _, attrs in published(pipeline)] == ["image.deleted"]
    deliver_results(pipeline, [0])
    doc = image_doc(pipeline, "race.jpg")
    assert doc is not None and doc["status"] == "deleted"


def test_source_deleted_during_upload_keeps_a_newer_generations_thumbnails(pipeline):
    old = upload(pipeline, "race.jpg", photo(64, 64))
    newer: list[dict] = []

    def overwrite_process_and_delete() -> None:
        newer.append(process(pipeline, "race.jpg"))
        delete_source(pipeline, newer[0], cleanup=False)  # its own cleanup comes later

    pipeline.storage.after_download = overwrite_process_and_delete
    stages.make_thumbnail(pipeline, storage_event(old), {})
    thumbs = [o for (b, _), o in pipeline.storage.live.items() if b == "thumbs"]
    assert {t.metadata["source-generation"] for t in thumbs} == {newer[0]["generation"]}
    assert len(thumbs) == 4
    assert [attrs["generation"] for _, attrs in published(pipeline)] == [newer[0]["generation"]]


NEW_UPLOADS = {"an image": photo(16, 16), "a corrupt file": b"\xff\xd8\xff\xe0" + b"\0" * 10}


@pytest.mark.parametrize("point", RACE_POINTS)
@pytest.mark.parametrize("new_upload", NEW_UPLOADS)
@pytest.mark.parametrize("overwrite_cleanup_first", [True, False])
def test_source_overwritten_during_processing_ends_with_the_new_generation_only(
    pipeline, point, new_upload, overwrite_cleanup_first
):
    """The old generation stops and removes what it wrote, whatever the new upload gives
    (a 16x16 image has two boxes' worth of thumbnails, a corrupt one none)."""
    old = upload(pipeline, "race.jpg", photo(64, 32))
    new: list[dict] = []

    def overwrite() -> None:
        new.append(upload(pipeline, "race.jpg", NEW_UPLOADS[new_upload]))
        if overwrite_cleanup_first:
            overwrite_cleanup(pipeline, old, new[0])

    stage_race(pipeline, point, overwrite)
    stages.make_thumbnail(pipeline, storage_event(old), {})
    assert thumbs_of(pipeline, "race.jpg") == []
    assert published(pipeline) == []
    if not overwrite_cleanup_first:
        overwrite_cleanup(pipeline, old, new[0])
    stages.make_thumbnail(pipeline, storage_event(new[0]), {})
    thumbs = [o for (b, _), o in pipeline.storage.live.items() if b == "thumbs"]
    assert {t.metadata["source-generation"] for t in thumbs} <= {new[0]["generation"]}
    deliver_results(pipeline, list(range(len(pipeline.publisher.messages))))
    doc = image_doc(pipeline, "race.jpg")
    assert doc is not None and doc["generation"] == int(new[0]["generation"])
    assert sorted(t["name"] for t in doc["thumbnails"]) == thumbs_of(pipeline, "race.jpg")


def test_a_redelivery_of_a_vanished_generation_removes_what_it_wrote(pipeline):
    old = upload(pipeline, "v.jpg", photo(64, 64))

    def overwrite_then_fail() -> None:  # the write is done; the process dies right after
        upload(pipeline, "v.jpg", b"\xff\xd8\xff\xe0" + b"\0" * 10)
        raise ConnectionError("instance lost")

    pipeline.storage.after_upload = overwrite_then_fail
    with pytest.raises(ConnectionError):
        stages.make_thumbnail(pipeline, storage_event(old), {})
    assert len(thumbs_of(pipeline, "v.jpg")) == 1
    pipeline.storage.history.pop(("uploads", "v.jpg", int(old["generation"])))  # not versioned
    stages.make_thumbnail(pipeline, storage_event(old), {})  # the redelivery
    assert thumbs_of(pipeline, "v.jpg") == [] and published(pipeline) == []


def test_gcs_requests_per_upload(pipeline):
    """What one upload costs in Cloud Storage requests (docs/architecture.md, "Thumbnails"):
    the download, the live-generation check before and after the writes, one create-only
    write per thumbnail and the listing for outputs of earlier rules (N + 4; it was 2N + 3:
    a read before every write). A name still taken by an older generation adds a read and a
    replace for it."""
    outputs = len(pipeline.settings.thumbnail_sizes) * len(pipeline.settings.thumbnail_formats)
    process(pipeline, "count.jpg")
    assert pipeline.storage.calls == {"download": 1, "stat": 2, "upload": outputs, "list": 1}
    pipeline.storage.calls.clear()
    process(pipeline, "count.jpg")  # an overwrite whose cleanup has not run yet
    assert pipeline.storage.calls == {
        "download": 1,
        "stat": 2 + outputs,
        "upload": 2 * outputs,
        "list": 1,
    }
    assert len(published(pipeline)) == 2


def test_a_dead_letter_whose_message_id_looks_like_a_path_is_one_flat_record(pipeline):
    body = push_body(b"{}", {}, message_id="a/b/c", subscription="dl-recorder")
    stages.handle_dead_letter(pipeline, push_event(body), {})
    ((record_id, record),) = pipeline.store.collections["dead_letters"].items()
    assert "/" not in record_id and record["messageId"] == "a/b/c"
