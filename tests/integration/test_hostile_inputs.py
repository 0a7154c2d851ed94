"""Hostile input against the running stack: malformed requests straight to each
function's URL, and tools pointed at the wrong thing. Nothing is lost, nothing retried
forever, every function stays up."""

from __future__ import annotations

import base64
import io
import json
from contextlib import redirect_stderr
from typing import Any

import pytest
import requests

from image_pipeline.records import image_doc_id
from infra.common.storage_events import eventarc_storage_event
from infra.local import cli, sample_images

pytestmark = pytest.mark.integration

DEEP = b"[" * 100_000 + b"]" * 100_000


def url_of(harness: Any, target: str) -> str:
    (url,) = [f["url"] for f in harness.info["functions"].values() if f["target"] == target]
    return url


def storage_request(harness: Any, name: str, generation: str, **headers: str) -> tuple:
    resource = {
        "bucket": harness.uploads.name,
        "name": name,
        "generation": generation,
        "metageneration": "1",
        "size": "10",
    }
    event_headers, body = eventarc_storage_event(
        resource, "hostile-1", "google.cloud.storage.object.v1.finalized", "2026-01-01T00:00:00Z"
    )
    return {**event_headers, **headers}, body


def push(data: bytes, **attributes: str) -> dict[str, Any]:
    return {
        "message": {
            "data": base64.b64encode(data).decode(),
            "attributes": attributes,
            "messageId": "hostile-1",
            "publishTime": "2026-01-01T00:00:00Z",
        },
        "subscription": "projects/p/subscriptions/s",
    }


def test_malformed_events_get_a_permanent_answer_and_every_function_stays_up(harness, prefix):
    thumbnail = url_of(harness, "make_thumbnail")
    cases = [
        storage_request(harness, prefix + "a.jpg", "1", **{"ce-time": "not-a-time"}),
        storage_request(harness, prefix + "a.jpg", "1" * 40),
        storage_request(harness, "", "1"),
    ]
    for headers, body in cases:
        response = requests.post(thumbnail, data=body, headers=headers, timeout=30)
        assert response.status_code == 200, (headers, response.text)
    headers, _ = storage_request(harness, prefix + "a.jpg", "1")
    response = requests.post(thumbnail, data=DEEP, headers=headers, timeout=30)
    assert response.status_code == 200, response.text

    for target in ("write_metadata", "cleanup", "handle_dead_letter"):
        for body in (DEEP, json.dumps({"no": "message"}).encode()):
            response = requests.post(
                url_of(harness, target),
                data=body,
                headers={"Content-Type": "application/json"},
                timeout=30,
            )
            assert response.status_code == 400, (target, response.text[:200])

    # Still up and answering: an event each function skips is acknowledged.
    headers, body = storage_request(harness, prefix + "folder/", "1")
    assert requests.post(thumbnail, data=body, headers=headers, timeout=30).status_code == 200
    ignored = push(b"{}", eventType="OBJECT_FINALIZE")
    assert requests.post(url_of(harness, "cleanup"), json=ignored, timeout=30).status_code == 200


def test_pull_refuses_a_push_subscription_and_takes_nothing(harness, prefix, monkeypatch):
    monkeypatch.setattr(cli, "read_stack_json", lambda: harness.info)
    (writer,) = [
        n for n, s in harness.info["subscriptions"].items() if s["key"] == "metadata_writer"
    ]
    names = [f"{prefix}{i}.jpg" for i in range(12)]
    for i, name in enumerate(names):
        harness.upload(name, sample_images.jpeg(40 + i, 30))
        err = io.StringIO()
        with redirect_stderr(err):
            assert cli.main(["pull", writer]) == 2
        (line,) = err.getvalue().splitlines()
        assert "is a push subscription" in line and "imgpipe-failures" in line, line
    for name in names:
        assert harness.wait_doc(name, lambda d: d["status"] == "processed")


def test_malformed_results_are_dead_lettered_with_a_reason_and_the_gallery_stays_up(
    harness, prefix
):
    good = {
        "schema": 1,
        "status": "processed",
        "bucket": harness.uploads.name,
        "generation": 5,
        "image": {},
    }
    broken = {"abc": "abc", "numbers": [1, 2], "unnamed": [{"width": 1}]}
    for key, thumbnails in broken.items():
        data = json.dumps({**good, "name": prefix + key, "thumbnails": thumbnails}).encode()
        harness.publish(
            "image_events",
            data,
            eventType="image.processed",
            objectId=prefix + key,
            bucket=good["bucket"],
        )

    def recorded() -> dict[str, dict[str, Any]]:
        found = {}
        for snap in harness.dead_letters.stream():
            record = snap.to_dict()
            name = (record.get("attributes") or {}).get("objectId", "")
            if name.startswith(prefix):
                found[name[len(prefix) :]] = record
        return found

    harness.wait_until(lambda: len(recorded()) == len(broken), 60, "three dead letters")
    for key, record in recorded().items():
        assert record["malformed"].startswith("message "), record
        assert "result.thumbnails" in record["malformed"], record["malformed"]
        assert harness.doc(prefix + key) is None, "never stored"
    statuses = {d.status for d in harness.calls("write_metadata", prefix)}
    assert statuses == {400}

    # A doc already stored in a shape the gallery cannot read (written by hand, or by an
    # older writer) is one unreadable card; the page keeps serving everything else.
    harness.upload(prefix + "fine.jpg", sample_images.jpeg(60, 40))
    harness.wait_doc(prefix + "fine.jpg", lambda d: d["status"] == "processed")
    doc_id = image_doc_id(harness.uploads.name, prefix + "odd.jpg")
    harness.images.document(doc_id).set(
        {
            "bucket": harness.uploads.name,
            "name": prefix + "odd.jpg",
            "generation": 3,
            "status": "processed",
            "thumbnails": [1, 2],
        }
    )
    response = requests.get(f"{harness.info['gallery']}/api/state", timeout=30)
    assert response.status_code == 200, response.text[:300]
    cards = {u["name"]: u for u in response.json()["uploads"]}
    assert cards[prefix + "odd.jpg"]["status"] == "unreadable"
    assert cards[prefix + "fine.jpg"]["status"] == "processed"
