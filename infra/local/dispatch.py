"""One delivery to a function: injected faults first, then HTTP, and always a record.

Whatever goes wrong while building or sending a request (an unencodable header, a refused
connection, a bug) becomes a recorded failed delivery, status 599 with the error: a nack
the route retries, never an exception that escapes unrecorded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from infra.local.delivery import Delivery, DeliveryLog, HttpSender
from infra.local.faults import Faults
from infra.local.messages import Message, object_key
from infra.local.throttle import THROTTLED, Throttle

log = logging.getLogger("infra.local.dispatch")

NO_ANSWER = 599  # what the router records when a function gave no HTTP answer
Request = tuple[dict[str, str], bytes]
Later = Callable[[str, float, Callable[[], None]], None]  # (route, delay, callback)


@dataclass(frozen=True)
class Call:
    """One delivery attempt of `message` by `route` to `function`; `build` makes the request."""

    route: str
    function: str
    timeout: float
    message: Message
    attempt: int
    build: Callable[[], Request]


class Dispatcher:
    """Delivers requests to the functions by key, under the live fault settings."""

    def __init__(
        self,
        urls: Mapping[str, str],
        faults: Faults,
        log_: DeliveryLog,
        later: Later,
        sender: HttpSender | None = None,
        throttle: Throttle | None = None,
    ) -> None:
        self.urls = dict(urls)
        self.faults = faults
        self.log = log_
        self.throttle = throttle or Throttle({}, {})
        self._later = later
        self._sender = sender or HttpSender()

    def deliver(self, call: Call) -> bool:
        """True on a 2xx answer; may schedule an at-least-once duplicate of it."""
        ok = 200 <= self._call(call, duplicate=False) < 300
        if ok and self.faults.duplicate():

            def again() -> None:  # a lost ack in GCP: the same delivery a moment later
                self._call(call, duplicate=True)

            self._later(call.route, self.faults.duplicate_delay(), again)
        return ok

    def _call(self, call: Call, duplicate: bool) -> int:
        injected = self.faults.injected_status(call.function)
        error, throttled, seconds = "", False, 0.0
        if injected is not None:
            status = injected
        else:
            with self.throttle.slot(call.function) as admitted:
                if admitted:
                    started = time.monotonic()
                    status, error = self._send(call)
                    seconds = time.monotonic() - started
                else:  # Cloud Run found no instance in time: refused, never sent
                    status, throttled = THROTTLED, True
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
                injected=injected is not None,
                duplicate=duplicate,
                error=error,
                throttled=throttled,
                seconds=round(seconds, 4),
            )
        )
        return status

    def _send(self, call: Call) -> tuple[int, str]:
        """The function's answer, or NO_ANSWER and why there was none."""
        try:
            headers, body = call.build()
            return self._sender.post(self.urls[call.function], body, headers, call.timeout), ""
        except Exception as exc:  # any failure is a recorded nack, see the module doc
            error = f"{type(exc).__name__}: {exc}"
            log.warning("delivery to %s failed: %s", call.function, error)
            return NO_ANSWER, error
