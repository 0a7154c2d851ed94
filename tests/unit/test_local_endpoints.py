"""The gallery and the router's control endpoint, served for real on a free port and sent
malformed and hostile requests over raw sockets: each is refused before anything is read or
changed, and the server keeps serving afterwards."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from test_local_router import hook, make_router

from image_pipeline.records import image_doc_id
from infra.common.object_names import name_error
from infra.local import http_guard
from infra.local.control import MAX_REQUEST_BYTES, serve_control
from infra.local.fidelity.faults import Faults
from infra.local.gallery.server import MAX_UPLOAD_BYTES, Gallery, serve_gallery

SOCKET_TIMEOUT = 20.0  # generous: a hung handler shows up as a timeout, not a stuck test


class RecordingGallery(Gallery):
    """The real handler in front of a gallery that only records what reached it."""

    def __init__(self) -> None:  # no stack behind it
        self.uploaded: list[tuple[str, bytes, str]] = []
        self.state_reads = 0

    def state(self) -> dict[str, Any]:
        self.state_reads += 1
        return {"uploads": []}

    def upload(self, name: str, data: bytes, content_type: str) -> dict[str, Any]:
        self.uploaded.append((name, data, content_type))
        return {"name": name, "generation": 1}


def exchange(port: int, head: str, body: bytes = b"", *, close_write: bool = False) -> tuple:
    """Sends raw bytes, returns (status, JSON body) of the answer; the socket stays open for
    writing unless `close_write`, as a client that means to send more would keep it."""
    with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        if close_write:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        while b"\r\n\r\n" not in received or len(received) < _expected_length(received):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    head_part, _, payload = received.partition(b"\r\n\r\n")
    status = int(head_part.split(b" ", 2)[1])
    return status, json.loads(payload) if payload else None


def _expected_length(received: bytes) -> int:
    head, _, _ = received.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(head) + 4 + int(value)
    return 0


@pytest.fixture
def gallery() -> Iterator[tuple[RecordingGallery, int]]:
    recording = RecordingGallery()
    server = serve_gallery(recording)
    yield recording, server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def control() -> Iterator[tuple[Faults, int]]:
    router, _ = make_router("http://127.0.0.1:1/")
    faults = hook(router, Faults)
    server = serve_control(router, faults)
    yield faults, server.server_address[1]
    server.shutdown()
    server.server_close()


def post(port: int, *lines: str, host: str | None = None, body: bytes = b"") -> tuple:
    head = "\n".join(
        ["POST /upload?name=a.jpg HTTP/1.1", f"Host: {host or f'127.0.0.1:{port}'}", *lines, ""]
    )
    return exchange(port, head, body)


# -- the gallery ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["", ".", "..", "a\r\nb", "x" * 1025, ".well-known/acme-challenge/t"]
)
def test_an_upload_under_a_name_gcs_refuses_gets_its_message_and_reaches_nothing(gallery, name):
    recording, port = gallery
    answer = requests.post(
        f"http://127.0.0.1:{port}/upload", params={"name": name}, data=b"data", timeout=10
    )
    assert (answer.status_code, answer.json()["error"]) == (400, name_error(name))
    assert recording.uploaded == []


def test_an_upload_with_an_exact_length_from_a_non_browser_client_is_taken(gallery):
    recording, port = gallery
    assert post(port, "Content-Length: 5", "Content-Type: image/jpeg", body=b"hello")[0] == 201
    assert recording.uploaded == [("a.jpg", b"hello", "image/jpeg")]


def test_an_upload_from_the_gallery_page_itself_is_taken(gallery):
    recording, port = gallery
    origin = f"Origin: http://localhost:{port}"
    status, _ = post(port, "Content-Length: 2", origin, host=f"localhost:{port}", body=b"ok")
    assert status == 201 and len(recording.uploaded) == 1


@pytest.mark.parametrize(
    ("lines", "status"),
    [
        ((), 411),  # no Content-Length at all
        (("Content-Length: -1",), 400),  # read(-1) would read to the end of the stream
        (("Content-Length: abc",), 400),  # was a dropped connection and a traceback
        (("Content-Length: 1_0",), 400),
        (("Content-Length: 5", "Content-Length: 6"), 400),
        (("Transfer-Encoding: chunked",), 411),  # was a 0-byte object
        ((f"Content-Length: {MAX_UPLOAD_BYTES + 1}",), 413),
    ],
)
def test_a_body_without_an_exact_bounded_length_is_refused_before_reading(gallery, lines, status):
    recording, port = gallery
    # Nothing of the body is sent: the answer must come from the headers alone.
    answer, body = post(port, *lines)
    assert answer == status and body["error"]
    assert recording.uploaded == []
    assert post(port, "Content-Length: 1", body=b"x")[0] == 201  # and it still serves


def test_a_chunked_body_is_refused_even_when_sent(gallery):
    recording, port = gallery
    chunked = b"5\r\nhello\r\n0\r\n\r\n"
    assert post(port, "Transfer-Encoding: chunked", body=chunked)[0] == 411
    assert recording.uploaded == []


def test_a_body_shorter_than_announced_is_refused_not_stored(gallery):
    recording, port = gallery
    head = f"POST /upload?name=a.jpg HTTP/1.1\nHost: 127.0.0.1:{port}\nContent-Length: 10\n"
    assert exchange(port, head, b"abc", close_write=True)[0] == 400
    assert recording.uploaded == []


def test_a_client_that_stops_sending_frees_the_handler(gallery, monkeypatch):
    recording, port = gallery
    monkeypatch.setattr(http_guard.GuardedHandler, "timeout", 0.1)
    head = f"POST /upload?name=a.jpg HTTP/1.1\nHost: 127.0.0.1:{port}\nContent-Length: 10\n"
    with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\nabc")
        assert sock.recv(1024) == b""  # the server gave up and closed; no upload
    assert recording.uploaded == []


@pytest.mark.parametrize(
    "line",
    [
        "Origin: http://evil.example",
        "Origin: null",
        "Sec-Fetch-Site: cross-site",
        "Referer: http://evil.example/attack.html",
    ],
)
def test_a_cross_site_text_plain_upload_is_refused(gallery, line):
    recording, port = gallery
    status, body = post(port, "Content-Type: text/plain", "Content-Length: 2", line, body=b"hi")
    assert status == 403 and "cross-site" in body["error"]
    assert recording.uploaded == []


@pytest.mark.parametrize("host", ["evil.example:{port}", "evil.example", "127.0.0.1:1"])
def test_a_foreign_host_cannot_read_the_state(gallery, host):
    recording, port = gallery
    head = f"GET /api/state HTTP/1.1\nHost: {host.format(port=port)}\n"
    status, body = exchange(port, head)
    assert status == 403 and "Host" in body["error"]
    assert recording.state_reads == 0
    assert exchange(port, f"GET /api/state HTTP/1.1\nHost: 127.0.0.1:{port}\n")[0] == 200
    assert recording.state_reads == 1


def test_a_foreign_host_cannot_upload_either(gallery):
    recording, port = gallery
    assert post(port, "Content-Length: 1", host="evil.example", body=b"x")[0] == 403
    assert recording.uploaded == []


# -- the control endpoint ------------------------------------------------------------------


def put_faults(port: int, body: bytes, *lines: str, host: str | None = None) -> tuple:
    head = "\n".join(
        [
            "PUT /faults HTTP/1.1",
            f"Host: {host or f'127.0.0.1:{port}'}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            *lines,
            "",
        ]
    )
    return exchange(port, head, body)


def test_a_valid_fault_request_is_applied(control):
    faults, port = control
    status, body = put_faults(port, b'{"duplicate_rate": 0.25, "seed": 7, "fail": ["cleanup"]}')
    assert status == 200 and body["duplicate_rate"] == 0.25
    assert faults.settings.seed == 7
    assert faults.settings.failing == {"cleanup"}


@pytest.mark.parametrize(
    "request_body",
    [
        {"seed": [1, 2]},  # was answered 400 but stored anyway
        {"seed": True},
        {"duplicate_rate": True},  # bool is an int to Python
        {"reorder_window": 2.5},
        {"reorder_window": "3"},
        {"transient_rate": 2},
        {"fail": "cleanup"},  # a string, not a list: would fail c, l, e, ...
        {"fail": ["nope"]},
        {"heal": ["nope"]},
        {"failing": [1]},
        {"reset": "yes"},
        {"bogus": 1},
        {"duplicate_rate": 0.5, "seed": [1]},  # a good value does not go in with a bad one
        [1, 2],
        "reset",
    ],
)
def test_an_invalid_fault_request_changes_nothing(control, request_body):
    faults, port = control
    before = faults.settings
    status, body = put_faults(port, json.dumps(request_body).encode())
    assert status == 400 and body["error"]
    assert faults.settings == before


def test_fault_json_is_bounded_in_size_and_depth(control):
    faults, port = control
    before = faults.settings
    for depth in (40, 30_000):  # 100k deep was an uncaught RecursionError
        status, body = put_faults(port, b'{"seed": ' + b"[" * depth + b"]" * depth + b"}")
        assert status == 400 and "deeper" in body["error"]
    # Too long: refused from the header alone, so the body is not even sent.
    too_long = MAX_REQUEST_BYTES + 1
    head = f"PUT /faults HTTP/1.1\nHost: 127.0.0.1:{port}\nContent-Length: {too_long}\n"
    status, body = exchange(port, head)
    assert status == 413 and str(MAX_REQUEST_BYTES) in body["error"]
    assert faults.settings == before


@pytest.mark.parametrize("length", ["-1", "abc", ""])
def test_a_bad_length_does_not_hang_a_control_thread(control, length):
    _, port = control
    head = f"PUT /faults HTTP/1.1\nHost: 127.0.0.1:{port}\nContent-Length: {length}\n"
    assert exchange(port, head)[0] == 400  # answered at once, the socket still open
    assert exchange(port, f"GET /health HTTP/1.1\nHost: 127.0.0.1:{port}\n")[1] == "ok"


def test_control_refuses_cross_site_writes_and_foreign_hosts(control):
    faults, port = control
    before = faults.settings
    assert put_faults(port, b'{"transient_rate": 1}', "Origin: http://evil.example")[0] == 403
    assert put_faults(port, b'{"transient_rate": 1}', host="evil.example")[0] == 403
    assert faults.settings == before
    assert exchange(port, f"GET /stats HTTP/1.1\nHost: rebound.example:{port}\n")[0] == 403


def test_control_still_answers_the_cli(control):
    """What `scripts/local faults` and `status` send: requests with a JSON body, no Origin."""
    import requests

    faults, port = control
    response = requests.put(f"http://127.0.0.1:{port}/faults", json={"reorder_window": 4})
    assert response.status_code == 200 and faults.settings.reorder_window == 4
    assert requests.get(f"http://127.0.0.1:{port}/faults").json()["reorder_window"] == 4


def test_gallery_answers_carry_a_policy_against_framing_and_foreign_scripts(gallery):
    _, port = gallery
    with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT) as sock:
        sock.sendall(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        head = sock.recv(65536).partition(b"\r\n\r\n")[0].decode().lower()
    assert "frame-ancestors 'none'" in head and "default-src 'self'" in head
    assert "x-content-type-options: nosniff" in head


def _gallery_over(content_type: str | None, doc: dict | None):
    """A gallery over one stored thumbnail, `a/128x128.webp` of `up/a`, and that image's doc."""
    from types import SimpleNamespace

    source = {"source-bucket": "up", "source-name": "a"}
    blob = SimpleNamespace(
        content_type=content_type, metadata=source, download_as_bytes=lambda **bounds: b"x"
    )
    bucket = SimpleNamespace(get_blob=lambda name, **bounds: blob)
    target = SimpleNamespace(
        thumbnails_bucket="t",
        images_collection="images",
        storage=SimpleNamespace(bucket=lambda name: bucket),
        documents=SimpleNamespace(
            get=lambda collection, doc_id: doc if doc_id == image_doc_id("up", "a") else None
        ),
        answering=lambda service: contextlib.nullcontext(),
        storage_call=dict,
    )
    gallery = RecordingGallery()
    gallery.target = target  # type: ignore[assignment]
    return gallery


LISTING = {"status": "processed", "thumbnails": [{"name": "a/128x128.webp"}]}


@pytest.mark.parametrize(
    ("stored", "served"),
    [
        ("image/webp", "image/webp"),
        ("text/html", "application/octet-stream"),
        ("image/svg+xml", "application/octet-stream"),
        ("image/SVG+XML", "application/octet-stream"),  # media types ignore case
        (None, "application/octet-stream"),
    ],
)
def test_only_raster_images_are_served_as_thumbnails(stored, served):
    assert _gallery_over(stored, LISTING).thumbnail("a/128x128.webp") == (b"x", served)


@pytest.mark.parametrize(
    "doc",
    [
        None,
        {"status": "deleted", "thumbnails": []},
        {"generation": 3, "status": "deleted", "thumbnails": [], "erasedAt": "2030-01-01"},
    ],
)
def test_a_thumbnail_whose_doc_no_longer_lists_it_is_never_served(doc):
    assert _gallery_over("image/webp", doc).thumbnail("a/128x128.webp") is None


def test_a_body_sent_with_a_get_is_never_taken_for_the_next_request(gallery):
    recording, port = gallery
    smuggled = f"POST /upload?name=b.jpg HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    smuggled += "Content-Length: 1\r\n\r\nx"
    head = (
        f"GET /api/state HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: keep-alive\r\n"
        f"Content-Length: {len(smuggled)}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT) as sock:
        sock.sendall(head.encode() + smuggled.encode())
        received = b""
        while chunk := sock.recv(65536):  # until the server closes: one answer, no second
            received += chunk
    assert received.count(b"HTTP/1.0 ") == 1 and b" 200 " in received.split(b"\r\n")[0]
    assert recording.uploaded == []
