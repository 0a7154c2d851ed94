"""What every local HTTP endpoint checks before it does anything (the gallery, the router's
control endpoint).

Both listen on 127.0.0.1 without authentication, so a web page the operator happens to open
must not be able to use them:

- DNS rebinding: a page on `evil.example` re-points its name at 127.0.0.1 and then reads the
  endpoint "same-origin". Its requests still carry `Host: evil.example`, so only a Host of
  127.0.0.1, localhost or [::1] on the server's own port is answered, on every request.
- Cross-site requests: a page may POST a "simple" request (say `text/plain`) to any URL
  without a CORS preflight. Browsers send `Origin` on every request whose method is not GET
  or HEAD (Fetch standard, "append a request Origin header"), so a state-changing request
  with an `Origin` (or `Sec-Fetch-Site`, or `Referer`) from anywhere else is refused. A
  request with none of them is not from a browser page (curl, requests), and is allowed.
- Bodies: the length is decided from `Content-Length` alone, before reading a byte. A
  missing length or a chunked body is 411, a malformed or negative one 400, a larger one
  than the endpoint takes 413; a client that stops sending times out instead of holding
  the handler thread.
- JSON: bounded in bytes by the above and in nesting depth before it is parsed, so no
  input reaches Python's recursion limit.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SAME_SITE_FETCHES = frozenset({"same-origin", "none"})  # Sec-Fetch-Site values of our own page
MAX_JSON_DEPTH = 32
READ_TIMEOUT_SECONDS = 30.0


class Refused(Exception):
    """A request the endpoint will not serve: the status and a message for the client."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def allowed_hosts(port: int) -> frozenset[str]:
    """The Host values that name this server (lower case), with and without a default port."""
    hosts = {f"{host}:{port}" for host in LOCAL_HOSTS}
    if port == 80:
        hosts |= set(LOCAL_HOSTS)
    return frozenset(hosts)


def check_host(host: str | None, port: int) -> None:
    """Refuses a request addressed to any other name (what a rebound DNS name would send)."""
    if host is None:
        raise Refused(HTTPStatus.BAD_REQUEST, "missing Host header")
    if host.strip().lower() not in allowed_hosts(port):
        raise Refused(
            HTTPStatus.FORBIDDEN,
            f"Host {host!r} is not this server; use http://127.0.0.1:{port}/",
        )


def _origin_of(url: str) -> str:
    """scheme://host[:port] of a URL, lower case ("" when it has none)."""
    parts = urlsplit(url.strip())
    if not parts.scheme or not parts.netloc:
        return ""
    return f"{parts.scheme}://{parts.netloc}".lower()


def check_same_origin(headers: Any, port: int) -> None:
    """Refuses a state-changing request a page of another origin made.

    `headers` is the request's `email.message.Message`-like header map.
    """
    ours = {f"http://{host}" for host in allowed_hosts(port)}
    origin = headers.get("Origin")
    if origin is not None and origin.strip().lower() not in ours:
        raise Refused(HTTPStatus.FORBIDDEN, f"cross-site request refused (Origin {origin!r})")
    fetch_site = headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site.strip().lower() not in SAME_SITE_FETCHES:
        raise Refused(HTTPStatus.FORBIDDEN, f"cross-site request refused ({fetch_site!r})")
    referer = headers.get("Referer")
    if origin is None and referer is not None and _origin_of(referer) not in ours:
        raise Refused(HTTPStatus.FORBIDDEN, "cross-site request refused (Referer)")


def content_length(headers: Any, limit: int) -> int:
    """The body's length from the headers alone, refused unless it is exact and at most `limit`."""
    if headers.get("Transfer-Encoding") is not None:
        raise Refused(
            HTTPStatus.LENGTH_REQUIRED, "chunked bodies are not accepted; send Content-Length"
        )
    values = headers.get_all("Content-Length") or []
    if not values:
        raise Refused(HTTPStatus.LENGTH_REQUIRED, "Content-Length required")
    if len(values) > 1:
        raise Refused(HTTPStatus.BAD_REQUEST, "more than one Content-Length")
    text = values[0].strip()
    # int() would also take "-1", "+5", "1_000" and non-ASCII digits; HTTP allows 1*DIGIT.
    if not (text.isascii() and text.isdigit()):
        raise Refused(HTTPStatus.BAD_REQUEST, f"malformed Content-Length {values[0]!r}")
    length = int(text)
    if length > limit:
        raise Refused(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body of {length} bytes; at most {limit}"
        )
    return length


def json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in a JSON text (strings skipped), in one pass."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Strict JSON (UTF-8, no NaN/Infinity) nested at most `max_depth` deep."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refused(HTTPStatus.BAD_REQUEST, f"body is not UTF-8: {exc}") from None
    if json_depth(text) > max_depth:
        raise Refused(HTTPStatus.BAD_REQUEST, f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:
        raise Refused(HTTPStatus.BAD_REQUEST, f"invalid JSON: {exc}") from None


class GuardedHandler(BaseHTTPRequestHandler):
    """A request handler that checks Host (every request) and Origin (state-changing ones)
    before dispatching to `on_get`, `on_post` or `on_put`, and answers `Refused` as a JSON
    error.

    Subclasses implement the methods they serve and read bodies with `read_body` or
    `read_json` only.
    """

    timeout = READ_TIMEOUT_SECONDS  # a client that stops sending frees the thread
    extra_headers: tuple[tuple[str, str], ...] = ()  # sent with every answer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per poll would drown the stack's own logs

    def send_body(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in self.extra_headers:
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

    def read_json(self, limit: int, max_depth: int = MAX_JSON_DEPTH) -> Any:
        return parse_json(self.read_body(limit), max_depth)

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
            # A body left unread must never be parsed as a next request. The stdlib server
            # speaks HTTP/1.0 and closes after each answer anyway; this holds under keep-alive.
            self.close_connection = True
            self.send_json(refused.status, {"error": refused.message})
        except TimeoutError:
            self.close_connection = True  # the client stopped sending; nobody to answer

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()


SHUTDOWN_POLL_SECONDS = 0.05


def serve_in_thread(
    handler: type[BaseHTTPRequestHandler], host: str, port: int, name: str
) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """A threading server on a daemon thread, already serving; port 0 picks a free one."""
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    # A short poll: shutdown() waits for the loop's next poll (0.5 s by default).
    thread = threading.Thread(
        target=server.serve_forever, args=(SHUTDOWN_POLL_SECONDS,), name=name, daemon=True
    )
    thread.start()
    return server, thread
