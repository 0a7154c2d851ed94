"""The event router: stands in for the GCS notification, Eventarc and Pub/Sub push.

fake-gcs-server publishes raw object events to an internal topic; the routes
(`infra.local.routes`) turn them into what GCP would deliver. The router is the generic
part: one pull loop and worker pool per route, then ack, or nack after the route's backoff
(so the emulator redelivers and, with a dead-letter policy, counts attempts), or ack when the
route gives up. Pull subscriptions are left alone: operators (`scripts/local pull`) read them.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from google.api_core import exceptions as api_exceptions
from google.cloud import pubsub_v1

from infra.local.delivery import Delivery, DeliveryLog
from infra.local.dispatch import Dispatcher
from infra.local.faults import Faults
from infra.local.messages import Message
from infra.local.refusals import Refusals
from infra.local.routes import (
    EVENTARC_RETENTION_SECONDS,
    EventarcTrigger,
    NotificationRelay,
    PushSubscription,
    Route,
)
from infra.local.scheduler import Scheduler
from infra.local.throttle import Throttle
from infra.model.topology import Topology

log = logging.getLogger("infra.local.router")

# The router polls on purpose (see `_pull`); the client's deprecation notice is noise here.
warnings.filterwarnings(
    "ignore", message="The return_immediately flag is deprecated", category=DeprecationWarning
)


# Deliveries in flight per route at most, as Pub/Sub push (and Eventarc, which delivers
# through it) keeps outstanding to one endpoint: more than a small stack's slots, so a burst
# meets Cloud Run's limit (429s) instead of queueing in the router, where the emulator's ack
# deadline would run out.
OUTSTANDING_PER_ROUTE = 64
# Pub/Sub "dynamically adjusts the rate of push requests based on the rate at which it
# receives success responses" (https://cloud.google.com/pubsub/docs/push, push workflow);
# modelled as slow start from a small window (see Outstanding).
OUTSTANDING_START = 3


class Outstanding:
    """The push window of one route: how many messages it holds (pulled, not yet acked or
    nacked) at most. Slow start as Pub/Sub push does it: one more per success, half after a
    failure, between 1 and `limit`. A burst above capacity thereby waits in the
    subscription (no delivery attempt counted) instead of all retrying against the limit."""

    def __init__(self, limit: int, start: int = OUTSTANDING_START) -> None:
        self.limit = limit
        self.size = min(start, limit)
        self._held = 0
        self._cond = threading.Condition()

    def room(self, timeout: float) -> int:
        """Free places, waiting up to `timeout` for one."""
        with self._cond:
            self._cond.wait_for(lambda: self._held < self.size, timeout)
            return max(0, self.size - self._held)

    def take(self) -> None:
        with self._cond:
            self._held += 1

    def give(self, delivered: bool) -> None:
        """One message done: `delivered` (acked) widens the window, a failure halves it."""
        with self._cond:
            self._held -= 1
            self.size = min(self.limit, self.size + 1) if delivered else max(1, self.size // 2)
            self._cond.notify_all()


@dataclass(frozen=True)
class HarnessNames:
    """Internal topic and subscriptions the router adds (they do not exist in GCP)."""

    raw_topic: str
    notification_subscription: str
    trigger_subscription: str


def harness_names(topology: Topology) -> HarnessNames:
    p = topology.prefix
    return HarnessNames(f"{p}-harness-gcs-events", f"{p}-harness-notify", f"{p}-harness-eventarc")


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
        workers_per_route: int = OUTSTANDING_PER_ROUTE,
        trigger_window_seconds: float | None = None,
        startup_seconds: Mapping[str, float] | None = None,
    ) -> None:
        self.topology = topology
        self.names = harness_names(topology)
        self.faults = faults or Faults()
        self.backoff_factor = backoff_factor
        self.log = DeliveryLog()
        self.refusals = Refusals()  # what Pub/Sub would have refused at publish
        self.throttle = Throttle.for_topology(topology, startup_seconds or {}, backoff_factor)
        self.dispatcher = Dispatcher(
            function_urls, self.faults, self.log, self._later, throttle=self.throttle
        )
        self._subscriber = subscriber
        self._poll = poll_seconds
        self._workers = workers_per_route
        self._outstanding: dict[str, Outstanding] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._scheduler: Scheduler | None = None
        window = trigger_window_seconds
        if window is None:  # Eventarc's 24 h, on the same scale as the backoffs
            window = EVENTARC_RETENTION_SECONDS * backoff_factor
        self.routes = self._routes(publisher, window)

    def _routes(self, publisher: pubsub_v1.PublisherClient, window: float) -> list[Route]:
        t = self.topology
        harness = f"projects/{t.project}/subscriptions/"
        routes: list[Route] = [
            NotificationRelay(t, harness + self.names.notification_subscription, publisher),
            EventarcTrigger(t, harness + self.names.trigger_subscription, self.dispatcher, window),
        ]
        routes += [
            PushSubscription(t, sub, self.dispatcher)
            for sub in t.subscriptions.values()
            if sub.push_function is not None
        ]
        return routes

    def route(self, name: str) -> Route:
        return next(r for r in self.routes if r.name == name)

    def expire_next_delete(self, name: str, generation: int) -> None:
        """The next delete of this upload is relayed as the lifecycle rule's expiry."""
        relay = next(r for r in self.routes if isinstance(r, NotificationRelay))
        relay.expire_next_delete(name, generation)

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self._scheduler = Scheduler()
        for route in self.routes:
            pool = ThreadPoolExecutor(self._workers, thread_name_prefix=f"route-{route.name}")
            self._pools[route.name] = pool
            self._outstanding[route.name] = Outstanding(self._workers)
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
            # Deliveries in flight are not waited for (a function may hang for its whole
            # timeout): the functions are stopped next, which ends them at once.
            pool.shutdown(wait=False, cancel_futures=True)
        if self._scheduler:
            self._scheduler.stop()

    def _later(self, route: str, delay: float, callback: Callable[[], None]) -> None:
        """Runs `callback` on the route's pool after `delay` (an at-least-once duplicate)."""
        if self._scheduler is None:
            return

        def submit() -> None:
            with contextlib.suppress(RuntimeError, KeyError):  # stopping: pools are gone
                self._pools[route].submit(callback)

        self._scheduler.call_later(delay, submit)

    # -- observations --------------------------------------------------------------------

    def deliveries(
        self, function: str | None = None, object_prefix: str | None = None
    ) -> list[Delivery]:
        return self.log.deliveries(function, object_prefix)

    def filtered_counts(self) -> dict[str, int]:
        """Messages acked without delivery because the subscription filter did not match."""
        return self.log.filtered_counts()

    def stats(self) -> dict[str, object]:
        refused = {"count": self.refusals.count(), "messages": self.refusals.records()}
        capacity = {
            key: {"slots": n, "wait_s": round(self.throttle.waits[key], 3)}
            for key, n in self.throttle.slots.items()
        }
        return {**self.log.stats(), "refused": refused, "capacity": capacity}

    def deliveries_json(self, **kwargs: str | None) -> list[dict[str, object]]:
        return [asdict(d) for d in self.deliveries(**kwargs)]

    # -- the pull loop ---------------------------------------------------------------------

    def _pump(self, route: Route, pool: ThreadPoolExecutor) -> None:
        outstanding = self._outstanding[route.name]
        while not self._stop.is_set():
            room = outstanding.room(self._poll)
            if not room:  # every worker holds a message: pull more only as they finish
                continue
            try:
                received = self._pull(route, room)
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
                outstanding.take()
                pool.submit(self._handle_outstanding, route, item, outstanding)

    def _handle_outstanding(
        self, route: Route, item: pubsub_v1.types.ReceivedMessage, outstanding: Outstanding
    ) -> None:
        delivered = False
        try:
            delivered = self._handle(route, item)
        finally:
            outstanding.give(delivered)

    def _pull(self, route: Route, room: int) -> list[pubsub_v1.types.ReceivedMessage]:
        """One pull; with reordering on, keeps pulling briefly to fill the held window."""
        window = self.faults.settings.reorder_window
        received: list[pubsub_v1.types.ReceivedMessage] = []
        deadline = time.monotonic() + (0.25 if window > 1 else 0.0)
        while True:
            try:
                response = self._subscriber.pull(
                    subscription=route.subscription_path,
                    max_messages=max(window, min(room, 10)),
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

    def _handle(self, route: Route, item: pubsub_v1.types.ReceivedMessage) -> bool:
        """Delivers one message and acks or nacks it; True when it was delivered (or had
        nothing to deliver), False when the delivery failed."""
        message = Message.from_received(item)
        # Messages on the pipeline's topics (not the harness's own feed from fake-gcs) that
        # Pub/Sub would have refused at publish: never delivered.
        if isinstance(route, PushSubscription) and self.refusals.refuse(route.name, message):
            self._ack(route, item.ack_id)
            return True
        try:
            ok = route.handle(message)
        except Exception:
            log.exception("route %s: message %s failed", route.name, message.message_id)
            ok = False
        if ok:
            self._ack(route, item.ack_id)
            return True
        delay = route.next_delay(message, self.backoff_factor)
        if delay is None:  # the route gave up (and recorded why)
            self._ack(route, item.ack_id)
        else:
            self._nack_later(route, item.ack_id, delay)
        return False

    def _ack(self, route: Route, ack_id: str) -> None:
        try:
            self._subscriber.acknowledge(subscription=route.subscription_path, ack_ids=[ack_id])
        except Exception as exc:
            log.warning("ack on %s failed: %s", route.subscription_path, exc)

    def _nack_later(self, route: Route, ack_id: str, delay: float) -> None:
        """Nack after `delay`: the emulator redelivers (and counts attempts)."""

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
