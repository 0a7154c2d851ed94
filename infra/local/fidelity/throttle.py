"""Cloud Run's capacity per function, enforced in front of the local function processes.

A deployed function serves at most `max_instances x concurrency` requests at once, a request
beyond that waits a bounded time, then gets 429
(https://cloud.google.com/run/docs/about-instance-autoscaling; the model: docs/capacity.md).
The local processes would take whatever arrives, so each request first takes a slot here.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping

from infra.local.hooks import Call, DeliveryHook
from infra.model.capacity import queue_seconds, slots
from infra.model.topology import Topology

THROTTLED = 429


class Throttle(DeliveryHook):
    """One bounded semaphore per function, and how long a request may wait for it."""

    label = "throttled"

    def __init__(
        self, topology: Topology, startup_seconds: Mapping[str, float], factor: float
    ) -> None:
        """The topology's slots; waits of max(10 s, 3.5 x each function's measured start)
        times `factor` (the stack's backoff factor)."""
        self.waits = {
            key: queue_seconds(startup_seconds.get(key, 0.0)) * factor for key in topology.functions
        }
        self.resize(topology)

    def resize(self, topology: Topology) -> None:
        """The topology's slots (new ones after a redeploy; a request holding an old slot
        releases it there)."""
        self.slots = {key: slots(spec) for key, spec in topology.functions.items()}
        self._free = {key: threading.BoundedSemaphore(n) for key, n in self.slots.items()}

    @contextlib.contextmanager
    def slot(self, function: str) -> Iterator[bool]:
        """Holds a slot of `function` for the body; yields False when none came free in time."""
        free = self._free.get(function)
        admitted = free is None or free.acquire(timeout=self.waits[function])
        try:
            yield admitted
        finally:
            if free is not None and admitted:
                free.release()

    @contextlib.contextmanager
    def gate(self, call: Call) -> Iterator[int | None]:
        with self.slot(call.function) as admitted:
            yield None if admitted else THROTTLED

    def stats(self) -> dict[str, object]:
        capacity = {
            key: {"slots": n, "wait_s": round(self.waits[key], 3)} for key, n in self.slots.items()
        }
        return {"capacity": capacity}
