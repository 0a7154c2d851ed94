"""Messages Pub/Sub would have refused at publish, caught where the local stack pulls them.

The emulator accepts a message over Pub/Sub's limits (an attribute value over 1024 bytes,
say: https://cloud.google.com/pubsub/quotas#resource_limits) that the real service refuses
at publish, so a publisher breaking them would pass locally and fail in production
(docs/local-stack.md says what happens to such a message).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection

from image_pipeline import pubsub_limits
from infra.local.hooks import DeliveryHook
from infra.local.messages import Message, object_key

log = logging.getLogger("infra.local.fidelity.refusals")

_KEEP = 100  # records kept for `status`; the count goes on


class Refusals(DeliveryHook):
    """Checks the messages of `routes`; a thread-safe record, one entry per message id."""

    def __init__(self, routes: Collection[str]) -> None:
        self.routes = frozenset(routes)
        self._lock = threading.Lock()
        self._records: dict[str, dict[str, object]] = {}
        self._count = 0

    def refuses(self, route: str, message: Message) -> bool:
        problems = pubsub_limits.violations(message.data, message.attributes)
        if route not in self.routes or not problems:
            return False
        log.error(
            "route %s: message %s is over Pub/Sub's limits, refused as a publish would be: %s",
            route,
            message.message_id,
            "; ".join(problems),
        )
        with self._lock:
            if message.message_id not in self._records:  # each subscription sees it once
                self._count += 1
                self._records[message.message_id] = {
                    "route": route,
                    "message_id": message.message_id,
                    "object": object_key(message)[0][:200],
                    "event_type": message.attributes.get("eventType", "")[:100],
                    "problems": problems,
                    "at": time.time(),
                }
                while len(self._records) > _KEEP:
                    self._records.pop(next(iter(self._records)))
        return True

    def count(self) -> int:
        with self._lock:
            return self._count

    def records(self) -> list[dict[str, object]]:
        with self._lock:
            return list(self._records.values())

    def stats(self) -> dict[str, object]:
        return {"refused": {"count": self.count(), "messages": self.records()}}
