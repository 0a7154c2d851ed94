"""The local stack's Cloud Storage, through its front, answers as Cloud Storage does where
fake-gcs-server alone does not (infra/local/fidelity/gcs_front.py; the table in
docs/local-stack.md, "Cloud Storage")."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import requests
from google.api_core import exceptions as api_exceptions

from infra.local.local_stack import LocalStack
from infra.local.router import harness_paths

BUCKET = "storage-front-test"
TIMEOUT = 30


@pytest.fixture(scope="module")
def gcs(local_stack: LocalStack) -> str:
    assert local_stack.gcs_front is not None
    url = f"http://{local_stack.gcs_front.host}"
    assert local_stack.env["STORAGE_EMULATOR_HOST"] == url
    response = requests.post(f"{url}/storage/v1/b", json={"name": BUCKET}, timeout=TIMEOUT)
    assert response.status_code in (200, 409), response.text
    return url


def _put(gcs: str, name: str, data: bytes, **params: Any) -> requests.Response:
    return requests.post(
        f"{gcs}/upload/storage/v1/b/{BUCKET}/o",
        params={"uploadType": "media", "name": name, **params},
        data=data,
        timeout=TIMEOUT,
    )


def _object(gcs: str, name: str) -> requests.Response:
    return requests.get(f"{gcs}/storage/v1/b/{BUCKET}/o/{quote(name, safe='')}", timeout=TIMEOUT)


def _delete(gcs: str, name: str, **params: Any) -> requests.Response:
    return requests.delete(
        f"{gcs}/storage/v1/b/{BUCKET}/o/{quote(name, safe='')}", params=params, timeout=TIMEOUT
    )


def _content(gcs: str, name: str) -> bytes:
    url = f"{gcs}/download/storage/v1/b/{BUCKET}/o/{quote(name, safe='')}"
    return requests.get(url, params={"alt": "media"}, timeout=TIMEOUT).content


def test_a_stale_delete_is_412_and_keeps_the_object_a_good_one_204(gcs: str) -> None:
    name = "dir/stale delete ü"
    generation = _put(gcs, name, b"one").json()["generation"]
    response = _delete(gcs, name, ifGenerationMatch=int(generation) + 1)
    assert response.status_code == 412 and response.json()["error"]["code"] == 412
    assert _object(gcs, name).json()["generation"] == generation
    assert _delete(gcs, name, ifGenerationNotMatch=generation).status_code == 412
    deleted = _delete(gcs, name, ifGenerationMatch=generation)
    assert (deleted.status_code, deleted.content) == (204, b"")  # the fake says 200 `null`
    assert _object(gcs, name).status_code == 404
    assert _delete(gcs, name, ifGenerationMatch=generation).status_code == 404


def _start_resumable(gcs: str, name: str, **params: Any) -> str:
    started = requests.post(
        f"{gcs}/upload/storage/v1/b/{BUCKET}/o",
        params={"uploadType": "resumable", "name": name, **params},
        json={},
        timeout=TIMEOUT,
    )
    assert started.status_code == 200, started.text
    return str(started.headers["Location"])


def _writes(gcs: str, source: str, target: str) -> dict[str, Any]:
    """Each kind of write onto `target`, with its preconditions as query parameters."""
    base = f"{gcs}/storage/v1/b/{BUCKET}/o"
    quoted = quote(target, safe="")
    compose = {"sourceObjects": [{"name": source}, {"name": source}]}

    def resumable(**params: Any) -> requests.Response:
        return requests.put(_start_resumable(gcs, target, **params), data=b"r", timeout=TIMEOUT)

    return {
        "media": lambda **p: _put(gcs, target, b"m", **p),
        "resumable": resumable,
        "copy": lambda **p: requests.post(
            f"{base}/{source}/copyTo/b/{BUCKET}/o/{quoted}", params=p, timeout=TIMEOUT
        ),
        "rewrite": lambda **p: requests.post(
            f"{base}/{source}/rewriteTo/b/{BUCKET}/o/{quoted}", params=p, timeout=TIMEOUT
        ),
        "compose": lambda **p: requests.post(
            f"{base}/{quoted}/compose", params=p, json=compose, timeout=TIMEOUT
        ),
        "patch": lambda **p: requests.patch(
            f"{base}/{quoted}", params=p, json={"metadata": {"k": "v"}}, timeout=TIMEOUT
        ),
        "delete": lambda **p: _delete(gcs, target, **p),
    }


@pytest.mark.parametrize(
    "kind", ["media", "resumable", "copy", "rewrite", "compose", "patch", "delete"]
)
def test_every_write_applies_its_preconditions_and_leaves_the_target_unchanged(
    gcs: str, kind: str
) -> None:
    """412 for a stale generation, `ifGenerationMatch=0` on a live object and a stale
    metageneration; the target keeps its generation and bytes; the right one succeeds."""
    source, target = f"src-{kind}", f"dst {kind}/ü"
    _put(gcs, source, b"source")
    live = _put(gcs, target, b"target").json()
    write = _writes(gcs, source, target)[kind]
    stale = str(int(live["generation"]) + 1)
    for conditions in (
        {"ifGenerationMatch": stale},
        {"ifGenerationMatch": 0},
        {"ifGenerationNotMatch": live["generation"]},
        {"ifMetagenerationMatch": "7"},
        {"ifMetagenerationNotMatch": live["metageneration"]},
    ):
        answer = write(**conditions)
        assert answer.status_code == 412, (conditions, answer.text)
        assert answer.json()["error"]["errors"][0]["reason"] == "conditionNotMet"
        assert _object(gcs, target).json()["generation"] == live["generation"]
        assert _content(gcs, target) == b"target"
    assert write(ifGenerationMatch=live["generation"]).status_code in (200, 204)


def test_source_preconditions_of_copy_and_rewrite(gcs: str) -> None:
    source = _put(gcs, "source-pre", b"s").json()
    for verb in ("copyTo", "rewriteTo"):
        url = f"{gcs}/storage/v1/b/{BUCKET}/o/source-pre/{verb}/b/{BUCKET}/o/out-{verb}"
        stale = {"ifSourceGenerationMatch": int(source["generation"]) + 1}
        assert requests.post(url, params=stale, timeout=TIMEOUT).status_code == 412
        assert _object(gcs, f"out-{verb}").status_code == 404
        fresh = {"ifSourceGenerationMatch": source["generation"]}
        assert requests.post(url, params=fresh, timeout=TIMEOUT).status_code == 200


def test_storage_layout_is_answered(gcs: str) -> None:
    layout = requests.get(f"{gcs}/storage/v1/b/{BUCKET}/storageLayout", timeout=TIMEOUT)
    assert layout.status_code == 200, layout.text
    assert layout.json()["bucket"] == BUCKET
    assert layout.json()["hierarchicalNamespace"] == {"enabled": False}
    missing = requests.get(f"{gcs}/storage/v1/b/no-such-bucket/storageLayout", timeout=TIMEOUT)
    assert missing.status_code == 404


@pytest.mark.parametrize("metadata", [{"owner": "al\x00ice"}, {"k": "x" * 9000}])
def test_custom_metadata_cloud_storage_refuses_is_refused_and_nothing_is_stored(
    harness: Any, prefix: str, metadata: dict[str, str]
) -> None:
    blob = harness.uploads.blob(prefix + "bad-metadata.jpg")
    blob.metadata = metadata
    with pytest.raises(api_exceptions.BadRequest):
        blob.upload_from_string(b"x", content_type="image/jpeg")
    assert not list(harness.clients.storage.list_blobs(harness.uploads.name, prefix=prefix))


def test_the_fakes_own_endpoints_and_the_xml_api_are_not_served(gcs: str) -> None:
    assert requests.get(f"{gcs}/_internal/healthcheck", timeout=TIMEOUT).status_code == 404
    put = requests.put(f"{gcs}/{BUCKET}/xml-object", data=b"x", timeout=TIMEOUT)
    assert put.status_code == 404 and _object(gcs, "xml-object").status_code == 404
    batch = requests.post(f"{gcs}/batch/storage/v1", data=b"x", timeout=TIMEOUT)
    assert batch.status_code == 404


def test_a_metadata_update_leaves_metageneration_at_1(gcs: str) -> None:
    """A known difference (docs/local-stack.md): Cloud Storage would make it 2."""
    _put(gcs, "metageneration", b"x")
    url = f"{gcs}/storage/v1/b/{BUCKET}/o/metageneration"
    patched = requests.patch(url, json={"metadata": {"k": "v"}}, timeout=TIMEOUT)
    assert patched.status_code == 200 and patched.json()["metadata"] == {"k": "v"}
    assert patched.json()["metageneration"] == "1"


def test_links_lead_back_through_the_front(gcs: str) -> None:
    body = _put(gcs, "links", b"x").json()
    assert body["mediaLink"].startswith(gcs), body["mediaLink"]
    assert requests.get(body["mediaLink"], timeout=TIMEOUT).content == b"x"
    location = _start_resumable(gcs, "resumable")
    assert location.startswith(gcs), location
    finished = requests.put(location, data=b"abc" * 50_000, timeout=TIMEOUT)
    assert finished.status_code == 200, finished.text
    ranged = requests.get(
        body["mediaLink"].replace("links", "resumable"),
        timeout=TIMEOUT,
        headers={"Range": "bytes=3-5"},
    )
    assert ranged.status_code == 206 and ranged.content == b"abc"


def test_a_conditional_delete_never_removes_a_newer_generation(gcs: str) -> None:
    """An old generation's cleanup races a replacement of the same name, many times."""
    for i in range(150):
        name = f"race/{i}"
        old = _put(gcs, name, b"old").json()["generation"]
        newer: list[str] = []

        def put_newer(name: str = name, newer: list[str] = newer) -> None:
            newer.append(_put(gcs, name, b"new").json()["generation"])

        replace = threading.Thread(target=put_newer)
        replace.start()
        deleted = _delete(gcs, name, ifGenerationMatch=old)
        replace.join(TIMEOUT)
        assert deleted.status_code in (204, 412), deleted.text
        live = _object(gcs, name)
        assert live.status_code == 200, f"iteration {i}: the newer generation was deleted"
        assert live.json()["generation"] == newer[0]


@pytest.fixture
def notifications(harness: Any) -> Iterator[str]:
    """A pull subscription of its own on the topic the front publishes the uploads bucket's
    notifications to (the routes relay them to the notification topic and the trigger)."""
    stack = harness.stack
    topic = harness_paths(stack.topology)[0]
    path = f"projects/{stack.topology.project}/subscriptions/front-test-{uuid.uuid4().hex[:8]}"
    harness.clients.subscriber.create_subscription(request={"name": path, "topic": topic})
    yield path
    harness.clients.subscriber.delete_subscription(subscription=path)


def test_notifications_carry_the_whole_resource_and_the_deleted_generations_size(
    harness: Any, prefix: str, notifications: str
) -> None:
    name = prefix + "facts.jpg"
    first = harness.upload(name, b"first generation")
    second = harness.upload(name, b"second, longer generation")
    harness.uploads.blob(name).delete()
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    deadline = time.monotonic() + 60
    while len(seen) < 4 and time.monotonic() < deadline:
        pulled = harness.clients.subscriber.pull(
            subscription=notifications, max_messages=50, timeout=TIMEOUT
        )
        for item in pulled.received_messages:
            attributes = dict(item.message.attributes)
            if attributes["objectId"] == name:
                key = (attributes["eventType"], attributes["objectGeneration"])
                seen[key] = {**json.loads(item.message.data), "attributes": attributes}
        if pulled.received_messages:
            harness.clients.subscriber.acknowledge(
                subscription=notifications, ack_ids=[m.ack_id for m in pulled.received_messages]
            )
    assert set(seen) == {
        ("OBJECT_FINALIZE", str(first)),
        ("OBJECT_FINALIZE", str(second)),
        ("OBJECT_DELETE", str(first)),  # the overwrite
        ("OBJECT_DELETE", str(second)),
    }
    for payload in seen.values():
        assert {"md5Hash", "crc32c", "metageneration", "size"} <= set(payload), payload
    overwritten = seen[("OBJECT_DELETE", str(first))]
    assert overwritten["size"] == str(len(b"first generation"))
    assert overwritten["attributes"]["overwrittenByGeneration"] == str(second)
    assert seen[("OBJECT_DELETE", str(second))]["size"] == str(len(b"second, longer generation"))
