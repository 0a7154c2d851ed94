"""One delivery to a function: injected faults first, then HTTP, and always a record.

Whatever goes wrong while building or sending a request (an unencodable header, a refused
connection, a bug) becomes a recorded failed delivery, status 599 with the error: a nack
the route retries, never an exception that escapes unrecorded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from infra.local.delivery import Delivery, DeliveryLog, HttpSender
from infra.local.faults import Faults
from infra.local.messages import Message, object_key

log = logging.getLogger("infra.local.dispatch")

NO_ANSWER = 599  # what the router records when a function gave no HTTP answer
Request = tuple[dict[str, str], bytes]
Later = Callable[[str, float, Callable[[], None]], None]  # (route, delay, callback)


class Dispatcher:
    """Delivers requests to the functions by key, under the live fault settings."""

    def __init__(
        self,
        urls: Mapping[str, str],
        faults: Faults,
        log_: DeliveryLog,
        later: Later,
        sender: HttpSender | None = None,
    ) -> None:
        self.urls = dict(urls)
        self.faults = faults
        self.log = log_
        self._later = later
        self._sender = sender or HttpSender()

    def deliver(
        self,
        route: str,
        function: str,
        timeout: float,
        message: Message,
        attempt: int,
        build: Callable[[], Request],
    ) -> bool:
        """True on a 2xx answer; may schedule an at-least-once duplicate of it."""
        status = self._call(route, function, timeout, message, attempt, build, duplicate=False)
        ok = 200 <= status < 300
        if ok and self.faults.duplicate():

            def again() -> None:
                self._call(route, function, timeout, message, attempt, build, duplicate=True)

            self._later(route, self.faults.duplicate_delay(), again)
        return ok

    def _call(
        self,
        route: str,
        function: str,
        timeout: float,
        message: Message,
        attempt: int,
        build: Callable[[], Request],
        duplicate: bool,
    ) -> int:
        injected = self.faults.injected_status(function)
        error = ""
        if injected is not None:
            status = injected
        else:
            try:
                headers, body = build()
                status = self._sender.post(self.urls[function], body, headers, timeout)
            except Exception as exc:  # any failure is a recorded nack, see the module doc
                error = f"{type(exc).__name__}: {exc}"
                log.warning("delivery to %s failed: %s", function, error)
                status = NO_ANSWER
        name, generation = object_key(message)
        self.log.add(
            Delivery(
                function=function,
                route=route,
                message_id=message.message_id,
                object=name,
                generation=generation,
                event_type=message.attributes.get("eventType", ""),
                attempt=attempt,
                status=status,
                injected=injected is not None,
                duplicate=duplicate,
                error=error,
            )
        )
        return status
