"""Synth-time checks of a Topology: what Terraform would accept but the pipeline would not
(a dead-letter topic nobody reads drops messages), listed all at once by `python main.py`
instead of failing half-way through a `cdktf deploy` or silently at run time. No cdktf.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator

from image_pipeline.settings import Settings, env_name
from infra.model.topology import Topology

# Pub/Sub refuses a filter over 256 bytes, and cannot change one after the subscription is
# created (https://cloud.google.com/pubsub/docs/subscription-message-filter). An event type
# of these characters is a string literal as written (no escapes needed).
MAX_FILTER_BYTES = 256
_EVENT_TYPE = re.compile(r"^[A-Za-z0-9._-]+$")
# The names and values of one function's runtime environment variables take at most 32 KiB
# together (Cloud Run, "Environment variables for services", size limits for functions:
# https://cloud.google.com/run/docs/configuring/services/overview-environment-variables).
MAX_FUNCTION_ENV_BYTES = 32 * 1024
# Storage classes, colder to the right (https://cloud.google.com/storage/docs/storage-classes).
STORAGE_CLASSES = ("STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE")


class TopologyError(ValueError):
    """The topology would deploy but not work; the message lists every problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(
            "the pipeline topology is invalid:\n" + "\n".join(f"  - {p}" for p in problems)
        )
        self.problems = problems


def check_topology(topology: Topology) -> None:
    """Raises `TopologyError` listing every problem found; returns None if there is none."""
    found = problems(topology)
    if found:
        raise TopologyError(found)


def problems(topology: Topology) -> list[str]:
    return [
        *_subscription_problems(topology),
        *_dead_letter_consumer_problems(topology),
        *_ageing_problems(topology),
        *_environment_problems(topology),
    ]


def _ageing_problems(t: Topology) -> Iterator[str]:
    """Each class once and colder with age, and every change before the Delete rule (after
    it, nothing is left to move)."""
    for bucket in t.buckets.values():
        ages = bucket.storage_classes
        ranks, days = [STORAGE_CLASSES.index(c) for c, _ in ages], [d for _, d in ages]
        if ranks != sorted(set(ranks)) or days != sorted(set(days)):
            yield (
                f"bucket {bucket.name}: each storage class once, colder ones at more days "
                f"({', '.join(f'{c}:{d}' for c, d in ages)})"
            )
        delete = bucket.lifecycle_delete_after_days
        if delete and days and days[-1] >= delete:
            yield (
                f"bucket {bucket.name}: a class change at {days[-1]} days comes on or after "
                f"the delete ({delete} days)"
            )


def _subscription_problems(t: Topology) -> Iterator[str]:
    for sub in t.subscriptions.values():
        where = f"subscription {sub.name!r}"
        if sub.topic not in t.topics:
            yield f"{where}: topic {sub.topic!r} is not in the topology"
        if not sub.dead_letter_topic:
            yield f"{where}: has no dead-letter policy (every subscription needs one)"
        elif sub.dead_letter_topic not in t.topics:
            yield f"{where}: dead-letter topic {sub.dead_letter_topic!r} is not in the topology"
        elif not t.topics[sub.dead_letter_topic].is_dead_letter:
            yield (
                f"{where}: dead-letter topic {sub.dead_letter_topic!r} is not marked "
                "is_dead_letter (its Pub/Sub service agent grants would be missing)"
            )
        elif sub.dead_letter_topic == sub.topic:
            yield f"{where}: dead-letters to its own topic (messages would loop)"
        yield from _filter_problems(where, sub.event_types, sub.filter)


def _filter_problems(where: str, event_types: tuple[str, ...], rendered: str) -> Iterator[str]:
    for event_type in event_types:
        if not _EVENT_TYPE.match(event_type):
            yield f"{where}: event type {event_type!r}: letters, digits, '.', '_' and '-' only"
    if len(set(event_types)) < len(event_types):
        yield f"{where}: event types {event_types!r} name one twice"
    if len(rendered.encode()) > MAX_FILTER_BYTES:
        yield (
            f"{where}: its filter takes {len(rendered.encode())} bytes, over Pub/Sub's "
            f"{MAX_FILTER_BYTES}: {rendered!r}"
        )


def _dead_letter_consumer_problems(t: Topology) -> Iterator[str]:
    consumed = {sub.topic for sub in t.subscriptions.values()}
    for topic in t.topics.values():
        if topic.is_dead_letter and topic.key not in consumed:
            yield (
                f"dead-letter topic {topic.name!r} has no subscription: Pub/Sub drops "
                "messages published to a topic nobody subscribes to"
            )


def _environment_problems(t: Topology) -> Iterator[str]:
    """A function whose environment Cloud Run would refuse, naming the settings that fill it."""
    settings = {env_name(f): f.name for f in dataclasses.fields(Settings)}
    for fn in t.functions.values():
        sizes = {k: len(k.encode()) + len(v.encode()) for k, v in fn.env.items()}
        total = sum(sizes.values())
        if total > MAX_FUNCTION_ENV_BYTES:
            largest = sorted(sizes, key=lambda k: -sizes[k])[:3]
            named = ", ".join(f"{settings.get(k, k)} ({sizes[k]} bytes)" for k in largest)
            yield (
                f"function {fn.name!r}: its environment takes {total} bytes, over Cloud Run's "
                f"{MAX_FUNCTION_ENV_BYTES} for a function's variable names and values; the "
                f"largest settings: {named}"
            )
