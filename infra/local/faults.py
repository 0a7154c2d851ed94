"""Fault injection in the router: what at-least-once, unordered delivery can do to a handler.

- `duplicate_rate`: that share of deliveries is delivered once more, shortly after.
- `reorder_window`: up to that many pulled messages are held and shuffled before delivery.
- `transient_rate`: that share of deliveries is answered 503 without calling the function.
- `failing`: functions answered 500 on every delivery until removed ("fail until told").

Settings change at run time (tests and `scripts/local faults` toggle them on a live stack);
`Faults` is thread-safe and its random source is seeded so a failing run can be repeated.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, TypeVar

T = TypeVar("T")


class FaultError(ValueError):
    """A fault setting out of range; the message names it."""


@dataclass(frozen=True)
class FaultSettings:
    duplicate_rate: float = 0.0
    reorder_window: int = 0
    transient_rate: float = 0.0
    failing: frozenset[str] = field(default_factory=frozenset)
    seed: int | None = None

    def __post_init__(self) -> None:
        # Types first: JSON `true` is an int to Python and 2.5 compares fine with ints.
        for name in ("duplicate_rate", "transient_rate"):
            value = getattr(self, name)
            if not _is_number(value) or not 0.0 <= value <= 1.0:
                raise FaultError(f"{name}: {value!r} must be a number between 0 and 1")
        window = self.reorder_window
        if not _is_int(window) or not 0 <= window <= 1000:
            raise FaultError(f"reorder_window: {window!r} must be an integer 0..1000")
        if self.seed is not None and not _is_int(self.seed):
            raise FaultError(f"seed: {self.seed!r} must be an integer or null")
        if not isinstance(self.failing, frozenset) or not all(
            isinstance(name, str) for name in self.failing
        ):
            raise FaultError(f"failing: {self.failing!r} must be a list of function names")

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["failing"] = sorted(self.failing)
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> FaultSettings:
        known = {"duplicate_rate", "reorder_window", "transient_rate", "failing", "seed"}
        unknown = set(raw) - known
        if unknown:
            raise FaultError(f"unknown fault setting(s): {', '.join(sorted(unknown))}")
        values = dict(raw)
        if "failing" in values:
            values["failing"] = frozenset(names_list(values["failing"], "failing"))
        return cls(**values)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return _is_int(value) or isinstance(value, float)


def names_list(value: Any, setting: str) -> list[str]:
    """A JSON list of names, refused as a whole when it is anything else (a bare string too)."""
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise FaultError(f"{setting}: {value!r} must be a list of function names")
    return list(value)


class Faults:
    """The live settings plus the random decisions the router asks for."""

    def __init__(self, settings: FaultSettings | None = None) -> None:
        self._lock = threading.Lock()
        self._settings = settings or FaultSettings()
        self._random = random.Random(self._settings.seed)

    @property
    def settings(self) -> FaultSettings:
        with self._lock:
            return self._settings

    def update(self, **changes: Any) -> FaultSettings:
        """Changes some settings; `failing` accepts any iterable of function keys."""
        if "failing" in changes:
            changes["failing"] = frozenset(changes["failing"])
        return self.change(lambda current: replace(current, **changes), reseed="seed" in changes)

    def change(self, plan: Callable[[FaultSettings], FaultSettings], reseed: bool) -> FaultSettings:
        """Replaces the settings with `plan(current)` in one step; nothing changes if it raises."""
        with self._lock:
            settings = plan(self._settings)
            self._settings = settings
            if reseed:
                self._random.seed(settings.seed)
            return settings

    def fail(self, functions: Iterable[str]) -> None:
        self.change(lambda s: replace(s, failing=s.failing | set(functions)), reseed=False)

    def heal(self, functions: Iterable[str] | None = None) -> None:
        """Stops failing the given functions (all of them when None)."""
        self.change(
            lambda s: replace(
                s, failing=frozenset() if functions is None else s.failing - set(functions)
            ),
            reseed=False,
        )

    def reset(self) -> None:
        self.change(lambda s: FaultSettings(seed=s.seed), reseed=False)

    def _chance(self, rate: float) -> bool:
        if rate <= 0.0:
            return False
        with self._lock:
            return self._random.random() < rate

    def injected_status(self, function: str) -> int | None:
        """The status to answer instead of calling `function`, or None to call it."""
        settings = self.settings
        if function in settings.failing:
            return 500
        if self._chance(settings.transient_rate):
            return 503
        return None

    def duplicate(self) -> bool:
        return self._chance(self.settings.duplicate_rate)

    def duplicate_delay(self) -> float:
        with self._lock:
            return self._random.uniform(0.0, 0.3)

    def reorder(self, items: list[T]) -> list[T]:
        """Shuffles a held window (a no-op when reordering is off)."""
        if self.settings.reorder_window <= 1 or len(items) < 2:
            return items
        shuffled = list(items)
        with self._lock:
            self._random.shuffle(shuffled)
        return shuffled
