"""Messages Pub/Sub would have refused at publish, caught where the local stack pulls them.

The emulator accepts a message over Pub/Sub's limits (an attribute value over 1024 bytes,
say) that the real service refuses at publish, so a publisher breaking them passes
locally and fails in production. The router checks every message it pulls from the
pipeline's topics (push subscriptions; the harness's raw feed from fake-gcs stands in for
GCS, whose names the routes check themselves) against the same
limits the functions obey (`image_pipeline.pubsub_limits`) and treats a violation as the
refused publish it would have been: not delivered, acknowledged so it never comes back,
logged, recorded here and counted in `scripts/local status`. The integration suite fails
on any refusal it did not ask for.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass, field

from image_pipeline import pubsub_limits
from infra.local.messages import Message, object_key

log = logging.getLogger("infra.local.router")

_KEEP = 100  # records kept for `status`; the count goes on


@dataclass(frozen=True)
class Refusal:
    route: str  # where the router pulled it: a subscription key, "trigger" or "notification"
    message_id: str
    object: str
    event_type: str
    problems: tuple[str, ...]
    at: float = field(default_factory=time.time)


class Refusals:
    """Thread-safe record of refused messages, one per message id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, Refusal] = {}
        self._count = 0

    def refuse(self, route: str, message: Message) -> bool:
        """True (and recorded) when Pub/Sub would have refused ``message`` at publish."""
        problems = pubsub_limits.violations(message.data, message.attributes)
        if not problems:
            return False
        refusal = Refusal(
            route=route,
            message_id=message.message_id,
            object=object_key(message)[0][:200],
            event_type=message.attributes.get("eventType", "")[:100],
            problems=tuple(problems),
        )
        with self._lock:
            if message.message_id not in self._records:  # each subscription sees it once
                self._count += 1
                self._records[message.message_id] = refusal
                while len(self._records) > _KEEP:
                    self._records.pop(next(iter(self._records)))
        log.error(
            "route %s: message %s is over Pub/Sub's limits, refused as a publish would be: %s",
            route,
            message.message_id,
            "; ".join(problems),
        )
        return True

    def count(self) -> int:
        with self._lock:
            return self._count

    def records(self) -> list[dict[str, object]]:
        with self._lock:
            return [asdict(r) for r in self._records.values()]
