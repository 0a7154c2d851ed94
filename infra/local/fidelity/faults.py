"""Fault injection: what at-least-once, unordered delivery and a flaky platform can do.

By default Pub/Sub delivers at least once, with no ordering guarantee
(https://cloud.google.com/pubsub/docs/exactly-once-delivery), and a request can fail before
it reaches a function. The settings change at run time (`scripts/local faults`, whose
flags docs/local-stack.md lists); the random source is seeded, so a failing run can be
repeated.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from infra.local.hooks import Call, DeliveryHook

REORDER_STEP_SECONDS = 0.05


class FaultError(ValueError):
    """A fault setting out of range; the message names it."""


def _number(value: Any, name: str, high: float, integer: bool = False) -> None:
    # Types first: JSON `true` is an int to Python, and 2.5 compares fine with ints.
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not 0 <= value <= high:
        kind = "an integer" if integer else "a number"
        raise FaultError(f"{name}: {value!r} must be {kind} between 0 and {high:g}")


def names(value: Any, setting: str, known: Collection[str] | None = None) -> frozenset[str]:
    """A JSON list of function names (a bare string too is refused), each one `known`."""
    if not isinstance(value, list | tuple | frozenset | set) or not all(
        isinstance(v, str) for v in value
    ):
        raise FaultError(f"{setting}: {value!r} must be a list of function names")
    unknown = set(value) - set(known if known is not None else value)
    if unknown:
        raise FaultError(
            f"{setting}: unknown function(s) {sorted(unknown)}; known: {sorted(known or ())}"
        )
    return frozenset(value)


@dataclass(frozen=True)
class FaultSettings:
    duplicate_rate: float = 0.0
    reorder_window: int = 0
    transient_rate: float = 0.0
    failing: frozenset[str] = field(default_factory=frozenset)
    seed: int | None = None

    def __post_init__(self) -> None:
        _number(self.duplicate_rate, "duplicate_rate", 1)
        _number(self.transient_rate, "transient_rate", 1)
        _number(self.reorder_window, "reorder_window", 1000, integer=True)
        if self.seed is not None and (
            isinstance(self.seed, bool) or not isinstance(self.seed, int)
        ):
            raise FaultError(f"seed: {self.seed!r} must be an integer or null")
        object.__setattr__(self, "failing", names(self.failing, "failing"))

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "failing": sorted(self.failing)}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> FaultSettings:
        unknown = set(raw) - {f.name for f in fields(cls)}
        if unknown:
            raise FaultError(f"unknown fault setting(s): {', '.join(sorted(unknown))}")
        return cls(**raw)


def planned(current: FaultSettings, request: Any, functions: Collection[str]) -> FaultSettings:
    """The settings a `PUT /faults` body asks for (docs/local-stack.md); raises FaultError
    naming the first bad value, so a request is applied whole or not at all."""
    if not isinstance(request, dict):
        raise FaultError(f"the body must be a JSON object, not {type(request).__name__}")
    changes = dict(request)
    reset = changes.pop("reset", False)
    if not isinstance(reset, bool):
        raise FaultError(f"reset: {reset!r} must be true or false")
    fail = names(changes.pop("fail", []), "fail", functions)
    heal = changes.pop("heal", [])
    healed = None if heal == "all" else names(heal, "heal", functions)
    names(changes.get("failing", []), "failing", functions)
    base = FaultSettings(seed=current.seed) if reset else current
    settings = FaultSettings.from_json({**base.to_json(), **changes})
    failing = settings.failing | fail
    return replace(settings, failing=frozenset() if healed is None else failing - healed)


class Faults(DeliveryHook):
    """The live settings and the random decisions made from them (thread-safe)."""

    label = "injected"

    def __init__(self, settings: FaultSettings | None = None) -> None:
        self._lock = threading.Lock()
        self._settings = settings or FaultSettings()
        self._random = random.Random(self._settings.seed)

    @property
    def settings(self) -> FaultSettings:
        with self._lock:
            return self._settings

    def change(self, plan: Callable[[FaultSettings], FaultSettings], reseed: bool) -> FaultSettings:
        """Replaces the settings with `plan(current)` in one step; nothing changes if it raises."""
        with self._lock:
            self._settings = plan(self._settings)
            if reseed:
                self._random.seed(self._settings.seed)
            return self._settings

    def _draw(self, rate: float) -> bool:
        with self._lock:
            return rate > 0.0 and self._random.random() < rate

    def _uniform(self, high: float) -> float:
        with self._lock:
            return self._random.uniform(0.0, high)

    def injected_status(self, function: str) -> int | None:
        """The status to answer instead of calling `function`, or None to call it."""
        settings = self.settings
        if function in settings.failing:
            return 500
        return 503 if self._draw(settings.transient_rate) else None

    @contextlib.contextmanager
    def gate(self, call: Call) -> Iterator[int | None]:
        if (window := self.settings.reorder_window) > 1:
            time.sleep(self._uniform(window * REORDER_STEP_SECONDS))
        yield self.injected_status(call.function)

    def answered(self, call: Call, status: int) -> float | None:
        """A lost ack on GCP: the same delivery again within 0.3 s."""
        if 200 <= status < 300 and self._draw(self.settings.duplicate_rate):
            return self._uniform(0.3)
        return None
