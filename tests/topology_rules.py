"""Rules every topology the code builds must keep, whatever the settings: its grants are
well formed and least privilege, no function can write to the bucket that triggers it, every
name is within GCP's limits and unique, Pub/Sub's ranges hold and a push ack deadline leaves
room for a cold start. The topology is code: these cannot change with a setting, so the tests
check them on every topology the suite synthesizes (tests/infra/test_topology_rules.py) and
on broken copies (tests/unit/test_checks.py); `infra.model.checks` keeps, at synth, what a
setting or the filters Pub/Sub reads can break."""

from __future__ import annotations

import re
from collections.abc import Iterator

from infra.model.topology import Topology, push_ack_deadline

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


def grant_problems(t: Topology) -> Iterator[str]:
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


def trigger_loop_problems(t: Topology) -> Iterator[str]:
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


def name_problems(t: Topology) -> Iterator[str]:
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


def pubsub_limit_problems(t: Topology) -> Iterator[str]:
    """Pub/Sub's ranges, and a push ack deadline with room for a cold start."""
    for sub in t.subscriptions.values():
        where = f"subscription {sub.name!r}"
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


def problems(t: Topology) -> list[str]:
    return [
        *grant_problems(t),
        *trigger_loop_problems(t),
        *name_problems(t),
        *pubsub_limit_problems(t),
    ]
