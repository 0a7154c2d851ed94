"""Google Cloud's rules for the deployment settings' values (names, locations, CPU and
memory), each with its source, and the rules between settings: what `DeploymentConfig`
checks before a synth, so a bad value is named at once instead of half-way through a
`cdktf deploy`. Plain data: `problem(config)` returns (setting, message) or None.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from image_pipeline.formats import memory_bytes, memory_problem

# Firestore's multi-region locations; the regional ones are region names
# (https://cloud.google.com/firestore/docs/locations).
MULTI_REGIONS = ("eur3", "nam5", "nam7")
_REGION = r"[a-z]+(-[a-z]+)+[0-9]+"
_PROJECT = r"[a-z][a-z0-9-]{4,28}[a-z0-9]"
# Bucket names: https://cloud.google.com/storage/docs/buckets#naming
_BUCKET = r"(?!goog)(?!.*google)(?!.*\.\.)[a-z0-9][a-z0-9_.-]{1,61}[a-z0-9]"
_BUCKET_RULE = (
    _BUCKET,
    "a valid bucket name (3-63 chars: lowercase letters, digits, '-', '_', '.'; starts and "
    "ends with a letter or digit; no 'goog' prefix)",
)
# Setting -> (the whole value, or each of its values, must match; what it must be). An
# optional setting left empty is not checked.
PATTERNS: Mapping[str, tuple[str, str]] = {
    "project": (
        _PROJECT,
        "a GCP project id (6-30 chars: lowercase letters, digits, hyphens; starts with a letter)",
    ),
    "region": (_REGION, "a region like 'us-central1'"),
    "environment": (r"[a-z][a-z0-9-]{0,15}", "1-16 chars, lowercase letters, digits, hyphens"),
    "prefix": (r"[a-z][a-z0-9-]{0,11}", "1-12 chars, lowercase letters, digits, hyphens"),
    "uploads_bucket": _BUCKET_RULE,
    "thumbnails_bucket": _BUCKET_RULE,
    "state_bucket": _BUCKET_RULE,
    "firestore_location": (
        rf"{_REGION}|{'|'.join(MULTI_REGIONS)}",
        "a Firestore location: a region like 'us-central1' or a multi-region "
        f"({', '.join(MULTI_REGIONS)})",
    ),
    "github_repository": (
        r"[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100}",
        "a repository like 'owner/name'",
    ),
    "github_repository_id": (
        r"[1-9][0-9]{0,19}",
        "a repository's numeric id (`gh api repos/OWNER/NAME --jq .id`)",
    ),
    "uploads_storage_classes": (r"(NEARLINE|COLDLINE|ARCHIVE):[1-9][0-9]{0,4}", "CLASS:DAYS"),
    "backfill_invokers": (
        r"(user|group|serviceAccount|domain):[^\s:]+",
        "an IAM member like 'user:ops@example.com', 'group:…' or 'serviceAccount:…'",
    ),
    "alert_notification_channels": (
        rf"projects/{_PROJECT}/notificationChannels/[0-9]+",
        "a notification channel id like '1234567890' or "
        "'projects/my-project/notificationChannels/1234567890' "
        "(list them: gcloud beta monitoring channels list)",
    ),
}
# Cloud Run's memory range per whole vCPU count, in MiB
# (https://cloud.google.com/run/docs/configuring/services/cpu, "CPU and memory table").
_MEMORY_RANGE_MIB = {1: (128, 4096), 2: (128, 8192), 4: (2048, 16384), 6: (4096, 24576)}
_MEMORY_RANGE_MIB[8] = (4096, 32768)


def problem(c: Any) -> tuple[str, str] | None:
    """The first (setting, what is wrong with it) of a `DeploymentConfig`, or None."""
    return next(_problems(c), None)


def _problems(c: Any) -> Iterator[tuple[str, str]]:
    for name, (pattern, what) in PATTERNS.items():
        values = getattr(c, name)
        if not isinstance(values, tuple):
            values = (values,) if values or name == "project" else ()
        for value in values:
            if not re.fullmatch(pattern, value):
                yield name, f"{value!r} is not {what}"
    if not re.fullmatch(_BUCKET, c.source_bucket):
        yield "project", f"{c.source_bucket!r} (source bucket) is not {_BUCKET_RULE[1]}"
    if c.uploads_bucket == c.thumbnails_bucket:
        yield "thumbnails_bucket", "must differ from uploads_bucket (outputs would re-trigger)"
    for name in ("thumbnail_memory", "function_memory"):
        if found := memory_problem(getattr(c, name)):
            yield name, found
    if found := _cpu_problem(c.thumbnail_cpu, c.thumbnail_memory, 1):
        yield "thumbnail_cpu", found
    if found := _cpu_problem(c.function_cpu, c.function_memory, c.function_concurrency):
        yield "function_cpu", found
    for key, value in c.labels.items():
        if not re.match(r"^[a-z][a-z0-9_-]{0,62}$", key) or not re.match(
            r"^[a-z0-9_-]{0,63}$", value
        ):
            yield "labels", f"{key}={value!r} is not a valid GCP label"
    if c.confirm_destroy_data not in ("", c.project):
        yield (
            "confirm_destroy_data",
            f"{c.confirm_destroy_data!r} is not this deployment's project {c.project!r}: "
            "name the project to confirm",
        )
    if bool(c.github_repository) != bool(c.github_repository_id):
        yield "github_repository_id", "set it exactly when github_repository is set"
    if c.max_backoff_seconds < c.min_backoff_seconds:
        yield (
            "max_backoff_seconds",
            f"{c.max_backoff_seconds!r} must not be below min_backoff_seconds",
        )


def _cpu_problem(cpu: str, memory: str, concurrency: int) -> str | None:
    """Cloud Run's CPU rules: 0.08..<1 (3 decimals) or 1, 2, 4, 6, 8; the memory that CPU
    allows; and below 1 vCPU a concurrency of 1 (same page, "less than 1 CPU")."""
    try:
        value = float(cpu)
    except ValueError:
        value = 0.0
    whole = value.is_integer() and int(value) in _MEMORY_RANGE_MIB
    fraction = 0.08 <= value < 1 and round(value, 3) == value
    if not (whole or fraction):
        return f"{cpu!r} is not a vCPU count: 0.08 to 0.999, or 1, 2, 4, 6, 8"
    mib = memory_bytes(memory) // (1 << 20)
    low, high = _MEMORY_RANGE_MIB[int(value)] if whole else (128, 512 if value < 0.5 else 1024)
    if not low <= mib <= high:
        return f"{cpu} vCPU allows {low} to {high} MiB of memory, not {memory}"
    if value < 1 and concurrency > 1:
        return f"{cpu}: Cloud Run needs at least 1 vCPU to serve {concurrency} requests at once"
    return None
