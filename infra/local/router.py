"""The event router: stands in for the GCS notification, Eventarc and Pub/Sub push.

fake-gcs-server publishes raw object events to an internal topic. From there:
- the *notification* route republishes each event to the topology's notification topic
  with the attributes GCS adds (`notificationConfig` and the custom attributes);
- the *trigger* route turns finalize events of the trigger bucket into binary-mode
  CloudEvents POSTed to the trigger's function, retried with backoff like Eventarc;
- one *push* route per push subscription pulls, applies the subscription filter (the
  emulator stores filters without applying them: a non-matching message is acked and
  never delivered, as in GCP) and POSTs the wrapped push body. 2xx acks; anything else
  nacks after the subscription's retry backoff, so the emulator redelivers and, after
  `max_delivery_attempts`, dead-letters.
Pull subscriptions are left alone: operators (`scripts/local pull`) read them.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import logging
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import requests
from google.api_core import exceptions as api_exceptions
from google.cloud import pubsub_v1

from infra.local.faults import Faults
from infra.local.messages import (
    Message,
    filter_matches,
    object_key,
    push_envelope,
    retry_delay,
    storage_cloudevent,
)
from infra.model.topology import RetryPolicy, Topology

log = logging.getLogger("infra.local.router")

# The router polls on purpose (see `_pull`); the client's deprecation notice is noise here.
warnings.filterwarnings(
    "ignore", message="The return_immediately flag is deprecated", category=DeprecationWarning
)

TRIGGER = "trigger"
NOTIFICATION = "notification"
# Eventarc's own retry policy for Cloud Storage triggers (exponential, 10 s to 600 s).
EVENTARC_RETRY = RetryPolicy(10, 600)


@dataclass(frozen=True)
class HarnessNames:
    """Internal topic and subscriptions the router adds (they do not exist in GCP)."""

    raw_topic: str
    notification_subscription: str
    trigger_subscription: str


def harness_names(topology: Topology) -> HarnessNames:
    p = topology.prefix
    return HarnessNames(f"{p}-harness-gcs-events", f"{p}-harness-notify", f"{p}-harness-eventarc")


@dataclass(frozen=True)
class Delivery:
    """One answer a function gave (or the router gave for it, when a fault was injected)."""

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
    at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class Route:
    name: str  # subscription key, TRIGGER or NOTIFICATION
    subscription_path: str
    function: str | None
    filter: str
    retry: RetryPolicy
    timeout_seconds: float


class Scheduler:
    """Runs callbacks after a delay on one thread (nacks after backoff, late duplicates)."""

    def __init__(self) -> None:
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._counter = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="router-scheduler", daemon=True)
        self._thread.start()

    def call_later(self, delay: float, callback: Callable[[], None]) -> None:
        with self._cond:
            heapq.heappush(self._queue, (time.monotonic() + delay, next(self._counter), callback))
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (
                    not self._queue or self._queue[0][0] > time.monotonic()
                ):
                    timeout = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._cond.wait(timeout)
                if self._stopped:
                    return
                _, _, callback = heapq.heappop(self._queue)
            try:
                callback()
            except Exception:
                log.exception("scheduled router callback failed")


class Router:
    """Pull loops per route, a worker pool for deliveries, and a log of every delivery."""

    def __init__(
        self,
        topology: Topology,
        publisher: pubsub_v1.PublisherClient,
        subscriber: pubsub_v1.SubscriberClient,
        function_urls: Mapping[str, str],
        faults: Faults | None = None,
        backoff_factor: float = 1.0,
        poll_seconds: float = 0.2,
        workers_per_route: int = 8,
    ) -> None:
        self.topology = topology
        self.names = harness_names(topology)
        self.faults = faults or Faults()
        self.backoff_factor = backoff_factor
        self._publisher = publisher
        self._subscriber = subscriber
        self._urls = dict(function_urls)
        self._poll = poll_seconds
        self._workers = workers_per_route
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._scheduler: Scheduler | None = None
        self._lock = threading.Lock()
        self._deliveries: deque[Delivery] = deque(maxlen=200_000)
        self._filtered: dict[str, int] = {}
        self._trigger_attempts: dict[str, int] = {}
        self._local = threading.local()
        self.routes = self._routes()

    def _routes(self) -> list[Route]:
        t = self.topology
        project = t.project
        fn = t.functions[t.trigger.function]
        routes = [
            Route(
                NOTIFICATION,
                f"projects/{project}/subscriptions/{self.names.notification_subscription}",
                None,
                "",
                EVENTARC_RETRY,
                30,
            ),
            Route(
                TRIGGER,
                f"projects/{project}/subscriptions/{self.names.trigger_subscription}",
                fn.key,
                "",
                EVENTARC_RETRY,
                fn.timeout_seconds,
            ),
        ]
        for sub in t.subscriptions.values():
            if sub.push_function is None:
                continue
            routes.append(
                Route(
                    sub.key,
                    t.subscription_path(sub.key),
                    sub.push_function,
                    sub.filter,
                    sub.retry,
                    t.functions[sub.push_function].timeout_seconds,
                )
            )
        return routes

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self._scheduler = Scheduler()
        for route in self.routes:
            pool = ThreadPoolExecutor(self._workers, thread_name_prefix=f"route-{route.name}")
            self._pools[route.name] = pool
            thread = threading.Thread(
                target=self._pump, args=(route, pool), name=f"pull-{route.name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        for pool in self._pools.values():
            pool.shutdown(wait=True, cancel_futures=True)
        if self._scheduler:
            self._scheduler.stop()

    # -- observations --------------------------------------------------------------------

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

    def filtered_counts(self) -> dict[str, int]:
        """Messages acked without delivery because the subscription filter did not match."""
        with self._lock:
            return dict(self._filtered)

    def stats(self) -> dict[str, object]:
        with self._lock:
            items = list(self._deliveries)
        per: dict[str, dict[str, int]] = {}
        for d in items:
            entry = per.setdefault(d.function, {"calls": 0, "ok": 0, "failed": 0, "injected": 0})
            entry["injected" if d.injected else "calls"] += 1
            entry["ok" if 200 <= d.status < 300 else "failed"] += 1
        return {"functions": per, "filtered": self.filtered_counts()}

    def deliveries_json(self, **kwargs: str | None) -> list[dict[str, object]]:
        return [asdict(d) for d in self.deliveries(**kwargs)]

    # -- the pull loop ---------------------------------------------------------------------

    def _pump(self, route: Route, pool: ThreadPoolExecutor) -> None:
        while not self._stop.is_set():
            try:
                received = self._pull(route)
            except Exception as exc:
                if self._stop.is_set():
                    return
                log.warning("pull from %s failed: %s", route.subscription_path, exc)
                self._stop.wait(0.5)
                continue
            log.debug("pulled %d from %s", len(received), route.name)
            if not received:
                self._stop.wait(self._poll)
                continue
            for item in self.faults.reorder(received):
                pool.submit(self._handle, route, item)

    def _pull(self, route: Route) -> list[pubsub_v1.types.ReceivedMessage]:
        """One pull; with reordering on, keeps pulling briefly to fill the held window."""
        window = self.faults.settings.reorder_window
        received: list[pubsub_v1.types.ReceivedMessage] = []
        deadline = time.monotonic() + (0.25 if window > 1 else 0.0)
        while True:
            try:
                response = self._subscriber.pull(
                    subscription=route.subscription_path,
                    max_messages=max(window, 10),
                    # A long poll does not reliably see nacked messages in the emulator
                    # (measured: redelivery ~12 s late), so poll instead.
                    return_immediately=True,
                    timeout=10,
                )
                received.extend(response.received_messages)
            except api_exceptions.DeadlineExceeded:
                pass
            if window <= 1 or len(received) >= window or time.monotonic() >= deadline:
                return received
            self._stop.wait(0.02)

    # -- one message -------------------------------------------------------------------------

    def _handle(self, route: Route, item: pubsub_v1.types.ReceivedMessage) -> None:
        message = Message.from_received(item)
        try:
            if route.name == NOTIFICATION:
                self._relay(message)
                ok = True
            elif route.name == TRIGGER:
                ok = self._trigger(route, message)
            else:
                ok = self._push(route, message)
        except Exception:
            log.exception("route %s: message %s failed", route.name, message.message_id)
            ok = False
        if ok:
            self._ack(route, item.ack_id)
        else:
            self._nack_later(route, item.ack_id, message)

    def _relay(self, message: Message) -> None:
        """GCS notification: same payload, plus the attributes GCS adds, on the real topic."""
        spec = self.topology.notification
        if message.attributes.get("eventType") not in spec.event_types:
            return
        bucket = self.topology.buckets[spec.bucket].name
        attributes = {
            **message.attributes,
            "notificationConfig": f"projects/_/buckets/{bucket}/notificationConfigs/1",
            **spec.custom_attributes,
        }
        future = self._publisher.publish(
            self.topology.topic_path(spec.topic), message.data, **attributes
        )
        future.result(timeout=30)

    def _trigger(self, route: Route, message: Message) -> bool:
        trigger = self.topology.trigger
        event = storage_cloudevent(
            message, trigger.event_type, self.topology.buckets[trigger.bucket].name
        )
        if event is None:
            return True
        with self._lock:
            attempt = self._trigger_attempts.get(message.message_id, 0) + 1
            self._trigger_attempts[message.message_id] = attempt
        headers, body = event
        ok = self._deliver(route, message, attempt, headers, body)
        if ok:
            with self._lock:
                self._trigger_attempts.pop(message.message_id, None)
        return ok

    def _push(self, route: Route, message: Message) -> bool:
        if not filter_matches(route.filter, message.attributes):
            with self._lock:
                self._filtered[route.name] = self._filtered.get(route.name, 0) + 1
            return True
        body = json.dumps(push_envelope(message, route.subscription_path)).encode()
        headers = {"Content-Type": "application/json"}
        return self._deliver(route, message, message.delivery_attempt or 1, headers, body)

    def _deliver(
        self, route: Route, message: Message, attempt: int, headers: dict[str, str], body: bytes
    ) -> bool:
        assert route.function is not None
        status = self._call(route, message, attempt, headers, body, duplicate=False)
        ok = 200 <= status < 300
        if ok and self.faults.duplicate() and self._scheduler:
            # At-least-once: the same delivery again a moment later (a lost ack in GCP).
            def again() -> None:
                with contextlib.suppress(RuntimeError):
                    self._pools[route.name].submit(
                        self._call, route, message, attempt, headers, body, True
                    )

            self._scheduler.call_later(self.faults.duplicate_delay(), again)
        return ok

    def _call(
        self,
        route: Route,
        message: Message,
        attempt: int,
        headers: dict[str, str],
        body: bytes,
        duplicate: bool,
    ) -> int:
        assert route.function is not None
        injected = self.faults.injected_status(route.function)
        status = injected
        if status is None:
            try:
                response = self._post(
                    self._urls[route.function], body, headers, route.timeout_seconds
                )
                status = response.status_code
            except requests.RequestException as exc:
                log.warning("POST to %s failed: %s", route.function, exc)
                status = 599
        name, generation = object_key(message)
        if route.name == TRIGGER:
            name = name or headers.get("ce-subject", "").removeprefix("objects/")
        record = Delivery(
            function=route.function,
            route=route.name,
            message_id=message.message_id,
            object=name,
            generation=generation,
            event_type=message.attributes.get("eventType", ""),
            attempt=attempt,
            status=status,
            injected=injected is not None,
            duplicate=duplicate,
        )
        with self._lock:
            self._deliveries.append(record)
        return status

    def _post(
        self, url: str, body: bytes, headers: dict[str, str], timeout: float
    ) -> requests.Response:
        """POST, once more on a new connection if a kept-alive one was closed under us.

        The functions' server drops idle keep-alive connections after 2 s; a POST racing that
        fails before any answer. It is the harness's artefact, not the function's failure, so
        it must not count as a nack (seen once per 100-upload burst in benchmarks/e2e).
        """
        try:
            return self._session().post(url, data=body, headers=headers, timeout=timeout)
        except requests.ConnectionError:
            self._local.session = requests.Session()
            return self._session().post(url, data=body, headers=headers, timeout=timeout)

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    # -- acks ----------------------------------------------------------------------------------

    def _ack(self, route: Route, ack_id: str) -> None:
        try:
            self._subscriber.acknowledge(subscription=route.subscription_path, ack_ids=[ack_id])
        except Exception as exc:
            log.warning("ack on %s failed: %s", route.subscription_path, exc)

    def _nack_later(self, route: Route, ack_id: str, message: Message) -> None:
        """Nack after the route's backoff: the emulator redelivers (and counts attempts)."""
        with self._lock:
            attempt = (
                self._trigger_attempts.get(message.message_id, 1)
                if route.name == TRIGGER
                else max(1, message.delivery_attempt)
            )
        delay = retry_delay(route.retry, attempt, self.backoff_factor)

        def nack(deadline: int = 0) -> None:
            try:
                self._subscriber.modify_ack_deadline(
                    subscription=route.subscription_path,
                    ack_ids=[ack_id],
                    ack_deadline_seconds=deadline,
                )
            except Exception as exc:
                log.warning("nack on %s failed: %s", route.subscription_path, exc)
            log.debug("nacked %s on %s (deadline %s)", ack_id[:12], route.name, deadline)

        if delay >= 1.0:
            # Long waits: let the emulator hold the message (a lease of `delay` seconds).
            nack(min(600, round(delay)))
        elif self._scheduler:
            self._scheduler.call_later(delay, nack)
        else:
            nack()
