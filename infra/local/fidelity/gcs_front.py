"""The Cloud Storage front: every client of the local stack reaches fake-gcs-server through it.

Where the fake differs from Cloud Storage (the table in docs/local-stack.md, "Cloud
Storage"), the front reads each body whole within BODY_SECONDS before it takes a lock (one
stalled upload froze the fake), applies every precondition under per-object locks, answers
in Cloud Storage's words and publishes each write's notifications itself. The listener a
request arrived on (`listen`, one per identity) says who sent it, for a `RequestHook`.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import quote

from infra.local.fidelity import gcs_api
from infra.local.fidelity.gcs_api import Refused, StorageRequest
from infra.local.http_guard import serve_in_thread

BODY_SECONDS = 10.0  # for a whole request body; localhost sends megabytes in milliseconds
LOCK_SECONDS = 30.0  # for the locks of one write
UPSTREAM_SECONDS = 60.0  # per socket operation against the fake
SESSIONS_KEPT = 10_000  # resumable uploads remembered (their preconditions)
_CHUNK = 64 * 1024
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer"}
    | {"transfer-encoding", "upgrade", "expect"}
)
_NOT_FORWARDED = _HOP_BY_HOP | {"host", "content-length"}  # the front sets these itself
Publish = Callable[[str, bytes, Mapping[str, str]], None]  # (topic path, data, attributes)


@dataclass(frozen=True)
class NotificationConfig:
    """A bucket's Pub/Sub notification: which events of `bucket` go to `topic`, with which
    custom attributes (https://cloud.google.com/storage/docs/pubsub-notifications). Eventarc
    triggers on Cloud Storage events through one of these too."""

    id: str
    bucket: str
    topic: str  # projects/PROJECT/topics/TOPIC
    event_types: frozenset[str] | None = None  # None: every event
    custom_attributes: Mapping[str, str] = field(default_factory=dict)


class RequestHook(Protocol):
    def check(self, request: StorageRequest) -> Refused | None:
        """Why Cloud Storage would refuse this caller this request (None: it would not).
        Called once per request; for a write, with the objects locked and `replaces` set."""


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @classmethod
    def of_json(cls, status: int, body: bytes) -> Answer:
        return cls(status, [("Content-Type", "application/json; charset=UTF-8")], body)

    @classmethod
    def refused(cls, refused: Refused) -> Answer:
        body = gcs_api.error(refused.status, refused.reason, refused.message)
        return cls.of_json(refused.status, body)


class ObjectLocks:
    """A lock per object name, made on first use and dropped when nobody holds or waits."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[tuple[str, str], list[Any]] = {}  # key -> [lock, users]

    @contextlib.contextmanager
    def hold(self, keys: list[tuple[str, str]], timeout: float) -> Iterator[bool]:
        """All of `keys` (in one order, so two writes never wait on each other), or False
        when they could not all be had within `timeout`."""
        deadline, held = time.monotonic() + timeout, []
        try:
            for key in sorted(set(keys)):
                with self._guard:
                    entry = self._locks.setdefault(key, [threading.Lock(), 0])
                    entry[1] += 1
                held.append(key)
                if not entry[0].acquire(timeout=max(0.0, deadline - time.monotonic())):
                    entry[1] -= 1
                    held.pop()
                    yield False
                    return
            yield True
        finally:
            with self._guard:
                for key in held:
                    entry = self._locks[key]
                    entry[0].release()
                    entry[1] -= 1
                    if not entry[1]:
                        del self._locks[key]


class GcsFront:
    """Listens on 127.0.0.1 (one port per identity) and forwards to `upstream` (host:port)."""

    def __init__(
        self, upstream: str, publish: Publish | None, configs: Sequence[NotificationConfig]
    ) -> None:
        """Publishes the notifications of writes with `publish`, as `configs` ask."""
        self.upstream = upstream
        self.hooks: list[RequestHook] = []
        self.locks = ObjectLocks()
        self._servers: dict[str, ThreadingHTTPServer] = {}
        self._sessions: dict[str, StorageRequest] = {}  # upload_id -> its start
        self._sessions_lock = threading.Lock()
        self._publish, self._configs = publish, configs
        self._expiring: dict[tuple[str, str, str], int] = {}  # (bucket, name, gen) -> days
        self.host = self.listen("")  # the stack's own clients, tools and tests

    def listen(self, identity: str) -> str:
        """host:port of the listener for `identity` (made on first use)."""
        if identity not in self._servers:
            handler = type("FrontHandler", (_Handler,), {"front": self, "identity": identity})
            self._servers[identity] = serve_in_thread(handler, "127.0.0.1", 0, "gcs-front")[0]
        return f"127.0.0.1:{self._servers[identity].server_address[1]}"

    def expire_next_delete(self, bucket: str, name: str, generation: int, days: int) -> None:
        """The next delete of `name`#`generation` is notified as a lifecycle rule's delete
        (fake-gcs-server has none): the `OBJECT_DELETE` of any other delete, with `eventTime`
        `days` after the object was created, when the rule would run."""
        self._expiring[(bucket, name, str(generation))] = days

    def _send(self, data: bytes, attributes: dict[str, str]) -> None:
        """One event of a write, to each notification config that asks for it."""
        key = (attributes["bucketId"], attributes["objectId"], attributes["objectGeneration"])
        days = self._expiring.pop(key, None) if attributes["eventType"] == "OBJECT_DELETE" else None
        if days is not None:
            created = datetime.fromisoformat(json.loads(data)["timeCreated"]).astimezone(UTC)
            attributes["eventTime"] = _rfc3339(created + timedelta(days=days))
        for config in self._configs:
            wanted = config.event_types is None or attributes["eventType"] in config.event_types
            if self._publish and config.bucket == key[0] and wanted:
                config_path = f"projects/_/buckets/{config.bucket}/notificationConfigs/{config.id}"
                extra = {"notificationConfig": config_path, **config.custom_attributes}
                self._publish(config.topic, data, {**attributes, **extra})

    def stop(self) -> None:
        for server in self._servers.values():
            server.shutdown()
            server.server_close()

    # -- one request ------------------------------------------------------------------------

    def handle(
        self, identity: str, verb: str, target: str, headers: Message, body: bytes
    ) -> Answer:
        """The answer to one whole request (its headers as sent: looked up in any case)."""
        try:
            request = gcs_api.parse(identity, verb, target, headers.get("Content-Type", ""), body)
            if refused := gcs_api.refusal(request):
                raise refused
            session = request.params.get("upload_id")
            if request.method == "buckets.getStorageLayout":
                return self._storage_layout(request)
            if session and verb == "PUT" and _final(headers.get("Content-Range", "")):
                request = self._session(session, request)
            elif not request.writes or session or request.params.get("uploadType") == "resumable":
                self._check(request)
                answer = self._forward(request, headers, body)
                self._remember(request, answer)
                return answer
            return self._write(request, headers, body)
        except Refused as refused:
            return Answer.refused(refused)

    def _check(self, request: StorageRequest) -> None:
        for hook in self.hooks:
            if refused := hook.check(request):
                raise refused

    def _write(self, request: StorageRequest, headers: Message, body: bytes) -> Answer:
        """A write: checked and forwarded with its objects locked, then notified."""
        target = (request.bucket, request.object)
        events: list[tuple[bytes, dict[str, str]]] = []
        with self.locks.hold([target] + [s[:2] for s in request.sources], LOCK_SECONDS) as held:
            if not held:  # what Cloud Storage answers to too many writes to one object
                raise Refused(429, "rateLimitExceeded", f"{request.object}: too many writes")
            before = self._live(*target)
            request.replaces = before is not None
            self._check(request)
            if before is None and request.method != "objects.insert" and not request.sources:
                raise Refused(404, "notFound", f"No such object: {'/'.join(target)}")
            if failure := gcs_api.precondition_failure(request.conditions, before):
                raise failure
            for bucket, name, conditions in request.sources:
                source = self._live(bucket, name)
                if source is None:
                    raise Refused(404, "notFound", f"No such object: {bucket}/{name}")
                if failure := gcs_api.precondition_failure(conditions, source):
                    raise failure
            answer = self._forward(request, headers, body)
            if answer.status < 300:
                answer, events = self._written(request, answer, before)
        for data, attributes in events:
            self._send(data, attributes)
        return answer

    def _written(
        self, request: StorageRequest, answer: Answer, before: dict[str, Any] | None
    ) -> tuple[Answer, list[tuple[bytes, dict[str, str]]]]:
        """Cloud Storage's answer to a write that succeeded, and its notifications."""
        deletes = request.method == "objects.delete"
        after = None if deletes else self._live(request.bucket, request.object)
        if deletes:  # the fake answers 200 and `null`
            answer = Answer(204)
        elif request.method in ("objects.patch", "objects.update") and after is not None:
            answer = Answer.of_json(200, self._linked(request.identity, json.dumps(after).encode()))
        if not any(config.bucket == request.bucket for config in self._configs):
            return answer, []
        return answer, gcs_api.notifications(before, after, _rfc3339(datetime.now(UTC)))

    def _storage_layout(self, request: StorageRequest) -> Answer:
        """gcloud storage reads it before `mv` and `rm`; the fake has no such endpoint."""
        self._check(request)
        bucket = self._upstream("GET", f"/storage/v1/b/{request.bucket}")
        if bucket.status != 200:
            return bucket
        layout = gcs_api.storage_layout(json.loads(bucket.body))
        return Answer.of_json(200, json.dumps(layout).encode())

    # -- resumable uploads: the preconditions come with the start, the write with the end ----

    def _remember(self, request: StorageRequest, answer: Answer) -> None:
        location = dict((k.lower(), v) for k, v in answer.headers).get("location", "")
        found = re.search(r"[?&]upload_id=([^&]+)", location)
        if request.params.get("uploadType") == "resumable" and found:
            with self._sessions_lock:
                self._sessions[found.group(1)] = request
                while len(self._sessions) > SESSIONS_KEPT:
                    self._sessions.pop(next(iter(self._sessions)))

    def _session(self, upload_id: str, chunk: StorageRequest) -> StorageRequest:
        """The final chunk of an upload, as the write its start asked for."""
        with self._sessions_lock:
            start = self._sessions.pop(upload_id, None)
        if start is None:
            return chunk
        chunk.bucket, chunk.object = start.bucket, start.object
        chunk.conditions, chunk.resource = start.conditions, start.resource
        return chunk

    # -- the fake ---------------------------------------------------------------------------

    def _live(self, bucket: str, name: str) -> dict[str, Any] | None:
        """The live generation's resource, or None when there is none."""
        answer = self._upstream("GET", f"/storage/v1/b/{quote(bucket)}/o/{quote(name, safe='')}")
        if answer.status == 404:
            return None
        if answer.status != 200:
            raise Refused(
                503, "backendError", f"the Cloud Storage emulator answered {answer.status}"
            )
        return dict(json.loads(answer.body))

    def _forward(self, request: StorageRequest, headers: Message, body: bytes) -> Answer:
        sent = [(k, v) for k, v in headers.items() if k.lower() not in _NOT_FORWARDED]
        answer = self._upstream(request.verb, request.target, sent, body)
        answer.body = self._linked(request.identity, answer.body)
        answer.headers = [
            (k, self._linked(request.identity, v.encode()).decode()) for k, v in answer.headers
        ]
        return answer

    def _linked(self, identity: str, data: bytes) -> bytes:
        """Links the fake hands out (resumable Location, selfLink, mediaLink) lead back to
        the listener the request came in on, never to another identity's or to the fake."""
        own = self.listen(identity)
        return data.replace(self.host.encode(), own.encode()) if own != self.host else data

    def _upstream(
        self,
        verb: str,
        target: str,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> Answer:
        conn = http.client.HTTPConnection(self.upstream, timeout=UPSTREAM_SECONDS)
        try:
            conn.putrequest(verb, target, skip_host=True, skip_accept_encoding=True)
            # The fake builds its links from Host: always the stack's own listener.
            for name, value in [("Host", self.host), *(headers or [])]:
                conn.putheader(name, value)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            message = f"the Cloud Storage emulator did not answer: {exc}"
            raise Refused(503, "backendError", message) from None
        finally:
            conn.close()
        kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
        return Answer(response.status, kept, data)


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _final(content_range: str) -> bool:
    """Whether a resumable upload's PUT with this Content-Range completes it: none (the
    whole object at once), or a known total that this chunk (or `*`) reaches."""
    found = re.fullmatch(r"bytes (?:\*|\d+-(\d+))/(\d+)", content_range.strip())
    if not content_range:
        return True
    return found is not None and (
        found.group(1) is None or int(found.group(1)) + 1 == int(found.group(2))
    )


class _Handler(BaseHTTPRequestHandler):
    front: GcsFront  # these two are set on the subclass made per listener
    identity: str
    protocol_version = "HTTP/1.1"  # keep-alive, as the clients expect
    disable_nagle_algorithm = True  # headers and body go out as separate writes

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the fake logs requests; the front would only double them

    def do_GET(self) -> None:
        deadline = time.monotonic() + BODY_SECONDS
        try:
            body = self._body(deadline)
        except TimeoutError:  # https://cloud.google.com/storage/docs/json_api/v1/status-codes
            message = f"the request body did not arrive within {BODY_SECONDS:g} s"
            self.close_connection = True
            self._send(Answer.refused(Refused(408, "uploadBrokenConnection", message)))
            return
        except (OSError, ValueError):  # the client went away, or sent no valid body
            self.close_connection = True
            return
        self._send(self.front.handle(self.identity, self.command, self.path, self.headers, body))

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def _pull(self, deadline: float) -> bytes:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        self.connection.settimeout(remaining)
        piece = self.rfile.read1(_CHUNK)
        if not piece:
            raise ConnectionError("the client closed the request body early")
        return piece

    def _body(self, deadline: float) -> bytes:
        """The whole body, by its Content-Length or chunked; raises TimeoutError at the deadline."""
        buffer = bytearray()
        try:
            if "chunked" not in self.headers.get("Transfer-Encoding", "").lower():
                length = int(self.headers.get("Content-Length") or 0)
                while len(buffer) < length:
                    buffer += self._pull(deadline)
                return bytes(buffer)
            body = bytearray()
            while True:
                while b"\r\n" not in buffer:
                    buffer += self._pull(deadline)
                line, _, rest = bytes(buffer).partition(b"\r\n")
                size = int(line.split(b";")[0], 16)
                buffer = bytearray(rest)
                if not size:  # the last chunk: then trailers, if any, and an empty line
                    while buffer != b"\r\n" and not buffer.endswith(b"\r\n\r\n"):
                        buffer += self._pull(deadline)
                    return bytes(body)
                while len(buffer) < size + 2:
                    buffer += self._pull(deadline)
                body += buffer[:size]
                buffer = buffer[size + 2 :]
        finally:
            self.connection.settimeout(None)

    def _send(self, answer: Answer) -> None:
        self.send_response_only(answer.status)
        length = next((v for k, v in answer.headers if k.lower() == "content-length"), None)
        for name, value in answer.headers:
            if name.lower() != "content-length":
                self.send_header(name, value)
        if self.command == "HEAD" and length is not None:
            self.send_header("Content-Length", length)  # of the body a GET would have
        elif answer.status != 204:
            self.send_header("Content-Length", str(len(answer.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)
