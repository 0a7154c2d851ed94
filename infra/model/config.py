"""Deployment settings: one typed object with defaults, read from `cdktf.json` and env.

Settings live under the `pipeline` key of the `context` in `cdktf.json`; an environment
variable `PIPELINE_<SETTING>` (upper case) overrides one. Every value is validated here, so
a bad setting fails at synth (or at `scripts/local up`) with a message naming it, instead
of failing half-way through a `cdktf deploy`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from image_pipeline.settings import FORMATS, Settings
from infra.common.paths import ROOT

ENV_PREFIX = "PIPELINE_"

_PROJECT_RE = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_REGION_RE = re.compile(r"^[a-z]+(-[a-z]+)+[0-9]+$")
_PREFIX_RE = re.compile(r"^[a-z][a-z0-9-]{0,11}$")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,61}[a-z0-9]$")
_SIZE_RE = re.compile(r"^([1-9][0-9]{0,4})x([1-9][0-9]{0,4})$")
_MEMBER_RE = re.compile(r"^(user|group|serviceAccount|domain):[^\s:]+$")
_MEMORY_RE = re.compile(r"^[1-9][0-9]*(Mi|Gi)$")


class ConfigError(ValueError):
    """A deployment setting is missing or invalid; the message names the setting."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"pipeline.{setting}: {message}")
        self.setting = setting


# The functions' own defaults (image_pipeline.settings) are the deployment's defaults, so a
# function run by hand and a deployed one behave alike. Required fields get placeholders.
_FN = Settings(project="p", uploads_bucket="u", thumbnails_bucket="t", image_events_topic="e")


@dataclass(frozen=True)
class DeploymentConfig:
    """Everything a deployment may choose. Defaults give a working, cheap pipeline."""

    project: str
    region: str = "us-central1"
    prefix: str = "imgpipe"
    uploads_bucket: str = ""  # default: {project}-{prefix}-uploads
    thumbnails_bucket: str = ""  # default: {project}-{prefix}-thumbnails
    thumbnail_sizes: tuple[tuple[int, int], ...] = tuple(map(tuple, _FN.thumbnail_sizes))
    thumbnail_formats: tuple[str, ...] = _FN.thumbnail_formats
    thumbnail_quality: int = _FN.thumbnail_quality
    cache_control: str = _FN.cache_control
    max_input_bytes: int = _FN.max_input_bytes
    max_input_pixels: int = _FN.max_input_pixels
    include_patterns: tuple[str, ...] = ()
    exclude_patterns: tuple[str, ...] = ()
    retry_window_seconds: int = _FN.retry_window_seconds
    exif_include_gps: bool = _FN.exif_include_gps
    max_delivery_attempts: int = 5
    min_backoff_seconds: int = 10
    max_backoff_seconds: int = 600
    message_retention_seconds: int = 7 * 24 * 3600
    thumbnail_memory: str = "1Gi"
    thumbnail_timeout_seconds: int = 120
    function_memory: str = "256Mi"
    function_timeout_seconds: int = 60
    max_instances: int = 10
    uploads_lifecycle_days: int = 0  # 0 = keep originals forever
    create_firestore_database: bool = False
    firestore_location: str = ""  # default: region
    force_destroy: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    # IAM members (user:, group:, serviceAccount:) allowed to call make_thumbnail directly,
    # for `scripts/backfill --project`. Empty: the function accepts internal traffic only.
    backfill_invokers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Derived defaults are filled here so every reader sees final names.
        if not self.uploads_bucket:
            object.__setattr__(self, "uploads_bucket", f"{self.project}-{self.prefix}-uploads")
        if not self.thumbnails_bucket:
            object.__setattr__(
                self, "thumbnails_bucket", f"{self.project}-{self.prefix}-thumbnails"
            )
        if not self.firestore_location:
            object.__setattr__(self, "firestore_location", self.region)
        _validate(self)

    @property
    def source_bucket(self) -> str:
        """Bucket holding the function source archives."""
        return f"{self.project}-{self.prefix}-source"


def _validate(c: DeploymentConfig) -> None:
    if not _PROJECT_RE.match(c.project):
        raise ConfigError(
            "project",
            f"{c.project!r} is not a GCP project id (6-30 chars: lowercase letters, digits, "
            "hyphens; starts with a letter)",
        )
    if not _REGION_RE.match(c.region):
        raise ConfigError("region", f"{c.region!r} is not a region like 'us-central1'")
    if not _PREFIX_RE.match(c.prefix):
        raise ConfigError("prefix", f"{c.prefix!r}: 1-12 chars, lowercase letters, digits, hyphens")
    for name in ("uploads_bucket", "thumbnails_bucket"):
        _check_bucket(name, getattr(c, name))
    _check_bucket("project", c.source_bucket)
    if c.uploads_bucket == c.thumbnails_bucket:
        raise ConfigError(
            "thumbnails_bucket", "must differ from uploads_bucket (outputs would re-trigger)"
        )
    if not c.thumbnail_sizes:
        raise ConfigError("thumbnail_sizes", "needs at least one size like '512x512'")
    if not c.thumbnail_formats:
        raise ConfigError("thumbnail_formats", f"needs at least one of {', '.join(FORMATS)}")
    for fmt in c.thumbnail_formats:
        if fmt not in FORMATS:
            raise ConfigError("thumbnail_formats", f"{fmt!r} is not one of {', '.join(FORMATS)}")
    _check_range("thumbnail_quality", c.thumbnail_quality, 1, 100)
    _check_range("max_input_bytes", c.max_input_bytes, 1, 5 * 1024**4)
    _check_range("max_input_pixels", c.max_input_pixels, 1, 10**10)
    _check_range("retry_window_seconds", c.retry_window_seconds, 10, 24 * 3600)
    # Pub/Sub's own bounds for dead-letter policies and retry policies.
    _check_range("max_delivery_attempts", c.max_delivery_attempts, 5, 100)
    _check_range("min_backoff_seconds", c.min_backoff_seconds, 0, 600)
    _check_range("max_backoff_seconds", c.max_backoff_seconds, c.min_backoff_seconds, 600)
    _check_range("message_retention_seconds", c.message_retention_seconds, 600, 31 * 24 * 3600)
    _check_range("thumbnail_timeout_seconds", c.thumbnail_timeout_seconds, 1, 540)
    _check_range("function_timeout_seconds", c.function_timeout_seconds, 1, 540)
    _check_range("max_instances", c.max_instances, 1, 1000)
    _check_range("uploads_lifecycle_days", c.uploads_lifecycle_days, 0, 36500)
    for name in ("thumbnail_memory", "function_memory"):
        if not _MEMORY_RE.match(getattr(c, name)):
            raise ConfigError(name, f"{getattr(c, name)!r} is not a size like '512Mi' or '1Gi'")
    for member in c.backfill_invokers:
        if not _MEMBER_RE.match(member):
            raise ConfigError(
                "backfill_invokers",
                f"{member!r} is not an IAM member like 'user:ops@example.com', "
                "'group:…' or 'serviceAccount:…'",
            )
    for key, value in c.labels.items():
        if not re.match(r"^[a-z][a-z0-9_-]{0,62}$", key) or not re.match(
            r"^[a-z0-9_-]{0,63}$", value
        ):
            raise ConfigError("labels", f"{key}={value!r} is not a valid GCP label")


def _check_bucket(setting: str, name: str) -> None:
    if not _BUCKET_RE.match(name) or ".." in name or name.startswith("goog") or "google" in name:
        raise ConfigError(
            setting,
            f"{name!r} is not a valid bucket name (3-63 chars: lowercase letters, digits, "
            "'-', '_', '.'; starts and ends with a letter or digit; no 'goog' prefix)",
        )


def _check_range(setting: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(setting, f"{value!r} must be a whole number from {low} to {high}")


def parse_sizes(text: str) -> tuple[tuple[int, int], ...]:
    """`'128x128,512x512'` -> `((128, 128), (512, 512))`, rejecting anything else."""
    sizes = []
    for part in (p.strip() for p in text.split(",")):
        m = _SIZE_RE.match(part)
        if not m:
            raise ConfigError("thumbnail_sizes", f"{part!r} is not a size like '512x512'")
        sizes.append((int(m.group(1)), int(m.group(2))))
    return tuple(sizes)


def _coerce(name: str, kind: Any, raw: Any) -> Any:
    """Turns a JSON or env value into the field's type, with errors naming the setting."""
    if kind == "tuple[tuple[int, int], ...]":
        if isinstance(raw, str):
            return parse_sizes(raw)
        return parse_sizes(
            ",".join(s if isinstance(s, str) else "x".join(map(str, s)) for s in raw)
        )
    if kind == "tuple[str, ...]":
        items = raw.split(",") if isinstance(raw, str) else raw
        return tuple(str(i).strip() for i in items if str(i).strip())
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        if str(raw).lower() in ("1", "true", "yes"):
            return True
        if str(raw).lower() in ("0", "false", "no", ""):
            return False
        raise ConfigError(name, f"{raw!r} is not true or false")
    if kind == "int":
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise ConfigError(name, f"{raw!r} is not a whole number") from None
    if kind == "Mapping[str, str]":
        if isinstance(raw, str):
            raw = dict(kv.split("=", 1) for kv in raw.split(",") if "=" in kv)
        if not isinstance(raw, Mapping):
            raise ConfigError(name, f"{raw!r} is not a mapping of labels")
        return {str(k): str(v) for k, v in raw.items()}
    return str(raw)


def from_mapping(values: Mapping[str, Any]) -> DeploymentConfig:
    """Builds a config from plain settings (JSON context, env), rejecting unknown keys."""
    known = {f.name: f for f in fields(DeploymentConfig)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(unknown[0], f"unknown setting (known: {', '.join(sorted(known))})")
    if not values.get("project"):
        raise ConfigError(
            "project",
            'required: set "project" under context.pipeline in cdktf.json or PIPELINE_PROJECT',
        )
    kwargs = {name: _coerce(name, str(known[name].type), raw) for name, raw in values.items()}
    return DeploymentConfig(**kwargs)


def load_config(
    cdktf_json: Path = ROOT / "cdktf.json",
    environ: Mapping[str, str] = os.environ,
    overrides: Mapping[str, Any] | None = None,
) -> DeploymentConfig:
    """`cdktf.json` context.pipeline, then `PIPELINE_*` env vars, then `overrides`."""
    values: dict[str, Any] = {}
    if cdktf_json.exists():
        values.update(json.loads(cdktf_json.read_text()).get("context", {}).get("pipeline", {}))
    names = {f.name for f in fields(DeploymentConfig)}
    for key, raw in environ.items():
        if key.startswith(ENV_PREFIX) and key[len(ENV_PREFIX) :].lower() in names:
            values[key[len(ENV_PREFIX) :].lower()] = raw
    values.update(overrides or {})
    return from_mapping(values)
