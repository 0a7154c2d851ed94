"""The router's routes: what GCP does with a message between a subscription and a function.

`handle` answers ack (True) or nack (False); `next_delay` says when a nacked message comes
back, or None to give up on it (the router then acks it).
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from functools import partial

from infra.local.delivery import Abandoned, Dispatcher
from infra.local.hooks import Call
from infra.local.messages import (
    Message,
    object_key,
    push_request,
    retry_delay,
    storage_cloudevent,
    trigger_fires,
)
from infra.model.topology import RetryPolicy, SubscriptionSpec, Topology, takes

log = logging.getLogger("infra.local.routes")

# Eventarc delivers through a Pub/Sub subscription it creates: exponential backoff from 10 s
# to 600 s, and messages kept for 24 hours, then dropped (no dead-letter topic by default).
# https://cloud.google.com/eventarc/docs/retry-events
EVENTARC_RETRY = RetryPolicy(10, 600)
EVENTARC_RETENTION_SECONDS = 24 * 3600

TRIGGER = "trigger"
WINDOW_EXCEEDED = "retry_window_exceeded"


class Route(ABC):
    """One subscription the router pulls, and what it does with each message."""

    name: str
    subscription_path: str
    function: str | None
    retry: RetryPolicy

    @abstractmethod
    def handle(self, message: Message) -> bool:
        """Deliver one message; True acks it, False nacks it."""

    def next_delay(self, message: Message, backoff_factor: float) -> float | None:
        """Seconds until a nacked message is redelivered (Pub/Sub's backoff curve)."""
        return retry_delay(self.retry, max(1, message.delivery_attempt), backoff_factor)


class EventarcTrigger(Route):
    """Finalize events of the trigger bucket as binary CloudEvents, retried like Eventarc.

    Eventarc's subscription keeps a message for `window_seconds` (24 h on GCP; locally
    scaled with the backoffs): a message whose next attempt would fall outside it is
    abandoned, recorded and logged, as GCP drops it (there it leaves no trace).
    """

    retry = EVENTARC_RETRY

    def __init__(
        self,
        topology: Topology,
        subscription_path: str,
        dispatcher: Dispatcher,
        window_seconds: float,
    ) -> None:
        trigger = topology.trigger
        self.name = TRIGGER
        self.subscription_path = subscription_path
        self.function: str = trigger.function
        self.timeout = topology.functions[trigger.function].timeout_seconds
        self.event_type = trigger.event_type
        self.bucket = topology.buckets[trigger.bucket].name
        self.window_seconds = window_seconds
        self._dispatcher = dispatcher
        self._lock = threading.Lock()
        self._attempts: dict[str, int] = {}

    def handle(self, message: Message) -> bool:
        if not trigger_fires(message, self.event_type, self.bucket):
            return True
        with self._lock:
            attempt = self._attempts.get(message.message_id, 0) + 1
            self._attempts[message.message_id] = attempt
        build = partial(storage_cloudevent, message, self.event_type)
        ok = self._dispatcher.deliver(
            Call(self.name, self.function, self.timeout, message, attempt, build)
        )
        if ok:
            with self._lock:
                self._attempts.pop(message.message_id, None)
        return ok

    def next_delay(self, message: Message, backoff_factor: float) -> float | None:
        with self._lock:
            attempts = self._attempts.get(message.message_id, 1)
        delay = retry_delay(self.retry, attempts, backoff_factor)
        age = (datetime.now(UTC) - message.publish_time).total_seconds()
        if age + delay <= self.window_seconds:
            return delay
        with self._lock:
            self._attempts.pop(message.message_id, None)
        name, generation = object_key(message)
        detail = (
            f"no successful delivery in {attempts} attempt(s) over {age:.0f} s; the "
            f"trigger's retry window is {self.window_seconds:.0f} s"
        )
        log.error("abandoned %r (generation %s): %s", name, generation, detail)
        record = (message.message_id, name, generation, attempts, WINDOW_EXCEEDED, detail)
        self._dispatcher.log.abandon(Abandoned(self.name, self.function, *record))
        return None


class PushSubscription(Route):
    """A push subscription: filter, wrapped push body, the subscription's backoff."""

    def __init__(self, topology: Topology, sub: SubscriptionSpec, dispatcher: Dispatcher) -> None:
        assert sub.push_function is not None
        self.name = sub.key
        self.subscription_path = topology.subscription_path(sub.key)
        self.function: str = sub.push_function
        self.event_types = sub.event_types
        self.retry = sub.retry
        self.timeout = topology.functions[sub.push_function].timeout_seconds
        self._dispatcher = dispatcher

    def handle(self, message: Message) -> bool:
        if not takes(self.event_types, message.attributes):
            self._dispatcher.log.filtered(self.name)
            return True
        build = partial(push_request, message, self.subscription_path)
        attempt = message.delivery_attempt or 1
        return self._dispatcher.deliver(
            Call(self.name, self.function, self.timeout, message, attempt, build)
        )
