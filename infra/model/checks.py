"""Synth-time checks of a Topology: what Terraform would accept but the pipeline would not.

`check_topology` runs before any resource is declared, so a broken topology fails
`python main.py` / `cdktf synth` with every problem listed, instead of half-way through a
`cdktf deploy` or, worse, silently at run time (a dead-letter topic nobody reads drops
messages; a function that can write to its own trigger bucket can loop forever).
Plain Python: no cdktf.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator

from image_pipeline.settings import Settings, env_name
from infra.model.topology import BucketSpec, Topology, push_ack_deadline

# Roles that can create, replace or delete objects in a bucket (bucket or project level).
STORAGE_WRITE_ROLES = frozenset(
    {
        "roles/storage.admin",
        "roles/storage.objectAdmin",
        "roles/storage.objectCreator",
        "roles/storage.objectUser",
        "roles/storage.legacyBucketOwner",
        "roles/storage.legacyBucketWriter",
        "roles/storage.legacyObjectOwner",
        "roles/owner",
        "roles/editor",
    }
)
BASIC_ROLES = frozenset({"roles/owner", "roles/editor", "roles/viewer"})
GRANT_KINDS = ("bucket", "topic", "project")

# Service account ids: 6-30 chars, lowercase letters, digits, hyphens; starts with a letter.
_SA_ID = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
# Topic and subscription ids: 3-255 chars, start with a letter, no "goog" prefix.
_PUBSUB_ID = re.compile(r"^[A-Za-z][A-Za-z0-9._~%+-]{2,254}$")
# Cloud Functions (2nd gen) names: up to 63 chars, lowercase letters, digits, hyphens.
_FUNCTION_NAME = re.compile(r"^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_PUBSUB_LIMITS = {
    "max_delivery_attempts": (5, 100),
    "ack_deadline_seconds": (10, 600),
    "retention_seconds": (600, 31 * 24 * 3600),
}
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
        *_grant_problems(topology),
        *_trigger_loop_problems(topology),
        *_name_problems(topology),
        *_ageing_problems(topology),
        *_environment_problems(topology),
    ]


def storage_class_ages(bucket: BucketSpec) -> list[tuple[str, int]]:
    """A bucket's ageing rules as (storage class, days), from its `CLASS:DAYS` pairs."""
    pairs = (pair.partition(":") for pair in bucket.storage_classes)
    return [(storage_class, int(days)) for storage_class, _, days in pairs]


def _ageing_problems(t: Topology) -> Iterator[str]:
    """Each class once and colder with age, and every change before the Delete rule (after
    it, nothing is left to move)."""
    for bucket in t.buckets.values():
        ages = storage_class_ages(bucket)
        ranks, days = [STORAGE_CLASSES.index(c) for c, _ in ages], [d for _, d in ages]
        if ranks != sorted(set(ranks)) or days != sorted(set(days)):
            yield (
                f"bucket {bucket.name}: each storage class once, colder ones at more days "
                f"({', '.join(bucket.storage_classes)})"
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
        for field, (low, high) in _PUBSUB_LIMITS.items():
            value = getattr(sub, field)
            if not low <= value <= high:
                yield f"{where}: {field}={value} is outside Pub/Sub's {low}..{high}"
        retry = sub.retry
        if not 0 <= retry.minimum_backoff_seconds <= retry.maximum_backoff_seconds <= 600:
            yield (
                f"{where}: retry backoff {retry.minimum_backoff_seconds}s.."
                f"{retry.maximum_backoff_seconds}s must satisfy 0 <= min <= max <= 600"
            )
        yield from _filter_problems(where, sub.event_types, sub.filter)
        if sub.push_function is not None:
            fn = t.functions.get(sub.push_function)
            if fn is None:
                yield f"{where}: pushes to unknown function {sub.push_function!r}"
            elif sub.ack_deadline_seconds < push_ack_deadline(fn.timeout_seconds):
                yield (
                    f"{where}: ack deadline {sub.ack_deadline_seconds}s leaves no room for a "
                    f"cold start before {fn.name}'s timeout {fn.timeout_seconds}s ends (needs "
                    f"{push_ack_deadline(fn.timeout_seconds)}s; a slow first delivery would be "
                    "redelivered while still being processed)"
                )


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


def _grant_problems(t: Topology) -> Iterator[str]:
    for fn in t.functions.values():
        for grant in fn.grants:
            where = f"function {fn.name!r} grant {grant.role} on {grant.kind} {grant.target!r}"
            if grant.kind not in GRANT_KINDS:
                yield f"{where}: kind must be one of {', '.join(GRANT_KINDS)}"
            elif grant.kind == "bucket" and grant.target not in t.buckets:
                yield f"{where}: no such bucket in the topology"
            elif grant.kind == "topic" and grant.target not in t.topics:
                yield f"{where}: no such topic in the topology"
            elif grant.kind == "project" and grant.target:
                yield f"{where}: a project grant has no target"
            if not grant.role.startswith("roles/"):
                yield f"{where}: role must look like 'roles/...'"
            if grant.role in BASIC_ROLES:
                yield f"{where}: basic roles are not least privilege"
            if not grant.why.strip():
                yield f"{where}: say why the function needs it"


def triggered_by_bucket(t: Topology) -> dict[str, set[str]]:
    """Bucket key -> keys of the functions its events reach (Eventarc, or notification
    topic -> push subscription)."""
    reached: dict[str, set[str]] = {key: set() for key in t.buckets}
    reached.setdefault(t.trigger.bucket, set()).add(t.trigger.function)
    for sub in t.subscriptions.values():
        if sub.topic == t.notification.topic and sub.push_function:
            reached.setdefault(t.notification.bucket, set()).add(sub.push_function)
    return reached


def _trigger_loop_problems(t: Topology) -> Iterator[str]:
    if t.trigger.bucket not in t.buckets:
        yield f"trigger: bucket {t.trigger.bucket!r} is not in the topology"
    if t.trigger.function not in t.functions:
        yield f"trigger: function {t.trigger.function!r} is not in the topology"
    if t.notification.bucket not in t.buckets:
        yield f"notification: bucket {t.notification.bucket!r} is not in the topology"
    if t.notification.topic not in t.topics:
        yield f"notification: topic {t.notification.topic!r} is not in the topology"
    for bucket, functions in triggered_by_bucket(t).items():
        for key in sorted(functions):
            fn = t.functions.get(key)
            if fn is None:
                continue
            for grant in fn.grants:
                on_bucket = grant.kind == "bucket" and grant.target == bucket
                if grant.role in STORAGE_WRITE_ROLES and (on_bucket or grant.kind == "project"):
                    yield (
                        f"function {fn.name!r} is triggered by bucket {bucket!r} but holds "
                        f"{grant.role} on {'it' if on_bucket else 'the project'}: it could "
                        "write to the bucket that triggers it (an event loop)"
                    )


def _name_problems(t: Topology) -> Iterator[str]:
    accounts = {
        "trigger service account": t.trigger.service_account_id,
        "push invoker service account": t.push_invoker_account_id,
        "build service account": t.build_account_id,
        **{f"function {f.key} service account": f.service_account_id for f in t.functions.values()},
    }
    for what, account_id in accounts.items():
        if not _SA_ID.match(account_id):
            yield (
                f"{what} id {account_id!r}: 6-30 chars, lowercase letters, digits and hyphens, "
                "starting with a letter"
            )
    seen: dict[str, str] = {}
    for what, account_id in accounts.items():
        if account_id in seen:
            yield f"{what} id {account_id!r} is also the {seen[account_id]}'s"
        seen.setdefault(account_id, what)

    pubsub = [("topic", x.name) for x in t.topics.values()]
    pubsub += [("subscription", x.name) for x in t.subscriptions.values()]
    for kind, name in pubsub:
        if not _PUBSUB_ID.match(name) or name.lower().startswith("goog"):
            yield (
                f"{kind} name {name!r}: 3-255 chars of letters, digits and -._~%+, starting "
                "with a letter, not with 'goog'"
            )
    for kind in ("topic", "subscription"):
        names = [n for k, n in pubsub if k == kind]
        for dup in sorted({n for n in names if names.count(n) > 1}):
            yield f"{kind} name {dup!r} is used twice"

    fn_names = [f.name for f in t.functions.values()]
    for name in fn_names:
        if not _FUNCTION_NAME.match(name):
            yield (
                f"function name {name!r}: up to 63 chars, lowercase letters, digits and "
                "hyphens, starting with a letter"
            )
    for dup in sorted({n for n in fn_names if fn_names.count(n) > 1}):
        yield f"function name {dup!r} is used twice"


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
