"""DeploymentConfig: defaults, sources (cdktf.json, env, overrides) and clear errors."""

from __future__ import annotations

import json
import re
from dataclasses import MISSING, fields
from pathlib import Path

import pytest

from image_pipeline.formats import Box
from infra.model.config import (
    ConfigError,
    DeploymentConfig,
    from_mapping,
    load_config,
)
from infra.model.topology import build_topology


def _cdktf_json(tmp_path: Path, pipeline: dict) -> Path:
    path = tmp_path / "cdktf.json"
    path.write_text(json.dumps({"app": "python main.py", "context": {"pipeline": pipeline}}))
    return path


def test_defaults_give_a_working_cheap_pipeline():
    c = DeploymentConfig(project="my-gcp-project")
    assert c.region == "us-central1"
    assert c.uploads_bucket == "my-gcp-project-imgpipe-uploads"
    assert c.thumbnails_bucket == "my-gcp-project-imgpipe-thumbnails"
    assert c.source_bucket == "my-gcp-project-imgpipe-source"
    assert c.firestore_location == "us-central1"
    assert c.thumbnail_sizes == (Box(128, 128), Box(512, 512), Box(1024, 1024))
    assert c.confirm_destroy_data == ""  # everything that holds data is protected
    assert c.create_firestore_database is True  # a new project has no database
    assert c.iam_settle_seconds == 120  # "typically 2 minutes" (IAM propagation)
    assert c.uploads_lifecycle_days == 0


def test_repository_cdktf_json_is_a_valid_config():
    config = load_config(environ={})
    assert config.project == "my-gcp-project"


def test_env_overrides_cdktf_json_and_overrides_win(tmp_path):
    path = _cdktf_json(tmp_path, {"project": "from-json-1", "region": "us-east1"})
    env = {
        "PIPELINE_REGION": "europe-west1",
        "PIPELINE_FUNCTION_MAX_INSTANCES": "4",
        "PIPELINE_CONFIRM_DESTROY_DATA": "from-json-1",
        "PIPELINE_THUMBNAIL_SIZES": "64x64, 256x128",
        "PIPELINE_LABELS": "team=media,env=dev",
        "OTHER": "ignored",
    }
    c = load_config(path, env, overrides={"prefix": "pics"})
    assert c.project == "from-json-1"
    assert c.region == "europe-west1"
    assert c.function_max_instances == 4
    assert c.confirm_destroy_data == "from-json-1"
    assert c.thumbnail_sizes == (Box(64, 64), Box(256, 128))
    assert c.labels == {"team": "media", "env": "dev"}
    assert c.uploads_bucket == "from-json-1-pics-uploads"


def test_json_lists_are_accepted(tmp_path):
    path = _cdktf_json(
        tmp_path,
        {
            "project": "my-gcp-project",
            "thumbnail_sizes": [[10, 20], "30x40"],
            "thumbnail_formats": ["png", "webp"],
        },
    )
    c = load_config(path, {})
    assert c.thumbnail_sizes == (Box(10, 20), Box(30, 40))
    assert c.thumbnail_formats == ("png", "webp")


def test_missing_file_and_project_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match=r"pipeline\.project: required"):
        load_config(tmp_path / "absent.json", {})


@pytest.mark.parametrize(
    ("settings", "setting"),
    [
        ({"project": "Bad_Project"}, "project"),
        ({"region": "uscentral"}, "region"),
        ({"region": "US-CENTRAL1"}, "region"),
        ({"prefix": "Has_Upper"}, "prefix"),
        ({"prefix": "much-too-long-prefix"}, "prefix"),
        ({"uploads_bucket": "UPPER"}, "uploads_bucket"),
        ({"uploads_bucket": "google-photos"}, "uploads_bucket"),
        ({"uploads_bucket": "a..b"}, "uploads_bucket"),
        ({"thumbnails_bucket": "my-gcp-project-imgpipe-uploads"}, "thumbnails_bucket"),
        ({"thumbnail_sizes": ""}, "thumbnail_sizes"),
        ({"thumbnail_sizes": "512"}, "thumbnail_sizes"),
        ({"thumbnail_sizes": "0x10"}, "thumbnail_sizes"),
        ({"thumbnail_formats": "gif"}, "thumbnail_formats"),
        ({"thumbnail_formats": ""}, "thumbnail_formats"),
        ({"thumbnail_quality": "101"}, "thumbnail_quality"),
        ({"max_delivery_attempts": "4"}, "max_delivery_attempts"),
        ({"max_backoff_seconds": "5"}, "max_backoff_seconds"),
        ({"message_retention_seconds": "60"}, "message_retention_seconds"),
        ({"function_timeout_seconds": "541"}, "function_timeout_seconds"),
        ({"thumbnail_memory": "1GB"}, "thumbnail_memory"),
        ({"thumbnail_max_instances": "many"}, "thumbnail_max_instances"),
        ({"confirm_destroy_data": "true"}, "confirm_destroy_data"),  # names the project
        ({"iam_settle_seconds": "5"}, "iam_settle_seconds"),
        ({"labels": {"Bad Key": "x"}}, "labels"),
        ({"no_such_setting": "1"}, "no_such_setting"),
    ],
)
def test_invalid_settings_are_rejected_naming_the_setting(settings, setting):
    with pytest.raises(ConfigError) as info:
        from_mapping({"project": "my-gcp-project", **settings})
    assert info.value.setting == setting
    assert str(info.value).startswith(f"pipeline.{setting}: ")


def test_bucket_names_longer_than_63_chars_are_rejected():
    with pytest.raises(ConfigError, match="not a valid bucket name"):
        from_mapping({"project": "my-gcp-project", "uploads_bucket": "a" * 64})


def test_parse_sizes():
    sizes = from_mapping({"project": "my-gcp-project", "thumbnail_sizes": "1x2,3x4"})
    assert sizes.thumbnail_sizes == (Box(1, 2), Box(3, 4))
    with pytest.raises(ConfigError, match="thumbnail_sizes"):
        from_mapping({"project": "my-gcp-project", "thumbnail_sizes": "1x2,,3x4"})


def test_project_is_the_only_required_setting():
    required = [
        f.name
        for f in fields(DeploymentConfig)
        if f.default is MISSING and f.default_factory is MISSING
    ]
    assert required == ["project"]


def test_backfill_invokers_must_be_iam_members():
    config = from_mapping({"project": "my-gcp-project", "backfill_invokers": "user:a@b.c"})
    assert config.backfill_invokers == ("user:a@b.c",)
    with pytest.raises(ConfigError, match=r"pipeline\.backfill_invokers: 'a@b\.c' is not"):
        from_mapping({"project": "my-gcp-project", "backfill_invokers": "a@b.c"})


def test_alert_notification_channels_are_full_channel_names():
    config = from_mapping(
        {
            "project": "my-gcp-project",
            "alert_notification_channels": "123,projects/ops-project-1/notificationChannels/45",
        }
    )
    assert config.alert_notification_channels == (
        "projects/my-gcp-project/notificationChannels/123",
        "projects/ops-project-1/notificationChannels/45",
    )
    with pytest.raises(ConfigError, match=r"alert_notification_channels: 'ops@x\.com' is not"):
        from_mapping({"project": "my-gcp-project", "alert_notification_channels": ["ops@x.com"]})


def test_make_thumbnail_is_told_its_own_memory():
    """The decoded-bytes limit is derived from the memory the function really gets."""
    from image_pipeline import imaging
    from image_pipeline.settings import Settings
    from infra.model.topology import build_topology

    topology = build_topology(DeploymentConfig(project="my-gcp-project", thumbnail_memory="2Gi"))
    function = topology.functions[topology.trigger.function]
    assert function.memory == "2Gi"
    settings = Settings.from_env(function.env)
    assert settings.thumbnail_memory == "2Gi"
    assert imaging.Options.from_tunables(settings).memory == "2Gi"
    with pytest.raises(ConfigError, match="thumbnail_memory"):
        DeploymentConfig(project="my-gcp-project", thumbnail_memory="2GB")


def test_make_thumbnail_and_the_other_functions_have_their_own_instance_limit():
    default = build_topology(from_mapping({"project": "my-gcp-project"}))
    assert {f.max_instances for f in default.functions.values()} == {10}
    own = build_topology(
        from_mapping(
            {"project": "my-gcp-project", "function_max_instances": 3, "thumbnail_max_instances": 7}
        )
    )
    assert own.functions["make_thumbnail"].max_instances == 7
    assert own.functions["write_metadata"].max_instances == 3
    # The I/O-bound functions serve requests concurrently, make_thumbnail one at a time.
    assert [f.concurrency for f in own.functions.values()] == [1, 16, 16, 16]


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"thumbnail_cpu": "3"}, "not a vCPU count"),
        ({"thumbnail_cpu": "0.05"}, "not a vCPU count"),
        ({"thumbnail_cpu": "one"}, "not a vCPU count"),
        ({"thumbnail_cpu": "0.4"}, "allows 128 to 512 MiB of memory, not 1Gi"),
        ({"thumbnail_cpu": "4"}, "allows 2048 to 16384 MiB of memory, not 1Gi"),
        ({"function_cpu": "0.5"}, "needs at least 1 vCPU to serve 16 requests at once"),
    ],
)
def test_cpu_follows_cloud_runs_rules(settings, problem):
    with pytest.raises(ConfigError, match=re.escape(problem)):
        from_mapping({"project": "my-gcp-project", **settings})


def test_a_fraction_of_a_vcpu_serves_one_request_at_a_time():
    config = from_mapping(
        {"project": "my-gcp-project", "function_cpu": "0.5", "function_concurrency": 1}
    )
    assert build_topology(config).functions["cleanup"].cpu == "0.5"


def test_a_pipeline_variable_ci_would_not_see_is_named(tmp_path):
    from infra.model.ci_inputs import differences

    path = _cdktf_json(tmp_path, {"project": "from-json-1", "github_repository": "o/r"})
    environ = {
        "PIPELINE_REGION": "europe-west1",  # changes what CI deploys
        "PIPELINE_PROJECT": "from-json-1",  # the same as cdktf.json: nothing to say
        "PIPELINE_CONFIRM_DESTROY_DATA": "from-json-1",  # a local confirmation
        "PIPELINE_GITHUB_REPOSITORY_ID": "42",
        "PIPELINE_NO_SUCH": "1",
    }
    # CI cannot synthesize at all: the repository id is only in this machine's environment.
    [unknown, broken] = differences(environ, path)
    assert unknown == "PIPELINE_NO_SUCH is not a setting (ignored)"
    assert broken.startswith("CI cannot synthesize from cdktf.json alone: ")
    assert "github_repository_id" in broken
    path = _cdktf_json(tmp_path, {"project": "from-json-1"})
    environ.pop("PIPELINE_GITHUB_REPOSITORY_ID")
    assert differences(environ, path) == [
        "PIPELINE_NO_SUCH is not a setting (ignored)",
        "PIPELINE_REGION sets region to 'europe-west1'; CI, which reads cdktf.json only, "
        "deploys 'us-central1' (put it in cdktf.json)",
    ]
    assert differences({}, path) == []


def test_the_ci_check_names_a_broken_local_setting_in_one_line(tmp_path, monkeypatch, capsys):
    from infra.model import ci_inputs, config

    monkeypatch.setattr(config, "CDKTF_JSON", _cdktf_json(tmp_path, {"project": "from-json-1"}))
    monkeypatch.setenv("PIPELINE_ENVIRONMENT", "nope")
    assert ci_inputs.main() == 2
    assert capsys.readouterr().err == (
        "error: pipeline.environment: 'nope' is not under context.environments in "
        "cdktf.json (known: none)\n"
    )
