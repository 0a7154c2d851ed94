"""HTTP delivery to the functions, and the log of every answer the router saw or gave."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field

import requests


@dataclass(frozen=True)
class Delivery:
    """One answer a function gave (or the router gave for it: an injected fault, an error)."""

    function: str
    route: str  # subscription key, or "trigger"
    message_id: str
    object: str
    generation: str
    event_type: str
    attempt: int
    status: int
    injected: bool
    duplicate: bool
    error: str = ""  # why there was no HTTP answer (status 599)
    throttled: bool = False  # refused with 429 before reaching the function (no slot free)
    seconds: float = 0.0  # how long the request held its slot (sent until answered)
    at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class Abandoned:
    """A message a route stopped retrying, or refused: acked, never delivered again."""

    route: str
    function: str
    message_id: str
    object: str
    generation: str
    attempts: int
    reason: str  # "retry_window_exceeded" | "invalid_object_name"
    detail: str
    at: float = field(default_factory=time.time)


class DeliveryLog:
    """Thread-safe record of deliveries, filtered messages and abandoned ones."""

    def __init__(self, maxlen: int = 200_000) -> None:
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
            if (function is None or d.function == function)
            and (object_prefix is None or d.object.startswith(object_prefix))
        ]

    def abandoned(self, object_prefix: str | None = None) -> list[Abandoned]:
        with self._lock:
            items = list(self._abandoned)
        return [a for a in items if object_prefix is None or a.object.startswith(object_prefix)]

    def filtered_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._filtered)

    def stats(self) -> dict[str, object]:
        """Calls/ok/failed/injected/throttled per function, filtered and abandoned per route.

        `throttled` counts the 429s of the capacity model (`infra.local.throttle`): requests
        refused for lack of a free instance, which never reached the function.
        """
        per: dict[str, dict[str, int]] = {}
        for d in self.deliveries():
            entry = per.setdefault(
                d.function, {"calls": 0, "ok": 0, "failed": 0, "injected": 0, "throttled": 0}
            )
            if d.throttled:
                entry["throttled"] += 1
                continue
            entry["injected" if d.injected else "calls"] += 1
            entry["ok" if 200 <= d.status < 300 else "failed"] += 1
        abandoned: dict[str, int] = {}
        for a in self.abandoned():
            abandoned[a.route] = abandoned.get(a.route, 0) + 1
        return {"functions": per, "filtered": self.filtered_counts(), "abandoned": abandoned}

    def abandoned_json(self, object_prefix: str | None = None) -> list[dict[str, object]]:
        return [asdict(a) for a in self.abandoned(object_prefix)]


class HttpSender:
    """POSTs with one kept-alive session per thread."""

    def __init__(self) -> None:
        self._local = threading.local()

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
        """The answer's status; raises when there is none.

        Retried once on a new connection if a kept-alive one was closed under us: the
        functions' server drops idle connections after 2 s, and a POST racing that fails
        before any answer (the harness's artefact, not the function's failure).
        """
        try:
            response = self._session().post(url, data=body, headers=headers, timeout=timeout)
        except requests.ConnectionError:
            self._local.session = requests.Session()
            response = self._session().post(url, data=body, headers=headers, timeout=timeout)
        return response.status_code

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session
