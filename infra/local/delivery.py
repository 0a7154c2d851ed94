"""One delivery to a function, through the hooks, and the log of every answer.

Whatever keeps a request from being answered (an unencodable header, a refused connection,
a bug) is a recorded failed delivery (599), a nack the route retries, never an exception.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import requests

from infra.local.hooks import Call, DeliveryHook
from infra.local.messages import object_key

log = logging.getLogger("infra.local.delivery")

NO_ANSWER = 599  # what the router records when a function gave no HTTP answer
Later = Callable[[str, float, Callable[[], object]], None]  # (route, delay, callback)


@dataclass(frozen=True)
class Delivery:
    """One answer a function gave, or a hook gave for it (`by`: the hook's label)."""

    function: str
    route: str  # subscription key, or "trigger"
    message_id: str
    object: str
    generation: str
    event_type: str
    attempt: int
    status: int
    duplicate: bool
    by: str = ""  # "" the function; else e.g. "injected" (faults), "throttled" (capacity)
    error: str = ""  # why there was no HTTP answer (status 599)
    seconds: float = 0.0  # how long the request was out (sent until answered)
    at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class Abandoned:
    """A message a route stopped retrying: acked, never delivered again."""

    route: str
    function: str
    message_id: str
    object: str
    generation: str
    attempts: int
    reason: str  # "retry_window_exceeded"
    detail: str
    at: float = field(default_factory=time.time)


class DeliveryLog:
    """Thread-safe record of deliveries, filtered messages and abandoned ones."""

    def __init__(self, labels: Sequence[str] = (), maxlen: int = 200_000) -> None:
        self.labels = tuple(label for label in labels if label)
        self._lock = threading.Lock()
        self._deliveries: deque[Delivery] = deque(maxlen=maxlen)
        self._abandoned: deque[Abandoned] = deque(maxlen=maxlen)
        self._filtered: dict[str, int] = {}

    def add(self, delivery: Delivery) -> None:
        with self._lock:
            self._deliveries.append(delivery)

    def abandon(self, record: Abandoned) -> None:
        with self._lock:
            self._abandoned.append(record)

    def filtered(self, route: str) -> None:
        with self._lock:
            self._filtered[route] = self._filtered.get(route, 0) + 1

    def deliveries(
        self, function: str | None = None, object_prefix: str | None = None
    ) -> list[Delivery]:
        with self._lock:
            items = list(self._deliveries)
        return [
            d
            for d in items
            if function in (None, d.function) and d.object.startswith(object_prefix or "")
        ]

    def abandoned(self, object_prefix: str | None = None) -> list[Abandoned]:
        with self._lock:
            return [a for a in self._abandoned if a.object.startswith(object_prefix or "")]

    def stats(self) -> dict[str, object]:
        """`GET <router>/stats`' counts per function and per route (docs/local-stack.md)."""
        per: dict[str, dict[str, int]] = {}
        for d in self.deliveries():
            entry = per.setdefault(d.function, dict.fromkeys(("calls", "ok", "failed"), 0))
            for label in self.labels:
                entry.setdefault(label, 0)
            if d.by:
                entry[d.by] = entry.get(d.by, 0) + 1
                continue
            entry["calls"] += 1
            entry["ok" if 200 <= d.status < 300 else "failed"] += 1
        abandoned: dict[str, int] = {}
        for a in self.abandoned():
            abandoned[a.route] = abandoned.get(a.route, 0) + 1
        with self._lock:
            filtered = dict(self._filtered)
        return {"functions": per, "filtered": filtered, "abandoned": abandoned}


class Dispatcher:
    """Delivers requests to the functions by key, through the hooks' gates; POSTs with one
    kept-alive session per thread."""

    def __init__(
        self, urls: Mapping[str, str], hooks: Sequence[DeliveryHook], later: Later
    ) -> None:
        self.urls = dict(urls)
        self.hooks = list(hooks)
        self.log = DeliveryLog([hook.label for hook in self.hooks])
        self._later = later
        self._local = threading.local()

    def deliver(self, call: Call) -> bool:
        """True on a 2xx answer; a hook may have the same request sent again later."""
        status = self._call(call, duplicate=False)
        for hook in self.hooks:
            delay = hook.answered(call, status)
            if delay is not None:
                self._later(call.route, delay, lambda: self._call(call, duplicate=True))
        return 200 <= status < 300

    def _call(self, call: Call, duplicate: bool) -> int:
        by, error, seconds = "", "", 0.0
        with contextlib.ExitStack() as gates:
            for hook in self.hooks:
                answer = gates.enter_context(hook.gate(call))
                if answer is not None:  # answered for the function, never sent
                    by, status = hook.label, answer
                    break
            else:
                started = time.monotonic()
                status, error = self._send(call)
                seconds = time.monotonic() - started
        name, generation = object_key(call.message)
        self.log.add(
            Delivery(
                function=call.function,
                route=call.route,
                message_id=call.message.message_id,
                object=name,
                generation=generation,
                event_type=call.message.attributes.get("eventType", ""),
                attempt=call.attempt,
                status=status,
                duplicate=duplicate,
                by=by,
                error=error,
                seconds=round(seconds, 4),
            )
        )
        return status

    def _send(self, call: Call) -> tuple[int, str]:
        """The function's answer, or NO_ANSWER and why there was none."""
        try:
            headers, body = call.build()
            return self._post(self.urls[call.function], body, headers, call.timeout), ""
        except Exception as exc:  # any failure is a recorded nack, see the module doc
            error = f"{type(exc).__name__}: {exc}"
            log.warning("delivery to %s failed: %s", call.function, error)
            return NO_ANSWER, error

    def _post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
        """The answer's status; raises when there is none.

        Retried once on a new connection if a kept-alive one was closed under us: the
        functions' server drops idle connections after 2 s, and a POST racing that fails
        before any answer (the harness's artefact, not the function's failure).
        """
        if getattr(self._local, "session", None) is None:
            self._local.session = requests.Session()
        try:
            response = self._local.session.post(url, data=body, headers=headers, timeout=timeout)
        except requests.ConnectionError:
            self._local.session = requests.Session()
            response = self._local.session.post(url, data=body, headers=headers, timeout=timeout)
        return int(response.status_code)
