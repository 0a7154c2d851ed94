"""A proxy in front of fake-gcs-server that applies the preconditions the fake ignores.

Cloud Storage applies `ifGenerationMatch` and its siblings atomically with the request
(https://cloud.google.com/storage/docs/request-preconditions): a delete of a generation that
has meanwhile been replaced answers 412. fake-gcs-server 1.54.0 ignores them on a delete
(fsouza/fake-gcs-server#1282) and on a media upload (`uploadType=media`), and then deletes or
overwrites whatever generation is live. The proxy forwards every request unchanged, except
that such a conditional request first reads the object's metadata from the fake and answers
412 (or 404) itself when the precondition does not hold.

Check and write are one step: per bucket, a conditional request holds a lock exclusively for
its check and forward, every other mutating request holds it shared for its duration (so
writes still run concurrently with each other), reads take no lock.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from infra.local.http_guard import SHUTDOWN_POLL_SECONDS

UPSTREAM_TIMEOUT = 60.0  # seconds per socket operation against the fake
_CHUNK = 64 * 1024
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
    }
)
_MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_CONDITIONS = ("ifGenerationMatch", "ifGenerationNotMatch", "ifMetagenerationMatch")
# The last `/b/<bucket>` of a path names the bucket written (copyTo/rewriteTo: the target);
# `/o/<object>` right after it is one percent-encoded segment (a `/` in a name is `%2F`).
_BUCKET = re.compile(r"/b/([^/?]+)(?:/o(?:/([^/?]+))?)?")


class _Upstream(http.client.HTTPConnection):
    """A connection to the fake without Nagle's algorithm: headers and body go out as
    separate writes, and Nagle plus delayed ACKs would hold each request ~40 ms."""

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class ReadersWriterLock:
    """Many holders of the shared side or one of the exclusive side; a waiting exclusive
    holder blocks new shared ones, so a stream of writes cannot starve a conditional delete."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writer and not self._writers_waiting)
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            self._cond.wait_for(lambda: not self._writer and not self._readers)
            self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


def precondition_failure(conditions: dict[str, str], metadata: dict[str, Any] | None) -> int | None:
    """The status Cloud Storage answers for these conditions on this object (None: they
    hold). `metadata` is None when no generation is live; `ifGenerationMatch=0` means that."""
    for name, expected in conditions.items():
        if name == "ifGenerationMatch":
            actual = metadata.get("generation") if metadata else "0"
            if str(actual) != expected:
                return 412
        elif metadata is None:
            return 404  # the other conditions need a live object
        elif name == "ifGenerationNotMatch":
            if str(metadata.get("generation")) == expected:
                return 412
        elif str(metadata.get("metageneration")) != expected:  # ifMetagenerationMatch
            return 412
    return None


def error_body(status: int) -> bytes:
    """The JSON error Cloud Storage's JSON API answers (the client reads `error.message`)."""
    reason, message = {
        412: ("conditionNotMet", "At least one of the pre-conditions you specified did not hold."),
        404: ("notFound", "No such object."),
    }.get(status, ("backendError", "The Cloud Storage emulator did not answer."))
    return json.dumps(
        {
            "error": {
                "code": status,
                "message": message,
                "errors": [{"domain": "global", "reason": reason, "message": message}],
            }
        }
    ).encode()


class PreconditionProxy:
    """Listens on 127.0.0.1:`port` (0: a free one) and forwards to `upstream` (host:port)."""

    def __init__(self, upstream: str, port: int = 0) -> None:
        self.upstream = upstream
        self._locks: dict[str, ReadersWriterLock] = {}
        self._locks_guard = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.server.serve_forever,
            args=(SHUTDOWN_POLL_SECONDS,),  # stop() waits for the next poll: keep down fast
            name="gcs-preconditions",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def lock(self, bucket: str) -> ReadersWriterLock:
        with self._locks_guard:
            return self._locks.setdefault(bucket, ReadersWriterLock())


def _handler(proxy: PreconditionProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the clients expect
        disable_nagle_algorithm = True  # headers and body are separate writes (see _Upstream)
        _upstream: http.client.HTTPConnection | None = None

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the fake logs requests; the proxy would only double them

        def do_GET(self) -> None:
            self._forward()

        do_HEAD = do_OPTIONS = do_GET

        def do_POST(self) -> None:
            self._mutate()

        do_PUT = do_PATCH = do_DELETE = do_POST

        def _mutate(self) -> None:
            url = urlsplit(self.path)
            match = ([None, *_BUCKET.finditer(url.path)])[-1]
            if match is None:
                self._forward()
                return
            lock = proxy.lock(match.group(1))
            target = self._conditional_target(url.path, url.query, match)
            if target is None:
                with lock.shared():
                    self._forward()
                return
            object_path, conditions = target
            with lock.exclusive():
                status, metadata = self._metadata(object_path)
                failure = status if status not in (200, 404) else None
                if failure is None and metadata is None and self.command == "DELETE":
                    failure = 404  # nothing to delete comes before any precondition
                failure = failure or precondition_failure(conditions, metadata)
                if failure is not None:
                    self._discard_body()
                    self._answer(failure, error_body(failure))
                    return
                self._forward()

        def _conditional_target(
            self, path: str, query: str, match: re.Match[str]
        ) -> tuple[str, dict[str, str]] | None:
            """The object's metadata path and the conditions, for a request the fake would
            apply without them: DELETE of an object, or a media upload."""
            params = {k: v[-1] for k, v in parse_qs(query).items()}
            conditions = {c: params[c] for c in _CONDITIONS if c in params}
            if not conditions:
                return None
            bucket, encoded = match.group(1), match.group(2)
            if self.command == "DELETE" and encoded and match.end() == len(path):
                return f"/storage/v1/b/{bucket}/o/{encoded}", conditions
            upload = path.startswith("/upload/") and self.command == "POST"
            if upload and params.get("uploadType", "media") == "media" and "name" in params:
                return f"/storage/v1/b/{bucket}/o/{quote(params['name'], safe='')}", conditions
            return None

        def _metadata(self, object_path: str) -> tuple[int, dict[str, Any] | None]:
            conn = _Upstream(proxy.upstream, timeout=UPSTREAM_TIMEOUT)
            try:
                conn.request("GET", object_path)
                response = conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException):
                return 502, None
            finally:
                conn.close()
            if response.status == 200:
                return 200, json.loads(body)
            return response.status, None

        def _connection(self) -> http.client.HTTPConnection:
            if self._upstream is None:
                self._upstream = _Upstream(proxy.upstream, timeout=UPSTREAM_TIMEOUT)
            return self._upstream

        def _forward(self) -> None:
            conn = self._connection()
            chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
            try:
                conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for name, value in self.headers.items():
                    if name.lower() not in _HOP_BY_HOP:
                        conn.putheader(name, value)
                if chunked:
                    conn.putheader("Transfer-Encoding", "chunked")
                conn.endheaders()
                for piece in self._body():
                    conn.send(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                if chunked:
                    conn.send(b"0\r\n\r\n")
                response = conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                self._upstream = None
                self.close_connection = True
                self._answer(
                    502, json.dumps({"error": {"code": 502, "message": str(exc)}}).encode()
                )
                return
            self._relay(response)

        def _relay(self, response: http.client.HTTPResponse) -> None:
            self.send_response_only(response.status, response.reason)
            for name, value in response.getheaders():
                if name.lower() not in _HOP_BY_HOP:
                    self.send_header(name, value)
            no_body = self.command == "HEAD" or response.status in (204, 304)
            rechunk = response.chunked and not no_body
            if rechunk:
                self.send_header("Transfer-Encoding", "chunked")
            elif response.length is None and not no_body:
                self.close_connection = True  # the body ends when the connection does
                self.send_header("Connection", "close")
            self.end_headers()
            try:
                while not no_body and (piece := response.read1(_CHUNK)):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if rechunk else piece)
                if rechunk:
                    self.wfile.write(b"0\r\n\r\n")
                response.read()  # the upstream connection is reused only once drained
            except (OSError, http.client.HTTPException):
                self.close_connection = True
                if self._upstream is not None:
                    self._upstream.close()
                    self._upstream = None
            if response.will_close and self._upstream is not None:
                self._upstream.close()
                self._upstream = None

        def _body(self) -> Iterator[bytes]:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                    yield self.rfile.read(size)
                    self.rfile.readline()
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return
            remaining = int(self.headers.get("Content-Length") or 0)
            while remaining > 0:
                piece = self.rfile.read(min(_CHUNK, remaining))
                if not piece:
                    raise ConnectionError("client closed the request body early")
                remaining -= len(piece)
                yield piece

        def _discard_body(self) -> None:
            for _ in self._body():
                pass

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response_only(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler
