"""What the local stack's own HTTP endpoints (the gallery, the router's control endpoint)
check first: they listen on 127.0.0.1 without authentication, so a web page the operator
happens to open must not be able to use them (what is refused: docs/gallery.md).

A rebound DNS name still sends its own Host. Browsers send `Origin` on every request that
is not a GET or HEAD (Fetch standard, "append a request Origin header"), so a write with no
`Origin`, `Sec-Fetch-Site` or `Referer` is not from a page (curl).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from image_pipeline.events import MalformedEvent, check_json_limits

LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SAME_SITE_FETCHES = frozenset({"same-origin", "none"})  # Sec-Fetch-Site values of our own page
SHUTDOWN_POLL_SECONDS = 0.05  # shutdown() waits for the serving loop's next poll


class Refused(Exception):
    """A request the endpoint will not serve: the status and a message for the client."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _ours(port: int) -> set[str]:
    """The Host values that name this server (lower case)."""
    return {f"{host}:{port}" for host in LOCAL_HOSTS} | (set(LOCAL_HOSTS) if port == 80 else set())


def check_host(host: str | None, port: int) -> None:
    """Refuses a request addressed to any other name (what a rebound DNS name would send)."""
    if host is None:
        raise Refused(HTTPStatus.BAD_REQUEST, "missing Host header")
    if host.strip().lower() not in _ours(port):
        message = f"Host {host!r} is not this server; use http://127.0.0.1:{port}/"
        raise Refused(HTTPStatus.FORBIDDEN, message)


def check_same_origin(headers: Any, port: int) -> None:
    """Refuses a state-changing request a page of another origin made (`headers`: the
    request's `email.message.Message`-like header map)."""
    ours = {f"http://{host}" for host in _ours(port)}
    origin, fetch_site, referer = (headers.get(h) for h in ("Origin", "Sec-Fetch-Site", "Referer"))
    if origin is not None and origin.strip().lower() not in ours:
        raise Refused(HTTPStatus.FORBIDDEN, f"cross-site request refused (Origin {origin!r})")
    if fetch_site is not None and fetch_site.strip().lower() not in SAME_SITE_FETCHES:
        raise Refused(HTTPStatus.FORBIDDEN, f"cross-site request refused ({fetch_site!r})")
    if origin is None and referer is not None:
        parts = urlsplit(referer.strip())
        if f"{parts.scheme}://{parts.netloc}".lower() not in ours:
            raise Refused(HTTPStatus.FORBIDDEN, "cross-site request refused (Referer)")


def content_length(headers: Any, limit: int) -> int:
    """The body's length from the headers alone, refused unless it is exact and at most `limit`."""
    if headers.get("Transfer-Encoding") is not None:
        message = "chunked bodies are not accepted; send Content-Length"
        raise Refused(HTTPStatus.LENGTH_REQUIRED, message)
    values = headers.get_all("Content-Length") or []
    if not values:
        raise Refused(HTTPStatus.LENGTH_REQUIRED, "Content-Length required")
    text = values[0].strip()
    # int() would also take "-1", "+5", "1_000" and non-ASCII digits; HTTP allows 1*DIGIT.
    if len(values) > 1 or not (text.isascii() and text.isdigit()):
        raise Refused(HTTPStatus.BAD_REQUEST, f"malformed Content-Length {values!r}")
    if int(text) > limit:
        message = f"body of {int(text)} bytes; at most {limit}"
        raise Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, message)
    return int(text)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(body: bytes) -> Any:
    """Strict JSON (UTF-8, no NaN/Infinity), its depth bounded before it is parsed as the
    functions bound an event's (`image_pipeline.events.check_json_limits`)."""
    try:
        check_json_limits(body)
        return json.loads(body.decode("utf-8"), parse_constant=_no_constant)
    except MalformedEvent as exc:
        raise Refused(HTTPStatus.BAD_REQUEST, str(exc)) from None
    except ValueError as exc:  # UnicodeDecodeError included
        raise Refused(HTTPStatus.BAD_REQUEST, f"invalid JSON: {exc}") from None


class GuardedHandler(BaseHTTPRequestHandler):
    """Checks Host (every request) and Origin (state-changing ones) before dispatching to
    `on_get`, `on_post` or `on_put`, and answers `Refused` as a JSON error. Subclasses read
    bodies with `read_body` or `read_json` only."""

    timeout = 30.0  # a client that stops sending frees the thread
    extra_headers: tuple[tuple[str, str], ...] = ()  # sent with every answer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per poll would drown the stack's own logs

    def send_body(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        headers += [("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff")]
        for name, value in [*headers, *self.extra_headers]:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, status: int, value: Any) -> None:
        self.send_body(status, json.dumps(value, default=str).encode(), "application/json")

    def read_body(self, limit: int) -> bytes:
        """Exactly Content-Length bytes; an unacceptable length is refused before reading."""
        length = content_length(self.headers, limit)
        body = self.rfile.read(length)
        if len(body) != length:
            raise Refused(HTTPStatus.BAD_REQUEST, f"body ended after {len(body)} of {length} bytes")
        return body

    def read_json(self, limit: int) -> Any:
        return parse_json(self.read_body(limit))

    def _dispatch(self) -> None:
        address = self.server.server_address
        port = int(address[1]) if isinstance(address, tuple) else 0
        try:
            check_host(self.headers.get("Host"), port)
            if self.command not in SAFE_METHODS:
                check_same_origin(self.headers, port)
            elif self.headers.get("Transfer-Encoding") or self.headers.get("Content-Length"):
                self.close_connection = True  # a GET's body is never read: see below
            method: Callable[[], None] | None = getattr(self, f"on_{self.command.lower()}", None)
            if method is None:
                raise Refused(HTTPStatus.METHOD_NOT_ALLOWED, f"{self.command} is not served here")
            method()
        except Refused as refused:
            # A body left unread must never be parsed as a next request.
            self.close_connection = True
            self.send_json(refused.status, {"error": refused.message})
        except TimeoutError:
            self.close_connection = True  # the client stopped sending; nobody to answer

    do_GET = do_POST = do_PUT = _dispatch


def serve_in_thread(
    handler: type[BaseHTTPRequestHandler], host: str, port: int, name: str
) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """A threading server on a daemon thread, already serving; port 0 picks a free one."""
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, args=(SHUTDOWN_POLL_SECONDS,), name=name, daemon=True
    )
    thread.start()
    return server, thread
