"""The event router: stands in for Eventarc and Pub/Sub push (docs/local-stack.md, "Core and
fidelity"). The generic part: one pull loop and worker pool per route, then ack, or nack
after the route's backoff (so the emulator redelivers and counts attempts), or ack when the
route gives up. Pull subscriptions are left alone: operators (`scripts/local pull`) read them.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from google.api_core import exceptions as api_exceptions
from google.cloud import pubsub_v1

from infra.local.delivery import Dispatcher
from infra.local.hooks import DeliveryHook
from infra.local.messages import Message
from infra.local.routes import (
    EVENTARC_RETENTION_SECONDS,
    EventarcTrigger,
    PushSubscription,
    Route,
)
from infra.model.topology import Topology

log = logging.getLogger("infra.local.router")

# The router polls on purpose (see `_pull`); the client's deprecation notice is noise here.
warnings.filterwarnings(
    "ignore", message="The return_immediately flag is deprecated", category=DeprecationWarning
)

WORKERS_PER_ROUTE = 64  # deliveries in flight per route at most (the push window's limit)
MAX_PULL = 10


def harness_paths(topology: Topology) -> tuple[str, str]:
    """The router's own topic and subscription (they do not exist in GCP): where the GCS
    front publishes the trigger bucket's events, as Eventarc's notification, and the trigger
    route's subscription to it."""
    project, prefix = f"projects/{topology.project}", topology.prefix
    topic = f"{project}/topics/{prefix}-harness-gcs-events"
    return topic, f"{project}/subscriptions/{prefix}-harness-eventarc"


class Router:
    """Pull loops per route, a worker pool for deliveries, and a log of every delivery."""

    def __init__(
        self,
        topology: Topology,
        subscriber: pubsub_v1.SubscriberClient,
        function_urls: Mapping[str, str],
        hooks: Sequence[DeliveryHook] = (),
        backoff_factor: float = 1.0,
        poll_seconds: float = 0.2,
        trigger_window_seconds: float | None = None,
    ) -> None:
        self.topology = topology
        self.hooks = list(hooks)
        self.backoff_factor = backoff_factor
        self.dispatcher = Dispatcher(function_urls, self.hooks, self._later)
        self.log = self.dispatcher.log
        self._subscriber = subscriber
        self._poll = poll_seconds
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pools: dict[str, ThreadPoolExecutor] = {}
        window = trigger_window_seconds
        if window is None:  # Eventarc's 24 h, on the same scale as the backoffs
            window = EVENTARC_RETENTION_SECONDS * backoff_factor
        trigger = harness_paths(topology)[1]
        self.routes: list[Route] = [
            EventarcTrigger(topology, trigger, self.dispatcher, window),
        ] + [
            PushSubscription(topology, sub, self.dispatcher)
            for sub in topology.subscriptions.values()
            if sub.push_function is not None
        ]

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        for route in self.routes:
            pool = ThreadPoolExecutor(WORKERS_PER_ROUTE, thread_name_prefix=f"route-{route.name}")
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
            # Deliveries in flight are not waited for (a function may hang for its whole
            # timeout): the functions are stopped next, which ends them at once.
            pool.shutdown(wait=False, cancel_futures=True)

    def _after(self, delay: float, callback: Callable[[], object]) -> None:
        """Runs `callback` on a timer thread after `delay`, unless the router stopped first."""
        timer = threading.Timer(delay, lambda: self._stop.is_set() or callback())
        timer.daemon = True
        timer.start()

    def _later(self, route: str, delay: float, callback: Callable[[], object]) -> None:
        """Runs `callback` on the route's pool after `delay` (a hook's repeated request)."""

        def submit() -> None:
            with contextlib.suppress(RuntimeError, KeyError):  # stopping: pools are gone
                self._pools[route].submit(callback)

        self._after(delay, submit)

    # -- observations --------------------------------------------------------------------

    def stats(self) -> dict[str, object]:
        """The delivery log's counters, and each hook's own (capacity, refused, ...)."""
        stats = self.log.stats()
        for hook in self.hooks:
            stats.update(hook.stats() or {})
        return stats

    # -- the pull loop ---------------------------------------------------------------------

    def _room(self, route: Route) -> int:
        """How many messages to pull now: what every hook allows, at most MAX_PULL."""
        rooms = [hook.room(route.name, self._poll) for hook in self.hooks]
        return min([MAX_PULL] + [room for room in rooms if room is not None])

    def _pump(self, route: Route, pool: ThreadPoolExecutor) -> None:
        while not self._stop.is_set():
            room = self._room(route)
            if not room:  # the route holds all it may: pull more only as messages finish
                continue
            try:
                received = self._pull(route, room)
            except Exception as exc:
                if self._stop.is_set():
                    return
                log.warning("pull from %s failed: %s", route.subscription_path, exc)
                self._stop.wait(0.5)
                continue
            if not received:
                self._stop.wait(self._poll)
                continue
            for hook in self.hooks:
                hook.taken(route.name, len(received))
            for item in received:
                pool.submit(self._handle_settled, route, item)

    def _pull(self, route: Route, count: int) -> list[pubsub_v1.types.ReceivedMessage]:
        try:
            response = self._subscriber.pull(
                subscription=route.subscription_path,
                max_messages=count,
                # A long poll does not reliably see nacked messages in the emulator
                # (measured: redelivery ~12 s late), so poll instead.
                return_immediately=True,
                timeout=10,
            )
        except api_exceptions.DeadlineExceeded:
            return []
        return list(response.received_messages)

    # -- one message -------------------------------------------------------------------------

    def _handle_settled(self, route: Route, item: pubsub_v1.types.ReceivedMessage) -> None:
        delivered = False
        try:
            delivered = self._handle(route, item)
        finally:
            for hook in self.hooks:
                hook.settled(route.name, delivered)

    def _handle(self, route: Route, item: pubsub_v1.types.ReceivedMessage) -> bool:
        """Delivers one message and acks or nacks it; True when it was delivered (or had
        nothing to deliver), False when the delivery failed."""
        message = Message.from_received(item)
        if any(hook.refuses(route.name, message) for hook in self.hooks):
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

        if delay >= 1.0:
            # Long waits: let the emulator hold the message (a lease of `delay` seconds).
            nack(min(600, round(delay)))
        else:
            self._after(delay, nack)
