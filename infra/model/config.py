"""Deployment settings: one typed object with defaults, read from `cdktf.json`
(`context.pipeline`, `context.environments`) and `PIPELINE_*` variables (docs/settings.md). The
functions' settings are inherited from `image_pipeline.settings.Tunables`; this module adds the
deployment's own. A bad setting fails at synth, naming it, not half-way through a deploy.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from image_pipeline.settings import (
    PARSERS,
    Parser,
    SettingsError,
    Tunables,
    check_bounds,
    fields_and_types,
    parse,
    setting,
)
from infra.common.paths import ROOT
from infra.model import setting_rules as rules

ENV_PREFIX = "PIPELINE_"
CDKTF_JSON = ROOT / "cdktf.json"  # where the settings are read (tests point it elsewhere)
# Selects one named environment (cdktf.json context.environments) for main.py and the tools.
ENVIRONMENT_VAR = "PIPELINE_ENVIRONMENT"
# What the project stack holds, so environments sharing a project must agree on it.
PROJECT_SETTINGS = (
    "create_firestore_database",
    "firestore_location",
    "state_bucket",
    "github_repository",
    "github_repository_id",
)

# Settings that feed an attribute the provider sets only at creation (ForceNew) of a resource
# holding data, so a change plans its replacement (docs/settings.md: "fixed after the first
# deploy"; infra.deploy.replacements names it, `prevent_destroy` refuses it).
FIXED_AFTER_FIRST_DEPLOY = (
    "project",
    "environment",
    "region",
    "prefix",
    "uploads_bucket",
    "thumbnails_bucket",
    "create_firestore_database",
    "firestore_location",
)


class ConfigError(ValueError):
    """A deployment setting is missing or invalid; the message names the setting."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"pipeline.{setting}: {message}")
        self.setting = setting


@dataclass(frozen=True, kw_only=True)
class DeploymentConfig(Tunables):
    """Everything a deployment may choose (the functions' settings inherited from
    `Tunables`). Defaults give a working, cheap pipeline."""

    project: str = setting(doc="GCP project id to deploy into")
    environment: str = setting(
        "",
        doc="the named environment (`context.environments` in cdktf.json, selected with "
        "`PIPELINE_ENVIRONMENT`); its stacks, state and Firestore collections carry the name "
        "(empty: the one default deployment)",
    )
    region: str = setting("us-central1", doc="region of the functions, the buckets and the trigger")
    prefix: str = setting(
        "imgpipe", doc="prefix of every topic, subscription, function and service account"
    )
    uploads_bucket: str = setting(
        "", doc="bucket whose uploads are processed", default_doc="`{project}-{prefix}-uploads`"
    )
    thumbnails_bucket: str = setting(
        "",
        doc="bucket the thumbnails go to (must differ from uploads)",
        default_doc="`{project}-{prefix}-thumbnails`",
    )
    # Pub/Sub's own bounds for dead-letter policies and retry policies. 15 attempts on the
    # 10..600 s backoff outlast about 90 minutes of refused deliveries (429: no instance
    # free), so throttling alone dead-letters nothing (docs/capacity.md, infra.model.capacity).
    max_delivery_attempts: int = setting(
        15, doc="push deliveries before a message is dead-lettered (5..100)", bounds=(5, 100)
    )
    min_backoff_seconds: int = setting(10, doc="Pub/Sub retry backoff, minimum", bounds=(0, 600))
    max_backoff_seconds: int = setting(
        600, doc="Pub/Sub retry backoff, maximum (≤ 600)", bounds=(0, 600)
    )
    message_retention_seconds: int = setting(
        7 * 24 * 3600,
        doc="how long subscriptions keep unacked messages",
        bounds=(600, 31 * 24 * 3600),
    )
    thumbnail_timeout_seconds: int = setting(120, doc="timeout of make_thumbnail", bounds=(1, 540))
    function_memory: str = setting(
        "256Mi", doc="memory of the other functions (`thumbnail_memory`: make_thumbnail's)"
    )
    function_timeout_seconds: int = setting(
        60,
        doc="timeout of the other functions (their push ack deadline is 60 s longer, for a "
        "cold start)",
        bounds=(1, 540),
    )
    # Sizing per function: why two instance limits, docs/settings.md; what they serve,
    # docs/capacity.md.
    thumbnail_max_instances: int = setting(
        10, doc="maximum instances of make_thumbnail (one upload each)", bounds=(1, 1000)
    )
    thumbnail_cpu: str = setting(
        "1",
        doc="vCPUs of make_thumbnail (0.08..<1, or 1, 2, 4, 6, 8; within Cloud Run's limits "
        "for `thumbnail_memory`)",
    )
    function_max_instances: int = setting(
        10,
        doc="maximum instances of each other function (`function_concurrency` requests each)",
        bounds=(1, 1000),
    )
    function_cpu: str = setting(
        "1", doc="vCPUs of the other functions (at least 1 when concurrent)"
    )
    function_concurrency: int = setting(
        16, doc="requests one instance of the other functions serves at once", bounds=(1, 1000)
    )
    create_firestore_database: bool = setting(
        True,
        doc="create the `(default)` Firestore database (native mode); `false` if the project "
        "already has one",
    )
    firestore_location: str = setting("", doc="location of that database", default_doc="the region")
    # Typed, not a flag: it must name the project, so a setting left over from another
    # deployment cannot destroy this one. `cdktf destroy` synthesizes again, so it sees it.
    confirm_destroy_data: str = setting(
        "",
        doc="the project id, to let this deployment's data be destroyed or replaced: lifts "
        "Terraform's `prevent_destroy` from the buckets, topics, subscriptions and database "
        "and lets a destroy delete the buckets with their objects (empty: all protected)",
    )
    github_repository: str = setting(
        "",
        doc="GitHub repository (`owner/name`) whose Actions workflows may deploy: the project "
        "stack creates a workload identity pool, its provider, a deploy account for `main` "
        "and a read-only plan account for pull requests (empty: none)",
    )
    # GitHub never reuses a repository id; a name can be re-registered by someone else
    # (google-github-actions/auth, "Security Considerations").
    github_repository_id: str = setting(
        "", doc="that repository's numeric id, which the identity provider's condition names"
    )
    state_bucket: str = setting(
        "",
        doc="Cloud Storage bucket holding the Terraform state (a prefix per stack); "
        "empty: local state files next to cdktf.json",
    )
    labels: Mapping[str, str] = setting(
        factory=dict,
        doc="labels of the buckets, topics, subscriptions and functions (env: `k=v,k2=v2`)",
    )
    uploads_storage_classes: tuple[str, ...] = setting(
        (),
        doc="age originals into colder storage: `CLASS:DAYS` pairs (`NEARLINE:30,COLDLINE:90,"
        "ARCHIVE:365`), a lifecycle rule each; nothing is deleted: prefer it to "
        "`uploads_lifecycle_days`",
    )
    backfill_invokers: tuple[str, ...] = setting(
        (),
        doc="IAM members allowed to run `scripts/backfill --project` (make_thumbnail then takes "
        "authenticated calls from outside the project)",
    )
    # Existing Cloud Monitoring channels (create them in the console or with `gcloud beta
    # monitoring channels create`); the alert policies exist and open incidents without any.
    alert_notification_channels: tuple[str, ...] = setting(
        (),
        doc="notification channels of the alert policies: ids or "
        "`projects/P/notificationChannels/ID` (empty: incidents show in the console only)",
    )
    # Off by default: how many failed uploads are normal depends on who uploads what.
    failed_alert_threshold: int = setting(
        0,
        doc="alert when more than N uploads fail (`image.failed`) within an hour (0: no alert)",
        bounds=(0, 1_000_000),
    )

    iam_settle_seconds: int = setting(
        120,
        doc="wait after IAM grants before the builds and the trigger use them (first deploy only)",
        bounds=(30, 1800),
    )

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
        object.__setattr__(
            self,
            "alert_notification_channels",
            tuple(
                f"projects/{self.project}/notificationChannels/{c}" if c.isdigit() else c
                for c in self.alert_notification_channels
            ),
        )
        if found := rules.problem(self):
            raise ConfigError(*found)
        try:
            super().__post_init__()
            check_bounds(self, DeploymentConfig)
        except SettingsError as error:
            raise ConfigError(error.setting, error.problem) from None

    @property
    def source_bucket(self) -> str:
        """Bucket holding the function source archives."""
        return f"{self.project}-{self.prefix}-source"


def _labels(raw: object) -> dict[str, str]:
    if isinstance(raw, str):
        pairs = [kv for kv in raw.split(",") if kv.strip()]
        if bad := [kv for kv in pairs if "=" not in kv]:
            raise ValueError(f"{bad[0]!r} is not key=value (labels are k=v,k2=v2)")
        raw = dict(kv.split("=", 1) for kv in pairs)
    if not isinstance(raw, Mapping):
        raise ValueError(f"{raw!r} is not a mapping of labels")
    return {str(k): str(v) for k, v in raw.items()}


_PARSERS: Mapping[object, Parser] = {**PARSERS, Mapping[str, str]: _labels}


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
    kinds = {f.name: kind for f, kind in fields_and_types(DeploymentConfig)}
    try:
        kwargs: dict[str, Any] = {
            name: parse(kinds[name], raw, name, name, _PARSERS) for name, raw in values.items()
        }
    except SettingsError as error:
        raise ConfigError(error.setting, error.problem) from None
    return DeploymentConfig(**kwargs)


class ConfigFileError(ConfigError):
    """`cdktf.json` cannot be read as settings; the message names the file (line, column)."""

    def __init__(self, message: str) -> None:
        ValueError.__init__(self, message)
        self.setting = ""


def _context(path: Path) -> tuple[Mapping[str, Any], Mapping[str, Mapping[str, Any]]]:
    """`context.pipeline` and `context.environments` of cdktf.json (empty without the file),
    or ConfigFileError naming the file (line and column) and what is wrong."""
    if not path.exists():
        return {}, {}
    try:
        document = json.loads(path.read_bytes().decode("utf-8"))  # a BOM is refused
    except UnicodeDecodeError as exc:
        raise ConfigFileError(f"{path}: not UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ConfigFileError(f"{path}:{exc.lineno}:{exc.colno}: {exc.msg}") from None
    except OSError as exc:
        raise ConfigFileError(f"{path}: {exc.strerror}") from None
    context = document.get("context", {}) if isinstance(document, dict) else None
    pipeline = context.get("pipeline", {}) if isinstance(context, dict) else None
    if not isinstance(context, dict) or not isinstance(pipeline, dict):
        raise ConfigFileError(f"{path}: context.pipeline must be a JSON object of settings")
    named = context.get("environments", {})
    if not isinstance(named, dict) or not all(isinstance(v, dict) for v in named.values()):
        raise ConfigFileError(f"{path}: context.environments must map names to settings")
    return pipeline, named


def load_config(
    cdktf_json: Path | None = None,
    environ: Mapping[str, str] = os.environ,
    overrides: Mapping[str, Any] | None = None,
) -> DeploymentConfig:
    """`cdktf.json` context.pipeline, then the named environment's settings (the
    `environment` override or `PIPELINE_ENVIRONMENT`), then `PIPELINE_*` env vars, then
    `overrides`."""
    cdktf_json = cdktf_json or CDKTF_JSON
    pipeline, named = _context(cdktf_json)
    values: dict[str, Any] = dict(pipeline)
    environment = str((overrides or {}).get("environment") or environ.get(ENVIRONMENT_VAR, ""))
    if environment:
        if environment not in named:
            known = ", ".join(sorted(named)) or "none"
            raise ConfigError(
                "environment",
                f"{environment!r} is not under context.environments in {cdktf_json.name} "
                f"(known: {known})",
            )
        values.update(named[environment])
        values["environment"] = environment
    names = {f.name for f in fields(DeploymentConfig)}
    for key, raw in environ.items():
        if key.startswith(ENV_PREFIX) and key[len(ENV_PREFIX) :].lower() in names:
            values[key[len(ENV_PREFIX) :].lower()] = raw
    values.update(overrides or {})
    return from_mapping(values)


def load_environments(
    cdktf_json: Path | None = None, environ: Mapping[str, str] = os.environ
) -> list[DeploymentConfig]:
    """What `python main.py` synthesizes: every environment of cdktf.json (or only the one
    `PIPELINE_ENVIRONMENT` names), or the single default deployment when there are none."""
    cdktf_json = cdktf_json or CDKTF_JSON
    named = _context(cdktf_json)[1]
    if environ.get(ENVIRONMENT_VAR) or not named:
        configs = [load_config(cdktf_json, environ)]
    else:
        configs = [
            load_config(cdktf_json, environ, {"environment": name}) for name in sorted(named)
        ]
    check_environments(configs)
    return configs


def check_environments(configs: list[DeploymentConfig]) -> None:
    """Environments that share a project share its project stack, so they must agree on what
    it holds, and must not share a prefix (every name of theirs starts with it). No two
    environments may name the same bucket (say one set under context.pipeline): each stack
    would create it, and the second apply fail with 409."""
    by_project: dict[str, DeploymentConfig] = {}
    for config in configs:
        first = by_project.setdefault(config.project, config)
        if first is config:
            continue
        both = f"environments {first.environment!r} and {config.environment!r}"
        if first.prefix == config.prefix:
            raise ConfigError(
                "prefix", f"{both} deploy to project {config.project} with the same prefix"
            )
        for name in PROJECT_SETTINGS:
            if getattr(first, name) != getattr(config, name):
                raise ConfigError(
                    name,
                    f"{both} share project {config.project} (and its project stack) "
                    "but set it differently",
                )
    owners: dict[str, DeploymentConfig] = {}
    for config in configs:
        for name in ("uploads_bucket", "thumbnails_bucket"):
            owner = owners.setdefault(getattr(config, name), config)
            if owner is not config:
                both = f"environments {owner.environment!r} and {config.environment!r}"
                raise ConfigError(name, f"{both} both name bucket {getattr(config, name)}")
