"""functions/main.py: the four entry points over HTTP through functions-framework (binary-mode
CloudEvents as Eventarc sends them, raw push bodies as Pub/Sub does), over the in-memory
GCS/Pub/Sub/Firestore of conftest, and what importing the module does."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys
import urllib.parse

import pipeline_kit as kit
import pytest
from google.api_core import exceptions as gexc
from imagekit import (
    FINALIZED,
    FUNCTIONS_MAIN,
    encode,
    notification,
    photo,
    push_body,
    storage_event,
)
from PIL import Image

from image_pipeline import pipeline as stages
from image_pipeline.records import dead_letter_id
from infra.common.storage_events import eventarc_storage_event
from tests.hostile_images import decompression_bomb, many_page_tiff
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


def storage_bytes(storage, name: str, leaf: str) -> io.BytesIO:
    return io.BytesIO(storage.live["thumbs", f"thumbnails/{name}/{leaf}"].data)


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


LOAD_MAIN = (
    "import importlib.util, sys\n"
    f"spec = importlib.util.spec_from_file_location('functions_main', {str(FUNCTIONS_MAIN)!r})\n"
    "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
)


@pytest.mark.parametrize("name", NAMES)
def test_make_thumbnail_over_http(function_client, pipeline, name):
    res = kit.upload(pipeline, name, photo(200, 100))
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
        "output-fingerprint": pipeline.settings.outputs.fingerprint,
    }
    assert thumb.upload.cache_control == "public, max-age=3600"
    assert thumb.upload.content_type == "image/webp"
    assert Image.open(storage_bytes(storage, name, "64x64.webp")).size == (64, 32)
    ((topic, _, _),) = pipeline.publisher.messages
    ((data, attrs),) = kit.published(pipeline)
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


def test_trace_header_reaches_the_logs(function_client, pipeline, capsys):
    res = kit.upload(pipeline, "a.jpg", photo(64, 64))
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    headers = binary_headers(res, traceparent=f"00-{trace}-00f067aa0ba902b7-01")
    response = function_client("make_thumbnail").post(
        "/", data=json.dumps(res), headers=headers, content_type="application/json"
    )
    assert response.status_code == 200
    lines = [line for line in kit.log_lines(capsys) if line.get("stage") == "make_thumbnail"]
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
    assert kit.log_lines(capsys)[-1]["severity"] == "ERROR"


@pytest.mark.parametrize("reason", REJECTED)
def test_permanent_failures_publish_image_failed(function_client, pipeline, reason):
    res = kit.upload(pipeline, f"bad/{reason}.jpg", REJECTED[reason])
    response = function_client("make_thumbnail").post(
        "/", data=json.dumps(res), headers=binary_headers(res), content_type="application/json"
    )
    assert response.status_code == 200  # acknowledged, never retried
    ((data, attrs),) = kit.published(pipeline)
    assert (attrs["eventType"], attrs["reason"]) == ("image.failed", reason)
    assert data["status"] == "failed" and data["error"]["reason"] == reason
    assert pipeline.storage.uploads == 0


@pytest.mark.parametrize(
    "exc", [gexc.ServiceUnavailable("503"), gexc.TooManyRequests("429"), gexc.Forbidden("iam")]
)
def test_publish_failures_are_retried(function_client, pipeline, exc, capsys):
    res = kit.upload(pipeline, "a.jpg", photo(64, 64))
    pipeline.publisher.fail_with = exc
    response = function_client("make_thumbnail").post(
        "/", data=json.dumps(res), headers=binary_headers(res), content_type="application/json"
    )
    assert response.status_code == 500
    last = kit.log_lines(capsys)[-1]
    transient = not isinstance(exc, gexc.Forbidden)
    assert last["severity"] == ("WARNING" if transient else "ERROR")


def test_write_metadata_over_http(function_client, pipeline):
    res = kit.upload(pipeline, "dir/m.jpg", photo(80, 40))
    stages.make_thumbnail(pipeline, storage_event(res), {})
    _, data, attrs = pipeline.publisher.messages[0]
    client = function_client("write_metadata")
    body = push_body(data, attrs, message_id="77", subscription="imgpipe-metadata-writer")
    assert client.post("/", json=body).status_code == 200
    doc = kit.image_doc(pipeline, "dir/m.jpg")
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
    res = kit.upload(pipeline, "c.jpg", photo(64, 64))
    stages.make_thumbnail(pipeline, storage_event(res), {})
    _, data, attrs = pipeline.publisher.messages[0]
    response = function_client("write_metadata").post("/", json=push_body(data, attrs))
    assert response.status_code == 500


@pytest.mark.parametrize("name", NAMES)
def test_cleanup_over_http_deletes_thumbnails_and_marks_deleted(function_client, pipeline, name):
    res = kit.process(pipeline, name)
    nested = kit.process(pipeline, f"{name}/inner.jpg")  # thumbnails under the same "folder"
    kit.deliver_results(pipeline, [0, 1])
    body = notification("uploads", name, int(res["generation"]))
    assert function_client("cleanup").post("/", json=body).status_code == 200
    assert kit.thumbs_of(pipeline, name) == kit.thumbs_of(pipeline, f"{name}/inner.jpg")
    assert len(kit.thumbs_of(pipeline, nested["name"])) == 4
    data, attrs = kit.published(pipeline)[-1]
    assert (attrs["eventType"], attrs["objectId"], data["status"]) == (
        "image.deleted",
        name,
        "deleted",
    )
    assert "delete_ms" in data["timings"]
    kit.deliver_results(pipeline, [2])
    doc = kit.image_doc(pipeline, name)
    assert doc is not None and doc["status"] == "deleted" and doc["thumbnails"] == []
    assert doc["width"] == 64  # what was known about that generation stays


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
    assert pipeline.store.collections["dead_letters"].keys() == {dead_letter_id("123")}
    assert base64.b64decode(record["data"]) == original
    assert record["attributes"] == {"eventType": "image.processed", "objectId": "a.jpg"}
    assert record["sourceSubscription"] == "imgpipe-metadata-writer"
    assert (record["deliveryAttempt"], record["status"], record["replayCount"]) == (
        5,
        "recorded",
        0,
    )
    assert pipeline.store.writes == 1


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(FUNCTIONS_MAIN.parent), **env},
        capture_output=True,
        text=True,
        check=False,
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
    res = kit.upload(pipeline, name, photo(80, 40))
    headers, body = eventarc_storage_event(res, "evt-h", FINALIZED, "2026-01-01T00:00:00.000Z")
    response = function_client("make_thumbnail").post("/", data=body, headers=headers)
    assert response.status_code == 200, response.data
    ((data, attrs),) = kit.published(pipeline)
    assert data["name"] == attrs["objectId"] == name
    assert data["status"] == "processed"
