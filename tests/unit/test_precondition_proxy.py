"""The precondition proxy against a tiny in-process upstream standing in for the fake."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from infra.local.gcs_preconditions import (
    PreconditionProxy,
    ReadersWriterLock,
    precondition_failure,
)

OBJECT = {"name": "a/b", "generation": "7", "metageneration": "2"}


class Upstream(ThreadingHTTPServer):
    """Knows one object, `b/a%2Fb`, and records every request it gets."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, str], bytes]] = []
        self.live: dict[str, Any] | None = dict(OBJECT)
        super().__init__(("127.0.0.1", 0), _UpstreamHandler)


class _UpstreamHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Upstream

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        while self.headers.get("Transfer-Encoding") == "chunked":
            size = int(self.rfile.readline().strip(), 16)
            body += self.rfile.read(size + 2)[:size]
            if size == 0:
                break
        self.server.seen.append((self.command, self.path, dict(self.headers), body))
        if self.command == "DELETE":
            self.server.live = None
        if self.command == "GET" and self.path == "/storage/v1/b/b/o/a%2Fb":
            reply = json.dumps(self.server.live).encode() if self.server.live else b"{}"
            status = 200 if self.server.live else 404
        else:
            reply, status = json.dumps({"echo": body.decode(), "path": self.path}).encode(), 200
        self.send_response(status)
        self.send_header("Content-Length", str(len(reply)))
        self.send_header("X-Range", self.headers.get("Range", ""))
        self.end_headers()
        self.wfile.write(reply)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve


@pytest.fixture
def stack() -> Iterator[tuple[Upstream, str]]:
    upstream = Upstream()
    # A short poll: shutdown() waits for the loop's next poll (0.5 s by default).
    threading.Thread(target=upstream.serve_forever, args=(0.05,), daemon=True).start()
    proxy = PreconditionProxy(f"127.0.0.1:{upstream.server_address[1]}")
    proxy.start()
    yield upstream, f"http://{proxy.host}"
    proxy.stop()
    upstream.shutdown()
    upstream.server_close()


def test_forwards_bodies_headers_and_chunked_requests(stack: tuple[Upstream, str]) -> None:
    upstream, url = stack
    with requests.Session() as session:  # one kept-alive connection, several requests
        got = session.get(f"{url}/download/x", headers={"Range": "bytes=1-2"}, timeout=5)
        assert got.headers["X-Range"] == "bytes=1-2"
        put = session.put(f"{url}/upload/b/b/o?upload_id=1", data=iter([b"ab", b"cd"]), timeout=5)
        assert put.json()["echo"] == "abcd"  # sent chunked, arrives whole
    assert [s[0] for s in upstream.seen] == ["GET", "PUT"]


def test_stale_delete_gets_412_and_never_reaches_the_fake(stack: tuple[Upstream, str]) -> None:
    upstream, url = stack
    response = requests.delete(f"{url}/storage/v1/b/b/o/a%2Fb?ifGenerationMatch=6", timeout=5)
    assert response.status_code == 412
    assert response.json()["error"]["errors"][0]["reason"] == "conditionNotMet"
    assert "DELETE" not in [s[0] for s in upstream.seen]
    ok = requests.delete(f"{url}/storage/v1/b/b/o/a%2Fb?ifGenerationMatch=7", timeout=5)
    assert ok.ok and upstream.live is None
    gone = requests.delete(f"{url}/storage/v1/b/b/o/a%2Fb?ifGenerationMatch=7", timeout=5)
    assert gone.status_code == 404


def test_media_upload_precondition(stack: tuple[Upstream, str]) -> None:
    upstream, url = stack
    create_only = f"{url}/upload/storage/v1/b/b/o?uploadType=media&name=a/b&ifGenerationMatch=0"
    assert requests.post(create_only, data=b"x", timeout=5).status_code == 412
    assert "POST" not in [s[0] for s in upstream.seen]


@pytest.mark.parametrize(
    ("conditions", "live", "expected"),
    [
        ({"ifGenerationMatch": "7"}, OBJECT, None),
        ({"ifGenerationMatch": "8"}, OBJECT, 412),
        ({"ifGenerationMatch": "0"}, None, None),
        ({"ifGenerationMatch": "0"}, OBJECT, 412),
        ({"ifGenerationNotMatch": "7"}, OBJECT, 412),
        ({"ifGenerationNotMatch": "8"}, OBJECT, None),
        ({"ifMetagenerationMatch": "2"}, OBJECT, None),
        ({"ifMetagenerationMatch": "3"}, OBJECT, 412),
        ({"ifMetagenerationMatch": "3"}, None, 404),
    ],
)
def test_precondition_failure(
    conditions: dict[str, str], live: dict[str, Any] | None, expected: int | None
) -> None:
    assert precondition_failure(conditions, live) == expected


def test_exclusive_waits_for_shared_and_blocks_new_shared() -> None:
    lock, order = ReadersWriterLock(), []

    def write(tag: str) -> None:
        with lock.shared():
            order.append(tag)

    def conditional() -> None:
        with lock.exclusive():
            order.append("exclusive")
            time.sleep(0.05)
            order.append("exclusive done")

    with lock.shared():
        t = threading.Thread(target=conditional)
        t.start()
        time.sleep(0.05)
        assert order == []  # a write in flight keeps the conditional request out
        late = threading.Thread(target=write, args=("late write",))
        late.start()
        time.sleep(0.05)
    t.join(5)
    late.join(5)
    assert order == ["exclusive", "exclusive done", "late write"]
