"""A client that stops sending mid-body freezes nothing: while a media upload, a resumable
chunk and a multipart body are held stalled, everything else answers and the pipeline goes
on; the stalled clients get Cloud Storage's 408 when the front's deadline runs out."""

from __future__ import annotations

import socket
import time
from typing import Any
from urllib.parse import urlsplit

import requests

from infra.local import sample_images
from infra.local.fidelity.gcs_front import BODY_SECONDS

TIMEOUT = 10  # a frozen Cloud Storage shows as these running out


def stalled(host: str, head: str, sent: bytes) -> socket.socket:
    """A request whose headers promise 1000 bytes of body, of which `sent` is all it sends."""
    address, port = host.rsplit(":", 1)
    sock = socket.create_connection((address, int(port)), timeout=BODY_SECONDS + 30)
    request = f"{head} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1000\r\n"
    sock.sendall(request.encode() + b"Content-Type: multipart/related; boundary=b\r\n\r\n" + sent)
    return sock


def answer(sock: socket.socket) -> bytes:
    """Everything the front sends until it closes the connection (it closes after a 408)."""
    received = b""
    while piece := sock.recv(4096):
        received += piece
    return received


def test_stalled_bodies_freeze_nothing_and_get_408(harness: Any, prefix: str) -> None:
    host = harness.stack.gcs_front.host
    uploads, thumbnails = harness.uploads.name, harness.thumbnails.name
    base = f"/upload/storage/v1/b/{uploads}/o"
    existing = harness.thumbnails.blob(prefix + "existing.txt")
    existing.upload_from_string(b"there before the stall")
    session = requests.post(
        f"http://{host}{base}",
        params={"uploadType": "resumable", "name": prefix + "resumable.jpg"},
        json={},
        timeout=TIMEOUT,
    ).headers["Location"]
    stall_started = time.monotonic()
    held = [
        stalled(host, f"POST {base}?uploadType=media&name={prefix}media.jpg", b"0123456789"),
        stalled(host, f"PUT {urlsplit(session).path}?{urlsplit(session).query}", b"01234"),
        stalled(host, f"POST {base}?uploadType=multipart", b'--b\r\n\r\n{"name": "m'),
    ]
    try:
        # While all three are held open: reads, listings, conditional deletes and uploads to
        # both buckets are answered (each within TIMEOUT), and the pipeline goes on.
        name = prefix + "during-the-stall.jpg"
        harness.upload(name, sample_images.jpeg(320, 240))
        harness.thumbnails.blob(prefix + "also.txt").upload_from_string(b"x", timeout=TIMEOUT)
        assert existing.download_as_bytes(timeout=TIMEOUT) == b"there before the stall"
        for bucket in (uploads, thumbnails):
            listed = harness.clients.storage.list_blobs(bucket, prefix=prefix, timeout=TIMEOUT)
            assert list(listed)
        existing.reload(timeout=TIMEOUT)
        existing.delete(if_generation_match=existing.generation, timeout=TIMEOUT)
        assert time.monotonic() - stall_started < BODY_SECONDS  # all while the three were held
        harness.wait_doc(name, lambda doc: doc.get("status") == "processed", timeout=120)
        answers = [answer(sock) for sock in held]
    finally:
        for sock in held:
            sock.close()
    for received in answers:
        assert received.startswith(b"HTTP/1.1 408"), received
        assert b"uploadBrokenConnection" in received
    listed = harness.clients.storage.list_blobs(uploads, prefix=prefix)
    assert {blob.name for blob in listed} == {name}  # no partial body was ever stored
