"""How many messages each route holds at once: Pub/Sub push's flow control.

Pub/Sub "dynamically adjusts the rate of push requests based on the rate at which it
receives success responses" (https://cloud.google.com/pubsub/docs/push, push backoff and
flow control). Modelled as slow start: a route may hold (pulled, not yet acked or nacked)
a window of messages, one more per success, half as many after a failure, between 1 and the
limit. A burst above capacity thereby waits in its subscription (no delivery attempt
counted) instead of retrying all at once against Cloud Run's limit.
"""

from __future__ import annotations

import threading

from infra.local.hooks import DeliveryHook

# At most: more than a small stack's slots, so a burst meets Cloud Run's limit (429s)
# rather than queueing in the router, where the emulator's ack deadline would run out.
LIMIT = 64
START = 3


class PushWindow(DeliveryHook):
    def __init__(self, limit: int = LIMIT, start: int = START) -> None:
        self.limit, self.start = limit, min(start, limit)
        self._size: dict[str, int] = {}
        self._held: dict[str, int] = {}
        self._cond = threading.Condition()

    def room(self, route: str, timeout: float) -> int:
        with self._cond:
            self._size.setdefault(route, self.start)
            self._cond.wait_for(lambda: self._held.get(route, 0) < self._size[route], timeout)
            return max(0, self._size[route] - self._held.get(route, 0))

    def taken(self, route: str, count: int) -> None:
        with self._cond:
            self._held[route] = self._held.get(route, 0) + count

    def settled(self, route: str, delivered: bool) -> None:
        with self._cond:
            self._held[route] -= 1
            size = self._size.get(route, self.start)
            self._size[route] = min(self.limit, size + 1) if delivered else max(1, size // 2)
            self._cond.notify_all()
