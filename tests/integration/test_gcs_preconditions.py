"""The local stack's Cloud Storage answers conditional deletes and media uploads as Cloud
Storage does (412 when the generation differs), atomically with concurrent writes, through
the proxy in front of fake-gcs-server (infra/local/gcs_preconditions.py)."""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import quote

import pytest
import requests

from infra.local.local_stack import LocalStack

BUCKET = "preconditions-proxy-test"
TIMEOUT = 30


@pytest.fixture(scope="module")
def gcs(local_stack: LocalStack) -> str:
    assert local_stack.gcs_proxy is not None
    url = f"http://{local_stack.gcs_proxy.host}"
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


def test_stale_delete_is_refused_and_keeps_the_object(gcs: str) -> None:
    name = "dir/stale delete ü"
    generation = _put(gcs, name, b"one").json()["generation"]
    response = _delete(gcs, name, ifGenerationMatch=int(generation) + 1)
    assert response.status_code == 412
    assert response.json()["error"]["code"] == 412
    assert _object(gcs, name).json()["generation"] == generation
    assert _delete(gcs, name, ifGenerationNotMatch=generation).status_code == 412
    assert _delete(gcs, name, ifGenerationMatch=generation).ok  # the fake answers 200
    assert _object(gcs, name).status_code == 404
    assert _delete(gcs, name, ifGenerationMatch=generation).status_code == 404


def test_media_upload_preconditions(gcs: str) -> None:
    name = "media upload"
    generation = _put(gcs, name, b"one", ifGenerationMatch=0).json()["generation"]
    assert _put(gcs, name, b"two", ifGenerationMatch=0).status_code == 412
    assert _put(gcs, name, b"two", ifGenerationMatch=int(generation) + 1).status_code == 412
    assert _object(gcs, name).json()["generation"] == generation
    assert _put(gcs, name, b"two", ifGenerationMatch=generation).status_code == 200


def test_links_point_at_the_proxy(gcs: str) -> None:
    body = _put(gcs, "links", b"x").json()
    assert body["mediaLink"].startswith(gcs), body["mediaLink"]
    assert requests.get(body["mediaLink"], timeout=TIMEOUT).content == b"x"
    started = requests.post(
        f"{gcs}/upload/storage/v1/b/{BUCKET}/o",
        params={"uploadType": "resumable", "name": "resumable"},
        json={},
        timeout=TIMEOUT,
    )
    assert started.headers["Location"].startswith(gcs), started.headers["Location"]
    finished = requests.put(started.headers["Location"], data=b"abc" * 50_000, timeout=TIMEOUT)
    assert finished.status_code == 200, finished.text
    ranged = requests.get(
        body["mediaLink"].replace("links", "resumable"),
        timeout=TIMEOUT,
        headers={"Range": "bytes=3-5"},
    )
    assert ranged.status_code == 206 and ranged.content == b"abc"


def test_conditional_delete_never_removes_a_newer_generation(gcs: str) -> None:
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
        assert deleted.ok or deleted.status_code == 412, deleted.text
        live = _object(gcs, name)
        assert live.status_code == 200, f"iteration {i}: the newer generation was deleted"
        assert live.json()["generation"] == newer[0]
