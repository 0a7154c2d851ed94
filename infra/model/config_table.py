"""The deployment settings as a Markdown table (README "Deploy to GCP").

`python -m infra.model.config_table` prints it; a unit test checks the README carries exactly
this table, so a new setting or a changed default cannot leave the README behind.
"""

from __future__ import annotations

from dataclasses import MISSING, fields

from infra.model.config import DeploymentConfig

HELP = {
    "project": "GCP project id to deploy into",
    "region": "region of the functions, the buckets and the trigger",
    "prefix": "prefix of every topic, subscription, function and service account",
    "uploads_bucket": "bucket whose uploads are processed",
    "thumbnails_bucket": "bucket the thumbnails go to (must differ from uploads)",
    "thumbnail_sizes": "bounding boxes `WxH` (never upscaled)",
    "thumbnail_formats": "output formats: webp, jpeg, png, avif",
    "thumbnail_quality": "encoder quality 1..100",
    "cache_control": "Cache-Control of the thumbnails",
    "max_input_bytes": "larger objects are rejected before download",
    "max_input_pixels": "larger images are rejected before decoding",
    "include_patterns": "globs an object must match to be processed (empty: all)",
    "exclude_patterns": "globs that exclude an object",
    "retry_window_seconds": "how long make_thumbnail's Eventarc retries go on",
    "exif_include_gps": "keep GPS in the metadata doc's EXIF subset (never in thumbnails)",
    "max_delivery_attempts": "push deliveries before a message is dead-lettered (5..100)",
    "min_backoff_seconds": "Pub/Sub retry backoff, minimum",
    "max_backoff_seconds": "Pub/Sub retry backoff, maximum (≤ 600)",
    "message_retention_seconds": "how long subscriptions keep unacked messages",
    "thumbnail_memory": "memory of make_thumbnail",
    "thumbnail_timeout_seconds": "timeout of make_thumbnail",
    "function_memory": "memory of the other functions",
    "function_timeout_seconds": "timeout of the other functions (and their ack deadline)",
    "max_instances": "maximum instances per function",
    "uploads_lifecycle_days": "delete originals after N days (0: keep)",
    "create_firestore_database": "create the `(default)` Firestore database (native mode)",
    "firestore_location": "location of that database",
    "force_destroy": "let `cdktf destroy` delete non-empty uploads/thumbnails buckets",
    "backfill_invokers": (
        "IAM members allowed to run `scripts/backfill --project` (make_thumbnail then takes "
        "authenticated calls from outside the project)"
    ),
    "labels": "labels of the buckets, topics, subscriptions and functions (env: `k=v,k2=v2`)",
}
DERIVED = {
    "uploads_bucket": "`{project}-{prefix}-uploads`",
    "thumbnails_bucket": "`{project}-{prefix}-thumbnails`",
    "firestore_location": "the region",
}


def _default(name: str) -> str:
    if name in DERIVED:
        return DERIVED[name]
    f = next(f for f in fields(DeploymentConfig) if f.name == name)
    if f.default is MISSING and f.default_factory is MISSING:
        return "required"
    value = f.default_factory() if f.default is MISSING else f.default
    if name == "thumbnail_sizes":
        value = ",".join(f"{w}x{h}" for w, h in value)
    elif isinstance(value, tuple):
        value = ",".join(value)
    elif isinstance(value, bool):
        value = str(value).lower()
    elif isinstance(value, dict):
        value = ",".join(f"{k}={v}" for k, v in value.items())
    return f"`{value}`" if value != "" else "empty"


def markdown_table() -> str:
    rows = ["| setting | env variable | default | meaning |", "|---|---|---|---|"]
    for f in fields(DeploymentConfig):
        rows.append(
            f"| `{f.name}` | `PIPELINE_{f.name.upper()}` | {_default(f.name)} | {HELP[f.name]} |"
        )
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
