"""The points where fidelity plugs into delivery (docs/local-stack.md, "Core and fidelity").

Every method below is one point of a delivery and does nothing here, so a `DeliveryHook`
implements only its own; `infra.local.fidelity.Fidelity.delivery_hooks` lists the hooks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from infra.local.messages import Message

Request = tuple[dict[str, str], bytes]  # headers and body


@dataclass(frozen=True)
class Call:
    """One delivery attempt of `message` by `route` to `function`; `build` makes the request."""

    route: str  # a subscription key, or "trigger"
    function: str
    timeout: float
    message: Message
    attempt: int
    build: Callable[[], Request]


class DeliveryHook:
    """One behaviour of GCP that the bare emulators lack."""

    label = ""  # what a delivery this hook answered is marked with (Delivery.by)

    def room(self, route: str, timeout: float) -> int | None:
        """Before a pull: how many more messages `route` may hold now (None: no bound).
        May wait up to `timeout` for a place."""
        return None

    def taken(self, route: str, count: int) -> None:
        """After a pull: `route` now holds `count` more messages."""

    def refuses(self, route: str, message: Message) -> bool:
        """True when GCP would never have delivered `message` (it is acked, never sent)."""
        return False

    @contextlib.contextmanager
    def gate(self, call: Call) -> Iterator[int | None]:
        """Around one request: yields a status to answer instead of the function (the
        request is then not sent), or None to let it through."""
        yield None

    def answered(self, call: Call, status: int) -> float | None:
        """After an answer: seconds after which the same request is sent again, or None."""
        return None

    def settled(self, route: str, delivered: bool) -> None:
        """A message of `route` is done: acked (`delivered`) or nacked after a failure."""

    def stats(self) -> dict[str, object] | None:
        """What this hook adds to `GET <router>/stats` (e.g. {"capacity": ...})."""
