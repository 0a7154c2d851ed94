"""The four entry points, over in-memory GCS/Pub/Sub/Firestore with real preconditions.

HTTP-level tests go through functions-framework (binary-mode CloudEvents for Eventarc,
raw push bodies for Pub/Sub); flow tests call the stages with the same CloudEvents.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import os
import re
import subprocess
import sys
import urllib.parse

import pytest
from google.api_core import exceptions as gexc
from imagekit import (
    FINALIZED,
    FUNCTIONS_MAIN,
    encode,
    notification,
    photo,
    push_body,
    push_event,
    resource,
    storage_event,
)
from PIL import Image

from image_pipeline import pipeline as stages
from image_pipeline import pubsub_limits
from image_pipeline.errors import GenerationMismatch
from image_pipeline.records import image_doc_id
from infra.common.storage_events import eventarc_storage_event
from infra.local.sample_images import decompression_bomb, many_page_tiff
from tests.hostile_names import HOSTILE_NAMES

NAMES = [
    "plain.jpg",
    "with space/and more spaces.jpg",
    "ünïcødé/照片.jpg",
    "hash#tag.jpg",
    "question?.jpg",
    "100%.jpg",
    "a/b/c/d/e/f/g/h/i/j/k/deeply/nested/photo.jpg",
]


def upload(p: stages.Pipeline, name: str, data: bytes, **res_fields):
    """Put ``data`` in the uploads bucket; return its object resource."""
    obj = p.storage.put(p.settings.uploads_bucket, name, data)
    return resource(p.settings.uploads_bucket, name, obj.generation, len(data), **res_fields)


def binary_headers(res: dict, **extra: str) -> dict[str, str]:
    """The ce-* headers Eventarc sends for a finalized object (binary content mode)."""
    subject = urllib.parse.quote(f"objects/{res['name']}", safe="/")
    return {
        "ce-id": "evt-1",
        "ce-source": f"//storage.googleapis.com/projects/_/buckets/{res['bucket']}",
        "ce-type": FINALIZED,
        "ce-subject": subject,
        "ce-time": "2026-01-01T00:00:00Z",
        "ce-specversion": "1.0",
        **extra,
    }


def published(p: stages.Pipeline) -> list[tuple[dict, dict]]:
    return [(json.loads(data), attrs) for _, data, attrs in p.publisher.messages]


def deliver_results(p: stages.Pipeline, indexes: list[int]) -> None:
    """Push published result events to write_metadata, in the given order."""
    for i in indexes:
        _, data, attrs = p.publisher.messages[i]
        body = push_body(data, attrs, message_id=f"r-{i}")
        stages.write_metadata(p, push_event(body), {})


def image_doc(p: stages.Pipeline, name: str) -> dict | None:
    docs = p.store.collections.get(p.settings.images_collection, {})
    return docs.get(image_doc_id(p.settings.uploads_bucket, name))


def log_lines(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]


# --- make_thumbnail over HTTP ---------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_make_thumbnail_over_http(function_client, pipeline, name):
    res = upload(pipeline, name, photo(200, 100))
    response = function_client("make_thumbnail").post(
        "/", data=json.dumps(res), headers=binary_headers(res), content_type="application/json"
    )
    assert response.status_code == 200, response.data
    storage = pipeline.storage
    assert storage.names("thumbs") == sorted(
        f"thumbnails/{name}/{box}.{fmt}" for box in ("32x32", "64x64") for fmt in ("webp", "jpeg")
    )
    thumb = storage.live["thumbs", f"thumbnails/{name}/64x64.webp"]
    assert thumb.upload.metadata == {
        "image-pipeline-output": "thumbnail",
        "source-bucket": "uploads",
        "source-name": name,
        "source-generation": res["generation"],
        "output-fingerprint": pipeline.settings.output_fingerprint,
    }
    assert thumb.upload.cache_control == "public, max-age=3600"
    assert thumb.upload.content_type == "image/webp"
    assert Image.open(storage_bytes(storage, name, "64x64.webp")).size == (64, 32)
    ((topic, _, _),) = pipeline.publisher.messages
    ((data, attrs),) = published(pipeline)
    assert topic == "image-events"
    assert attrs == {
        "eventType": "image.processed",
        "bucket": "uploads",
        "objectId": name,
        "generation": res["generation"],
        "contentType": "image/jpeg",
    }
    placeholder = data["image"].pop("placeholder")
    assert data["image"] == {
        "width": 200,
        "height": 100,
        "format": "JPEG",
        "mode": "RGB",
        "frames": 1,
        "exif": {},
    }
    assert (placeholder["width"], placeholder["height"]) == (32, 16)  # the smallest thumbnail
    assert placeholder["blurhash"] and re.fullmatch(r"#[0-9a-f]{6}", placeholder["color"])
    assert {(t["name"], t["width"], t["height"]) for t in data["thumbnails"]} >= {
        (f"thumbnails/{name}/64x64.webp", 64, 32),
        (f"thumbnails/{name}/32x32.jpeg", 32, 16),
    }
    assert set(data["timings"]) == {"download_ms", "core_ms", "upload_ms"}
    assert data["sourceEventId"] == "evt-1"


def storage_bytes(storage, name: str, leaf: str) -> io.BytesIO:
    return io.BytesIO(storage.live["thumbs", f"thumbnails/{name}/{leaf}"].data)


def test_trace_header_reaches_the_logs(function_client, pipeline, capsys):
    res = upload(pipeline, "a.jpg", photo(64, 64))
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    headers = binary_headers(res, traceparent=f"00-{trace}-00f067aa0ba902b7-01")
    response = function_client("make_thumbnail").post(
        "/", data=json.dumps(res), headers=headers, content_type="application/json"
    )
    assert response.status_code == 200
    lines = [line for line in log_lines(capsys) if line.get("stage") == "make_thumbnail"]
    assert lines and all(
        line["logging.googleapis.com/trace"] == f"projects/test-project/traces/{trace}"
        for line in lines
    )
    final = lines[-1]
    assert final["message"] == "published image.processed"
    assert (final["object"], final["eventId"], final["severity"]) == ("a.jpg", "evt-1", "INFO")
    assert set(final["timings"]) == {"download_ms", "core_ms", "upload_ms", "publish_ms"}


def test_malformed_storage_event_is_acknowledged(function_client, capsys):
    headers = binary_headers({"bucket": "uploads", "name": "x"})
    response = function_client("make_thumbnail").post(
        "/",
        data=json.dumps({"bucket": "uploads"}),
        headers=headers,
        content_type="application/json",
    )
    assert response.status_code == 200
    assert log_lines(capsys)[-1]["severity"] == "ERROR"


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


REJECTED = {
    "empty": b"",
    "not_an_image": b"hello, I am a text file called photo.jpg",
    "unsupported_format": encode(Image.new("RGB", (8, 8)), "TGA"),
    "corrupt": b"\xff\xd8\xff\xe0" + b"\0" * 10,
    "truncated": photo(300, 200)[:3000],
    "too_many_pixels": decompression_bomb(30000, 30000),
    "too_many_frames": many_page_tiff(10_001),
    "too_many_decoded_bytes": decompression_bomb(10950, 10950, 8, 6),  # RGBA, < pixel limit
}


@pytest.mark.parametrize("reason", REJECTED)
def test_permanent_failures_publish_image_failed(function_client, pipeline, reason):
    res = upload(pipeline, f"bad/{reason}.jpg", REJECTED[reason])
    response = function_client("make_thumbnail").post(
        "/", data=json.dumps(res), headers=binary_headers(res), content_type="application/json"
    )
    assert response.status_code == 200  # acknowledged, never retried
    ((data, attrs),) = published(pipeline)
    assert (attrs["eventType"], attrs["reason"]) == ("image.failed", reason)
    assert data["status"] == "failed" and data["error"]["reason"] == reason
    assert pipeline.storage.uploads == 0


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


@pytest.mark.parametrize(
    "exc", [gexc.ServiceUnavailable("503"), gexc.TooManyRequests("429"), gexc.Forbidden("iam")]
)
def test_publish_failures_are_retried(function_client, pipeline, exc, capsys):
    res = upload(pipeline, "a.jpg", photo(64, 64))
    pipeline.publisher.fail_with = exc
    response = function_client("make_thumbnail").post(
        "/", data=json.dumps(res), headers=binary_headers(res), content_type="application/json"
    )
    assert response.status_code == 500
    last = log_lines(capsys)[-1]
    transient = not isinstance(exc, gexc.Forbidden)
    assert last["severity"] == ("WARNING" if transient else "ERROR")


def test_a_lost_upload_race_is_retried(pipeline, monkeypatch):
    res = upload(pipeline, "a.jpg", photo(64, 64))
    stages.make_thumbnail(pipeline, storage_event(res), {})
    monkeypatch.setattr(pipeline.storage, "stat", lambda bucket, name: None)  # a stale read
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
    deliver_results(pipeline, [0, 1])  # result events in the order they were published
    doc = image_doc(pipeline, "o.jpg")
    assert doc is not None
    assert (doc["generation"], doc["width"], doc["height"]) == (int(new["generation"]), 32, 64)
    assert len(doc["thumbnails"]) == 4


def test_stale_result_events_do_not_replace_newer_docs(pipeline):
    old = upload(pipeline, "s.jpg", photo(64, 32))
    new = upload(pipeline, "s.jpg", photo(32, 64))
    stages.make_thumbnail(pipeline, storage_event(new), {})
    stages.make_thumbnail(pipeline, storage_event(old), {})
    superseded = published(pipeline)[1][0]
    assert superseded["thumbnails"] == []  # the newer generation's thumbnails were kept
    deliver_results(pipeline, [0, 1])
    assert pipeline.store.writes == 1


def test_late_expired_retry_does_not_hide_a_processed_image(pipeline):
    res = upload(pipeline, "r.jpg", photo(64, 64))
    stages.make_thumbnail(pipeline, storage_event(res), {})
    stages.make_thumbnail(pipeline, storage_event(res, time="2025-12-01T00:00:00Z"), {})
    deliver_results(pipeline, [0, 1])
    doc = image_doc(pipeline, "r.jpg")
    assert doc is not None and doc["status"] == "processed"


# --- long object names ---------------------------------------------------------------

LONG_NAMES = ["a" * 1024, "照" * 341 + "a", "dir/" + "ü" * 510, "x" * 996 + "é"]


@pytest.mark.parametrize(
    ("name", "folder"),
    [
        ("n" * 996, "thumbnails/" + "n" * 996 + "/"),  # 11 + 996 + 1 + "99999x99999.webp"
        ("n" * 997, "thumbnails/_long/" + image_doc_id("uploads", "n" * 997) + "/"),
        ("é" * 498, "thumbnails/" + "é" * 498 + "/"),  # counted in bytes, not characters
        ("é" * 499, "thumbnails/_long/" + image_doc_id("uploads", "é" * 499) + "/"),
        # A short name aiming at another object's hashed folder gets a hashed one of its own.
        (
            "_long/" + "0" * 64,
            "thumbnails/_long/" + image_doc_id("uploads", "_long/" + "0" * 64) + "/",
        ),
    ],
)
def test_thumbnail_folder_is_hashed_only_when_a_name_could_exceed_1024_bytes(name, folder):
    assert stages.thumbnail_folder("thumbnails/", "uploads", name) == folder


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


# --- write_metadata over HTTP ---------------------------------------------------------


def test_write_metadata_over_http(function_client, pipeline):
    res = upload(pipeline, "dir/m.jpg", photo(80, 40))
    stages.make_thumbnail(pipeline, storage_event(res), {})
    _, data, attrs = pipeline.publisher.messages[0]
    client = function_client("write_metadata")
    body = push_body(data, attrs, message_id="77", subscription="imgpipe-metadata-writer")
    assert client.post("/", json=body).status_code == 200
    doc = image_doc(pipeline, "dir/m.jpg")
    assert doc is not None
    assert {k: doc[k] for k in ("bucket", "name", "status", "width", "height", "format")} == {
        "bucket": "uploads",
        "name": "dir/m.jpg",
        "status": "processed",
        "width": 80,
        "height": 40,
        "format": "JPEG",
    }
    assert doc["generation"] == int(res["generation"]) and doc["error"] is None
    assert doc["contentType"] == "image/jpeg" and doc["size"] == int(res["size"])
    assert len(doc["thumbnails"]) == 4 and doc["updatedAt"] is not None
    assert {"download_ms", "core_ms", "upload_ms", "metadata_ms", "total_ms"} <= set(doc["timings"])
    assert client.post("/", json=body).status_code == 200  # redelivery
    assert pipeline.store.writes == 1


def test_failed_result_is_recorded(pipeline):
    res = upload(pipeline, "bad.jpg", b"not an image")
    stages.make_thumbnail(pipeline, storage_event(res), {})
    deliver_results(pipeline, [0])
    doc = image_doc(pipeline, "bad.jpg")
    assert doc is not None and doc["status"] == "failed"
    assert doc["error"]["reason"] == "not_an_image" and doc["thumbnails"] == []


@pytest.mark.parametrize(
    "body",
    [
        push_body(b"not json", {}),
        push_body(json.dumps({"schema": 99}).encode(), {}),
        {"message": {"data": "", "messageId": "1", "attributes": {}}, "subscription": "s"},
    ],
)
def test_malformed_results_are_refused_for_dead_lettering(function_client, body):
    assert function_client("write_metadata").post("/", json=body).status_code == 400


def test_firestore_contention_is_retried(function_client, pipeline):
    def contended(*args, **kwargs):
        raise gexc.Aborted("too much contention")

    pipeline.store.update = contended
    res = upload(pipeline, "c.jpg", photo(64, 64))
    stages.make_thumbnail(pipeline, storage_event(res), {})
    _, data, attrs = pipeline.publisher.messages[0]
    response = function_client("write_metadata").post("/", json=push_body(data, attrs))
    assert response.status_code == 500


# --- cleanup --------------------------------------------------------------------------


def process(pipeline: stages.Pipeline, name: str) -> dict:
    res = upload(pipeline, name, photo(64, 64))
    stages.make_thumbnail(pipeline, storage_event(res, event_id=f"e-{res['generation']}"), {})
    return res


def thumbs_of(pipeline: stages.Pipeline, name: str) -> list[str]:
    prefix = f"thumbnails/{name}/"
    return [n for n in pipeline.storage.names("thumbs") if n.startswith(prefix)]


@pytest.mark.parametrize("name", NAMES)
def test_cleanup_over_http_deletes_thumbnails_and_marks_deleted(function_client, pipeline, name):
    res = process(pipeline, name)
    nested = process(pipeline, f"{name}/inner.jpg")  # thumbnails under the same "folder"
    deliver_results(pipeline, [0, 1])
    body = notification("uploads", name, int(res["generation"]))
    assert function_client("cleanup").post("/", json=body).status_code == 200
    assert thumbs_of(pipeline, name) == thumbs_of(pipeline, f"{name}/inner.jpg")
    assert len(thumbs_of(pipeline, nested["name"])) == 4
    data, attrs = published(pipeline)[-1]
    assert (attrs["eventType"], attrs["objectId"], data["status"]) == (
        "image.deleted",
        name,
        "deleted",
    )
    assert "delete_ms" in data["timings"]
    deliver_results(pipeline, [2])
    doc = image_doc(pipeline, name)
    assert doc is not None and doc["status"] == "deleted" and doc["thumbnails"] == []
    assert doc["width"] == 64  # what was known about that generation stays


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


def test_overwrite_deletes_older_thumbnails_but_marks_nothing_deleted(pipeline, capsys):
    old = process(pipeline, "w.jpg")
    body = notification(
        "uploads", "w.jpg", int(old["generation"]), overwrittenByGeneration=str(10**18)
    )
    stages.cleanup(pipeline, push_event(body), {})
    assert thumbs_of(pipeline, "w.jpg") == []
    assert len(pipeline.publisher.messages) == 1  # only the processed event
    assert log_lines(capsys)[-1]["message"] == "overwritten: older thumbnails deleted"


def test_cleanup_twice_is_harmless(pipeline):
    res = process(pipeline, "d.jpg")
    event = push_event(notification("uploads", "d.jpg", int(res["generation"])))
    stages.cleanup(pipeline, event, {})
    stages.cleanup(pipeline, event, {})
    deliver_results(pipeline, [0, 1, 2])
    assert pipeline.store.writes == 2
    doc = image_doc(pipeline, "d.jpg")
    assert doc is not None and doc["status"] == "deleted"


@pytest.mark.parametrize(
    "body",
    [
        notification("uploads", "a.jpg", 1, "OBJECT_FINALIZE"),
        notification("elsewhere", "a.jpg", 1),
    ],
    ids=["not a delete", "other bucket"],
)
def test_cleanup_skips(function_client, pipeline, body):
    assert function_client("cleanup").post("/", json=body).status_code == 200
    assert pipeline.publisher.messages == []


# --- cleanup racing make_thumbnail ----------------------------------------------------


def delete_source(pipeline: stages.Pipeline, res: dict, *, cleanup: bool) -> None:
    """The source's delete, optionally followed at once by its cleanup."""
    pipeline.storage.delete("uploads", res["name"], if_generation_match=int(res["generation"]))
    if cleanup:
        event = push_event(notification("uploads", res["name"], int(res["generation"])))
        stages.cleanup(pipeline, event, {})


@pytest.mark.parametrize("cleanup_first", [True, False], ids=["cleanup first", "cleanup later"])
def test_source_deleted_during_upload_leaves_no_orphan_thumbnails(pipeline, capsys, cleanup_first):
    res = upload(pipeline, "race.jpg", photo(64, 64))
    pipeline.storage.after_download = lambda: delete_source(pipeline, res, cleanup=cleanup_first)
    stages.make_thumbnail(pipeline, storage_event(res), {})
    assert pipeline.storage.names("thumbs") == []
    line = log_lines(capsys)[-1]
    assert (line["stage"], line["message"]) == ("make_thumbnail", "skipped")
    assert len(line["deleted"]) == 4
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


def test_source_overwritten_during_upload_keeps_the_thumbnails(pipeline):
    old = upload(pipeline, "race.jpg", photo(64, 32))
    pipeline.storage.after_download = lambda: upload(pipeline, "race.jpg", photo(32, 64))
    stages.make_thumbnail(pipeline, storage_event(old), {})
    assert len(thumbs_of(pipeline, "race.jpg")) == 4
    ((data, attrs),) = published(pipeline)
    assert attrs["eventType"] == "image.processed" and len(data["thumbnails"]) == 4


# --- handle_dead_letter ---------------------------------------------------------------


def test_dead_letter_recorded_once_over_http(function_client, pipeline):
    original = json.dumps({"schema": 1, "status": "processed"}).encode()
    attributes = {
        "eventType": "image.processed",
        "objectId": "a.jpg",
        "CloudPubSubDeadLetterSourceDeliveryCount": "5",
        "CloudPubSubDeadLetterSourceSubscription": "imgpipe-metadata-writer",
        "CloudPubSubDeadLetterSourceSubscriptionProject": "test-project",
        "CloudPubSubDeadLetterSourceTopicPublishTime": "2026-01-01T00:00:00Z",
    }
    body = push_body(original, attributes, message_id="123", subscription="dl-recorder")
    client = function_client("handle_dead_letter")
    assert client.post("/", json=body).status_code == 200
    assert client.post("/", json=body).status_code == 200
    (record,) = pipeline.store.collections["dead_letters"].values()
    assert pipeline.store.collections["dead_letters"].keys() == {"123"}
    assert base64.b64decode(record["data"]) == original
    assert record["attributes"] == {"eventType": "image.processed", "objectId": "a.jpg"}
    assert record["sourceSubscription"] == "imgpipe-metadata-writer"
    assert (record["deliveryAttempt"], record["status"], record["replayCount"]) == (
        5,
        "recorded",
        0,
    )
    assert pipeline.store.writes == 1


# --- start-up -------------------------------------------------------------------------


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(FUNCTIONS_MAIN.parent), **env},
        capture_output=True,
        text=True,
        check=False,
    )


LOAD_MAIN = (
    "import importlib.util, sys\n"
    f"spec = importlib.util.spec_from_file_location('functions_main', {str(FUNCTIONS_MAIN)!r})\n"
    "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
)


def test_import_creates_no_cloud_client(pipeline):
    code = LOAD_MAIN + (
        "heavy = [m for m in sys.modules if m.startswith(('google.cloud.storage',"
        " 'google.cloud.pubsub', 'google.cloud.firestore', 'google.api_core'))]\n"
        "print(heavy)"
    )
    done = run_python(code, pipeline.settings.to_env())
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_missing_setting_fails_at_start_up_naming_it(pipeline):
    env = pipeline.settings.to_env()
    del env["THUMBNAILS_BUCKET"]
    done = run_python(LOAD_MAIN, env)
    assert done.returncode != 0
    assert "SettingsError: THUMBNAILS_BUCKET: is required" in done.stderr


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_make_thumbnail_takes_the_name_from_the_body_whatever_the_headers_hold(
    function_client, pipeline, name
):
    """The router's and backfill's own event (percent-encoded headers) through the framework."""
    res = upload(pipeline, name, photo(80, 40))
    headers, body = eventarc_storage_event(res, "evt-h", FINALIZED, "2026-01-01T00:00:00.000Z")
    response = function_client("make_thumbnail").post("/", data=body, headers=headers)
    assert response.status_code == 200, response.data
    ((data, attrs),) = published(pipeline)
    assert data["name"] == attrs["objectId"] == name
    assert data["status"] == "processed"
